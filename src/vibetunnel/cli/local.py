"""The running server of this home, as the command-line tools reach it: its URL and a GET."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from vibetunnel.vt.link import find_server, pinned_context

TIMEOUT = 10.0


class LocalError(Exception):
    """No server, or it did not answer as expected: the message says which."""


def server_url(home: Path) -> str:
    url = find_server(home)
    if url is None:
        raise LocalError("no VibeTunnel server running for this home: start `vibetunnel serve`")
    return url


def get(url: str, token: str | None, home: Path) -> tuple[int, Any]:
    """(status, JSON body) of a GET to the local server (never through a proxy)."""
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    tls = urllib.request.HTTPSHandler(context=pinned_context(home))
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), tls)
    try:
        with opener.open(request, timeout=TIMEOUT) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (OSError, ValueError) as exc:
        raise LocalError(f"cannot reach the server at {url}: {exc}") from None
