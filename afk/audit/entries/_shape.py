"""How each entry class maps to its payload: which fields, under which keys, written when,
and how a JSON value is read back as each field's type (worked out once per class, from its
annotations, on first use)."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from afk.audit.entries._kinds import KEY, WITH

_COLUMNS = frozenset({"kind", "run_id", "request_id", "actor", "at"})  # not in the payload
UNSET: tuple[Any, ...] = (None, ())  # a gated field with one of these is left out


class Problem(Exception):
    """A payload (or an entry) that does not fit its class; ``key``: the payload key at fault."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(message)


class _Misfit(Exception):
    """A value its field does not take."""


_Check = Callable[[Any], Any]  # a JSON value -> the field's value, or _Misfit


@dataclass(frozen=True, slots=True)
class _Field:
    attr: str
    key: str  # the payload's name for it
    required: bool
    gate: str | None  # written only while this field (maybe itself) is set; None: always
    check: _Check
    expected: str  # what ``check`` takes, for error messages
    dump: Callable[[Any], Any] | None  # to JSON data; None: the value already is


_SHAPES: dict[type[Any], tuple[_Field, ...]] = {}


def fields(cls: type[Any]) -> tuple[_Field, ...]:
    """``cls``'s payload fields, worked out once per class (on first use: afk.audit loads
    without resolving any annotation)."""
    found = _SHAPES.get(cls)
    if found is None:
        found = _SHAPES[cls] = tuple(_payload_fields(cls))
    return found


def _payload_fields(cls: type[Any]) -> list[_Field]:
    hints = typing.get_type_hints(cls)
    made = []
    for f in dataclasses.fields(cls):
        if f.name in _COLUMNS:
            continue
        check, expected = _checker(hints[f.name])
        gate = f.metadata.get(WITH)
        made.append(
            _Field(
                attr=f.name,
                key=f.metadata.get(KEY, f.name),
                required=f.default is dataclasses.MISSING,
                gate=None if gate is None else gate or f.name,
                check=check,
                expected=expected,
                dump=_dumper(hints[f.name]),
            )
        )
    return made


_SIMPLE: dict[Any, tuple[_Check, str]] = {}


def _checker(hint: Any) -> tuple[_Check, str]:
    """How to read a JSON value as ``hint`` (the few types entry fields use)."""
    origin = get_origin(hint)
    if origin is Literal:
        return _literal(get_args(hint))
    if origin is Union or origin is types.UnionType:
        return _union([_checker(option) for option in get_args(hint)])
    if origin is tuple:
        item, expected = _checker(get_args(hint)[0])
        return _items(item), f"a list of {expected}"
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _nested(hint), f"an object with {', '.join(f.key for f in fields(hint))}"
    return _SIMPLE[hint]


def _literal(allowed: tuple[Any, ...]) -> tuple[_Check, str]:
    def check(value: Any) -> Any:
        if isinstance(value, str) and value in allowed:
            return value
        raise _Misfit

    return check, "one of " + ", ".join(repr(a) for a in allowed)


def _union(options: list[tuple[_Check, str]]) -> tuple[_Check, str]:
    def check(value: Any) -> Any:
        for option, _ in options:
            try:
                return option(value)
            except _Misfit:
                pass
        raise _Misfit

    return check, " or ".join(expected for _, expected in options)


def _items(item: _Check) -> _Check:
    def check(value: Any) -> Any:
        if not isinstance(value, list):
            raise _Misfit
        return tuple(item(v) for v in value)

    return check


def _nested(cls: Any) -> _Check:
    def check(value: Any) -> Any:
        if not isinstance(value, dict):
            raise _Misfit
        try:
            return cls(**decode(cls, value))
        except Problem:
            raise _Misfit from None

    return check


def _simple(hint: Any, accepted: tuple[type[Any], ...], expected: str) -> None:
    def check(value: Any) -> Any:
        # bool is an int in Python, never in a ledger; an int is a fine float (JSON's 1e9).
        if isinstance(value, accepted) and (hint is bool or not isinstance(value, bool)):
            if hint is float and not math.isfinite(value):  # 1e999 reads as inf
                raise _Misfit
            return value
        raise _Misfit

    _SIMPLE[hint] = check, expected


_simple(str, (str,), "a string")
_simple(bool, (bool,), "true or false")
_simple(int, (int,), "an integer")
_simple(float, (int, float), "a number")
_simple(type(None), (type(None),), "null")


def _dumper(hint: Any) -> Callable[[Any], Any] | None:
    if get_origin(hint) is not tuple:
        return None
    item = get_args(hint)[0]
    if dataclasses.is_dataclass(item):
        return lambda values: [payload(v) for v in values]
    return list


def payload(entry: Any) -> dict[str, Any]:
    """The payload of ``entry`` as JSON data; Problem when a field is set without the one it
    goes with (it would not be written, so it would not read back)."""
    made: dict[str, Any] = {}
    for f in fields(type(entry)):
        value = getattr(entry, f.attr)
        if f.gate is not None and getattr(entry, f.gate) in UNSET:
            if value not in UNSET:
                raise Problem(
                    f.key,
                    f"{type(entry).__name__}.{f.attr} is written only with {f.gate} set, and "
                    f"{f.gate} is not: set both, or neither",
                )
            continue
        made[f.key] = value if f.dump is None else f.dump(value)
    return made


def decode(cls: type[Any], data: dict[str, Any]) -> dict[str, Any]:
    """The field values ``data`` (a payload) holds for ``cls``; Problem when it does not fit."""
    shape = fields(cls)
    extra = sorted(data.keys() - {f.key for f in shape})
    if extra:
        known = ", ".join(f.key for f in shape)
        raise Problem(extra[0], f"its payload has {', '.join(extra)}; the fields are {known}")
    values: dict[str, Any] = {}
    for f in shape:
        if f.key not in data:
            if f.required:
                raise Problem(f.key, f"its payload lacks {f.key!r} ({f.expected})")
            continue
        try:
            values[f.attr] = f.check(data[f.key])
        except _Misfit:
            shown = repr(data[f.key])
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
            raise Problem(f.key, f"{f.key!r} must be {f.expected}, not {shown}") from None
    for f in shape:  # what to_log would leave out must not be there: it writes back the same
        if f.gate is not None and f.key in data and values.get(f.gate) in UNSET:
            raise Problem(f.key, f"{f.key!r} is written only when {f.gate!r} is set")
    return values
