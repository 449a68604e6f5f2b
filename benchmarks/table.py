"""The one table ``make bench`` prints: figure, ours, baseline, ratio, goal, met.

Every benchmark module exposes ``rows(*, smoke: bool = False) -> list[Row]``; ``smoke=True`` runs
tiny sizes and one round (the suite's smoke tests; no timing is asserted there). A module builds
its rows with :func:`measured` (samples of ours and of the baseline, 3+ rounds: median and spread
are printed, the ratio is of medians) or :func:`skipped` (a peer is missing: say why, never
crash). ``benchmarks/__main__.py`` collects the rows and prints them with :func:`render`.

The ratio is always "ours / baseline" in the figure's own unit; the goal says which way is good:
``at_most=1.3`` (time, memory, CPU: lower is better) or ``at_least=1.2`` (throughput: higher is
better). Convert to the unit that reads naturally for the figure (e.g. messages per second for
throughput) before building the row.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Samples:
    """Measurements of one thing over several rounds, in ``unit`` (already scaled)."""

    values: tuple[float, ...]
    unit: str

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def __str__(self) -> str:
        if not self.values:
            return "-"
        lo, hi, mid = min(self.values), max(self.values), self.median
        if len(self.values) == 1 or lo == hi:
            return f"{_num(mid)} {self.unit}"
        return f"{_num(mid)} {self.unit} ({_num(lo)}-{_num(hi)})"


def samples(values: Iterable[float], unit: str, scale: float = 1.0) -> Samples:
    """``values`` times ``scale`` (e.g. seconds -> ms with 1000), in ``unit``."""
    return Samples(tuple(v * scale for v in values), unit)


@dataclass(frozen=True)
class Row:
    """One line of the table. ``ratio`` None: not measured (``note`` says why)."""

    figure: str
    ours: str
    baseline: str
    ratio: float | None
    goal: str
    met: bool | None
    note: str = ""


def _goal(at_least: float | None, at_most: float | None) -> str:
    if at_least is not None:
        return f">= {at_least:g}x"
    if at_most is not None:
        return f"<= {at_most:g}x"
    return "-"


def measured(
    figure: str,
    ours: Samples | str,
    baseline: Samples | str,
    ratio: float | None = None,
    *,
    at_least: float | None = None,
    at_most: float | None = None,
    against: str = "",
    note: str = "",
) -> Row:
    """A measured row. ``ratio`` defaults to median(ours) / median(baseline); ``against``
    names the baseline in its cell ("Flask-Mail: 0.81 ms/msg")."""
    if ratio is None:
        if not isinstance(ours, Samples) or not isinstance(baseline, Samples):
            raise TypeError("give the ratio when ours or the baseline is not Samples")
        ratio = ours.median / baseline.median if baseline.median else float("inf")
    met: bool | None = None
    if at_least is not None:
        met = ratio >= at_least
    elif at_most is not None:
        met = ratio <= at_most
    base = f"{against}: {baseline}" if against else str(baseline)
    return Row(figure, str(ours), base, ratio, _goal(at_least, at_most), met, note)


def informational(
    figure: str,
    ours: Samples,
    baseline: Samples,
    ratio: float,
    *,
    against: str = "",
    note: str = "",
) -> Row:
    """A measured row without a goal (a reference point, such as a hand-written page): its
    ``ratio`` (the caller's, in the direction its goal rows use) is printed, its goal and
    verdict are "-"."""
    base = f"{against}: {baseline}" if against else str(baseline)
    return Row(figure, str(ours), base, ratio, "-", None, note)


def skipped(
    figure: str, reason: str, *, at_least: float | None = None, at_most: float | None = None
) -> Row:
    """A row whose peer (Dovecot, PostgreSQL, Flask-Mail...) is missing: printed, not run."""
    return Row(figure, "skipped", "-", None, _goal(at_least, at_most), None, reason)


def _num(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3g}"


HEADERS = ("figure", "ours", "baseline", "ratio", "goal", "met")


def _ratio_text(ratio: float, goal: str) -> str:
    """``ratio`` to two decimals, or three where two would print the goal itself beside a
    verdict it contradicts (1.104 against "<= 1.1x" is "1.104x NO", not "1.10x NO")."""
    text = f"{ratio:.2f}x"
    if goal != "-":
        target = float(goal.split()[1].rstrip("x"))
        if float(text[:-1]) == target and ratio != target:
            text = f"{ratio:.3f}x"
    return text


def _cells(row: Row) -> tuple[str, ...]:
    met = {True: "yes", False: "NO", None: "-"}[row.met]
    ratio = "-" if row.ratio is None else _ratio_text(row.ratio, row.goal)
    return (row.figure, row.ours, row.baseline, ratio, row.goal, met)


def render(rows: Sequence[Row]) -> str:
    """The table as Markdown-style text (pastes into an issue or the docs as it is), then the
    rows' notes (skips and caveats) numbered under it."""
    notes: list[str] = []
    cells = [HEADERS]
    for row in rows:
        text = list(_cells(row))
        if row.note:
            notes.append(row.note)
            text[0] = f"{text[0]} [{len(notes)}]"
        cells.append(tuple(text))
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADERS))]
    lines = []
    for n, line in enumerate(cells):
        lines.append(
            "| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |"
        )
        if n == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines.extend(f"[{i}] {note}" for i, note in enumerate(notes, 1))
    return "\n".join(lines)


def print_table(rows: Sequence[Row]) -> None:
    print(render(rows), flush=True)
