"""The yardstick of bench/peers.py: its loads on bare PTYs, read by a plain loop in this process.

The same programs and the same markers as peers_clients.py; the "server CPU" of the bare PTY
is this process's own CPU time while it reads.
"""

from __future__ import annotations

import os
import selectors
import time

import bare
import peers_clients as pc


def _read_until(master: int, marker: bytes) -> int:
    total = 0
    tail = b""
    while True:
        piece = os.read(master, 65536)
        if not piece:
            raise EOFError("the program closed its terminal")
        total += len(piece)
        seen = tail + piece
        if marker in seen:
            return total
        tail = seen[-(len(marker) - 1) :]


def throughput(lines: int) -> tuple[int, float, float]:
    """(bytes, seconds, CPU seconds of this reader) of `seq 1 LINES` in an interactive bash."""
    proc, master = bare.spawn(pc.PROGRAMS["bash"])
    try:
        os.write(master, b"echo READY$((1+1))\r")
        _read_until(master, b"READY2")
        cpu = time.process_time()
        start = time.perf_counter()
        os.write(master, f"seq 1 {lines}; echo END$((2+3))\r".encode())
        total = _read_until(master, b"END5")
        return total, time.perf_counter() - start, time.process_time() - cpu
    finally:
        bare.finish(proc, master)


def echo(samples: int) -> list[float]:
    return bare.echo(samples)


def sessions(n: int, waves: int) -> tuple[float, list[float]]:
    """As peers_clients.sessions: `n` PTYs started at once, read by one selector loop."""
    sel = selectors.DefaultSelector()
    start = time.perf_counter()
    held = [bare.spawn(pc.PROGRAMS["ready"]) for _ in range(n)]
    try:
        seen = {master: b"" for _, master in held}
        for _, master in held:
            sel.register(master, selectors.EVENT_READ)
        waiting = set(seen)
        while waiting:
            for key, _ in sel.select():
                fd = int(key.fd)
                seen[fd] += os.read(fd, 65536)
                if pc.READY in seen[fd]:
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
            bare.finish(proc, master)
