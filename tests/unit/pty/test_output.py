"""Output: PTY reads decoded once into whole UTF-8, then screen, recording and sinks."""

from __future__ import annotations

from vibetunnel.protocol.screen import ScreenBuffer
from vibetunnel.pty.output import Output


class Collect:
    """A sink and a recording at once: what each was given, in order."""

    def __init__(self, log: list[tuple[str, object]] | None = None, name: str = "") -> None:
        self.log = [] if log is None else log
        self.name = name
        self.fed: list[bytes] = []
        self.recorded: list[bytes] = []

    def feed(self, data: bytes) -> None:
        self.fed.append(data)
        self.log.append((self.name, data))

    def output(self, data: bytes) -> None:
        self.recorded.append(data)
        self.log.append((self.name, data))


def test_a_character_split_across_reads_arrives_whole() -> None:
    rec, sink = Collect(), Collect()
    out = Output(rec)
    out.sinks.append(sink)
    euro = "€".encode()
    out.feed(b"a" + euro[:1])
    out.feed(euro[1:2])
    assert out.held() == euro[:2]
    out.feed(euro[2:] + b"b")
    assert out.held() == b""
    assert sink.fed == [b"a", "€b".encode()]
    assert rec.recorded == [b"a", "€b".encode()]
    assert out.snapshot() == "a€b".encode()


def test_a_read_of_only_a_partial_character_publishes_nothing() -> None:
    rec, sink = Collect(), Collect()
    out = Output(rec)
    out.sinks.append(sink)
    out.feed("😀".encode()[:3])
    assert sink.fed == [] and rec.recorded == [] and out.snapshot() == b""


def test_invalid_bytes_become_replacement_characters() -> None:
    sink = Collect()
    out = Output()
    out.sinks.append(sink)
    out.feed(b"ok\xff\xfeend")
    out.feed(b"\xc3(")  # a lead byte followed by no continuation
    assert b"".join(sink.fed) == "ok\ufffd\ufffdend\ufffd(".encode()
    assert out.snapshot() == b"".join(sink.fed)


def test_finish_turns_a_cut_character_into_a_replacement() -> None:
    sink = Collect()
    out = Output()
    out.sinks.append(sink)
    out.feed(b"x" + "€".encode()[:2])
    out.finish()
    assert sink.fed == [b"x", "\ufffd".encode()]
    out.finish()  # nothing more
    assert len(sink.fed) == 2


def test_held_bytes_complete_the_character_in_a_new_output() -> None:
    first = Output()
    euro = "€".encode()
    first.feed(b"before " + euro[:1])
    held = first.held()
    assert held == euro[:1]
    second = Output(held=held)  # another holder reads on from here
    sink = Collect()
    second.sinks.append(sink)
    second.feed(euro[1:] + b" after")
    assert sink.fed == ["€ after".encode()]


def test_sinks_in_order_then_the_recording() -> None:
    log: list[tuple[str, object]] = []
    rec, one, two = Collect(log, "rec"), Collect(log, "one"), Collect(log, "two")
    out = Output(rec)
    out.sinks += [one, two]
    for chunk in (b"first ", b"second ", b"third"):
        out.feed(chunk)
    assert log == [
        ("one", b"first "),
        ("two", b"first "),
        ("rec", b"first "),
        ("one", b"second "),
        ("two", b"second "),
        ("rec", b"second "),
        ("one", b"third"),
        ("two", b"third"),
        ("rec", b"third"),
    ]
    # The recording is given the very bytes the sinks were (its writer decodes them).
    assert all(r is f for r, f in zip(rec.recorded, one.fed, strict=True))


def test_the_screen_has_the_output_before_any_sink() -> None:
    out = Output()
    seen: list[bytes] = []

    class Peek:
        def feed(self, data: bytes) -> None:
            seen.append(out.snapshot())

    out.sinks.append(Peek())
    out.feed(b"prompt$ ")
    assert seen == [b"prompt$ "]  # a client attaching from a sink sees a whole screen


def test_screen_keeps_output_since_the_last_clear() -> None:
    out = Output()
    out.feed(b"old stuff\x1b[2Jnew")
    out.feed(b" screen")
    assert out.snapshot() == b"\x1b[2Jnew screen"


def test_a_given_screen_is_used() -> None:
    screen = ScreenBuffer()
    screen.append(b"handed over ")
    out = Output(screen=screen)
    out.feed(b"and more")
    assert out.screen is screen
    assert out.snapshot() == b"handed over and more"


def test_without_a_screen_sinks_and_recording_still_get_output() -> None:
    rec, sink = Collect(), Collect()
    out = Output(rec, screen=False)
    out.sinks.append(sink)
    assert out.screen is None
    out.feed(b"no screen")
    assert out.snapshot() == b""
    assert sink.fed == [b"no screen"] and rec.recorded == [b"no screen"]


def test_dropping_the_screen_later_keeps_sinks_fed() -> None:
    sink = Collect()
    out = Output()
    out.sinks.append(sink)
    out.feed(b"kept")
    out.screen = None  # the manager drops exited screens to bound memory
    out.feed(b" then dropped")
    assert out.snapshot() == b""
    assert sink.fed == [b"kept", b" then dropped"]


def test_the_title_a_program_sets_and_when_it_last_wrote() -> None:
    out = Output()
    assert out.title is None and out.last_output is None
    out.feed(b"\x1b]0;user@host: ~\x07$ ")
    assert out.title == "user@host: ~" and out.last_output is not None
    out.feed(b"\x1b]2;vim notes.txt\x1b\\")  # ended by ST instead of BEL
    assert out.title == "vim notes.txt"
    out.feed(b"\x1b]1;icon name only\x07")  # OSC 1 is not the window title
    assert out.title == "vim notes.txt"
