"""peer_key: one key per client, whatever way its address is written."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from vibetunnel.api.peers import LOOPBACK, ConnectionGuard, peer_key, proxy_networks


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


# -- ConnectionGuard -----------------------------------------------------------------------------


def test_a_client_gets_its_cap_and_others_their_own() -> None:
    guard: ConnectionGuard[str] = ConnectionGuard(2)
    for conn in ("a1", "a2"):
        assert guard.admit(conn, "a") == (True, None)
        guard.busy(conn)
    assert guard.admit("a3", "a") == (False, None)  # all busy: refused
    assert guard.count("a") == 2
    assert guard.admit("b1", "b") == (True, None)  # another client is not affected


def test_the_longest_waiting_connection_makes_room() -> None:
    guard: ConnectionGuard[str] = ConnectionGuard(3)
    for conn in ("slow1", "slow2", "real"):
        guard.admit(conn, "a")
    guard.busy("real")
    assert guard.admit("new1", "a") == (True, "slow1")
    assert guard.admit("new2", "a") == (True, "slow2")
    assert guard.admit("new3", "a") == (True, "new1")  # "real" is busy: never evicted
    assert guard.count("a") == 3


def test_waiting_again_goes_to_the_back_of_the_line() -> None:
    guard: ConnectionGuard[str] = ConnectionGuard(2)
    guard.admit("old", "a")
    guard.admit("young", "a")
    guard.busy("old")
    guard.waiting("old")  # answered, now idle between requests: it waits anew
    assert guard.admit("new", "a") == (True, "young")


def test_leave_frees_a_slot_once() -> None:
    guard: ConnectionGuard[str] = ConnectionGuard(1)
    guard.admit("a1", "a")
    guard.busy("a1")
    guard.leave("a1")
    guard.leave("a1")  # closed twice (evicted, then its socket reports it): counted once
    guard.leave("stranger")
    guard.busy("stranger")
    guard.waiting("stranger")
    assert guard.count("a") == 0
    assert guard.admit("a2", "a") == (True, None)
    with pytest.raises(ValueError):
        ConnectionGuard(0)


Step = tuple[str, int, int]


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["admit", "busy", "waiting", "leave"]),
            st.integers(0, 11),  # which connection
            st.integers(0, 2),  # which client
        ),
        max_size=80,
    )
)
def test_counts_stay_true_and_under_the_cap(steps: list[Step]) -> None:
    guard: ConnectionGuard[int] = ConnectionGuard(3)
    open_: dict[int, str] = {}  # what the guard should hold
    busy: set[int] = set()
    for action, conn, client_no in steps:
        client = f"c{client_no}"
        if action == "admit" and conn not in open_:
            admitted, evicted = guard.admit(conn, client)
            if evicted is not None:
                assert open_.pop(evicted) == client and evicted not in busy
            if admitted:
                open_[conn] = client
            else:
                assert all(c in busy for c, k in open_.items() if k == client)
        elif action == "busy" and conn in open_:
            guard.busy(conn)
            busy.add(conn)
        elif action == "waiting" and conn in open_:
            guard.waiting(conn)
            busy.discard(conn)
        elif action == "leave":
            guard.leave(conn)
            open_.pop(conn, None)
            busy.discard(conn)
        for k in ("c0", "c1", "c2"):
            assert guard.count(k) == sum(1 for v in open_.values() if v == k) <= 3


# -- moving a connection to another client's count (a share link's) ------------------------------


def test_a_moved_connection_frees_its_address_and_counts_for_its_new_client() -> None:
    guard: ConnectionGuard[str] = ConnectionGuard(2)
    for conn in ("c1", "c2"):
        guard.admit(conn, "addr")
        guard.busy(conn)
    assert guard.admit("c3", "addr") == (False, None)  # the address is full
    assert guard.move("c1", "share", cap=1) == (True, None)
    assert (guard.count("addr"), guard.count("share")) == (1, 1)
    assert guard.client_of("c1") == "share"
    assert guard.admit("c3", "addr") == (True, None)  # its slot is the address's again
    guard.busy("c3")
    # The share link is at its own cap, all busy: refused, and nothing moves.
    assert guard.move("c2", "share", cap=1) == (False, None)
    assert (guard.count("addr"), guard.count("share"), guard.client_of("c2")) == (2, 1, "addr")
    guard.leave("c1")  # closed: the share link's slot is free
    assert guard.count("share") == 0
    assert guard.move("c2", "share", cap=1) == (True, None)


def test_moving_back_to_a_full_address_evicts_only_a_waiting_connection() -> None:
    guard: ConnectionGuard[str] = ConnectionGuard(2)
    guard.admit("c1", "addr")
    guard.busy("c1")
    guard.move("c1", "share", cap=4)
    guard.admit("slow", "addr")  # waits for its headers
    guard.admit("busy", "addr")
    guard.busy("busy")
    # c1's response is done: back to its address, which is full; the waiting one goes.
    assert guard.move("c1", "addr") == (True, "slow")
    assert guard.client_of("slow") is None and guard.count("addr") == 2
    guard.move("c1", "share", cap=4)
    guard.admit("busy2", "addr")
    guard.busy("busy2")
    # All the address's connections are busy now: c1 cannot come back (the caller closes it).
    assert guard.move("c1", "addr") == (False, None)
    assert guard.client_of("c1") == "share"


def test_a_move_to_the_same_client_is_a_no_op_and_a_stranger_does_not_move() -> None:
    guard: ConnectionGuard[str] = ConnectionGuard(1)
    guard.admit("c1", "addr")
    assert guard.move("c1", "addr") == (True, None)
    assert guard.count("addr") == 1
    assert guard.move("gone", "share", cap=1) == (False, None)
    assert guard.count("share") == 0 and guard.client_of("gone") is None


CONNS = st.integers(0, 3)
CAPS = {"a0": 3, "a1": 3, "share": 1}
"""Two addresses at the guard's cap of 3, and a share link with a cap of its own, smaller."""


