"""The home is the user's own: made 0700 whatever the umask, refused (exit 2, naming the path
and why) when another user could have written to it, by `serve` before it binds or starts a
keeper and by every other command that trusts a file of it.

Another user is simulated with os.chown to uid 65534, which root may do (CI runs as root);
those cases are skipped otherwise.
"""

from __future__ import annotations

import io
import os
import ssl
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher

from tests.conftest import UNIT, RunningServer, create, start_server, wait_until
from vibetunnel.auth import TokenService, load_or_create_secret, passwords
from vibetunnel.cli import vt
from vibetunnel.cli.main import main
from vibetunnel.files import write_private

OTHER = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="only root may give a file away")


def cli(home: Path, *args: str, module: str = "vibetunnel") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        env={**os.environ, "VIBETUNNEL_HOME": str(home)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30 * UNIT,
        check=False,
    )


def modes(base: Path) -> dict[str, int]:
    """Every folder and file under `base` (not `base` itself) -> its mode."""
    found = {}
    for root, dirs, files in os.walk(base):
        for name in dirs + files:
            path = Path(root) / name
            found[str(path.relative_to(base))] = stat.S_IMODE(os.lstat(path).st_mode)
    return found


def all_private(found: dict[str, int], base: Path) -> None:
    wrong = {
        name: f"{bits:04o}"
        for name, bits in found.items()
        if bits != (0o700 if (base / name).is_dir() else 0o600)
    }
    assert not wrong, f"not 0700 folders and 0600 files: {wrong}"


def umask_000() -> None:
    os.umask(0)


