"""Tables that fit the terminal: long cells cut with ``…`` (``--wide``: every value whole),
states in colour on a terminal (``--no-color``, ``NO_COLOR``: none).

Cells are escaped first, then measured, cut and padded, and painted last: colour codes come
from a fixed set and wrap text that holds no hidden character any more, so neither cutting
nor colour can let a model-chosen string reach the terminal raw.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from afk.approvals.display import Escaper
from afk.cli._output import clean, shorten
from afk.cli._term import Palette, cut, display_width, terminal_width, use_color

_MIN_CELL = 12  # a flexible column is never cut below this (or its header's width) to fit: a
# column cut shorter says too little; leaving it out (and saying so) is clearer

# How a value in a state column (STATUS, a decision's kind) is painted.
STATE_COLORS: dict[str, str] = {
    "pending": "yellow",
    "paused": "yellow",
    "running": "cyan",
    "decided": "green",
    "completed": "green",
    "active": "green",
    "allow": "green",
    "expired": "red",
    "failed": "red",
    "cancelled": "red",
    "stopped": "red",
    "revoked": "red",
    "deny": "red",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Layout:
    """How a command's output fits the terminal: ``width`` columns (None: no limit); every
    value whole and ids in full when ``wide``; colour when the palette is enabled."""

    width: int | None = None
    wide: bool = False
    palette: Palette = field(default_factory=Palette)

    def marker(self, esc: Escaper) -> list[str]:
        """The hidden-characters marker of ``esc`` (no lines when nothing was escaped)."""
        return [self.palette.paint(line, "yellow") for line in esc.marker()]


def layout(args: argparse.Namespace) -> Layout:
    """The layout ``--wide`` and ``--no-color`` ask for, on whatever stdout is. Output with
    no width to fit (a pipe or a file, no ``$COLUMNS``) is wide: scripts get it whole."""
    width = None if getattr(args, "wide", False) else terminal_width(sys.stdout)
    colored = use_color(sys.stdout, no_color=bool(getattr(args, "no_color", False)))
    return Layout(width=width, wide=width is None, palette=Palette(enabled=colored))


def state_color(cell: str) -> str | None:
    """The colour of a state cell by its first word: ``deny: too much`` is a deny."""
    return STATE_COLORS.get(cell.split(":", 1)[0].split(" ", 1)[0])


def fit_widths(
    natural: Sequence[int], floors: Sequence[int], flexible: Collection[int], width: int
) -> list[int]:
    """Column widths within ``width`` (two spaces between columns). The flexible columns
    share the room the others leave, max-min fairly: narrow ones stay whole, the widest are
    cut to one common cap, none below its floor. When even the floors do not fit, the
    floors: a row wider than the terminal beats cells cut to nothing."""
    gaps = 2 * (len(natural) - 1)
    room = width - gaps - sum(w for i, w in enumerate(natural) if i not in flexible)
    if sum(natural[i] for i in flexible) <= room:
        return list(natural)

    def used(cap: int) -> int:
        return sum(max(floors[i], min(natural[i], cap)) for i in flexible)

    low, high = 0, max((natural[i] for i in flexible), default=0)
    while low < high:  # the largest cap whose widths still fit
        mid = (low + high + 1) // 2
        low, high = (mid, high) if used(mid) <= room else (low, mid - 1)
    widths = [max(floors[i], min(w, low)) if i in flexible else w for i, w in enumerate(natural)]
    spare = room - sum(widths[i] for i in flexible)
    for i in sorted(flexible, key=lambda i: -natural[i]):  # what the common cap left over
        if spare <= 0:
            break
        if widths[i] < natural[i]:
            widths[i] += 1
            spare -= 1
    return widths


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    max_widths: Mapping[str, int] | None = None,
    esc: Escaper | None = None,
    layout: Layout | None = None,
    flexible: Sequence[str] = (),
    colors: Mapping[str, Callable[[str], str | None]] | None = None,
) -> str:
    """Columns as wide as their widest cell, each cell cleaned to one line. Cells the caller
    escaped already stay as they are (escaping is idempotent), so any cell may be given raw.

    Unless the layout is wide, cells are cut with ``…``: to ``max_widths`` in the columns it
    names, then the ``flexible`` columns as far as the layout's width needs. ``colors`` maps
    a header to the colour role of a cell in its column."""
    lay = layout if layout is not None else Layout()
    limits = {} if lay.wide else dict(max_widths or {})
    cells = [
        [
            shorten(cell, limits[h], esc) if h in limits else clean(cell, esc)
            for h, cell in zip(headers, row, strict=True)
        ]
        for row in rows
    ]
    shown = list(range(len(headers)))
    widths = [
        max([display_width(h), *(display_width(row[i]) for row in cells)])
        for i, h in enumerate(headers)
    ]
    hidden: list[str] = []
    if lay.width is not None and not lay.wide:
        shown, widths, hidden = _fit(headers, widths, flexible, lay.width)
    paint, roles = lay.palette.paint, colors or {}

    def line(row: Sequence[str], role_of: Callable[[str, str], str | None]) -> str:
        parts = []
        for i, w in zip(shown, widths, strict=True):
            text = cut(row[i], w)
            parts.append(paint(text, role_of(headers[i], row[i])) + " " * (w - display_width(text)))
        return "  ".join(parts).rstrip()

    def role(h: str, cell: str) -> str | None:
        return roles[h](cell) if h in roles else None

    lines = [line(headers, lambda h, c: "bold"), *(line(r, role) for r in cells)]
    if hidden and lay.width is not None:
        note = cut(f"(not shown: {', '.join(hidden)}; --wide shows all)", lay.width)
        lines.append(paint(note, "dim"))
    return "\n".join(lines)


def _fit(
    headers: Sequence[str], natural: list[int], flexible: Sequence[str], width: int
) -> tuple[list[int], list[int], list[str]]:
    """The columns to show, their widths, and the headers left out. The ``flexible`` columns
    are cut; when even their floors do not fit, the last of them (the least needed) are left
    out, one by one, down to the first."""
    order = [h for h in flexible if h in headers]
    shown = list(range(len(headers)))
    while True:
        cols = [natural[i] for i in shown]
        flex = {k for k, i in enumerate(shown) if headers[i] in order}
        floors = [
            min(w, max(display_width(headers[i]), _MIN_CELL))
            for w, i in zip(cols, shown, strict=True)
        ]
        least = sum(w for k, w in enumerate(cols) if k not in flex) + sum(floors[k] for k in flex)
        if least + 2 * (len(cols) - 1) <= width or len(order) <= 1:
            hidden = [h for i, h in enumerate(headers) if i not in shown]
            return shown, fit_widths(cols, floors, flex, width), hidden
        shown.remove(headers.index(order.pop()))
