"""`serve`'s options for reaching it from other devices: TLS, and what it prints for phones.

Binding beyond loopback serves HTTPS (`--tls-cert`/`--tls-key`, or `--tls self-signed`, kept
in the home); plain HTTP there needs `--insecure-http`. For a wildcard address the server
prints a URL per LAN address, and a QR code of the sign-in link for a phone's camera.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from urllib.parse import urlsplit

from vibetunnel.api.security import is_loopback
from vibetunnel.network import fingerprint, lan_addresses, self_signed, urls


class ReachError(Exception):
    """Options that do not go together; the message says what to do."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tls",
        choices=["self-signed"],
        help="serve HTTPS with a certificate made and kept in the home",
    )
    parser.add_argument("--tls-cert", type=Path, metavar="PEM", help="serve HTTPS: certificate")
    parser.add_argument("--tls-key", type=Path, metavar="PEM", help="serve HTTPS: private key")
    parser.add_argument(
        "--insecure-http",
        action="store_true",
        help="allow plain HTTP beyond loopback (only behind a proxy that adds TLS)",
    )


def tls_files(args: argparse.Namespace, home: Path) -> tuple[Path, Path] | None:
    """(certificate, key) to serve with, or None for plain HTTP. Raises ReachError."""
    if args.tls and (args.tls_cert or args.tls_key):
        raise ReachError("--tls self-signed and --tls-cert/--tls-key: choose one")
    if bool(args.tls_cert) != bool(args.tls_key):
        raise ReachError("--tls-cert and --tls-key go together")
    if args.tls_cert:
        for path in (args.tls_cert, args.tls_key):
            if not path.is_file():
                raise ReachError(f"{path}: no such file")
        return args.tls_cert, args.tls_key
    if args.tls == "self-signed":
        return self_signed(home, lan_addresses())
    if not is_loopback(args.host) and not args.insecure_http:
        raise ReachError(
            f"{args.host} is reachable from other machines, and plain HTTP would send your "
            "password, tokens and every keystroke in clear: use --tls self-signed (or "
            "--tls-cert/--tls-key), or --insecure-http behind a proxy that adds TLS"
        )
    return None


def public_url(url: str) -> str:
    """The URL to hand out: for a wildcard address, the first LAN address's."""
    parts = urlsplit(url)
    return urls(parts.scheme, parts.hostname or "", parts.port or 0)[0]


def announce(url: str, login: str | None, cert: Path | None) -> str:
    """What to print after the listening line: LAN URLs, the certificate's fingerprint, and a
    QR code of the sign-in link (or of the page) on the first LAN URL."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if is_loopback(host):
        return ""
    found = urls(parts.scheme, host, parts.port or 0)
    lines = ["From another device (phone, laptop) on this network:"]
    lines += [f"  {u}" for u in found]
    if cert is not None:
        lines.append(f"Certificate SHA-256 fingerprint: {fingerprint(cert.read_bytes())}")
    target = f"{found[0]}/?login={login}" if login else found[0]
    import segno  # only for a server other devices reach

    out = io.StringIO()
    segno.make(target, error="l").terminal(out=out, compact=True)
    lines.append("Scan to open it" + (" and sign in (5 minutes, once):" if login else ":"))
    lines.append(out.getvalue().rstrip("\n"))
    return "\n".join(lines)
