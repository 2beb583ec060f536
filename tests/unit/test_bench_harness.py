"""bench/harness's pure parts: quantiles, cells, table layout, the shared options, the marker
scan of the loads. No bench runs here (they are minutes of real servers)."""

from __future__ import annotations

import argparse

import pytest
from bench.harness import loads, options, report
from hypothesis import given
from hypothesis import strategies as st


def test_quantile_is_by_rank_without_interpolation() -> None:
    xs = [4.0, 1.0, 3.0, 2.0]
    assert report.quantile(xs, 0.5) == 3.0
    assert report.quantile(xs, 0.0) == 1.0
    assert report.quantile(xs, 0.99) == 4.0
    assert report.quantile(xs, 1.0) == 4.0  # past the end: the largest
    assert report.quantile_ms([0.002, 0.001], 0.0) == 1.0


@given(st.lists(st.floats(-1e6, 1e6), min_size=1), st.floats(0, 1))
def test_quantile_is_one_of_the_values_and_grows_with_q(xs: list[float], q: float) -> None:
    assert report.quantile(xs, q) in xs
    assert report.quantile(xs, q) <= report.quantile(xs, 1.0) == max(xs)


def test_cell_is_the_median_and_the_range_of_several_rounds() -> None:
    assert report.cell([], 1) == "-"
    assert report.cell([2.25], 1) == "2.2"
    assert report.cell([3.0, 1.0, 2.0], 1) == "2.0 (1.0-3.0)"
    assert report.cell([1.0, 2.0], 3) == "1.500 (1.000-2.000)"


def test_ratio_of_medians_and_where_there_is_none() -> None:
    assert report.ratio([2.0], [3.0]) == "1.50"
    assert report.ratio([], [3.0]) == "-"
    assert report.ratio([2.0], []) == "-"
    assert report.ratio([0.0], [3.0]) == "-"
    assert report.ratio([2.0], [-1.0]) == "-"


def test_aligned_pads_the_first_column_left_the_others_right() -> None:
    lines = report.aligned([["", "a", "bb"], ["row", "1.0", "2"], ["longer row", "10.5", "-"]])
    assert lines == [
        "               a  bb",
        "row          1.0   2",
        "longer row  10.5   -",
    ]


def test_aligned_prints_a_title_row_as_it_is_and_counts_its_width() -> None:
    lines = report.aligned([["", "x"], ["a title, long:"], ["  key", "1"]])
    assert lines == ["                x", "a title, long:", "  key           1"]


def test_markdown_has_a_head_a_rule_and_the_rows() -> None:
    assert report.markdown(["a", "b"], [["1", "2"]]) == ["| a | b |", "| --- | --- |", "| 1 | 2 |"]


def test_results_and_merge_append_per_figure_and_target() -> None:
    into = report.results()
    into["tp"]["bare"].append(1.0)
    more = report.results()
    more["tp"]["bare"].append(2.0)
    more["echo"]["ours"].append(3.0)
    report.merge(into, more)
    assert into == {"tp": {"bare": [1.0, 2.0]}, "echo": {"ours": [3.0]}}


# -- options ------------------------------------------------------------------------------------


def parser(argv: list[str]) -> argparse.ArgumentParser:
    ap = options.parser("A bench.\n\n    python bench/x.py\n")
    options.add_rounds(ap, 3)
    ap.add_argument("--keys", type=int, default=80)
    options.add_quick(ap, "short", argv=argv, rounds=1, keys=10)
    options.add_versions(ap, after_aliases=["--code"])
    options.add_json(ap)
    return ap


def test_quick_sets_smaller_defaults_and_a_given_option_still_wins() -> None:
    assert parser([]).parse_args([]).rounds == 3
    args = parser(["--quick"]).parse_args(["--quick"])
    assert (args.rounds, args.keys) == (1, 10)
    args = parser(["--quick", "--rounds", "4"]).parse_args(["--quick", "--rounds", "4"])
    assert (args.rounds, args.keys) == (4, 10)


def test_versions_compare_and_before_exclude_each_other_after_has_its_alias(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = parser([]).parse_args(["--compare", "main", "--code", "/src"])
    assert (args.compare, args.before, str(args.after)) == ("main", None, "/src")
    with pytest.raises(SystemExit):
        parser([]).parse_args(["--compare", "main", "--before", "/x"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_versions_required() -> None:
    ap = argparse.ArgumentParser()
    options.add_versions(ap, required=True)
    with pytest.raises(SystemExit):
        ap.parse_args([])
    assert str(ap.parse_args(["--before", "/x"]).before) == "/x"


def test_json_defaults_to_bench_json(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parser([]).parse_args([]).json is None
    monkeypatch.setenv("BENCH_JSON", "/tmp/figures.json")
    assert str(parser([]).parse_args([]).json) == "/tmp/figures.json"


def test_names_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    ap = argparse.ArgumentParser()
    assert options.names(ap, "tp,,echo", ("tp", "echo", "idle"), "loads") == ["tp", "echo"]
    with pytest.raises(SystemExit):
        options.names(ap, "tp,nope", ("tp", "echo"), "loads")
    assert "unknown loads: nope (of tp,echo)" in capsys.readouterr().err


def test_at_least_one_names_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    ap = argparse.ArgumentParser()
    options.at_least_one(ap, argparse.Namespace(rounds=1, half_open=2), "rounds", "half_open")
    with pytest.raises(SystemExit):
        options.at_least_one(ap, argparse.Namespace(rounds=1, half_open=0), "rounds", "half_open")
    assert "--rounds and --half-open must be at least 1" in capsys.readouterr().err


# -- the loads' marker scan ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "pieces, found_at",
    [
        ([b"xx", b"END5"], 1),
        ([b"..E", b"ND", b"5.."], 2),  # cut across three pieces
        ([b"END", b"6", b"END5"], 2),
        ([b"a"], 0),
        ([b"b", b"b", b"ba"], 2),
    ],
)
def test_scan_finds_a_marker_cut_between_pieces(pieces: list[bytes], found_at: int) -> None:
    marker = b"a" if pieces[-1].endswith(b"a") else b"END5"
    scan = loads.Scan(marker)
    assert [scan.feed(p) for p in pieces] == [i == found_at for i in range(len(pieces))]


def test_scan_keeps_no_more_than_the_marker_needs() -> None:
    scan = loads.Scan(b"a")
    for _ in range(100):
        assert not scan.feed(b"x" * 1000)
    assert scan._tail == b""
    scan = loads.Scan(b"END5")
    scan.feed(b"x" * 1000 + b"EN")
    assert scan._tail == b"xEN"


def test_seq_command_ends_with_its_marker_computed_by_bash() -> None:
    assert loads.seq_command(10) == "seq 1 10; echo END$((2+3))\r"
    assert loads.SEQ_END not in loads.seq_command(10).encode()
    assert loads.SEQ_READY[1] not in loads.SEQ_READY[0].encode()
