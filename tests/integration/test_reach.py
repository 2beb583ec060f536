"""Reaching the server from a phone: HTTPS beyond loopback, LAN URLs, a QR code, --insecure-http.

The servers bind every address (0.0.0.0) but the tests only talk to 127.0.0.1.
"""

from __future__ import annotations

import os
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import UNIT, start_server, wait_until
from tests.integration.test_vt import Terminal, vt_env
from vibetunnel.network import fingerprint, lan_addresses


def pinned(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


def test_beyond_loopback_plain_http_is_refused_and_says_why(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "vibetunnel", "serve", "--host", "0.0.0.0", "--port", "0"],
        env={**os.environ, "VIBETUNNEL_HOME": str(tmp_path / "home")},
        capture_output=True,
        text=True,
        timeout=30 * UNIT,
        check=False,
    )
    assert done.returncode == 2
    assert "reachable from other machines" in done.stderr
    assert "--tls self-signed" in done.stderr and "--insecure-http" in done.stderr


def test_self_signed_https_with_lan_urls_fingerprint_and_qr(tmp_path: Path) -> None:
    home = tmp_path / "home"
    srv = start_server(home, "--host", "0.0.0.0", "--tls", "self-signed")
    try:
        assert srv.url.startswith("https://0.0.0.0:")
        cert = home / "tls" / "cert.pem"
        assert stat.S_IMODE((home / "tls" / "key.pem").stat().st_mode) == 0o600
        text = wait_until(lambda: "█" in "".join(srv.output) and "".join(srv.output))
        first_address = (lan_addresses() or ["127.0.0.1"])[0]
        assert srv.login_url and srv.login_url.startswith(f"https://{first_address}:")
        for address in lan_addresses():
            assert f"https://{address}:{srv.port}" in text
        assert f"fingerprint: {fingerprint(cert.read_bytes())}" in text
        assert "Scan to open it and sign in" in text and "█" in text  # the QR code
        with httpx.Client(
            base_url=f"https://127.0.0.1:{srv.port}", verify=pinned(cert), timeout=10 * UNIT
        ) as c:
            assert c.get("/api/health").status_code == 200
        with httpx.Client(base_url=f"http://127.0.0.1:{srv.port}", timeout=10 * UNIT) as c:
            try:
                plain = c.get("/api/health").status_code
            except httpx.HTTPError:
                plain = 0
            assert plain != 200  # HTTPS only
        first = fingerprint(cert.read_bytes())
        srv.restart()
        assert fingerprint(cert.read_bytes()) == first  # kept in the home
        # The tools reach it over loopback, trusting exactly this certificate.
        done = subprocess.run(
            [sys.executable, "-m", "vibetunnel", "login-link"],
            env={**os.environ, "VIBETUNNEL_HOME": str(home)},
            capture_output=True,
            text=True,
            timeout=30 * UNIT,
            check=False,
        )
        assert done.returncode == 0 and done.stdout.startswith(f"https://127.0.0.1:{srv.port}/")
    finally:
        srv.stop()


def test_insecure_http_beyond_loopback_when_asked(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "home", "--host", "0.0.0.0", "--insecure-http", "--no-auth")
    try:
        text = wait_until(lambda: "█" in "".join(srv.output) and "".join(srv.output))
        assert srv.url.startswith("http://0.0.0.0:")
        assert "From another device" in text and "Scan to open it:" in text
        assert "fingerprint" not in text
        with httpx.Client(base_url=f"http://127.0.0.1:{srv.port}", timeout=10 * UNIT) as c:
            assert c.get("/api/health").status_code == 200
    finally:
        srv.stop()


def test_vt_links_to_an_https_server_trusting_its_certificate(tmp_path: Path) -> None:
    home = tmp_path / "home"
    srv = start_server(home, "--host", "0.0.0.0", "--tls", "self-signed", "--no-auth")
    term = Terminal()
    try:
        term.run(["--name", "over-tls", "sh", "-c", "echo ready; exec cat"], vt_env(home))
        term.expect("ready")
        cert = home / "tls" / "cert.pem"
        with httpx.Client(
            base_url=f"https://127.0.0.1:{srv.port}", verify=pinned(cert), timeout=10 * UNIT
        ) as c:
            wait_until(
                lambda: any(s["name"] == "over-tls" for s in c.get("/api/sessions").json()),
                what="the vt session registered over HTTPS",
            )
        listed = subprocess.run(
            [sys.executable, "-m", "vibetunnel.cli.vt", "--list"],
            env=vt_env(home),
            capture_output=True,
            text=True,
            timeout=30 * UNIT,
            check=False,
        )
        assert listed.returncode == 0 and "over-tls" in listed.stdout, listed.stderr
        term.type("\x04")
        term.wait()
    finally:
        term.close()
        srv.stop()
