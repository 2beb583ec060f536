"""The process table, read from /proc: which processes hold a home's sessions, what they cost
(memory, CPU, wakeups), and ending whatever a bench run left behind.

A home's processes are found three ways, so a keeper that detaches (setsid, double fork) or
a session started with a scrubbed environment is still found: the server's pid, the keeper's
pid from `<home>/keeper.json`, their descendants, and every process whose environment names
the home. Of these, a process with `VIBETUNNEL_SESSION_ID` in its environment is a session
program (the user's); the rest hold the sessions (server, keeper, any helper of theirs).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

TAG = "VIBETUNNEL_BENCH"
"""Set in the bench's environment, so every process it starts (and theirs) carries it."""


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    comm: str
    env: dict[str, str]


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat from comm on (comm = [0], state = [1], ppid = [2], ...), or
    None if the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm may hold spaces and parentheses: it ends at the last ") ".
    head, _, rest = text.rpartition(") ")
    return [head.partition(" (")[2], *rest.split()]


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:  # gone, or not ours to read
        return {}
    env = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            env[key.decode(errors="replace")] = value.decode(errors="replace")
    return env


def processes() -> list[Proc]:
    """Every live process but this one (zombies excluded: they hold no memory)."""
    out = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        stat = _stat(pid)
        if stat is None or stat[1] in ("Z", "X"):
            continue
        out.append(Proc(pid, int(stat[2]), stat[0], _environ(pid)))
    return out


