"""An MCP server's ``elicitation/create`` during a tool call, asked of the run's human as the
call's ``ToolContext.request_input(prompt=<the server's message>, schema=<its
requestedSchema>)``: inline without a store, a durable request that pauses the call with one.

The server gets ``accept`` with the human's answer (a JSON object that fits the schema: a
misfit is refused when submitted), ``decline`` when the human denied, ``cancel`` when nobody
answered (a timeout, the headless fallback).

The SDK calls back in a task under the call (2026 protocol: the elicitation rides inside the
``tools/call`` result) or from its receive loop (a legacy server's back-channel request).
Either way a pause raised in the callback would not reach the call as itself (the SDK's task
groups wrap it, or it is not under the call at all), so the callback hands it over: it sets
:attr:`Pending.stop` and waits; the call, awaiting both the server's result and that signal,
cancels its ``tools/call`` and raises the pause from its own task (:func:`call_or_stop`). On
a legacy connection the SDK tells the server with ``notifications/cancelled``; on a 2026 one
nothing is in flight then (the server returned its question and keeps no state for it).

A back-channel request names no call: it is taken as the one call in flight on its server's
session's. Declined, failing closed: an elicitation outside a tool call of a run, a
back-channel one while several calls are in flight, a URL-mode one, and one ``request_input``
refuses (an empty message, a schema that is not JSON Schema). The human's wait does not count
against the call's ``timeout_s``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from afk.approvals.requests import ToolAnswer
from afk.errors import ConfigurationError
from afk.mcp._sdk import require
from afk.tools.tool import ToolContext

T = TypeVar("T")


@dataclass(slots=True, kw_only=True, eq=False)
class Pending:
    """One tool call in flight: its context (who asks), the timeout to hold while a human
    answers, and the signal by which a callback stops the call (``stop``: what to raise)."""

    ctx: ToolContext
    timeout_s: float
    stop: asyncio.Future[BaseException] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    timeout: asyncio.Timeout | None = None


CURRENT: ContextVar[Pending | None] = ContextVar("afk_mcp_call", default=None)


async def call_or_stop(pending: Pending, call: Awaitable[T], *, calls: list[Pending]) -> T:
    """``call``'s result, or what a callback asked to raise (``pending.stop``) once ``call``
    is cancelled. Run under ``CURRENT`` set to ``pending`` (for callbacks under the call),
    and listed in ``calls``, its server's calls in flight (for its receive loop's)."""
    calls.append(pending)
    token = CURRENT.set(pending)
    try:
        task: asyncio.Future[T] = asyncio.ensure_future(call)  # cancellable on its own
    finally:
        CURRENT.reset(token)
    try:
        either: set[asyncio.Future[Any]] = {task, pending.stop}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if pending.stop.done():
            task.cancel()
            await asyncio.wait({task})
            if not task.cancelled():
                task.exception()  # retrieved: what it ended with no longer matters
            raise pending.stop.result()
        return task.result()
    finally:
        calls.remove(pending)
        pending.ended.set()
        task.cancel()  # when this call itself was cancelled while it waited


async def on_elicit(context: Any, params: Any, *, calls: list[Pending]) -> Any:
    """The SDK's elicitation callback (``calls``: its server's calls in flight): the human's
    answer as accept, decline or cancel."""
    types = require().types
    declined = types.ElicitResult(action="decline")
    pending = CURRENT.get()
    if pending is None and len(calls) == 1:
        # The receive loop's (a legacy server's back channel): the request names no call,
        # so it is the one call in flight's; with several nobody can tell whose it is.
        [pending] = calls
    if pending is None or pending.stop.done() or getattr(params, "mode", "form") != "form":
        return declined
    schema = params.requested_schema if isinstance(params.requested_schema, Mapping) else None
    try:
        answer = await _asked(pending, params.message, schema)
    except ConfigurationError:  # a question request_input cannot ask: nobody sees it
        return declined
    except (Exception, _pause_type()) as exc:
        # The pause (or a refusal of the re-entry contract) belongs to the call: hand it over
        # and wait while the call cancels its tools/call (which, on a 2026 connection,
        # cancels this callback too). What is answered then reaches nobody.
        if not pending.stop.done():
            pending.stop.set_result(exc)
        await pending.ended.wait()
        return types.ElicitResult(action="cancel")
    return result_of(answer)


def result_of(answer: ToolAnswer) -> Any:
    """The SDK's ``ElicitResult`` for the human's ``answer``."""
    types = require().types
    if answer.approved and isinstance(answer.value, dict):
        try:
            return types.ElicitResult(action="accept", content=answer.value)
        except ValueError:  # content the protocol cannot carry (nested objects): refuse it
            return types.ElicitResult(action="decline")
    if answer.decided_by == "human":
        return types.ElicitResult(action="decline")
    return types.ElicitResult(action="cancel")  # nobody answered: timeout, fallback, error


async def _asked(pending: Pending, message: str, schema: Mapping[str, Any] | None) -> ToolAnswer:
    limit = pending.timeout
    if limit is not None:
        limit.reschedule(None)  # a human may take longer than the server would
    try:
        return await pending.ctx.request_input(prompt=message, schema=schema)
    finally:
        if limit is not None and not pending.ended.is_set():  # an ended call's has exited
            limit.reschedule(asyncio.get_running_loop().time() + pending.timeout_s)


def _pause_type() -> type[BaseException]:
    # Imported on use: afk.mcp stays importable without afk.core's run machinery loaded.
    from afk.core._tool_asks import ToolPaused

    return ToolPaused
