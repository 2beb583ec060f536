"""The home as files.py makes and checks it: folders 0700 whatever the umask, and a home that
another user could have written to refused, naming the path and why; and the holder of a lock.

Another user is simulated with os.chown to uid 65534, which root may do (CI runs as root);
those tests are skipped otherwise.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from vibetunnel.files import (
    LOOSE_BEFORE,
    UnsafeHome,
    check_home,
    lock_holder,
    private_dir,
    write_private,
)
from vibetunnel.keeper.daemon import INFO

OTHER = 65534
"""nobody: the other user."""
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="only root may give a file away")


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home as the server leaves it: private files, recordings/, tls/, a socket, a link."""
    home = tmp_path / "home"
    for name in ("secret", "password", "sessions.json", "recordings/a.cast", "tls/key.pem"):
        write_private(home / name, b"x")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(home / "keeper.sock"))
    os.chmod(home / "keeper.sock", 0o600)
    (home / "recordings" / "link.cast").symlink_to("a.cast")  # a link's mode is 0777
    return home


# -- private_dir ------------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o777])
def test_private_dir_makes_every_missing_folder_0700_whatever_the_umask(
    tmp_path: Path, mask: int
) -> None:
    (tmp_path / "there").mkdir(mode=0o755)
    os.chmod(tmp_path / "there", 0o755)
    target = tmp_path / "there" / "a" / "b" / "home"
    with umask(mask):
        private_dir(target)
        private_dir(target)  # made already: nothing to do
    assert [mode(p) for p in (target.parents[1], target.parent, target)] == [0o700] * 3
    assert mode(tmp_path / "there") == 0o755  # a folder that existed is left as it was


def test_private_dir_names_a_file_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError) as caught:
        private_dir(tmp_path / "file" / "home")
    assert caught.value.filename == str(tmp_path / "file")


def test_private_files_under_umask_000_are_0600_in_0700_folders(tmp_path: Path) -> None:
    with umask(0):
        write_private(tmp_path / "new" / "deeper" / "secret", b"x")
    assert mode(tmp_path / "new") == mode(tmp_path / "new" / "deeper") == 0o700
    assert mode(tmp_path / "new" / "deeper" / "secret") == 0o600


# -- check_home: what is fine ---------------------------------------------------------------


def test_a_private_home_is_fine(home: Path) -> None:
    assert check_home(home) == []


def test_a_sticky_world_writable_folder_above_is_fine(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # /tmp's mode: nobody may rename what is not theirs
    private_dir(shared / "home")
    assert check_home(shared / "home") == []


def test_a_missing_home_is_not_checked_but_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        check_home(tmp_path / "missing")


# -- check_home: refusals -------------------------------------------------------------------


def refusal(home: Path) -> str:
    with pytest.raises(UnsafeHome) as caught:
        check_home(home)
    return str(caught.value)


@as_root
def test_a_home_of_another_user_is_refused(home: Path) -> None:
    os.chown(home, OTHER, OTHER)
    assert refusal(home) == f"{home} belongs to uid {OTHER}, not you (uid 0)"


@as_root
@pytest.mark.parametrize(
    "name", ["secret", "password", "sessions.json", "recordings/a.cast", "tls", "keeper.sock"]
)
def test_an_entry_of_another_user_is_refused(home: Path, name: str) -> None:
    os.chown(home / name, OTHER, OTHER)
    assert refusal(home) == f"{home / name} belongs to uid {OTHER}, not you (uid 0)"


@as_root
def test_a_link_of_another_user_is_refused_without_following_it(home: Path) -> None:
    # Her link to a file of ours: the target is fine, the link is hers.
    (home / "password").unlink()
    (home / "password").symlink_to(home / "secret")
    os.lchown(home / "password", OTHER, OTHER)
    assert refusal(home) == f"{home / 'password'} belongs to uid {OTHER}, not you (uid 0)"


@as_root
def test_a_hard_link_to_a_file_of_another_user_is_refused(home: Path, tmp_path: Path) -> None:
    hers = tmp_path / "hers.cast"
    hers.write_text("")
    os.chown(hers, OTHER, OTHER)
    os.link(hers, home / "recordings" / "b.cast")
    assert f"{home / 'recordings' / 'b.cast'} belongs to uid {OTHER}" in refusal(home)


@pytest.mark.parametrize(
    ("name", "bits", "why"),
    [
        ("", 0o777, "writable by others (mode 0777)"),
        ("", 0o770, "writable by its group (mode 0770)"),
        ("password", 0o666, "writable by others (mode 0666)"),
        ("secret", 0o620, "writable by its group (mode 0620)"),
        ("recordings", 0o775, "writable by its group (mode 0775)"),
        ("recordings/a.cast", 0o602, "writable by others (mode 0602)"),
        ("keeper.sock", 0o666, "writable by others (mode 0666)"),
    ],
)
def test_a_home_or_entry_others_may_write_is_refused(
    home: Path, name: str, bits: int, why: str
) -> None:
    path = home / name if name else home
    os.chmod(path, bits)
    assert refusal(home) == f"{path} is {why}: chmod go-w it"


def test_a_folder_above_that_others_may_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)  # no sticky bit: anyone may rename the home away
    private_dir(shared / "home")
    assert refusal(shared / "home") == (
        f"{shared} (a folder above the home) is writable by others (mode 0777) without the "
        f"sticky bit: they could replace {shared / 'home'}; chmod go-w it"
    )