class GuardWithMoves(RuleBasedStateMachine):
    """Any sequence of opens, requests, idles, closes and moves: the counts stay true, and
    under each client's cap; only waiting connections are evicted, only when all are busy is
    anything refused."""

    def __init__(self) -> None:
        super().__init__()
        self.guard: ConnectionGuard[int] = ConnectionGuard(3)
        self.open: dict[int, str] = {}
        self.busy: set[int] = set()

    def _evicted(self, evicted: int | None, client: str) -> None:
        if evicted is not None:
            assert self.open.pop(evicted) == client and evicted not in self.busy

    def _all_busy(self, client: str) -> bool:
        return all(c in self.busy for c, k in self.open.items() if k == client)

    @rule(conn=CONNS, client=st.sampled_from(["a0", "a1"]))
    def admit(self, conn: int, client: str) -> None:
        if conn in self.open:
            return
        admitted, evicted = self.guard.admit(conn, client)
        self._evicted(evicted, client)
        if admitted:
            self.open[conn] = client
        else:
            assert self._all_busy(client)

    @rule(conn=CONNS)
    def to_the_share_link(self, conn: int) -> None:
        self._move(conn, "share")

    @rule(conn=CONNS)
    def a_share_request_on_a_new_connection(self, conn: int) -> None:
        """The server's usual sequence: opened, its headers complete, its token a share's."""
        self.admit(conn, "a0")
        self.serving(conn)
        self._move(conn, "share")

    @rule(conn=CONNS, client=st.sampled_from(["a0", "a1"]))
    def to_an_address(self, conn: int, client: str) -> None:
        self._move(conn, client)

    def _move(self, conn: int, client: str) -> None:
        if conn not in self.busy:
            return  # only a connection serving a request moves
        moved, evicted = self.guard.move(conn, client, CAPS[client])
        self._evicted(evicted, client)
        if moved:
            self.open[conn] = client
        else:
            assert self.open[conn] != client and self._all_busy(client)

    @rule(conn=CONNS)
    def serving(self, conn: int) -> None:
        self.guard.busy(conn)
        if conn in self.open:
            self.busy.add(conn)

    @rule(conn=CONNS)
    def waiting(self, conn: int) -> None:
        self.guard.waiting(conn)
        self.busy.discard(conn)

    @rule(conn=CONNS)
    def leave(self, conn: int) -> None:
        self.guard.leave(conn)
        self.open.pop(conn, None)
        self.busy.discard(conn)

    @invariant()
    def counts_are_true_and_under_the_caps(self) -> None:
        for client, cap in CAPS.items():
            assert self.guard.count(client) == sum(k == client for k in self.open.values())
            assert self.guard.count(client) <= cap
        for conn, client in self.open.items():
            assert self.guard.client_of(conn) == client


TestGuardWithMoves = GuardWithMoves.TestCase
TestGuardWithMoves.settings = settings(max_examples=50, stateful_step_count=30)
