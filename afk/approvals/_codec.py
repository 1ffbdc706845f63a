"""Requests and decisions to and from their stored JSON, without pydantic.

The one reader and writer of request rows (``request`` column) and decisions (``decision``
column, vote rows): the command line decides a request in a fresh process, and building
pydantic adapters there would cost more than the decision. It produces what pydantic's
adapter of the same dataclass produces for afk's own rows (tests/approvals/test_codec.py
proves it over every shape the tests hold), but reads strictly: an unknown key, a missing
field or a value of the wrong type is refused with a :class:`~afk.errors.StoreError` naming
the field. Rows are MAC-verified before they are read; this fails closed anyway.

Field types come from the dataclasses' own annotations, so a field added there is read and
written here with no second list to keep in step; a field of a type this module does not
know fails on first use, loudly (see ``_shape``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar

from afk.approvals.requests import (
    ApprovalDecision,
    ApprovalRequest,
    GrantSpec,
    UserInputDecision,
    UserInputRequest,
)
from afk.errors import InteractionError, StoreError

T = TypeVar("T")

# Every class this codec reads and writes; GrantSpec only inside an ApprovalDecision.
KINDS: tuple[type, ...] = (
    ApprovalRequest,
    UserInputRequest,
    ApprovalDecision,
    UserInputDecision,
    GrantSpec,
)

# A field's reader: (value, where) -> the value as the dataclass holds it, or _Misfit;
# its writer: the dataclass's value -> JSON data.
Reader = Callable[[Any, str], Any]
Writer = Callable[[Any], Any]
Shape = tuple[Reader, Writer]
# Built on first use, per class: what its annotations say, read once.
_FIELDS: dict[type, tuple[tuple[str, Reader, Writer, bool], ...]] = {}
_READERS: dict[type, Reader] = {}


def loads(text: str | bytes, kind: type[T], *, what: str = "") -> T:
    """The ``kind`` stored as JSON ``text``; ``what`` (e.g. ``"request req_1: "``) starts
    the error message."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # also: a number too long, nesting too deep
        raise StoreError(f"{what}stored {kind.__name__} is not JSON: {exc}") from None
    return decode(data, kind, what=what)


def decode(data: Any, kind: type[T], *, what: str = "") -> T:
    """``data`` (JSON data; an instance of ``kind`` is returned as it is) as a ``kind``."""
    if isinstance(data, kind):
        return data
    try:
        return typing.cast(T, _reader(kind)(data, kind.__name__))
    except _Misfit as exc:
        raise StoreError(f"{what}stored {exc}") from None


def encode(value: Any) -> dict[str, Any]:
    """``value`` (one of :data:`KINDS`) as JSON data: every field, in field order; tuples as
    lists; what JSON cannot hold inside its free-form dicts converted as pydantic does."""
    kind = type(value)
    if kind not in KINDS:
        raise TypeError(f"the request/decision codec does not write {kind.__name__}")
    return {name: write(getattr(value, name)) for name, _, write, _ in _fields(kind)}


def dumps(value: Any) -> str:
    """``value`` as compact JSON text (what its row's column holds): pydantic's text, byte
    for byte, but for a float's exponent (Python writes ``1e-07`` where pydantic wrote
    ``1e-7``; both read back as the same number)."""
    return json.dumps(encode(value), separators=(",", ":"), ensure_ascii=False)


# -- reading -------------------------------------------------------------------------------
class _Misfit(Exception):
    """A value that does not fit its field (``where``: ``ApprovalDecision.grant.scope``);
    :func:`decode` turns it into the StoreError callers see."""


def _fail(where: str, expected: str, value: Any) -> _Misfit:
    got = "null" if value is None else type(value).__name__
    return _Misfit(f"{where}: expected {expected}, got {got}")


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _fail(where, "a string", value)
    return value


