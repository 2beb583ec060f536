"""The loads over a client of any protocol (a `Conn`: text in, terminal bytes out), and the
programs they run; harness/bare.py runs the same on bare PTYs.

- seq: `seq 1 N` typed into an interactive bash, from the Enter key to the end marker;
- echo: a key into `cat`, each sent once the last one's echo arrived;
- sessions: N sessions opened at once, then a key written to each, in waves.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

PROGRAMS: dict[str, list[str]] = {
    "bash": ["bash", "--norc", "--noprofile"],
    "cat": ["cat"],
    "ready": ["sh", "-c", "echo ready; exec cat"],
}
"""The programs the loads run: an interactive bash (throughput), `cat` (echo: the PTY echoes
each key), and `cat` after one line, the first output (the sessions load)."""

READY = b"ready\r\n"
"""The first output of the "ready" program."""
# The markers are computed by bash, so their echo as typed does not match them.
SEQ_READY = ("echo READY$((1+1))\r", b"READY2")
"""Typed into bash before the timed part, and what its output ends with."""
SEQ_END = b"END5"


def seq_command(lines: int) -> str:
    """`seq 1 LINES`, then the end marker, as typed into bash."""
    return f"seq 1 {lines}; echo END$((2+3))\r"


def output_file(path: Path, mb: int) -> str:
    """A file of `mb` MB of 100-byte lines, for `cat` (bench.py's and cluster.py's throughput);
    its path."""
    line = ("0123456789abcdefghijklmnopqrstuvwxyz" * 3)[:99] + "\n"
    path.write_text(line * (mb * 1_000_000 // 100))
    return str(path)


def nothing() -> None:
    """A mark that marks nothing."""


class Conn(Protocol):
    """One terminal, through a server of any protocol (harness/clients.py)."""

    async def send(self, text: str) -> None: ...

    async def output(self) -> bytes:
        """The next piece of terminal output (other messages are skipped)."""
        ...

    async def close(self) -> None: ...


class Opener(Protocol):
    """Opens a terminal running one of PROGRAMS, by name."""

    async def __call__(self, program: str) -> Conn: ...


class Scan:
    """Whether `marker` has come, in output read piece by piece (a marker may be cut between
    two pieces)."""

    def __init__(self, marker: bytes) -> None:
        self.marker = marker
        self._tail = b""

    def feed(self, piece: bytes) -> bool:
        seen = self._tail + piece
        if self.marker in seen:
            return True
        self._tail = seen[len(seen) - len(self.marker) + 1 :] if self.marker else b""
        return False


async def read_until(conn: Conn, marker: bytes) -> tuple[int, int]:
    """Read output until `marker` has arrived: (bytes, pieces) read."""
    total = pieces = 0
    scan = Scan(marker)
    while True:
        piece = await conn.output()
        total += len(piece)
        pieces += 1
        if scan.feed(piece):
            return total, pieces


async def seq(
    open_: Opener, lines: int, mark: Callable[[], None] = nothing
) -> tuple[int, int, float, float]:
    """`seq 1 LINES` typed into an interactive bash: (output bytes and messages at the client,
    seconds from the Enter key to the end marker's arrival, and the client's CPU seconds);
    `mark()` is called just before the Enter key and just after the end marker."""
    conn = await open_("bash")
    try:
        await conn.send(SEQ_READY[0])
        await read_until(conn, SEQ_READY[1])
        mark()
        cpu = time.process_time()
        start = time.perf_counter()
        await conn.send(seq_command(lines))
        total, pieces = await read_until(conn, SEQ_END)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        mark()
        return total, pieces, seconds, cpu
    finally:
        await conn.close()


async def echo_times(
    conn: Conn, samples: int, warm: int = 0, mark: Callable[[], None] = nothing
) -> list[float]:
    """Seconds from sending one key ("a") to receiving its echo, `samples` times, after `warm`
    keys unmeasured; `mark()` is called just before the first measured key and just after
    the last."""
    out = []
    for i in range(warm + samples):
        if i == warm:
            mark()
        t0 = time.perf_counter()
        await conn.send("a")
        await read_until(conn, b"a")
        if i >= warm:
            out.append(time.perf_counter() - t0)
    mark()
    return out


async def echo(open_: Opener, samples: int, mark: Callable[[], None] = nothing) -> list[float]:
    """`echo_times` in a fresh `cat`, after one key unmeasured (the session's open is not
    between the marks)."""
    conn = await open_("cat")
    try:
        return await echo_times(conn, samples, warm=1, mark=mark)
    finally:
        await conn.close()


async def sessions(
    open_: Opener, n: int, waves: int, mark: Callable[[], None] = nothing
) -> tuple[float, list[float]]:
    """Open `n` sessions at once: (seconds until every one has shown its first output, and the
    seconds from the write of one key to each session to that session's echo, in `waves` waves
    of a key to every session); `mark()` is called before the opening and after it."""

    async def one() -> Conn:
        conn = await open_("ready")
        await read_until(conn, READY)
        return conn

    mark()
    start = time.perf_counter()
    opened = await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
    open_s = time.perf_counter() - start
    mark()
    conns = [c for c in opened if not isinstance(c, BaseException)]
    try:
        if len(conns) < n:
            failed = next(c for c in opened if isinstance(c, BaseException))
            raise RuntimeError(f"{n - len(conns)} of {n} sessions failed to open: {failed!r}")
        latencies: list[float] = []
        for _ in range(waves):
            sent = [0.0] * n

            async def echoed(i: int, sent: list[float]) -> float:
                await read_until(conns[i], b"x")
                return time.perf_counter() - sent[i]

            waiting = [asyncio.create_task(echoed(i, sent)) for i in range(n)]
            await asyncio.sleep(0)
            for i, conn in enumerate(conns):
                sent[i] = time.perf_counter()
                await conn.send("x")
            latencies += await asyncio.gather(*waiting)
        return open_s, latencies
    finally:
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
