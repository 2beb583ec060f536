"""Who a peer is, as the limits count it, and how many connections it holds. Pure, no I/O.

Every per-client limit (the rate limit, failed logins, open connections) is keyed by
`peer_key`, so that an address cannot be dodged by writing it another way. `ConnectionGuard`
counts open connections per client; api/protocols.py drives it from the sockets.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Hashable
from typing import Generic, TypeVar

C = TypeVar("C", bound=Hashable)

LOOPBACK = "loopback"
IPV6_PREFIX = 64
"""An IPv6 client is its /64: the block one host or one household is usually given, which
it can rotate through at will."""


def peer_key(host: str | None) -> str:
    """The client that `host` (the peer's address, as ASGI's `client` gives it) stands for.

    Every loopback address is one client: anyone on this machine may send from any of
    127.0.0.0/8 (or ::1), so counting 127.0.0.2 apart from 127.0.0.1 would give every local
    user sixteen million budgets. An IPv4-mapped IPv6 address is its IPv4 address.
    """
    if not host:
        return "-"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]  # not an address (a Unix socket's name): as it is, bounded
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return LOOPBACK
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False))
    return str(ip)


def proxy_networks(values: list[str]) -> list[str]:
    """`--trusted-proxy` values as networks ("10.0.0.1" -> "10.0.0.1/32"); ValueError names
    the first that is neither an address nor a network."""
    networks = []
    for value in values:
        try:
            networks.append(str(ipaddress.ip_network(value.strip(), strict=False)))
        except ValueError:
            raise ValueError(
                f"--trusted-proxy {value!r} is not an IP address or network (e.g. 10.0.0.1, "
                "10.0.0.0/8)"
            ) from None
    return networks


class ConnectionGuard(Generic[C]):
    """Open connections per client (`peer_key`), at most `per_client` each.

    A connection is *waiting* while the headers of a request are due and have not all come
    (just opened, or idle between two requests), and *busy* while a request or a WebSocket
    is being served. When a client is at its cap, its connection that has waited longest
    makes room for the new one: a slowloris client's half-open sockets go first, and the
    same address's real requests still get in. Only when all of a client's connections are
    busy is a new one refused. Connections are any hashable objects (the server uses the
    transports).
    """

    def __init__(self, per_client: int) -> None:
        if per_client < 1:
            raise ValueError("per_client must be at least 1")
        self.per_client = per_client
        self._client: dict[C, str] = {}
        self._count: dict[str, int] = {}
        self._waiting: dict[str, dict[C, None]] = {}
        """Per client, its waiting connections, longest waiting first (dicts keep order)."""

    def admit(self, conn: C, client: str) -> tuple[bool, C | None]:
        """Count a new connection of `client`, waiting; return whether it is admitted, and the
        connection it replaced (for the caller to close), if any."""
        evicted = None
        if self._count.get(client, 0) >= self.per_client:
            waiting = self._waiting.get(client)
            if not waiting:
                return False, None
            evicted = next(iter(waiting))
            self.leave(evicted)
        self._client[conn] = client
        self._count[client] = self._count.get(client, 0) + 1
        self.waiting(conn)
        return True, evicted

    def waiting(self, conn: C) -> None:
        """`conn` waits for the headers of a request (it goes last in its client's line)."""
        client = self._client.get(conn)
        if client is not None:
            line = self._waiting.setdefault(client, {})
            line.pop(conn, None)
            line[conn] = None

    def busy(self, conn: C) -> None:
        """`conn` has a whole request's headers: it is being served, never evicted."""
        client = self._client.get(conn)
        if client is not None:
            self._unwait(conn, client)

    def leave(self, conn: C) -> None:
        """`conn` is closed (calling this again, or for a stranger, does nothing)."""
        client = self._client.pop(conn, None)
        if client is None:
            return
        self._unwait(conn, client)
        left = self._count[client] - 1
        if left:
            self._count[client] = left
        else:
            del self._count[client]

    def count(self, client: str) -> int:
        """Open connections of `client`."""
        return self._count.get(client, 0)

    def _unwait(self, conn: C, client: str) -> None:
        line = self._waiting.get(client)
        if line is not None:
            line.pop(conn, None)
            if not line:
                del self._waiting[client]
