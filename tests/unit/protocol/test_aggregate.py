"""The flush policy (docs/decisions.md) on a fake clock: latency, timer rate, full frames."""

from __future__ import annotations

import heapq
import math
from collections import Counter

import pytest

from vibetunnel.protocol.aggregate import FLUSH_INTERVAL, FlushPolicy
from vibetunnel.protocol.frames import MAX_FRAME

IV = FLUSH_INTERVAL


def test_defaults() -> None:
    p = FlushPolicy()
    assert p.interval == pytest.approx(1 / 60)
    assert p.max_frame == 64 * 1024 == MAX_FRAME
    assert p.last_send == -math.inf
    assert p.input_seen is False


def test_nothing_pending_is_never_due() -> None:
    p = FlushPolicy()
    assert p.due(0.0, 0) is None
    p.note_input()
    assert p.due(0.0, 0) is None
    assert p.due(0.0, -1) is None


@pytest.mark.parametrize("now", [0.0, 1e-9, 12345.678])
def test_first_chunk_is_immediate(now: float) -> None:
    assert FlushPolicy().due(now, 1) == now


def test_chunk_within_interval_waits_for_last_send_plus_interval() -> None:
    p = FlushPolicy()
    p.sent(10.0)
    for dt in (0.0, 0.001, IV / 2, IV * 0.999):
        assert p.due(10.0 + dt, 5) == pytest.approx(10.0 + IV)


def test_after_the_interval_is_immediate() -> None:
    p = FlushPolicy()
    p.sent(10.0)
    assert p.due(10.0 + IV, 5) == pytest.approx(10.0 + IV)
    assert p.due(10.0 + 2 * IV, 5) == 10.0 + 2 * IV
    assert p.due(11.0, 5) == 11.0


def test_input_makes_output_immediate_until_sent() -> None:
    p = FlushPolicy()
    p.sent(10.0)
    p.note_input()
    assert p.input_seen
    assert p.due(10.001, 1) == 10.001
    p.sent(10.001)
    assert not p.input_seen
    assert p.due(10.002, 1) == pytest.approx(10.001 + IV)


def test_fast_typing_echo_never_waits() -> None:
    p = FlushPolicy()
    now = 0.0
    for _ in range(100):
        now += 0.003  # a key every 3 ms, well inside the interval
        p.note_input()
        assert p.due(now, 1) == now
        p.sent(now)


@pytest.mark.parametrize("pending", [MAX_FRAME, MAX_FRAME + 1, 10 * MAX_FRAME])
def test_full_frame_is_immediate(pending: int) -> None:
    p = FlushPolicy()
    p.sent(10.0)
    assert p.due(10.001, pending) == 10.001


def test_just_under_a_full_frame_waits() -> None:
    p = FlushPolicy()
    p.sent(10.0)
    assert p.due(10.001, MAX_FRAME - 1) == pytest.approx(10.0 + IV)


def test_custom_interval_and_frame() -> None:
    p = FlushPolicy(interval=0.1, max_frame=10)
    p.sent(1.0)
    assert p.due(1.05, 9) == pytest.approx(1.1)
    assert p.due(1.05, 10) == 1.05


def test_due_is_pure() -> None:
    p = FlushPolicy()
    p.sent(5.0)
    p.due(5.001, 3)
    p.due(5.001, MAX_FRAME)
    assert p.last_send == 5.0 and not p.input_seen


# -- simulations: a fake timer loop that flushes at due times ------------------------------------


class Sim:
    """A sender driven by FlushPolicy on fake time; arrivals are (time, nbytes)."""

    def __init__(self, policy: FlushPolicy) -> None:
        self.policy = policy
        self.pending: list[tuple[float, int]] = []  # (arrival time, nbytes) not yet sent
        self.pending_bytes = 0
        self.flushes: list[tuple[float, int]] = []  # (time, frame size)
        self.latencies: list[float] = []

    def run(self, arrivals: list[tuple[float, int]]) -> None:
        events = [(t, 0, n) for t, n in arrivals]  # kind 0: arrival, 1: timer
        heapq.heapify(events)
        timer: float | None = None
        while events:
            now, kind, n = heapq.heappop(events)
            if kind == 1:
                if now != timer:
                    continue  # a stale timer
                timer = None
            else:
                self.pending.append((now, n))
                self.pending_bytes += n
            while (due := self.policy.due(now, self.pending_bytes)) is not None and due <= now:
                self.flush(now)
            if due is not None and timer != due:
                timer = due
                heapq.heappush(events, (due, 1, 0))

    def flush(self, now: float) -> None:
        size = min(self.pending_bytes, self.policy.max_frame)
        self.flushes.append((now, size))
        left = size
        while left:
            t, n = self.pending[0]
            take = min(n, left)
            left -= take
            if take == n:
                self.pending.pop(0)
                self.latencies.append(now - t)
            else:
                self.pending[0] = (t, n - take)
        self.pending_bytes -= size
        self.policy.sent(now)


def test_trickle_is_at_most_60_flushes_a_second_and_never_late() -> None:
    # One byte every 2 ms for 10 s of fake time.
    arrivals = [(k * 0.002, 1) for k in range(5000)]
    sim = Sim(FlushPolicy())
    sim.run(arrivals)
    assert sim.pending_bytes == 0
    assert sum(n for _, n in sim.flushes) == 5000
    # Flush times are sums of floats: round away the last-bit error before binning by second.
    per_second = Counter(math.floor(t + 1e-9) for t, _ in sim.flushes)
    assert max(per_second.values()) <= 60, per_second
    assert len(sim.flushes) >= 9 * 60  # and it does flush at about the timer rate
    assert max(sim.latencies) <= IV + 1e-9  # every byte within one interval of its arrival
    gaps = [b - a for (a, _), (b, _) in zip(sim.flushes, sim.flushes[1:], strict=False)]
    assert min(gaps) >= IV - 1e-9


def test_sparse_output_goes_out_at_once() -> None:
    # Chunks further apart than the interval: each is sent when it arrives.
    arrivals = [(k * 0.05, 10) for k in range(100)]
    sim = Sim(FlushPolicy())
    sim.run(arrivals)
    assert sim.flushes == [(t, 10) for t, _ in arrivals]
    assert max(sim.latencies) == 0


def test_continuous_bulk_sends_full_frames() -> None:
    # 64 KB arriving every 1 ms for 1 s: every frame is a full 64 KB, sent as it fills.
    arrivals = [(k * 0.001, MAX_FRAME) for k in range(1000)]
    sim = Sim(FlushPolicy())
    sim.run(arrivals)
    assert len(sim.flushes) == 1000
    assert all(size == MAX_FRAME for _, size in sim.flushes)
    assert max(sim.latencies) == 0


def test_bulk_in_odd_chunks_sends_full_frames_then_a_tail() -> None:
    arrivals = [(k * 0.001, 5000) for k in range(1000)]  # 5 MB/s in 5000-byte reads
    sim = Sim(FlushPolicy())
    sim.run(arrivals)
    sizes = [size for _, size in sim.flushes]
    assert sum(sizes) == 5_000_000
    full = [s for s in sizes if s == MAX_FRAME]
    assert len(full) >= len(sizes) - 70  # the rest are timer flushes, at most 60 a second
    assert max(sim.latencies) <= IV + 1e-9