def test_a_folder_above_reached_through_a_link_is_checked_too(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    private_dir(shared / "home")
    os.chmod(shared, 0o777)
    (tmp_path / "mine").mkdir(mode=0o700)
    (tmp_path / "mine" / "home").symlink_to(shared / "home")
    assert f"{shared} (a folder above the home) is writable by others" in refusal(
        tmp_path / "mine" / "home"
    )


@as_root
def test_a_folder_above_of_another_user_is_refused(tmp_path: Path) -> None:
    hers = tmp_path / "hers"
    private_dir(hers / "home")
    os.chown(hers, OTHER, OTHER)
    assert refusal(hers / "home") == (
        f"{hers} (a folder above the home) belongs to uid {OTHER}, not you (uid 0) nor "
        f"root: its owner could replace {hers / 'home'}"
    )


@as_root
def test_a_sticky_folder_above_of_another_user_is_refused(tmp_path: Path) -> None:
    hers = tmp_path / "hers"
    private_dir(hers / "home")
    os.chmod(hers, 0o1777)
    os.chown(hers, OTHER, OTHER)  # the sticky bit does not bind the folder's owner
    assert f"{hers} (a folder above the home) belongs to uid {OTHER}" in refusal(hers / "home")


# -- what an older version left wider -------------------------------------------------------


def test_keeper_json_left_wide_is_tightened_with_a_note(home: Path) -> None:
    assert INFO in LOOSE_BEFORE
    (home / INFO).write_text("{}")
    os.chmod(home / INFO, 0o666)
    assert check_home(home) == [
        f"{home / INFO} was writable by others (mode 0666): made 0600",
    ]
    assert mode(home / INFO) == 0o600
    assert check_home(home) == []


@as_root
def test_keeper_json_of_another_user_is_refused_not_tightened(home: Path) -> None:
    (home / INFO).write_text("{}")
    os.chmod(home / INFO, 0o666)
    os.chown(home / INFO, OTHER, OTHER)
    assert refusal(home) == f"{home / INFO} belongs to uid {OTHER}, not you (uid 0)"
    assert mode(home / INFO) == 0o666


def test_only_keeper_json_is_tightened(home: Path) -> None:
    os.chmod(home / "sessions.json", 0o666)  # made by write_private: never wide by our hand
    assert "sessions.json is writable by others" in refusal(home)
    assert mode(home / "sessions.json") == 0o666


# -- lock_holder ----------------------------------------------------------------------------


HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(600)
"""


def test_lock_holder_is_the_process_that_holds_the_lock(tmp_path: Path) -> None:
    lock = tmp_path / "server.lock"
    assert lock_holder(lock) is None  # no file
    lock.write_text(str(os.getpid()))
    assert lock_holder(lock) is None  # a pid written down holds nothing
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        assert lock_holder(lock) == holder.pid
        fd = os.open(lock, os.O_RDONLY)  # this process has it open, unlocked: not the holder
        try:
            assert lock_holder(lock) == holder.pid
        finally:
            os.close(fd)
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    assert lock_holder(lock) is None  # the kernel dropped the lock with its holder


def test_lock_holder_of_a_lock_held_here(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "server.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert lock_holder(tmp_path / "server.lock") == os.getpid()
        other = tmp_path / "other.lock"  # another file's lock is not this one's
        other.write_text("")
        assert lock_holder(other) is None
    finally:
        os.close(fd)


OPEN_OTHER = """
import fcntl, os, sys, time
locked = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(locked, fcntl.LOCK_EX)
opened = os.open(sys.argv[2], os.O_RDONLY)
print("held", flush=True)
time.sleep(600)
"""

HANDED_ON = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
if os.fork() == 0:
    print(os.getpid(), flush=True)
    time.sleep(600)
os._exit(0)
"""


def test_a_process_holding_another_lock_with_the_file_open_is_not_its_holder(
    tmp_path: Path,
) -> None:
    lock = tmp_path / "server.lock"
    lock.write_text("")
    other = subprocess.Popen(
        [sys.executable, "-c", OPEN_OTHER, str(tmp_path / "other.lock"), str(lock)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout is not None and other.stdout.readline() == "held\n"
        assert lock_holder(tmp_path / "other.lock") == other.pid
        assert lock_holder(lock) is None
    finally:
        other.kill()
        other.wait()
        assert other.stdout is not None
        other.stdout.close()


def test_a_locker_that_is_gone_is_never_named(tmp_path: Path) -> None:
    # The kernel names the process that took the lock; here it has exited and its child
    # holds the lock on. Its pid may be anyone's by now: it is not named as the holder.
    lock = tmp_path / "server.lock"
    locker = subprocess.Popen(
        [sys.executable, "-c", HANDED_ON, str(lock)], stdout=subprocess.PIPE, text=True
    )
    assert locker.stdout is not None
    child = int(locker.stdout.readline())
    try:
        assert locker.wait(timeout=30) == 0
        assert lock_holder(lock) is None
    finally:
        os.kill(child, signal.SIGKILL)
        locker.stdout.close()
