"""peer_key: one key per client, whatever way its address is written."""

from __future__ import annotations

import pytest

from vibetunnel.api.peers import LOOPBACK, peer_key, proxy_networks


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.2", "127.255.0.9", "::1", "::ffff:127.0.0.5"]
)
def test_every_loopback_address_is_one_client(host: str) -> None:
    assert peer_key(host) == LOOPBACK


def test_ipv4_is_its_address_and_ipv4_mapped_ipv6_is_the_same_client() -> None:
    assert peer_key("198.51.100.7") == "198.51.100.7"
    assert peer_key("::ffff:198.51.100.7") == "198.51.100.7"
    assert peer_key("198.51.100.8") != peer_key("198.51.100.7")


def test_ipv6_is_its_64_block() -> None:
    a = peer_key("2001:db8:1:2:aaaa::1")
    assert a == "2001:db8:1:2::/64"
    assert peer_key("2001:db8:1:2:ffff:ffff:ffff:fffe") == a
    assert peer_key("2001:0db8:0001:0002::0001") == a  # another spelling, the same client
    assert peer_key("2001:db8:1:3::1") != a


def test_not_an_address() -> None:
    assert peer_key(None) == peer_key("") == "-"
    assert peer_key("x" * 500) == "x" * 64


def test_trusted_proxies_are_addresses_or_networks() -> None:
    assert proxy_networks(["10.0.0.1", " 10.1.2.3/8", "::1"]) == [
        "10.0.0.1/32",
        "10.0.0.0/8",
        "::1/128",
    ]
    with pytest.raises(ValueError, match="proxy.example"):
        proxy_networks(["proxy.example"])
    with pytest.raises(ValueError):
        proxy_networks(["*"])
