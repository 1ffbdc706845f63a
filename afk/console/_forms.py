""" "Edit and approve": a form generated from the tool's JSON schema, read back into
arguments, and the change shown as a diff before it is confirmed.

The form is a convenience, not the check: what it reads is validated here (types, naming
the field) and then by the one decision path against the tool's schema (afk.approvals
.requests.validate_decision), which refuses anything off-schema whatever the browser sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from afk.canonical import strict_loads
from afk.console._decision import BodyError
from afk.errors import InvalidArgumentsError

_WHOLE = "__args__"  # the one field of a tool whose schema lists no properties
_SCALARS = ("string", "integer", "number", "boolean")


@dataclass(frozen=True, slots=True, kw_only=True)
class Field:
    """One input of the edit form: ``widget`` is text, textarea, number, checkbox, select or
    json (any other value, as JSON text)."""

    name: str
    label: str
    widget: str
    value: str
    required: bool = False
    description: str | None = None
    options: tuple[str, ...] = ()
    step: str = "1"


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """One argument's change: ``kind`` is changed, added or removed (``before`` / ``after``
    then mean nothing on the missing side)."""

    name: str
    kind: str
    before: Any = None
    after: Any = None


def _properties(schema: Mapping[str, Any] | None) -> dict[str, Any]:
    props = (schema or {}).get("properties")
    return dict(props) if isinstance(props, Mapping) else {}


def _kind(spec: Mapping[str, Any]) -> str | None:
    kind = spec.get("type")
    return kind if isinstance(kind, str) and kind in _SCALARS else None


def fields(schema: Mapping[str, Any] | None, args: Mapping[str, Any]) -> list[Field]:
    """The form's inputs for ``args`` under ``schema``: one per property, in the schema's
    order (arguments the schema does not list follow, as JSON); one JSON input for the
    whole arguments when the schema lists no properties."""
    props = _properties(schema)
    if not props:
        return [Field(name=_WHOLE, label="arguments (JSON)", widget="json", value=_json(args))]
    required = set((schema or {}).get("required") or [])
    found = [
        _field(n, s if isinstance(s, Mapping) else {}, args, n in required)
        for n, s in props.items()
    ]
    extra = [n for n in args if n not in props]
    found += [Field(name=n, label=n, widget="json", value=_json(args[n])) for n in extra]
    return found


def _field(name: str, spec: Mapping[str, Any], args: Mapping[str, Any], required: bool) -> Field:
    value = args.get(name)
    text = spec.get("description")
    common: dict[str, Any] = {
        "name": name,
        "label": name,
        "required": required,
        "description": text if isinstance(text, str) else None,
    }
    enum = spec.get("enum")
    if isinstance(enum, list) and all(isinstance(e, str) for e in enum):
        return Field(widget="select", value=value or "", options=tuple(enum), **common)
    kind = _kind(spec)
    if kind == "boolean":
        return Field(widget="checkbox", value="on" if value else "", **common)
    if kind in ("integer", "number"):
        shown = "" if value is None else json.dumps(value)
        return Field(
            widget="number", value=shown, step="1" if kind == "integer" else "any", **common
        )
    if kind == "string" and (value is None or isinstance(value, str)):
        widget = "textarea" if value is not None and ("\n" in value or len(value) > 80) else "text"
        return Field(widget=widget, value=value or "", **common)
    return Field(widget="json", value="" if value is None else _json(value), **common)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True)


def read(
    schema: Mapping[str, Any] | None, form: Mapping[str, str], original: Mapping[str, Any]
) -> dict[str, Any]:
    """The arguments the submitted ``form`` holds; BodyError naming the field that does not
    fit its type. An empty optional field the call did not have stays out."""
    shown = fields(schema, original)
    if len(shown) == 1 and shown[0].name == _WHOLE:
        value = _parse_json(form.get(_WHOLE, ""), "arguments")
        if not isinstance(value, dict):
            raise BodyError("the arguments must be a JSON object", field="arguments")
        return value
    args: dict[str, Any] = {}
    for item in shown:
        raw = form.get("arg:" + item.name)
        if item.widget == "checkbox":
            args[item.name] = raw == "on"
        elif raw:
            args[item.name] = _value(item, raw)
        elif item.widget in ("text", "textarea") and (item.required or item.name in original):
            args[item.name] = ""  # an empty string is a value a text argument can take
        elif item.required:
            raise BodyError(f"{item.name} is required", field=item.name)
        # else: an optional argument left empty stays out
    return args


def _value(item: Field, raw: str) -> Any:
    if item.widget == "number":
        try:
            number = float(raw)
        except ValueError:
            raise BodyError(f"{item.name} must be a number, got {raw!r}", field=item.name) from None
        if item.step == "1":
            if not number.is_integer():
                raise BodyError(f"{item.name} must be a whole number, got {raw!r}", field=item.name)
            return int(number)
        return int(number) if number.is_integer() and "." not in raw else number
    if item.widget == "json":
        return _parse_json(raw, item.name)
    if item.widget == "select" and raw not in item.options:
        raise BodyError(
            f"{item.name} must be one of {', '.join(item.options)}, got {raw!r}", field=item.name
        )
    return raw


def _parse_json(raw: str, name: str) -> Any:
    try:
        return strict_loads(raw.encode(), what=name)
    except InvalidArgumentsError as exc:
        raise BodyError(f"{name} is not valid JSON: {exc}", field=name) from None


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    """What changes from ``before`` to ``after``, argument by argument (the page shows the
    values as escaped JSON: hidden characters stay visible in the diff too)."""
    changes = []
    for name in sorted(set(before) | set(after)):
        if name not in after:
            changes.append(Change(name=name, kind="removed", before=(before[name]), after=None))
        elif name not in before:
            changes.append(Change(name=name, kind="added", before=None, after=(after[name])))
        elif before[name] != after[name] or type(before[name]) is not type(after[name]):
            changes.append(
                Change(name=name, kind="changed", before=(before[name]), after=(after[name]))
            )
    return changes