def _int(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _fail(where, "an integer", value)
    return value


def _float(value: Any, where: str) -> float:
    # JSON has one number type: 5 is a fine float, as pydantic reads it (to 5.0).
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _fail(where, "a number", value)
    return float(value)


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(where, "true or false", value)
    return value


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise _fail(where, "an object", value)
    return dict(value)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise _fail(where, "a list of strings", value)
    return tuple(value)


def _literal(choices: tuple[Any, ...]) -> Reader:
    text = ", ".join(repr(c) for c in choices)

    def read(value: Any, where: str) -> Any:
        if not isinstance(value, str) or value not in choices:
            raise _Misfit(f"{where}: expected one of {text}, got {value!r}")
        return value

    return read


def _optional(shape: Shape) -> Shape:
    inner_read, inner_write = shape

    def read(value: Any, where: str) -> Any:
        return None if value is None else inner_read(value, where)

    def write(value: Any) -> Any:
        return None if value is None else inner_write(value)

    return read, write


def _shape(hint: Any, owner: type) -> Shape:
    """How one annotation is read and written; any other is a codec bug, raised at first use."""
    simple = _SIMPLE.get(hint)
    if simple is not None:
        return simple
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return _literal(typing.get_args(hint)), _as_is
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union) and len(args) == 2 and type(None) in args:
        [inner] = [a for a in args if a is not type(None)]
        return _optional(_shape(inner, owner))
    if hint in KINDS:
        return _reader(hint), encode
    raise TypeError(f"the request/decision codec cannot read {owner.__name__} fields of {hint!r}")


def _fields(kind: type) -> tuple[tuple[str, Reader, Writer, bool], ...]:
    """(name, reader, writer, required) per field of ``kind``, in field order."""
    found = _FIELDS.get(kind)
    if found is None:
        found = _FIELDS[kind] = _fields_of(kind)
    return found


def _fields_of(kind: type) -> tuple[tuple[str, Reader, Writer, bool], ...]:
    hints = typing.get_type_hints(kind)
    found = []
    for f in dataclasses.fields(kind):
        read, write = _shape(hints[f.name], kind)
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        found.append((f.name, read, write, required))
    return tuple(found)


def _reader(kind: type) -> Reader:
    found = _READERS.get(kind)
    if found is None:
        found = _READERS[kind] = _reader_of(kind)
    return found


def _reader_of(kind: type) -> Reader:
    fields = _fields(kind)
    names = frozenset(name for name, _, _, _ in fields)

    def read(data: Any, where: str) -> Any:
        if not isinstance(data, dict):
            raise _fail(where, "an object", data)
        unknown = sorted(str(k) for k in data if k not in names)
        if unknown:
            raise _Misfit(f"{where}: unknown field {unknown[0]!r}")
        values = {}
        for name, read_field, _, required in fields:
            if name in data:
                values[name] = read_field(data[name], f"{where}.{name}")
            elif required:
                raise _Misfit(f"{where}: missing field {name!r}")
        try:
            return kind(**values)
        except InteractionError as exc:  # its own checks (a deny with a grant, say)
            raise _Misfit(f"{where} is not a valid {kind.__name__}: {exc}") from None

    return read


# -- writing -------------------------------------------------------------------------------
def _json_data(value: Any) -> Any:
    """Free-form data (tool arguments, schemas) as JSON data: the plain case here; anything
    else (a date, a set, a non-string key) converted by pydantic, which afk wrote it with."""
    plain = _plain(value)
    if plain is not _NOT_PLAIN:
        return plain
    from pydantic_core import to_jsonable_python

    return _plain(to_jsonable_python(value))


_NOT_PLAIN = object()


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None  # pydantic's JSON: null
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            converted = _plain(item)
            if not isinstance(key, str) or converted is _NOT_PLAIN:
                return _NOT_PLAIN
            out[key] = converted
        return out
    if isinstance(value, list | tuple):
        items = [_plain(item) for item in value]
        return _NOT_PLAIN if any(i is _NOT_PLAIN for i in items) else items
    return _NOT_PLAIN


def _as_is(value: Any) -> Any:
    return value


def _number(value: Any) -> Any:
    # A float field holding an int (the dataclass does not convert): pydantic writes 5.0.
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _list(value: Any) -> Any:
    return list(value) if isinstance(value, tuple | list) else value


_SIMPLE: dict[Any, Shape] = {
    str: (_str, _as_is),
    int: (_int, _as_is),
    float: (_float, _number),
    bool: (_bool, _as_is),
    dict[str, Any]: (_object, _json_data),
    tuple[str, ...]: (_strings, _list),
}


__all__ = ["KINDS", "decode", "dumps", "encode", "loads"]
