"""What a stored snapshot's form depends on, for the drift test and the fixture maker.

- :func:`shape`: the field names and JSON types of a stored snapshot (every key path);
- :func:`stored_defaults`: per dataclass the snapshot stores, each field's default. A stored
  snapshot leaves out fields at their default (afk/core/_snapshot.py), so a default that
  changes, or a field added, removed or renamed, changes what stored snapshots mean: that is
  a new schema version, even when a freshly written snapshot of the fixture's run looks the
  same.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from pydantic_core import to_jsonable_python

from afk.approvals.requests import ApprovalRequest, UserInputRequest
from afk.core._snapshot import RunSnapshot

# Stored in their request rows, named by id in the snapshot.
NOT_STORED = (ApprovalRequest, UserInputRequest)


def shape(value: Any, path: str = "$") -> dict[str, str]:
    """Every key path of JSON ``value`` with the JSON type found there (list items as ``[]``;
    numbers as ``number``, since a float can be written without a fraction)."""
    if isinstance(value, dict):
        found = {path: "object"}
        for key, item in value.items():
            found.update(shape(item, f"{path}.{key}"))
        return found
    if isinstance(value, list):
        found = {path: "array"}
        for item in value:
            found.update(shape(item, f"{path}[]"))
        return found
    if isinstance(value, bool):
        return {path: "boolean"}
    if isinstance(value, int | float):
        return {path: "number"}
    return {path: "null" if value is None else "string"}


def stored_defaults() -> dict[str, dict[str, Any]]:
    """Each dataclass reachable from :class:`RunSnapshot` (but the requests), by name: its
    fields in order, each with its default as JSON, ``"<required>"`` or, for ``Literal``
    fields (always written), ``"<tag>"``."""
    found: dict[str, dict[str, Any]] = {}
    todo: list[type] = [RunSnapshot]
    while todo:
        kind = todo.pop()
        if kind.__name__ in found or kind in NOT_STORED:
            continue
        hints = typing.get_type_hints(kind)
        fields = {}
        for f in dataclasses.fields(kind):
            fields[f.name] = _default(f, hints[f.name])
            todo.extend(_dataclasses_in(hints[f.name]))
        found[kind.__name__] = fields
    return dict(sorted(found.items()))


def _default(f: dataclasses.Field[Any], hint: Any) -> Any:
    if typing.get_origin(hint) is typing.Literal:
        return "<tag>"
    if f.default is not dataclasses.MISSING:
        return to_jsonable_python(f.default)
    if f.default_factory is not dataclasses.MISSING:
        return to_jsonable_python(f.default_factory())
    return "<required>"


def _dataclasses_in(hint: Any) -> list[type]:
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return [hint]
    return [k for arg in typing.get_args(hint) for k in _dataclasses_in(arg)]
