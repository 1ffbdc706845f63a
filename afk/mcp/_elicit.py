"""An MCP server's ``elicitation/create`` during a tool call, answered by the run's human.

The SDK hands the elicitation to the client's callback in the task that made the call (the
2026 protocol carries it inside the ``tools/call`` result), so the call's
``ToolContext.ask_user`` is found in a context variable set around the call. Everything that
cannot be answered that way is declined, failing closed: a call outside a run, a run where
nobody can answer mid-call (headless, external, with a store), a URL-mode elicitation, a
legacy server's request on its back channel, and an answer that does not fit the schema.
The human's wait does not count against the call's ``timeout_s``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from afk.mcp._sdk import require

AskUser = Callable[[str], Awaitable["str | None"]]
_TRUE, _FALSE = ("true", "yes", "y", "1"), ("false", "no", "n", "0")


@dataclass(slots=True, kw_only=True)
class Pending:
    """The tool call in flight in this task: who asks, and the timeout to hold meanwhile."""

    server: str
    tool: str
    ask_user: AskUser | None
    timeout_s: float
    timeout: asyncio.Timeout | None = None


CURRENT: ContextVar[Pending | None] = ContextVar("afk_mcp_call", default=None)


async def on_elicit(context: Any, params: Any) -> Any:
    """The SDK's elicitation callback: accept with the human's answer, or decline."""
    types = require().types
    declined = types.ElicitResult(action="decline")
    pending = CURRENT.get()
    if pending is None or pending.ask_user is None or getattr(params, "mode", "form") != "form":
        return declined
    schema = params.requested_schema if isinstance(params.requested_schema, Mapping) else {}
    text = await _asked(pending, question(pending, params.message, schema))
    content = None if text is None else answer_content(text, schema)
    if content is None:
        return declined
    return types.ElicitResult(action="accept", content=content)


async def _asked(pending: Pending, prompt: str) -> str | None:
    assert pending.ask_user is not None
    limit = pending.timeout
    if limit is not None:
        limit.reschedule(None)  # a human may take longer than the server would
    try:
        return await pending.ask_user(prompt)
    finally:
        if limit is not None:
            limit.reschedule(asyncio.get_running_loop().time() + pending.timeout_s)


def question(pending: Pending, message: str, schema: Mapping[str, Any]) -> str:
    """What the human reads: who asks, the server's message, and how to answer."""
    props = _properties(schema)
    head = f"MCP server {pending.server!r} asks (tool {pending.tool!r}): {message}"
    if len(props) == 1:
        [(name, prop)] = props.items()
        choices = prop.get("enum") if isinstance(prop, Mapping) else None
        if isinstance(choices, list):
            return f"{head}\n(answer {name}: one of {', '.join(map(str, choices))})"
        return f"{head}\n(answer {name})"
    fields = ", ".join(props) or "no fields"
    return f"{head}\n(answer with a JSON object of: {fields})"


def answer_content(text: str, schema: Mapping[str, Any]) -> dict[str, Any] | None:
    """The human's text as the content the schema asks for, or None when it does not fit.

    One field: the text is its value (a number or true/false when the field is one).
    Several: the text must be a JSON object. Either way it is checked against the schema.
    """
    props = _properties(schema)
    content: object
    if len(props) == 1:
        [(name, prop)] = props.items()
        content = {name: _typed(text.strip(), prop)}
    else:
        try:
            content = json.loads(text) if props else {}
        except json.JSONDecodeError:
            return None
    if not isinstance(content, dict):
        return None
    from jsonschema import validators

    try:
        valid = validators.validator_for(dict(schema))(dict(schema)).is_valid(content)
    except Exception:  # a schema the validator cannot use: nothing fits it
        return None
    return content if valid else None


def _properties(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    props = schema.get("properties")
    return props if isinstance(props, Mapping) else {}


def _typed(text: str, prop: object) -> object:
    kind = prop.get("type") if isinstance(prop, Mapping) else None
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            return float(text)
    except ValueError:
        return text  # the schema check refuses it
    if kind == "boolean" and text.lower() in _TRUE + _FALSE:
        return text.lower() in _TRUE
    return text
