"""Who a peer is, as the limits count it, and how many connections it holds. Pure, no I/O.

Every per-client limit (the rate limit, failed logins, open connections) is keyed by
`peer_key`, so that an address cannot be dodged by writing it another way. `ConnectionGuard`
counts open connections per client; api/protocols.py drives it from the sockets. A request
the app finds to be another client's (a share link's: api/security.py) moves its connection
to that client's count, through the `Seat` the protocols put in the scope.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

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


SEAT = "vibetunnel.seat"
"""The scope extension (`scope["extensions"][SEAT]`) holding the connection's `Seat`."""


class Seat(Protocol):
    """The connection a request came on, as the app may count it (api/protocols.py)."""

    def count_as(self, client: str, cap: int) -> bool:
        """Count this connection as `client`'s while its request is served (an HTTP request
        until its response ends, a WebSocket until it closes), at most `cap` of them open at
        once. False, and nothing moves, when `client` has `cap` busy ones already."""
        ...


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

    A busy connection may be moved to another client's count (`move`, with that client's
    own cap): a share link's requests are the link's, not their address's, so a link cannot
    take its owner's slots; an HTTP connection goes back to its address when its response
    ends, since the next request on it may carry another token.
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
        room, evicted = self._room(client, self.per_client)
        if room:
            self._client[conn] = client
            self._count[client] = self._count.get(client, 0) + 1
            self.waiting(conn)
        return room, evicted

    def move(self, conn: C, client: str, cap: int | None = None) -> tuple[bool, C | None]:
        """Count `conn` as `client`'s from now on, busy (a request on it is being served);
        its old client has one connection less. At `client`'s cap (`cap`, else per_client)
        its longest waiting connection makes room, as in `admit`; if none waits, nothing
        changes. Returns whether `conn` moved (True if it was `client`'s already; False for
        a stranger), and the connection evicted, for the caller to close."""
        old = self._client.get(conn)
        if old is None:
            return False, None
        if old == client:
            self._unwait(conn, old)
            return True, None
        room, evicted = self._room(client, self.per_client if cap is None else cap)
        if room:
            self._unwait(conn, old)
            self._drop(old)
            self._client[conn] = client
            self._count[client] = self._count.get(client, 0) + 1
        return room, evicted

    def client_of(self, conn: C) -> str | None:
        """The client `conn` is counted as, None for a stranger."""
        return self._client.get(conn)

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
        self._drop(client)

    def count(self, client: str) -> int:
        """Open connections of `client`."""
        return self._count.get(client, 0)

    def _room(self, client: str, cap: int) -> tuple[bool, C | None]:
        """Whether `client` has room for one more under `cap`, evicting its longest waiting
        connection if that is what it takes (returned)."""
        if self._count.get(client, 0) < cap:
            return True, None
        waiting = self._waiting.get(client)
        if not waiting:
            return False, None
        evicted = next(iter(waiting))
        self.leave(evicted)
        return True, evicted

    def _drop(self, client: str) -> None:
        left = self._count[client] - 1
        if left:
            self._count[client] = left
        else:
            del self._count[client]

    def _unwait(self, conn: C, client: str) -> None:
        line = self._waiting.get(client)
        if line is not None:
            line.pop(conn, None)
            if not line:
                del self._waiting[client]
