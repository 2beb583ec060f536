"""`vibetunnel recordings` and `vibetunnel play`, with VIBETUNNEL_HOME in a temporary folder."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import ModuleType

import pytest

from vibetunnel.cli import play, recordings
from vibetunnel.recording.asciicast import event_line, header_line
from vibetunnel.recording.index import RecordingIndex

T0 = 1704067200.0


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VIBETUNNEL_HOME", str(tmp_path / "home"))
    return tmp_path / "home" / "recordings"


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(play, "sleep", slept.append)
    return slept


def parse_args(module: ModuleType, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    module.configure(parser)
    return parser.parse_args(argv)


def call(module: ModuleType, argv: list[str]) -> int:
    code = module.run(parse_args(module, argv))
    assert isinstance(code, int)
    return code


def write_cast(folder: Path, id: str, events: list[tuple[float, str, str]], tail: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    text = header_line(80, 24, T0, {}, "bash", "t") + "".join(event_line(*e) for e in events)
    (folder / f"{id}.cast").write_text(text + tail, encoding="utf-8")


EVENTS = [
    (0.5, "o", "hello "),
    (0.7, "i", "typed"),
    (1.5, "r", "100x30"),
    (3.5, "o", "wörld 😀\r\n"),
    (13.5, "o", "\x1b[0mlate"),
]


def test_modules_follow_the_cli_convention() -> None:
    for module in (play, recordings):
        assert isinstance(module.HELP, str) and "\n" not in module.HELP


def test_recordings_when_there_are_none(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert call(recordings, []) == 0
    assert capsys.readouterr().out == "No recordings.\n"
    assert not folder.exists()  # listing writes nothing


def test_recordings_table(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_cast(folder, "rebuilt", EVENTS)
    write_cast(folder, "live", EVENTS)
    index = RecordingIndex(folder)
    index.load()
    index.start({"id": "done", "name": "my\tbuild", "command": "make -j8", "startedAt": T0 + 60})
    write_cast(folder, "done", EVENTS)
    index.finish("done", 2, T0 + 60 + 125)
    index.start({"id": "live", "name": "x", "command": "vim", "startedAt": T0 + 120})
    assert call(recordings, []) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "COMMAND", "STARTED", "DURATION", "EXIT"]
    assert [line.split()[0] for line in lines[1:]] == ["live", "done", "rebuilt"]
    assert lines[1].split()[-2:] == ["running", "-"]
    assert "my build" in lines[2] and "make -j8" in lines[2]
    assert lines[2].split()[-2:] == ["2m05s", "2"]
    assert lines[3].split()[-2:] == ["13.5s", "-"]


def test_recordings_json(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_cast(folder, "one", EVENTS)
    assert call(recordings, ["--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [e["id"] for e in listed] == ["one"]
    assert listed[0]["duration"] == 13.5


def test_recordings_never_repairs(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_cast(folder, "torn", EVENTS, tail='[20, "o", "hal')
    before = (folder / "torn.cast").read_bytes()
    assert call(recordings, []) == 0
    assert (folder / "torn.cast").read_bytes() == before
    assert not (folder / "metadata.json").exists()


def test_play_real_speed(
    folder: Path, waits: list[float], capsys: pytest.CaptureFixture[str]
) -> None:
    write_cast(folder, "rec", EVENTS)
    assert call(play, ["rec"]) == 0
    assert capsys.readouterr().out == "hello wörld 😀\r\n\x1b[0mlate"
    assert waits == pytest.approx([0.5, 3.0, 10.0])


def test_play_speed_and_max_wait(
    folder: Path, waits: list[float], capsys: pytest.CaptureFixture[str]
) -> None:
    write_cast(folder, "rec", EVENTS)
    assert call(play, ["rec", "--speed", "2", "--max-wait", "1"]) == 0
    assert waits == pytest.approx([0.25, 1.0, 1.0])
    assert capsys.readouterr().out.endswith("late")


def test_play_max_wait_zero_never_sleeps(
    folder: Path, waits: list[float], capsys: pytest.CaptureFixture[str]
) -> None:
    write_cast(folder, "rec", EVENTS)
    assert call(play, ["rec", "--max-wait", "0"]) == 0
    assert waits == []


def test_play_a_torn_recording(
    folder: Path, waits: list[float], capsys: pytest.CaptureFixture[str]
) -> None:
    write_cast(folder, "torn", EVENTS, tail='[20.0, "o", "\xe2')
    assert call(play, ["torn", "--max-wait", "0"]) == 0
    assert capsys.readouterr().out.endswith("late")


@pytest.mark.parametrize("id", ["missing", "../x", "/etc/passwd", "a/b", ""])
def test_play_unknown(
    folder: Path, waits: list[float], capsys: pytest.CaptureFixture[str], id: str
) -> None:
    assert call(play, [id]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "no recording" in captured.err


def test_play_a_file_that_is_not_a_recording(
    folder: Path, waits: list[float], capsys: pytest.CaptureFixture[str]
) -> None:
    folder.mkdir(parents=True)
    (folder / "bad.cast").write_text("garbage\n")
    assert call(play, ["bad"]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_play_stops_quietly_on_ctrl_c(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_cast(folder, "rec", EVENTS)

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(play, "sleep", interrupted)
    assert call(play, ["rec"]) == 130


@pytest.mark.parametrize(
    "argv", [["x", "--speed", "0"], ["x", "--speed", "-1"], ["x", "--max-wait", "-1"]]
)
def test_play_rejects_bad_options(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(play, argv)
