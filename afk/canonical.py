"""The one canonical JSON of afk: what is hashed, signed, stored and compared.

Sorted keys, no spaces, non-ASCII text kept as UTF-8, finite numbers only. Every digest, MAC
and ledger hash is computed over this text, so two processes (or an outside verifier) agree
byte for byte. Tool arguments pass through :func:`normalize` first (every string in NFC), so
the same text typed two ways is one value.

Model output is read with :func:`strict_loads`: JSON that two parsers read differently (a
repeated key: Python keeps the last, other parsers the first) or that no rule can compare
(``NaN`` and ``Infinity``, which Python's json accepts and ``amount > 100`` is false for) is
refused, naming where it is.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from afk.errors import InvalidArgumentsError

# Deeper than any real tool argument; also ends a Python value that contains itself.
MAX_DEPTH = 100
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*\Z")
_FINITE = "send a finite number"


def canonical_json(value: Any) -> str:
    """The one canonical text of JSON data: sorted keys, no spaces, UTF-8 kept, finite numbers."""
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except ValueError:
        check_json(value)  # names the offending path when it can
        raise


def canonical_bytes(value: Any) -> bytes:
    """:func:`canonical_json` as UTF-8 bytes: what digests and MACs are computed over."""
    return canonical_json(value).encode("utf-8")


def sha256_hex(value: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of ``value``."""
    return hashlib.sha256(canonical_bytes(value)).hexdigest()


def json_copy(value: Any) -> Any:
    """A deep copy of JSON-shaped data (what models send); cheaper than copy.deepcopy."""
    if isinstance(value, dict):
        return {k: json_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_copy(v) for v in value]
    return value


