"""Policy files: YAML or JSON documents that build a :class:`PolicyEngine`.

The whole document is checked (JSON schema, then each rule's own validation) before any engine
exists, so a malformed file never yields a partial policy. Every error names the file, the rule
(index and id) and the field. PyYAML and jsonschema are imported only when a file is loaded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from afk.agents.policy import (
    ACTIONS,
    DECISION_OPTIONS,
    EVENT_TYPES,
    PolicyEngine,
    PolicyRule,
)
from afk.agents.rules import _RuleFieldError
from afk.errors import ConfigurationError

VERSIONS = (1,)
_BOOL = ({"type": "boolean"}, "true or false")
_GLOBS = (
    {"type": ["string", "array"], "minLength": 1, "minItems": 1, "items": {"type": "string"}},
    "a glob string or a non-empty list of glob strings",
)
_NAMES = (
    {"type": ["string", "array"], "items": {"type": "string", "minLength": 1}},
    "a list of names or 'group:NAME'",
)
_SECONDS = ({"type": ["number", "null"], "exclusiveMinimum": 0}, "a positive number of seconds")
_PREDICATES = ({"type": "object"}, "a mapping of key to predicate, e.g. {amount: {gt: 100}}")
_ACTION_LIST = ", ".join(ACTIONS)
# File key -> (JSON schema, what to tell the author it must be). The file says `id`, the
# constructor `rule_id`; everything else has the same name in both.
_RULE_FIELDS: dict[str, tuple[dict[str, Any], str]] = {
    "id": ({"type": "string", "minLength": 1}, "a non-empty string"),
    "description": ({"type": "string"}, "a string"),
    "tool": _GLOBS,
    "when": _PREDICATES,
    "agent": _GLOBS,
    "context": _PREDICATES,
    "server": _GLOBS,
    "annotations": (
        {"type": "object"},
        "a mapping of MCP tool annotation to predicate, e.g. {destructiveHint: true}",
    ),
    "action": ({"enum": list(ACTIONS)}, f"one of {_ACTION_LIST}"),
    "reason": ({"type": ["string", "null"]}, "a string"),
    "priority": ({"type": "integer"}, "an integer"),
    "enabled": _BOOL,
    # A single name is checked by PolicyRule itself, which names the accepted values.
    "event_types": (
        {"type": ["string", "array"], "minItems": 1, "items": {"enum": list(EVENT_TYPES)}},
        f"one of {', '.join(EVENT_TYPES)}, or a non-empty list of them",
    ),
    "stop_run": _BOOL,
    "input_target_arg": ({"type": ["string", "null"]}, "a tool argument name"),
    "shadow": _BOOL,
    "approvers": _NAMES,
    "quorum": ({"type": "integer", "minimum": 1}, "an integer >= 1"),
    "allow_self_approval": _BOOL,
    "expires_after_s": _SECONDS,
    "remind_after_s": _SECONDS,
    "escalate_after_s": _SECONDS,
    "escalate_to": _NAMES,
    "deny_decides": _BOOL,
    "allowed_decisions": (
        {"type": "array", "minItems": 1, "items": {"enum": list(DECISION_OPTIONS)}},
        f"a non-empty list of {', '.join(DECISION_OPTIONS)}",
    ),
}
_TOP_FIELDS: dict[str, tuple[dict[str, Any], str]] = {
    "version": ({"enum": list(VERSIONS)}, "1, the only policy file version this afk reads"),
    "description": ({"type": "string"}, "a string"),
    "default_action": ({"enum": list(ACTIONS)}, f"one of {_ACTION_LIST}"),
    "shadow": _BOOL,
    "groups": (
        {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
        "a mapping of group name to a list of member names",
    ),
    "rules": ({"type": "array"}, "a list of rules"),
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["version"],
    "additionalProperties": False,
    "properties": {
        **{name: schema for name, (schema, _) in _TOP_FIELDS.items()},
        "rules": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "action"],
                "additionalProperties": False,
                "properties": {name: schema for name, (schema, _) in _RULE_FIELDS.items()},
            },
        },
    },
}


def engine_from_file(path: str | os.PathLike[str]) -> PolicyEngine:
    source = os.fspath(path)
    suffix = Path(source).suffix.lower()
    if suffix not in (".yaml", ".yml", ".json"):
        raise ConfigurationError(
            f"{source}: unsupported policy file type {suffix or '(none)'!r}; "
            "use .yaml, .yml or .json"
        )
    try:
        text = Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{source}: cannot read the policy file: {exc}") from None
    data = _parse_json(text, source) if suffix == ".json" else _parse_yaml(text, source)
    return engine_from_dict(data, source)


def engine_from_dict(data: object, source: str = "<dict>") -> PolicyEngine:
    if not isinstance(data, Mapping):
        got = "nothing (empty document)" if data is None else type(data).__name__
        raise ConfigurationError(
            f"{source}: the top level must be a mapping with 'version' and 'rules', got {got}"
        )
    errors = list(dict.fromkeys(_schema_errors(data, source)))
    if errors:
        raise ConfigurationError("\n".join(errors))
    rules: list[PolicyRule] = []
    first_use: dict[str, int] = {}
    for index, raw in enumerate(data.get("rules") or ()):
        where = _where(source, index, raw)
        if raw["id"] in first_use:
            raise ConfigurationError(
                f"{where}: id: duplicate rule id, first used by rules[{first_use[raw['id']]}]"
            )
        first_use[raw["id"]] = index
        kwargs = {("rule_id" if key == "id" else key): value for key, value in raw.items()}
        try:
            rules.append(PolicyRule(**kwargs))
        except _RuleFieldError as exc:
            name = "id" if exc.field == "rule_id" else exc.field
            raise ConfigurationError(f"{where}: {name}: {exc.detail}") from None
    try:
        return PolicyEngine(
            rules,
            default_action=data.get("default_action", "allow"),
            shadow=data.get("shadow", False),
            groups=data.get("groups"),
        )
    except ConfigurationError as exc:
        raise ConfigurationError(f"{source}: {exc}") from None


def _where(source: str, index: int, raw: object) -> str:
    rule_id = raw.get("id") if isinstance(raw, Mapping) else None
    named = f" (id {rule_id!r})" if isinstance(rule_id, str) else ""
    return f"{source}: rules[{index}]{named}"


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator, validators

    # Documents built in Python may use tuples and read-only mappings.
    checker = Draft202012Validator.TYPE_CHECKER.redefine_many(
        {
            "array": lambda _checker, value: isinstance(value, list | tuple),
            "object": lambda _checker, value: isinstance(value, Mapping),
        }
    )
    cls = validators.extend(Draft202012Validator, type_checker=checker)  # type: ignore[no-untyped-call]
    return cls(SCHEMA)


def _schema_errors(data: Mapping[str, Any], source: str) -> list[str]:
    found = sorted(_validator().iter_errors(data), key=lambda e: [str(p) for p in e.path])
    messages = []
    for error in found:
        path = list(error.path)
        if path[:1] == ["rules"] and len(path) >= 2:
            raw = data["rules"][path[1]]
            where, fields, target = _where(source, path[1], raw), _RULE_FIELDS, raw
            path = path[2:]
        else:
            where, fields, target = source, _TOP_FIELDS, data
        messages.append(f"{where}: {_describe(error, path, fields, target)}")
    return messages


def _describe(
    error: Any, path: list[Any], fields: dict[str, tuple[dict[str, Any], str]], target: Any
) -> str:
    """One schema error as ``field: must be …, got …`` (or what is missing or unknown)."""
    if path:
        name = path[0]
        return f"{name}: must be {fields[name][1]}, got {target[name]!r}"
    if error.validator == "additionalProperties":
        unknown = ", ".join(repr(key) for key in target if key not in fields)
        return f"unknown key {unknown}; accepted keys: {', '.join(fields)}"
    if error.validator == "required":
        missing = ", ".join(repr(key) for key in error.validator_value if key not in target)
        return f"missing required key {missing}"
    return f"must be a mapping, got {type(target).__name__}: {target!r}"


def _parse_json(text: str, source: str) -> object:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise ConfigurationError(f"{source}: duplicate key {key!r}")
            result[key] = value
        return result

    try:
        return json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"{source}: line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}"
        ) from None


def _parse_yaml(text: str, source: str) -> object:
    try:
        import yaml
    except ImportError:
        raise ConfigurationError(
            f"{source}: reading YAML policy files needs PyYAML: install afk-agents[yaml]"
        ) from None
    try:
        return yaml.load(text, Loader=_strict_loader())  # a SafeLoader subclass
    except _DuplicateKey as exc:
        raise ConfigurationError(f"{source}: line {exc.line}: duplicate key {exc.key!r}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigurationError(f"{source}: {where}invalid YAML: {problem}") from None


class _DuplicateKey(Exception):
    def __init__(self, key: object, line: int) -> None:
        self.key, self.line = key, line


@cache
def _strict_loader() -> Any:
    """A SafeLoader that refuses duplicate keys: in a policy, a silently overridden
    ``action:`` would be a security bug."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        pass

    def mapping(loader: Any, node: Any) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # merged keys may be overridden; only a mapping's own keys must be unique
            key = loader.construct_object(key_node)
            if not isinstance(key, str | int | float | bool):
                continue  # unhashable keys are PyYAML's to reject
            if key in seen:
                raise _DuplicateKey(key, key_node.start_mark.line + 1)
            seen.add(key)
        result: dict[Any, Any] = loader.construct_mapping(node)
        return result

    tag = yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG
    StrictLoader.add_constructor(tag, mapping)
    return StrictLoader