def keeper_pid(home: Path) -> int | None:
    """The pid in `<home>/keeper.json`, if the file exists and the process is alive."""
    try:
        pid = json.loads((home / "keeper.json").read_text())["pid"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pid if isinstance(pid, int) and alive(pid) else None


def alive(pid: int) -> bool:
    """Running, and not a zombie."""
    stat = _stat(pid)
    return stat is not None and stat[1] not in ("Z", "X")


@dataclass
class Tree:
    """The processes of one home by role, each as pid -> command name."""

    roles: dict[int, str] = field(default_factory=dict)
    """What holds the sessions: pid -> "server", "keeper" or the command name of a helper."""
    sessions: dict[int, str] = field(default_factory=dict)
    """The session programs."""
    others: dict[int, str] = field(default_factory=dict)
    """Carry the home in their environment, but neither hold sessions nor are one (vt)."""

    @property
    def holders(self) -> list[int]:
        return list(self.roles)

    @property
    def pids(self) -> list[int]:
        return [*self.roles, *self.sessions, *self.others]

    def describe(self) -> str:
        """Like "server + keeper + 300 session programs (cat)"."""
        counts = Counter(self.roles.values())
        order = sorted(counts, key=lambda r: (r != "server", r != "keeper", r))
        parts = [r if counts[r] == 1 else f"{counts[r]} {r}" for r in order] or ["no holder"]
        if self.sessions:
            comms = ", ".join(sorted(set(self.sessions.values())))
            parts.append(f"{len(self.sessions)} session programs ({comms})")
        if self.others:
            comms = ", ".join(sorted(set(self.others.values())))
            parts.append(f"{len(self.others)} others, not counted ({comms})")
        return " + ".join(parts)


def descendants(roots: Iterable[int], procs: Iterable[Proc] | None = None) -> set[int]:
    """Every live process below `roots` (children, theirs, ...), the roots not included."""
    children: dict[int, list[int]] = {}
    for p in processes() if procs is None else procs:
        children.setdefault(p.ppid, []).append(p.pid)
    below: set[int] = set()
    todo = list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in below:
                below.add(child)
                todo.append(child)
    return below


def tree(home: Path, server_pid: int | None, procs: list[Proc] | None = None) -> Tree:
    """The processes of `home`: what holds its sessions, and the session programs (of the
    table `procs` where given, read once for many homes)."""
    table = {p.pid: p for p in (processes() if procs is None else procs)}
    roots = {pid: "server" for pid in (server_pid,) if pid in table}
    if (keeper := keeper_pid(home)) in table:
        roots[keeper] = "keeper"
    below = descendants(roots, table.values())
    named = {p.pid for p in table.values() if p.env.get("VIBETUNNEL_HOME") == str(home)}
    result = Tree(roles=dict(roots))
    for pid in sorted((below | named) - set(roots)):
        proc = table[pid]
        if "VIBETUNNEL_SESSION_ID" in proc.env:
            result.sessions[pid] = proc.comm
        elif pid in below:
            result.roles[pid] = proc.comm
        else:
            result.others[pid] = proc.comm
    return result


def tagged(tag: str, procs: list[Proc] | None = None) -> list[Proc]:
    """Live processes whose environment carries this run's tag."""
    return [p for p in (processes() if procs is None else procs) if p.env.get(TAG) == tag]


# -- cost ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Memory:
    """kB summed over some processes.

    PSS shares each shared page among the processes mapping it, so a sum over a process tree
    counts every page once; RSS counts a shared page in every process. But PSS moves between
    processes: 300 `cat`s mapping libc take most of the server's share of libc's pages. The
    anonymous (and shmem) part of PSS does not move that way: it is what grows per session.
    """

    pss: int
    rss: int
    anon: int
    """Pss_Anon + Pss_Shmem."""
    exact: bool = True
    """False if some process had no smaps_rollup: its RSS stood in for its PSS and anon."""

    def __add__(self, other: Memory) -> Memory:
        return Memory(
            self.pss + other.pss,
            self.rss + other.rss,
            self.anon + other.anon,
            self.exact and other.exact,
        )


def status_kb(pid: int) -> dict[str, int]:
    """The kB fields of /proc/PID/status: VmRSS, VmHWM (the peak RSS of its life), ..."""
    return _fields_kb(f"/proc/{pid}/status")


def _fields_kb(path: str) -> dict[str, int]:
    out = {}
    for line in Path(path).read_text().splitlines():
        key, _, value = line.partition(":")
        if value.endswith(" kB"):
            out[key] = int(value.split()[0])
    return out


def memory(pids: list[int]) -> Memory:
    """PSS from /proc/PID/smaps_rollup (RSS where it cannot be read), and RSS."""
    total = Memory(0, 0, 0)
    for pid in pids:
        try:
            rss = status_kb(pid)["VmRSS"]
        except (FileNotFoundError, ProcessLookupError, KeyError):
            continue  # gone, or a kernel thread
        try:
            rollup = _fields_kb(f"/proc/{pid}/smaps_rollup")
            anon = rollup["Pss_Anon"] + rollup.get("Pss_Shmem", 0)
            total += Memory(rollup["Pss"], rss, anon)
        except (OSError, KeyError):
            total += Memory(rss, rss, rss, exact=False)
    return total


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU time of each process so far (the ones still alive), to the
    nanosecond: stat(5)'s utime and stime count 10 ms ticks, too coarse for a 1 s load."""
    out = {}
    for pid in pids:
        # The process CPU clock of another pid, as glibc's clock_getcpuclockid makes it
        # (CPUCLOCK_SCHED of the whole thread group, threads that ended included).
        try:
            out[pid] = time.clock_gettime((~pid << 3) | 2)
        except OSError:
            if (stat := _stat(pid)) is not None:
                # utime and stime are fields 14 and 15 of stat(5); comm, field 2, is stat[0].
                out[pid] = (int(stat[12]) + int(stat[13])) / os.sysconf("SC_CLK_TCK")
    return out


def switches(pids: list[int]) -> int:
    """Voluntary context switches of every thread of `pids`: each is a sleep the thread woke
    from (epoll, a futex, a blocking read)."""
    total = 0
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                text = Path(f"/proc/{pid}/task/{tid}/status").read_text()
            except OSError:
                continue
            for line in text.splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    total += int(line.split()[1])
    return total


def machine_cpu() -> float:
    """Busy seconds of every core of the machine so far (not idle, not waiting on I/O):
    other people's work on the same box shows here."""
    jiffies = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
    return (sum(jiffies) - jiffies[3] - jiffies[4]) / os.sysconf("SC_CLK_TCK")


class Meter:
    """What some processes spent between the first and the last `mark()`: CPU seconds and
    voluntary context switches. `pids` is asked at each mark (a keeper may have started)."""

    def __init__(self, pids: Callable[[], list[int]]) -> None:
        self.pids = pids
        self.marks: list[tuple[dict[int, float], int]] = []

    def mark(self) -> None:
        pids = self.pids()
        self.marks.append((cpu_seconds(pids), switches(pids)))

    def cpu(self) -> float:
        """CPU seconds from the first mark to the last, of the processes alive at the last."""
        (before, _), (after, _) = self.marks[0], self.marks[-1]
        return sum(t - before.get(pid, 0.0) for pid, t in after.items())

    def wakeups(self) -> int:
        return self.marks[-1][1] - self.marks[0][1]


# -- ending -------------------------------------------------------------------------------------


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Wait until none of `pids` is alive, at most `timeout` seconds; the ones still alive."""
    deadline = time.monotonic() + timeout
    while True:
        left = [pid for pid in pids if alive(pid)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.02)


def end(pids: list[int], grace: float = 3.0) -> list[int]:
    """SIGTERM, then SIGKILL after `grace` seconds; the pids that survived both."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        pids = wait_gone(pids, wait)
        if not pids:
            break
    return pids


def children_of_mine(procs: list[Proc] | None = None) -> list[int]:
    """Live processes whose parent is this one."""
    return [p.pid for p in (processes() if procs is None else procs) if p.ppid == os.getpid()]
