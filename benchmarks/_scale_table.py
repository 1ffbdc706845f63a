"""The figures benchmarks/bench_scale.py measures, their targets (issue 9), and its one table.

A figure's value is kept per column, a (store, N) pair. A target is a per-cell check and/or
"flat in N": per store, the value at the largest N is at most twice the value at the smallest
N plus a small absolute slack (timer noise on sub-millisecond figures). A cell that misses
its target is marked ``!``; the result column says PASS, MISS, or info (no target).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Column = tuple[str, int]  # (store name, N paused runs)
Results = dict[str, dict[Column, float]]  # figure key -> column -> value
CellCheck = Callable[[Results, Column, float], bool]


@dataclass(frozen=True, slots=True, kw_only=True)
class Figure:
    key: str
    label: str
    target: str
    check: CellCheck | None = None
    flat_slack: float | None = None  # check "flat in N" with this absolute slack
    digits: int = 2
    best: bool = False  # also show the best sample (figure key + "_min"), in parentheses


def under(limits: dict[str, float], *, at_n: int | None = None) -> CellCheck:
    """Value < the store's limit (at ``at_n`` only, when given)."""

    def check(results: Results, col: Column, value: float) -> bool:
        if at_n is not None and col[1] != at_n:
            return True
        return col[0] not in limits or value < limits[col[0]]

    return check


def at_least_one_worker(factors: dict[str, float]) -> CellCheck:
    """Throughput >= factor x the one-worker throughput in the same column."""

    def check(results: Results, col: Column, value: float) -> bool:
        one = results.get("tp1", {}).get(col, math.nan)
        return col[0] not in factors or value >= factors[col[0]] * one

    return check


def within_version(margin_ms: float) -> CellCheck:
    def check(results: Results, col: Column, value: float) -> bool:
        return value < results.get("version", {}).get(col, math.nan) + margin_ms

    return check


def equals(expected: float) -> CellCheck:
    return lambda results, col, value: value == expected


def build(idle_s: float, real_runs: int) -> list[Figure]:
    both_5ms = under({"sqlite": 5.0, "postgres": 5.0}, at_n=100_000)
    return [
        Figure(key="page", label="first page (50): Runner.pending_requests() p50, ms",
               target="flat; < 5 at 100k", check=both_5ms, flat_slack=1.0, best=True),
        Figure(key="list", label="afk approvals list (one page), wall median, ms",
               target="flat in N", flat_slack=20.0, digits=0),
        Figure(key="poll", label="idle poll: claim_ready + next_wake_at p50, ms",
               target="flat; < 5 at 100k", check=both_5ms, flat_slack=1.0, best=True),
        Figure(key="cpu", label=f"idle afk worker CPU over {idle_s:g} s, % of a core",
               target="- (was 29%)"),
        Figure(key="wake", label="decision -> tool start via idle afk worker p50, ms",
               target="< 60 SQLite, < 20 PG", check=under({"sqlite": 60.0, "postgres": 20.0}),
               digits=1),
        Figure(key="tp1", label="resume throughput, 1 afk worker, runs/s", target="-",
               digits=0),
        Figure(key="tp2", label="resume throughput, 2 afk workers, runs/s",
               target=">= 1 worker (SQLite)", check=at_least_one_worker({"sqlite": 1.0}),
               digits=0),
        Figure(key="tp4", label="resume throughput, 4 afk workers, runs/s",
               target=">= 1.5x 1 worker PG, >= 1x SQLite",
               check=at_least_one_worker({"sqlite": 1.0, "postgres": 1.5}), digits=0),
        Figure(key="double", label="double executions (every tool run above)", target="0",
               check=equals(0), digits=0),
        Figure(key="inproc", label="decision + resume in the deciding process p50, ms",
               target="<= LangGraph: bench_resume_peers.py", digits=1),
        Figure(key="bytes", label=f"bytes/paused run, {real_runs:,} real runs, compacted",
               target="<= 2,000", check=lambda r, c, v: v <= 2000, digits=0),
        Figure(key="bytes_raw", label=f"bytes/paused run, {real_runs:,} real runs, as written",
               target="-", digits=0),
        Figure(key="bytes_clone", label="bytes/paused run, clones added to reach N",
               target="-", digits=0),
        Figure(key="version", label="afk --version, wall median, ms", target="< 60",
               check=under({"sqlite": 60.0, "postgres": 60.0}), digits=0),
        Figure(key="approve", label="afk approvals approve REQ, wall median, ms",
               target="< --version + 60", check=within_version(60.0), digits=0),
    ]  # fmt: skip


def _flat_misses(fig: Figure, values: dict[Column, float]) -> set[Column]:
    if fig.flat_slack is None:
        return set()
    misses = set()
    for store in {c[0] for c in values}:
        cols = sorted(c for c in values if c[0] == store)
        first, last = values[cols[0]], values[cols[-1]]
        if len(cols) > 1 and not last <= 2 * first + fig.flat_slack:
            misses.add(cols[-1])
    return misses


def _cell(fig: Figure, results: Results, col: Column, value: float, miss: bool) -> str:
    if math.isnan(value):
        return "failed!"
    text = f"{value:,.{fig.digits}f}"
    if fig.best and col in results.get(f"{fig.key}_min", {}):
        text += f" (best {results[f'{fig.key}_min'][col]:,.{fig.digits}f})"
    if fig.key in ("tp2", "tp4"):
        one = results.get("tp1", {}).get(col, math.nan)
        if one > 0:  # False for nan
            text += f" ({value / one:.2f}x)"
    return text + ("!" if miss else "")


def _row(fig: Figure, results: Results, columns: Sequence[Column]) -> list[str]:
    values = results.get(fig.key, {})
    misses = _flat_misses(fig, values)
    if fig.check is not None:
        misses |= {c for c, v in values.items() if math.isnan(v) or not fig.check(results, c, v)}
    cells = [_cell(fig, results, c, values[c], c in misses) if c in values else "" for c in columns]
    if fig.check is None and fig.flat_slack is None:
        verdict = "info"
    elif not values:
        verdict = "-"
    else:
        verdict = "MISS" if misses else "PASS"
    return [fig.label, fig.target, *cells, verdict]


def render(figures: Sequence[Figure], results: Results, columns: Sequence[Column]) -> str:
    head = ["figure", "target", *(f"{s} {n // 1000}k" for s, n in columns), "result"]
    rows = [head] + [_row(f, results, columns) for f in figures]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    rows.insert(1, ["-" * w for w in widths])
    numeric = range(2, 2 + len(columns))
    lines = []
    for row in rows:
        cells = [
            f"{c:>{w}}" if i in numeric else f"{c:<{w}}"
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
