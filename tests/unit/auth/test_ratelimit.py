"""The moving-window rate limiter, on the tests' fake clock: no test sleeps.

`limits` (kept for its moving window and, for a cluster, its Redis storage) reads
`time.time()` through its memory storage module and takes no clock: the fixture replaces that
module's `time`, and with it every time the limiter sees (docs/decisions.md).
"""

from __future__ import annotations

import types

import limits.storage.memory
import pytest

from tests.clock import FakeClock
from vibetunnel.auth.ratelimit import FAILED_LOGINS_PER_MINUTE, RateLimiter, RateState

T0 = 1_700_000_000.0


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock(T0)
    monkeypatch.setattr(limits.storage.memory, "time", types.SimpleNamespace(time=fake))
    return fake


async def test_first_hit(clock: FakeClock) -> None:
    allowed, state = await RateLimiter(5).hit("a")
    assert allowed
    assert state == RateState(limit=5, remaining=4, reset=int(T0) + 61)


async def test_counts_down_then_refuses(clock: FakeClock) -> None:
    limiter = RateLimiter(3)
    seen = []
    for _ in range(5):
        allowed, state = await limiter.hit("a")
        seen.append((allowed, state.remaining))
        clock.now += 1
    assert seen == [(True, 2), (True, 1), (True, 0), (False, 0), (False, 0)]


async def test_reset_is_when_the_oldest_hit_leaves(clock: FakeClock) -> None:
    limiter = RateLimiter(2)
    await limiter.hit("a")
    clock.now = T0 + 10
    await limiter.hit("a")
    clock.now = T0 + 20
    allowed, state = await limiter.hit("a")
    assert not allowed
    assert state.reset == int(T0) + 61
    assert state.retry_after(clock.now) == 41


async def test_allowed_again_at_reset(clock: FakeClock) -> None:
    limiter = RateLimiter(2)
    await limiter.hit("a")
    clock.now = T0 + 10
    await limiter.hit("a")
    clock.now = T0 + 59
    allowed, state = await limiter.hit("a")
    assert not allowed
    clock.now = state.reset
    allowed, state = await limiter.hit("a")
    assert allowed and state.remaining == 0  # the hit at T0 + 10 still counts
    clock.now = T0 + 69
    assert not (await limiter.hit("a"))[0]
    clock.now = T0 + 71
    assert (await limiter.hit("a"))[0]


async def test_refused_hits_are_not_counted(clock: FakeClock) -> None:
    limiter = RateLimiter(1)
    await limiter.hit("a")
    for second in range(1, 60):
        clock.now = T0 + second
        assert not (await limiter.hit("a"))[0]
    clock.now = T0 + 61
    assert (await limiter.hit("a"))[0]


async def test_no_double_burst_across_a_minute_boundary(clock: FakeClock) -> None:
    # A fixed window would allow 2x the limit around its edge; the moving window does not.
    limiter = RateLimiter(10)
    clock.now = T0 + 59
    assert all([(await limiter.hit("a"))[0] for _ in range(10)])
    clock.now = T0 + 61
    assert not (await limiter.hit("a"))[0]


async def test_keys_are_independent(clock: FakeClock) -> None:
    limiter = RateLimiter(1)
    assert (await limiter.hit("a"))[0]
    assert not (await limiter.hit("a"))[0]
    assert (await limiter.hit("b"))[0]
    assert (await RateLimiter(1).hit("a"))[0]  # and limiters too


async def test_peek_does_not_count(clock: FakeClock) -> None:
    limiter = RateLimiter(2)
    for _ in range(5):
        allowed, state = await limiter.peek("a")
        assert allowed and state.remaining == 2
    await limiter.hit("a")
    await limiter.hit("a")
    allowed, state = await limiter.peek("a")
    assert not allowed and state.remaining == 0


def test_retry_after_is_at_least_one(clock: FakeClock) -> None:
    state = RateState(limit=1, remaining=0, reset=int(T0) + 5)
    assert state.retry_after(T0) == 5
    assert state.retry_after(T0 + 4.5) == 1
    assert state.retry_after(T0 + 5) == 1
    assert state.retry_after(T0 + 100) == 1


def test_retry_after_defaults_to_wall_clock() -> None:
    assert RateState(limit=1, remaining=0, reset=0).retry_after() == 1


def test_headers() -> None:
    state = RateState(limit=100, remaining=95, reset=1704067200)
    assert state.headers() == {
        "X-RateLimit-Limit": "100",
        "X-RateLimit-Remaining": "95",
        "X-RateLimit-Reset": "1704067200",
    }


@pytest.mark.parametrize("bad", [0, -1])
def test_limit_must_be_positive(bad: int) -> None:
    with pytest.raises(ValueError):
        RateLimiter(bad)


async def test_failed_logins_limit_is_ten(clock: FakeClock) -> None:
    assert FAILED_LOGINS_PER_MINUTE == 10
    limiter = RateLimiter(FAILED_LOGINS_PER_MINUTE)
    results = [(await limiter.hit("10.0.0.1"))[0] for _ in range(11)]
    assert results == [True] * 10 + [False]
