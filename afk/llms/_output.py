"""Structured output: the schema a model is given for ``Agent(output_type=...)`` and the check
of its answer. pydantic is imported only here, and only for agents that ask for a type."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Sequence
from typing import Any

from afk.errors import ConfigurationError, RunError
from afk.llms.messages import Message, UserMessage
from afk.llms.settings import OutputSpec

# The header of afk's own retry message; the run counts its retries by it, so the count needs
# no extra state in a durable run's snapshot.
RETRY_HEADER = "Your final answer did not match the required output schema."

# Keywords OpenAI's strict mode refuses; a schema using them is sent non-strict.
_NOT_STRICT = {"default", "patternProperties", "unevaluatedProperties", "propertyNames"}


class OutputValidationError(RunError):
    """The model's final answer failed the output type's validation ``max_output_retries``
    times over; the run ends ``failed`` with the last validation errors."""


class Output:
    """An output type ready for runs: its :class:`OutputSpec` and the validator of answers."""

    def __init__(self, output_type: Any) -> None:
        from pydantic import PydanticSchemaGenerationError, TypeAdapter

        try:
            self.adapter: Any = TypeAdapter(output_type)
            schema = self.adapter.json_schema()
        except (PydanticSchemaGenerationError, TypeError) as exc:
            raise ConfigurationError(
                f"Agent output_type {output_type!r} has no JSON schema pydantic can build: {exc}"
            ) from None
        self.output_type = output_type
        wrapped = schema.get("type") != "object"
        if wrapped:
            defs = schema.pop("$defs", None)
            schema = {"type": "object", "properties": {"result": schema}, "required": ["result"]}
            if defs:
                schema["$defs"] = defs
        strict = strict_schema(schema)
        self.spec = OutputSpec(
            name=_schema_name(output_type),
            schema=strict if strict is not None else schema,
            strict=strict is not None,
            wrapped=wrapped,
        )

    def validate(self, text: str | None) -> tuple[Any, str | None]:
        """``(value, None)`` for a valid answer, else ``(None, what is wrong)``."""
        from pydantic import ValidationError

        if text is None or not text.strip():
            return None, "the answer was empty; reply with JSON matching the schema"
        try:
            if not self.spec.wrapped:
                return self.adapter.validate_json(text), None
            data = json.loads(text)
            if not isinstance(data, dict) or "result" not in data:
                return None, 'the answer must be a JSON object {"result": ...}'
            return self.adapter.validate_python(data["result"]), None
        except ValidationError as exc:
            return None, _describe(exc)
        except ValueError as exc:
            return None, f"the answer is not JSON: {exc}"

    def retry_message(self, problem: str) -> str:
        """What the model is told after an invalid answer."""
        schema = json.dumps(self.spec.schema, sort_keys=True)
        return (
            f"{RETRY_HEADER}\n{problem}\nReply again with only JSON matching this schema: {schema}"
        )


def retries_so_far(messages: Sequence[Message]) -> int:
    """afk's output retry messages since the last other user message: counted from the
    conversation, so a run resumed from a snapshot counts the same."""
    count = 0
    for message in reversed(messages):
        if isinstance(message, UserMessage):
            if not message.content.startswith(RETRY_HEADER):
                break
            count += 1
    return count


def _describe(exc: Any) -> str:
    lines = []
    for error in exc.errors(include_url=False)[:10]:
        where = ".".join(str(p) for p in error.get("loc", ())) or "(root)"
        lines.append(f"- {where}: {error.get('msg')}")
    return "validation errors:\n" + "\n".join(lines)


def _schema_name(output_type: Any) -> str:
    # OpenAI wants ^[a-zA-Z0-9_-]{1,64}$.
    raw = getattr(output_type, "__name__", None) or "output"
    return re.sub(r"[^a-zA-Z0-9_-]", "_", str(raw))[:64] or "output"


def strict_schema(schema: dict[str, Any]) -> dict[str, Any] | None:
    """The schema for OpenAI's strict mode (``additionalProperties: false`` on every object),
    or None when it cannot be strict: an optional property (strict wants all required) or a
    keyword strict mode refuses."""
    out = copy.deepcopy(schema)
    return out if _make_strict(out) else None


def _make_strict(node: Any) -> bool:
    if isinstance(node, list):
        return all(_make_strict(item) for item in node)
    if not isinstance(node, dict):
        return True
    if _NOT_STRICT & node.keys():
        return False
    if node.get("type") == "object" or "properties" in node:
        properties = node.get("properties", {})
        if set(node.get("required", ())) != set(properties):
            return False
        if node.get("additionalProperties") not in (None, False):
            return False
        node["additionalProperties"] = False
    for key, value in node.items():
        children = value.values() if key in ("properties", "$defs") else [value]
        if isinstance(value, dict | list) and not all(_make_strict(c) for c in children):
            return False
    return True


__all__ = [
    "RETRY_HEADER",
    "Output",
    "OutputValidationError",
    "retries_so_far",
    "strict_schema",
]