def test_serve_under_umask_000_makes_every_folder_0700_and_every_file_0600(
    tmp_path: Path,
) -> None:
    base = tmp_path / "base"
    home = base / "a" / "b" / "home"  # a and b do not exist yet
    base.mkdir()
    # --tls self-signed makes tls/ (and so the home) before the app does.
    srv = RunningServer(home, ("--tls", "self-signed"), {}, preexec=umask_000).start()
    try:
        token = TokenService(load_or_create_secret(home)).issue("tester", 600)
        context = ssl.create_default_context(cafile=str(home / "tls" / "cert.pem"))
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(
            base_url=srv.url.replace("0.0.0.0", "127.0.0.1"),
            headers=headers,
            verify=context,
            timeout=10 * UNIT,
        ) as api:
            sid = create(api, command="/bin/sh", args=["-c", "echo made; exec cat"])["id"]
            cast = home / "recordings" / f"{sid}.cast"
            wait_until(lambda: b"made" in cast.read_bytes() if cast.exists() else False)
        running = modes(base)  # the keeper runs: its socket, its files
        assert {"a", "a/b", "a/b/home", "a/b/home/tls", "a/b/home/recordings"} <= set(running)
        assert {"a/b/home/keeper.sock", "a/b/home/keeper.json", "a/b/home/server.json"} <= set(
            running
        )
        all_private(running, base)
    finally:
        srv.stop()
    all_private(modes(base), base)


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands run here: a cheap password hash, a line on stdin for `passwd`."""
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024))
    monkeypatch.setattr(sys, "stdin", io.StringIO("pw\n"))
    monkeypatch.delenv("VIBETUNNEL_JWT_SECRET", raising=False)
    monkeypatch.delenv("VIBETUNNEL_PASSWORD", raising=False)


@pytest.mark.parametrize(("command", "made"), [("passwd", "password"), ("token", "secret")])
def test_commands_that_make_the_home_make_it_0700_under_umask_000(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_process: None, command: str, made: str
) -> None:
    home = tmp_path / "a" / "b" / "home"
    monkeypatch.setenv("VIBETUNNEL_HOME", str(home))
    old = os.umask(0)
    try:
        assert main([command]) == 0
    finally:
        os.umask(old)
    assert (home / made).is_file()
    all_private(modes(tmp_path), tmp_path)


# -- serve refuses a home another user could have written to --------------------------------


def a_home(tmp_path: Path) -> Path:
    """A home as a server leaves it."""
    home = tmp_path / "home"
    for name in ("secret", "password", "sessions.json", "recordings/a.cast"):
        write_private(home / name, b"x\n" * 20)
    return home


def give_away(name: str) -> Callable[[Path], Path]:
    def apply(home: Path) -> Path:
        path = home / name if name else home
        os.chown(path, OTHER, OTHER)
        return path

    return apply


def loosen(name: str, bits: int) -> Callable[[Path], Path]:
    def apply(home: Path) -> Path:
        path = home / name if name else home
        os.chmod(path, bits)
        return path

    return apply


def open_above(home: Path) -> Path:
    os.chmod(home.parent, 0o777)
    return home.parent


def root_only(*values: object) -> object:
    return pytest.param(*values, marks=as_root)


@pytest.mark.parametrize(
    ("spoil", "why"),
    [
        # Each case of the check is in tests/unit/test_home.py; here, that serve asks it first.
        root_only(give_away(""), f"belongs to uid {OTHER}, not you"),
        root_only(give_away("recordings/a.cast"), f"belongs to uid {OTHER}, not you"),
        (loosen("password", 0o666), "is writable by others (mode 0666): chmod go-w it"),
        (open_above, "(a folder above the home) is writable by others (mode 0777) without"),
    ],
)
def test_serve_refuses_a_home_another_user_could_write(
    tmp_path: Path, spoil: Callable[[Path], Path], why: str
) -> None:
    home = a_home(tmp_path)
    before = set(os.listdir(home))
    path = spoil(home)
    done = cli(home, "serve", "--port", "0", "--tls", "self-signed")
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"vibetunnel: refusing the home {home}: {path} {why}" in done.stderr
    # Before anything: no certificate made, no lock claimed, no port, no keeper.
    assert set(os.listdir(home)) == before
    assert "listening" not in done.stdout


def test_a_home_below_a_sticky_shared_folder_starts(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # like /tmp: nobody may rename what is not theirs
    srv = start_server(shared / "home", "--no-auth")
    try:
        with srv.client() as api:
            assert api.get("/api/sessions").status_code == 200
    finally:
        srv.stop()


def test_keeper_json_an_older_version_left_wide_is_tightened_with_a_warning(
    tmp_path: Path,
) -> None:
    home = a_home(tmp_path)
    (home / "keeper.json").write_text('{"pid": 1}')
    os.chmod(home / "keeper.json", 0o666)
    srv = start_server(home, "--no-auth")
    try:
        assert stat.S_IMODE((home / "keeper.json").stat().st_mode) == 0o600
        warning = f"vibetunnel: WARNING: {home / 'keeper.json'} was writable by others (mode "
        assert any(line.startswith(warning) for line in srv.output), srv.output
    finally:
        srv.stop()


# -- every other command that trusts the home ------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [["passwd"], ["token"], ["login-link"], ["stop"], ["recordings"], ["play", "a"], ["vt"]],
)
def test_every_command_refuses_a_home_others_may_write(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    in_process: None,
    argv: list[str],
) -> None:
    home = a_home(tmp_path)
    monkeypatch.setenv("VIBETUNNEL_HOME", str(home))
    os.chmod(home / "password", 0o666)
    password = (home / "password").read_bytes()
    code = vt.main(["--list"]) if argv == ["vt"] else main(argv)
    out, err = capsys.readouterr()
    assert code == 2, out + err
    assert f"refusing the home {home}: {home / 'password'} is writable by others" in err
    assert (home / "password").read_bytes() == password  # passwd wrote nothing
    assert out == ""  # no token, no link, no list


def test_vt_refuses_a_home_others_may_write(tmp_path: Path) -> None:
    home = a_home(tmp_path)
    os.chmod(home / "recordings", 0o777)  # where vt would record
    done = cli(home, "true", module="vibetunnel.cli.vt")
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"vt: refusing the home {home}: {home / 'recordings'} is writable" in done.stderr
    assert os.listdir(home / "recordings") == ["a.cast"]
