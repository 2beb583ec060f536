"""How other devices reach this server: its LAN addresses, and a self-signed certificate.

The certificate for `--tls self-signed` lives in `<home>/tls/` (key 0600), made once with
every name and address the server answers to, and made anew when a LAN address is missing
from it. Phones accept it once its SHA-256 fingerprint, printed at start, matches.
"""

from __future__ import annotations

import datetime
import fcntl
import ipaddress
import socket
import struct
from pathlib import Path
from typing import TYPE_CHECKING

from vibetunnel.files import private_dir, write_private

if TYPE_CHECKING:
    from cryptography import x509

SIOCGIFADDR = 0x8915
CERT_DAYS = 825
"""The longest lifetime Apple's platforms accept for a TLS server certificate."""


def lan_addresses() -> list[str]:
    """The IPv4 addresses of this machine's interfaces, but loopback's."""
    found: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _, name in socket.if_nameindex():
            request = struct.pack("256s", name.encode()[:15])
            try:
                answer = fcntl.ioctl(probe.fileno(), SIOCGIFADDR, request)
            except OSError:
                continue  # down, or no IPv4 address
            address = socket.inet_ntoa(answer[20:24])
            if not ipaddress.ip_address(address).is_loopback and address not in found:
                found.append(address)
    return found


def urls(scheme: str, host: str, port: int) -> list[str]:
    """The URLs to print for a server bound to `host`: one per LAN address for a wildcard."""
    if host in ("0.0.0.0", "::", ""):
        return [f"{scheme}://{a}:{port}" for a in lan_addresses()] or [
            f"{scheme}://127.0.0.1:{port}"
        ]
    shown = f"[{host}]" if ":" in host else host
    return [f"{scheme}://{shown}:{port}"]


# cryptography is imported when a certificate is needed: a server on loopback never loads it.


def fingerprint(cert_pem: bytes) -> str:
    """SHA-256 of the certificate, as browsers show it (AB:CD:...)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    cert = x509.load_pem_x509_certificate(cert_pem)
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def self_signed(home: Path, addresses: list[str]) -> tuple[Path, Path]:
    """(certificate, key) paths in `<home>/tls/`, made if missing or not covering
    `addresses`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = home / "tls"
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    wanted = {ipaddress.ip_address(a) for a in ["127.0.0.1", *addresses]}
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        expires = cert.not_valid_after_utc
        now = datetime.datetime.now(datetime.UTC)
        if wanted <= set(san.get_values_for_type(x509.IPAddress)) and expires > now:
            return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, f"VibeTunnel {socket.gethostname()}")]
    )
    now = datetime.datetime.now(datetime.UTC)
    names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.DNSName(socket.gethostname())]
    names += [x509.IPAddress(a) for a in sorted(wanted, key=str)]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    private_dir(folder)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_private(key_path, key_pem)
    write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path
