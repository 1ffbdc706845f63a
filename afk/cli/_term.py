"""What the terminal the CLI writes to can take: its width, whether to colour, and how many
columns a piece of (already escaped) text fills.

Standard library only and cheap to import: every table-printing command loads it.
"""

from __future__ import annotations

import os
import shutil
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TextIO

ELLIPSIS = "…"

# SGR codes by role. A fixed set: colour is added around text that was escaped already, so
# nothing a model or a store chose can become an escape sequence through it.
_SGR = {
    "bold": "1",
    "dim": "2",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "cyan": "36",
}


def terminal_width(stream: TextIO, env: Mapping[str, str] | None = None) -> int | None:
    """Columns to fit output into: ``$COLUMNS`` when set, else the terminal's width when
    ``stream`` is one, else None (no limit: a pipe or a file gets every character, so scripts
    and ``grep`` never see a cut value)."""
    env = os.environ if env is None else env
    columns = env.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if not _isatty(stream):
        return None
    return shutil.get_terminal_size().columns


def use_color(
    stream: TextIO, *, no_color: bool = False, env: Mapping[str, str] | None = None
) -> bool:
    """Colour only on a terminal, never with ``--no-color``, ``NO_COLOR`` set to anything
    non-empty (https://no-color.org) or ``TERM=dumb``."""
    env = os.environ if env is None else env
    if no_color or env.get("NO_COLOR", "") != "" or env.get("TERM") == "dumb":
        return False
    return _isatty(stream)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or fake stream
        return False


@dataclass(frozen=True, slots=True, kw_only=True)
class Palette:
    """Paints text by role (``bold``, ``red``, ...) when ``enabled``; otherwise returns it."""

    enabled: bool = False

    def paint(self, text: str, role: str | None) -> str:
        if not self.enabled or role is None or not text:
            return text
        return f"\x1b[{_SGR[role]}m{text}\x1b[0m"


def char_width(ch: str) -> int:
    """Columns one character fills: 2 for East Asian wide and fullwidth ones, 0 for combining
    marks, else 1. Controls never get here: text is escaped before it is measured."""
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(text: str) -> int:
    if text.isascii():
        return len(text)
    return sum(char_width(ch) for ch in text)


def cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` columns; when it does not fit, its start and ``…``."""
    if display_width(text) <= width:
        return text
    if width <= 0:
        return ""
    kept, used = [], 0
    for ch in text:
        w = char_width(ch)
        if used + w > width - 1:
            break
        kept.append(ch)
        used += w
    return "".join(kept) + ELLIPSIS


def tail(text: str, width: int) -> str:
    """``text`` in at most ``width`` columns; when it does not fit, ``…`` and its end (for a
    line being typed: the cursor is at the end)."""
    if display_width(text) <= width:
        return text
    kept: list[str] = []
    used = 0
    for ch in reversed(text):
        w = char_width(ch)
        if used + w > width - 1:
            break
        kept.append(ch)
        used += w
    return ELLIPSIS + "".join(reversed(kept))


def pad(text: str, width: int) -> str:
    """``text`` left-aligned in ``width`` columns (``str.ljust`` counts characters)."""
    return text + " " * max(width - display_width(text), 0)
