"""Every benchmark runs at tiny sizes, so none rots between ``make bench`` runs. Nothing here
times anything: the figures at these sizes mean nothing; what is checked is that each module
runs against its peers and returns rows the shared table can print."""

from __future__ import annotations

import pytest

from benchmarks.__main__ import MODULES, collect, isolated
from benchmarks.table import Row, measured, render, samples, skipped

pytestmark = pytest.mark.peers


@pytest.mark.parametrize("name", MODULES)
def test_benchmark_runs_at_tiny_sizes(name: str) -> None:
    # The way ``make bench`` runs it: in an interpreter of its own, its rows sent back to us.
    produced = isolated(name, smoke=True)
    assert not any(row.note.startswith("failed:") for row in produced), produced
    assert produced and all(isinstance(row, Row) and row.figure for row in produced)
    for row in produced:  # measured rows carry a ratio and a verdict (informational ones
        # have no goal, so no verdict); skipped ones say why
        assert (row.ratio is None) == (row.met is None) or (row.goal == "-" and row.ratio)
        assert row.ratio is not None or row.note
    text = render(produced)
    assert all(row.figure in text for row in produced)


def test_table_prints_one_line_per_row_with_goal_and_verdict() -> None:
    rows = [
        measured(
            "fast thing",
            samples([1.0, 1.2, 0.9], "ms"),
            samples([2.0, 2.2], "ms"),
            at_most=0.8,
            against="slow thing",
        ),  # fmt: skip
        measured("throughput", "3 msg/s", "2 msg/s", 1.5, at_least=1.2),
        skipped("needs a peer", "Dovecot unavailable", at_most=1.3),
    ]
    text = render(rows).splitlines()
    header = [cell.strip() for cell in text[0].strip("|").split("|")]
    assert header == ["figure", "ours", "baseline", "ratio", "goal", "met"]
    assert "| fast thing " in text[2] and "1.00 ms (0.90-1.20)" in text[2]
    assert "slow thing: 2.10 ms (2.00-2.20)" in text[2] and "0.48x" in text[2]
    assert "<= 0.8x" in text[2] and text[2].rstrip(" |").endswith("yes")
    assert ">= 1.2x" in text[3] and "1.50x" in text[3]
    assert "needs a peer [1]" in text[4] and "skipped" in text[4]
    assert text[5] == "[1] Dovecot unavailable"


def test_a_ratio_that_rounds_to_its_goal_shows_which_side_it_is_on() -> None:
    over = render([measured("check", "1.104 s", "1 s", 1.104, at_most=1.1)]).splitlines()[2]
    assert "1.104x" in over and over.rstrip(" |").endswith("NO")
    under = render([measured("check", "1.096 s", "1 s", 1.096, at_most=1.1)]).splitlines()[2]
    assert "1.096x" in under and under.rstrip(" |").endswith("yes")
    clear = render([measured("check", "1.05 s", "1 s", 1.05, at_most=1.1)]).splitlines()[2]
    assert "1.05x" in clear and "1.050x" not in clear
    exact = render([measured("check", "3", "3", 1.0, at_most=1.0)]).splitlines()[2]
    assert "1.00x" in exact and exact.rstrip(" |").endswith("yes")


def test_a_failing_benchmark_becomes_a_skipped_row() -> None:
    rows = collect(("no_such_benchmark",), smoke=True)
    assert len(rows) == 1 and rows[0].ours == "skipped" and rows[0].met is None
    assert "ModuleNotFoundError" in rows[0].note
