"""Who a peer is, as the limits count it: one key per client address. Pure, no I/O.

Every per-client limit (the rate limit, failed logins, open connections) is keyed by
`peer_key`, so that an address cannot be dodged by writing it another way.
"""

from __future__ import annotations

import ipaddress

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
