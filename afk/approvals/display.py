"""The one renderer of untrusted text for humans.

Tool names, arguments, reasons, rule ids and approver names can come from a model, a tool or
a tampered store. Shown raw, a control sequence can move the cursor and forge a line on the
approver's terminal, a bidi override can reverse what an argument appears to say, and
zero-width or tag characters can carry text nobody sees. Everything shown to a human passes
through :func:`escape` (or :func:`escaped_json`): such characters become visible ``\\u202e``
escapes, and a rendering that escaped anything says so with :data:`HIDDEN_MARKER`.

``escape`` leaves backslashes alone on purpose: its output contains nothing it would escape
again, so escaping already-escaped text changes nothing and layers (a table escaping cells
its caller escaped) never double up. A literal ``\\u202e`` typed into a value therefore looks
like an escaped one; the marker line tells the two apart (it appears only for real ones).

Pure: standard library only, cheap to import.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

# What a defined tool may be called (afk.tools.Tool checks it), and so what a tool name must
# look like to be shown as it is. ASCII only: other letters allow look-alike names.
SAFE_TOOL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}", re.ASCII)
SAFE_TOOL_NAME_TEXT = (
    "letters, digits, '_', '-' or '.', 1 to 64 characters, starting with a letter or '_'"
)

HIDDEN_MARKER = "! hidden or control characters were escaped (shown as \\uXXXX)"

# Controls, format characters (bidi, zero width, tags, soft hyphen), private use, surrogates,
# line/paragraph separators, and unassigned code points: a terminal may render the last
# anything (its Unicode may be newer than ours), so they fail closed too.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Zl", "Zp", "Cn"})
# Invisible or blank-looking characters outside those categories.
_ESCAPED_RANGES = (
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x115F, 0x1160),  # Hangul choseong / jungseong fillers
    (0x180B, 0x180F),  # Mongolian free variation selectors (U+180E is Cf already)
    (0x2800, 0x2800),  # braille pattern blank
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors: invisible, and able to smuggle bytes
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler
    (0xE0100, 0xE01EF),  # variation selectors supplement
)
_SHORT = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


@lru_cache(maxsize=4096)
def _is_hidden(ch: str) -> bool:
    code = ord(ch)
    if unicodedata.category(ch) in _ESCAPED_CATEGORIES:
        return True
    return any(low <= code <= high for low, high in _ESCAPED_RANGES)


def _code(ch: str) -> str:
    code = ord(ch)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _escaped(ch: str) -> str:
    return _SHORT.get(ch) or _code(ch)


def _json_code(ch: str) -> str:
    # JSON has no \U escape: characters beyond the BMP become a UTF-16 surrogate pair.
    code = ord(ch)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def has_hidden(text: str) -> bool:
    """Whether ``text`` holds a character :func:`escape` rewrites."""
    if text.isascii():  # the common case, without a per-character loop
        return any(ch < " " or ch == "\x7f" for ch in text)
    return any(_is_hidden(ch) for ch in text)


def escape(text: str) -> str:
    """``text`` with every control, invisible, bidi and unassigned character as an escape:
    ``\\n``, ``\\t``, ``\\r``, ``\\u202e``, ``\\U000e0041``. Everything else is kept."""
    if not has_hidden(text):
        return text
    return "".join(_escaped(ch) if _is_hidden(ch) else ch for ch in text)


def value_has_hidden(value: object) -> bool:
    """Whether any string in a JSON-like value (keys included) holds a hidden character."""
    if isinstance(value, str):
        return has_hidden(value)
    if isinstance(value, Mapping):
        return any(value_has_hidden(str(k)) or value_has_hidden(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(value_has_hidden(v) for v in value)
    if value is None or isinstance(value, bool | int | float):
        return False
    return has_hidden(str(value))  # shown through str(), as escaped_json does


def escaped_json(
    value: Any, *, indent: int | None = None, separators: tuple[str, str] | None = None
) -> str:
    """``value`` as JSON, keys sorted, every hidden character in a key or string a ``\\uXXXX``
    escape. Still valid JSON that parses back to exactly ``value``: what an approver reads
    (or copies into ``--args``) is what executes. Compact on one line unless ``indent`` or
    ``separators`` say otherwise."""
    if separators is None:
        separators = (",", ":") if indent is None else (",", ": ")
    options: dict[str, Any] = {"indent": indent, "separators": separators, "default": str}
    try:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False, **options)
    except TypeError:  # keys of mixed types cannot be sorted: keep their order instead
        text = json.dumps(value, ensure_ascii=False, **options)
    if not has_hidden(text):
        return text
    # json.dumps already escapes C0 controls inside strings, so any left are layout (indent).
    return "".join(_json_code(ch) if ch >= " " and _is_hidden(ch) else ch for ch in text)


def is_safe_tool_name(name: str) -> bool:
    """Whether ``name`` matches :data:`SAFE_TOOL_NAME`, the only names a tool can be defined with;
    any other name shown to an approver is escaped and marked."""
    return SAFE_TOOL_NAME.fullmatch(name) is not None


def tool_label(name: str) -> str:
    """A tool name as a human should read it: as it is when it fits :data:`SAFE_TOOL_NAME`
    (the only names a tool can be defined with), else quoted, escaped and marked unknown."""
    return name if is_safe_tool_name(name) else f"unknown-tool {escaped_json(name)}"


class Escaper:
    """Escapes the untrusted values of one rendering and remembers whether any needed it, so
    the rendering can end with :data:`HIDDEN_MARKER`."""

    def __init__(self) -> None:
        self.escaped = False

    def text(self, value: object) -> str:
        """``str(value)``, escaped when it holds control, bidi or invisible characters (and then
        noted, so the rendering ends with the marker)."""
        text = str(value)
        if has_hidden(text):
            self.escaped = True
            return escape(text)
        return text

    def json(
        self, value: Any, *, indent: int | None = None, separators: tuple[str, str] | None = None
    ) -> str:
        """``value`` as escaped JSON (see :func:`escaped_json`), noting whether any string in it
        needed escaping."""
        self.escaped = self.escaped or value_has_hidden(value)
        return escaped_json(value, indent=indent, separators=separators)

    def tool(self, name: str | None, *, none: str = "(model call)") -> str:
        """The tool's label; ``none`` for a gated model call (no tool)."""
        if name is None:
            return none
        self.escaped = self.escaped or has_hidden(name)
        return tool_label(name)

    def marker(self) -> list[str]:
        """``[HIDDEN_MARKER]`` when something was escaped, else no lines."""
        return [HIDDEN_MARKER] if self.escaped else []


__all__ = [
    "HIDDEN_MARKER",
    "SAFE_TOOL_NAME",
    "SAFE_TOOL_NAME_TEXT",
    "Escaper",
    "escape",
    "escaped_json",
    "has_hidden",
    "is_safe_tool_name",
    "tool_label",
    "value_has_hidden",
]