def jsonable(value: Any) -> Any:
    """A tool's output as JSON data: pydantic's conversion, ``repr`` for what it cannot
    convert, non-finite floats as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``: an
    output can then always be stored and hashed (canonical JSON has no such numbers)."""
    if value is None or isinstance(value, str | int):  # bool is an int
        return value
    if not isinstance(value, float):
        from pydantic_core import to_jsonable_python

        value = to_jsonable_python(value, fallback=repr)
    return _finite(value)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else _token(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


class _Refused:
    """Stands where JSON text held something canonical JSON cannot: :func:`check_json` finds
    it and names its path. ``lenient`` is what Python's json would have read there."""

    __slots__ = ("lenient", "problem")

    def __init__(self, problem: str, lenient: Any) -> None:
        self.problem = problem
        self.lenient = lenient


def _constant(token: str) -> _Refused:
    return _Refused(f"{token} is not allowed: {_FINITE}", float(token))


def _number(text: str) -> float | _Refused:
    value = float(text)  # 1e400 reads as inf: as bad as the literal Infinity
    return value if math.isfinite(value) else _Refused(f"{text} is out of range: {_FINITE}", value)


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for key, item in pairs:
        if key in value:
            last = item.lenient if isinstance(item, _Refused) else item
            item = _Refused("duplicate key: send each key once", last)
        value[key] = item
    return value


def marked_loads(text: str | bytes) -> Any:
    """JSON as Python's json reads it, except that each value :func:`strict_loads` refuses is
    marked, for :func:`check_json` to find and :func:`unmarked` to undo. For a reply whose
    envelope stays lenient while the tool arguments inside it are read strictly."""
    return json.loads(text, parse_constant=_constant, parse_float=_number, object_pairs_hook=_pairs)


def unmarked(value: Any) -> Any:
    """``value`` from :func:`marked_loads` as plain ``json.loads`` would have returned it."""
    if isinstance(value, _Refused):
        return unmarked(value.lenient)
    if isinstance(value, dict):
        return {key: unmarked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unmarked(item) for item in value]
    return value


def strict_loads(text: str | bytes, *, what: str) -> Any:
    """Parse JSON text, refusing NaN, ±Infinity, out-of-range numbers and repeated keys.

    Raises :class:`~afk.errors.InvalidArgumentsError` naming ``what`` and the key path.
    """
    try:
        value = marked_loads(text)
    except RecursionError:
        raise InvalidArgumentsError("nested too deeply", what=what) from None
    except json.JSONDecodeError as exc:
        detail = f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        raise InvalidArgumentsError(detail, what=what) from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise InvalidArgumentsError(f"not valid JSON ({exc})", what=what) from None
    try:
        check_json(value)
    except InvalidArgumentsError as exc:
        raise InvalidArgumentsError(exc.detail, path=exc.path, what=what) from None
    return value


def check_json(value: Any, path: str = "") -> None:
    """Refuse anything canonical JSON cannot hold, anywhere in ``value``: non-finite floats,
    non-string keys, values of other types (tuples count as arrays). The error names the
    argument path, e.g. ``amount`` or ``items[2].price``."""
    stack: list[tuple[str, Any, int]] = [(path, value, 0)]
    while stack:
        where, item, depth = stack.pop()
        if depth > MAX_DEPTH:
            # The path would be a hundred "[0]"s: not worth showing.
            raise InvalidArgumentsError(f"nested more than {MAX_DEPTH} levels deep", path=where)
        if isinstance(item, _Refused):
            raise _refusal(where, item.problem)
        if isinstance(item, float) and not math.isfinite(item):
            raise _refusal(where, f"{_token(item)} is not allowed: {_FINITE}")
        if item is None or isinstance(item, str | int | float):  # bool is an int
            continue
        if isinstance(item, list | tuple):
            children = [(f"{where}[{i}]", v, depth + 1) for i, v in enumerate(item)]
        elif isinstance(item, Mapping):
            bad = next((k for k in item if not isinstance(k, str)), None)
            if bad is not None:
                raise _refusal(where, f"key {bad!r} is not a string")
            children = [(join_path(where, k), v, depth + 1) for k, v in item.items()]
        else:
            raise _refusal(
                where,
                f"a {type(item).__name__} is not JSON "
                "(use strings, numbers, booleans, null, arrays and objects)",
            )
        stack.extend(reversed(children))  # reversed: the first problem in order is reported


_SCALARS = (int, bool)


def clean(value: Any) -> Any:
    """:func:`check_json` then :func:`normalize`, in one pass for the common case (an object
    of ASCII keys and scalar values: what almost every tool call is)."""
    if type(value) is dict:
        out: dict[str, Any] = {}
        for key, item in value.items():
            kind = type(item)
            if type(key) is not str or not key.isascii():
                break
            if kind is str:
                out[key] = item if item.isascii() else unicodedata.normalize("NFC", item)
            elif (
                kind is int
                or kind is bool
                or item is None
                or (kind is float and math.isfinite(item))
            ):
                out[key] = item
            else:
                break
        else:
            return out
    check_json(value)
    return normalize(value)


def normalize(value: Any, path: str = "") -> Any:
    """``value`` with every string, keys included, in Unicode NFC, and tuples as lists.

    The same text typed two ways is then one string to rules, digests and comparisons. Two
    keys that differ only in form would collide into one: that is refused, like a repeated key.
    Call it on data :func:`check_json` accepted.
    """
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, list | tuple):
        return [normalize(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            key = unicodedata.normalize("NFC", key)
            if key in out:
                raise _refusal(
                    join_path(path, key), "duplicate key (the same text in two Unicode forms)"
                )
            out[key] = normalize(item, join_path(path, key))
        return out
    return value


def join_path(path: str, key: str) -> str:
    """``path`` extended by one object key: ``a.b``, or ``a["odd key"]`` when it needs quoting."""
    if _PLAIN_KEY.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _token(number: float) -> str:
    if math.isnan(number):
        return "NaN"
    return "Infinity" if number > 0 else "-Infinity"


def _refusal(path: str, problem: str) -> InvalidArgumentsError:
    return InvalidArgumentsError(f"{path}: {problem}" if path else problem, path=path)


__all__ = [
    "MAX_DEPTH",
    "canonical_bytes",
    "canonical_json",
    "check_json",
    "clean",
    "join_path",
    "json_copy",
    "jsonable",
    "marked_loads",
    "normalize",
    "sha256_hex",
    "strict_loads",
    "unmarked",
]
