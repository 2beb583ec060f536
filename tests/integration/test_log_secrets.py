"""No log holds a token or a sign-in link's secret, `-v` included (contract, "Limits at the
edge, round three"): uvicorn's own lines, the access log and the keeper's log, against a real
server whose whole output is read."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conftest import RunningServer, create, start_server, wait_until
from tests.integration.wsclient import TermClient
from vibetunnel.auth import LOGIN_TOKEN_TTL, TokenService, load_or_create_secret


def secret_parts(token: str) -> list[str]:
    """The token whole, and the two segments of it no other token shares (every JWT of this
    server begins with the same header)."""
    return [token, *token.split(".")[1:]]


async def test_no_token_reaches_the_output_of_serve_v(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "home", "-v")
    try:
        tokens = TokenService(load_or_create_secret(srv.home))
        full = tokens.issue("owner", 600)
        with srv.client(full) as owner:  # Authorization: Bearer
            sid = create(owner, command="/bin/cat")["id"]
        share = tokens.issue("owner", 600, session_id=sid, read_only=True)
        login = tokens.issue("owner", LOGIN_TOKEN_TTL, kind="login")  # not the printed one
        term = await TermClient.connect(f"{srv.ws_url}/api/sessions/{sid}/ws?token={full}")
        await term.type("hello\r")
        await term.see("hello")
        viewer = await TermClient.connect(f"{srv.ws_url}/api/sessions/{sid}/ws?token={share}")
        await viewer.see("hello")
        await asyncio.to_thread(_http_with_query_tokens, srv, sid, share, login)
        for client in (term, viewer):
            await client.close()
        socket_line = f'"WebSocket /api/sessions/{sid}/ws?token='
        await asyncio.to_thread(
            wait_until,
            lambda: (
                sum(socket_line in line for line in srv.output) == 2
                and any('"GET /?login=' in line for line in srv.output)
            ),
            what="the WebSocket and page lines",
        )
    finally:
        srv.stop()
    output = "".join(srv.output)
    accepted = f'"WebSocket /api/sessions/{sid}/ws?token=[redacted]" [accepted]'
    assert output.count(accepted) == 2  # still logged, redacted
    assert '"GET /?login=[redacted]" 200' in output
    keeper_log = (srv.home / "keeper.log").read_text()
    assert "keeper" in keeper_log  # the keeper ran, and logged
    for token in (full, share, login):
        for part in secret_parts(token):
            assert part not in output
            assert part not in keeper_log
    assert f"/api/sessions/{sid}/events?token=[redacted]" in output


def _http_with_query_tokens(srv: RunningServer, sid: str, share: str, login: str) -> None:
    with srv.client() as anyone:
        with anyone.stream("GET", f"/api/sessions/{sid}/events?token={share}") as events:
            assert events.status_code == 200
            assert next(events.iter_lines()).startswith(("event:", "data:"))
        assert anyone.get(f"/?login={login}").status_code == 200
        r = anyone.post("/api/auth/exchange", json={"loginToken": login})
        assert r.status_code == 200, r.text
