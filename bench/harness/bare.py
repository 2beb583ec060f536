"""The yardstick: the loads' programs on a bare PTY, read by a plain loop in this process.

The "server CPU" of the bare PTY, where a bench shows one, is this process's own CPU time
while it reads.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator

from .loads import PROGRAMS, READY, SEQ_END, SEQ_READY, Scan, seq_command

TRICKLE = (
    "import sys,time\nfor i in range(1500):\n"
    " sys.stdout.write('.'); sys.stdout.flush(); time.sleep(0.002)"
)
"""A program writing one byte every 2 ms: how many messages does each byte cost?"""


def spawn(argv: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    """`argv` on a new PTY, in a session of its own: the process and the PTY's master."""
    master, slave = os.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    return proc, master


def finish(proc: subprocess.Popen[bytes], master: int) -> None:
    """Kill the program if it still runs (an interrupted measure), reap it, close the PTY."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    os.close(master)


@contextlib.contextmanager
def terminal(argv: list[str]) -> Iterator[int]:
    """`argv` on a bare PTY for the block: its master; the program is ended after."""
    proc, master = spawn(argv)
    try:
        yield master
    finally:
        finish(proc, master)


def read_all(master: int) -> tuple[int, int]:
    """(bytes, reads) until the program's side of the PTY is closed."""
    total = reads = 0
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        total += len(data)
        reads += 1
    return total, reads


def read_until(master: int, marker: bytes) -> int:
    """Read until `marker` has come (across reads too); the bytes read."""
    total = 0
    scan = Scan(marker)
    while True:
        piece = os.read(master, 65536)
        if not piece:
            raise EOFError("the program closed its terminal")
        total += len(piece)
        if scan.feed(piece):
            return total


def read_for(master: int, seconds: float) -> None:
    """Read whatever comes, for `seconds`."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        os.read(master, 65536)


# -- the loads ----------------------------------------------------------------------------------


def throughput(path: str) -> float:
    """MB/s of `cat path`."""
    with terminal(["cat", path]) as master:
        start = time.perf_counter()
        total, _ = read_all(master)
        return total / (time.perf_counter() - start) / 1e6


def echo(samples: int) -> list[float]:
    """Seconds from writing one keystroke to `cat` to reading its echo, `samples` times."""
    with terminal(["cat"]) as master:
        out = []
        for _ in range(samples):
            t0 = time.perf_counter()
            os.write(master, b"a")
            os.read(master, 100)
            out.append(time.perf_counter() - t0)
        return out


def trickle() -> float:
    """Reads per second of the TRICKLE program's output."""
    with terminal([sys.executable, "-c", TRICKLE]) as master:
        start = time.perf_counter()
        _, reads = read_all(master)
        return reads / (time.perf_counter() - start)


def seq(lines: int) -> tuple[int, float, float]:
    """loads.seq here: (bytes, seconds, CPU seconds of this reader) of `seq 1 LINES` in an
    interactive bash."""
    with terminal(PROGRAMS["bash"]) as master:
        os.write(master, SEQ_READY[0].encode())
        read_until(master, SEQ_READY[1])
        cpu = time.process_time()
        start = time.perf_counter()
        os.write(master, seq_command(lines).encode())
        total = read_until(master, SEQ_END)
        return total, time.perf_counter() - start, time.process_time() - cpu


def sessions(n: int, waves: int) -> tuple[float, list[float]]:
    """loads.sessions here: `n` PTYs started at once, read by one selector loop."""
    sel = selectors.DefaultSelector()
    start = time.perf_counter()
    held = [spawn(PROGRAMS["ready"]) for _ in range(n)]
    try:
        seen = {master: b"" for _, master in held}
        for _, master in held:
            sel.register(master, selectors.EVENT_READ)
        waiting = set(seen)
        while waiting:
            for key, _ in sel.select():
                fd = int(key.fd)
                seen[fd] += os.read(fd, 65536)
                if READY in seen[fd]:
                    waiting.discard(fd)
                    sel.unregister(fd)
        open_s = time.perf_counter() - start
        latencies = []
        for _ in range(waves):
            sent = {}
            for _, master in held:
                sel.register(master, selectors.EVENT_READ)
                sent[master] = time.perf_counter()
                os.write(master, b"x")
            waiting = set(sent)
            while waiting:
                for key, _ in sel.select():
                    fd = int(key.fd)
                    if b"x" in os.read(fd, 65536):
                        latencies.append(time.perf_counter() - sent[fd])
                        waiting.discard(fd)
                        sel.unregister(fd)
        return open_s, latencies
    finally:
        sel.close()
        for proc, master in held:
            finish(proc, master)
