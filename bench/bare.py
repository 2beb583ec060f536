"""The yardstick: the same programs on a bare PTY, read by a plain loop in this process."""

from __future__ import annotations

import os
import subprocess
import sys
import time

TRICKLE = (
    "import sys,time\nfor i in range(1500):\n"
    " sys.stdout.write('.'); sys.stdout.flush(); time.sleep(0.002)"
)
"""A program writing one byte every 2 ms: how many messages does each byte cost?"""


def spawn(argv: list[str]) -> tuple[subprocess.Popen[bytes], int]:
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


def throughput(path: str) -> float:
    """MB/s of `cat path`."""
    proc, master = spawn(["cat", path])
    try:
        start = time.perf_counter()
        total, _ = read_all(master)
        return total / (time.perf_counter() - start) / 1e6
    finally:
        finish(proc, master)


def echo(samples: int) -> list[float]:
    """Seconds from writing one keystroke to `cat` to reading its echo, `samples` times."""
    proc, master = spawn(["cat"])
    try:
        out = []
        for _ in range(samples):
            t0 = time.perf_counter()
            os.write(master, b"a")
            os.read(master, 100)
            out.append(time.perf_counter() - t0)
        return out
    finally:
        finish(proc, master)


def trickle() -> float:
    """Reads per second of the TRICKLE program's output."""
    proc, master = spawn([sys.executable, "-c", TRICKLE])
    try:
        start = time.perf_counter()
        _, reads = read_all(master)
        return reads / (time.perf_counter() - start)
    finally:
        finish(proc, master)
