"""OpenTelemetry spans from a run's events. Imported only when a runner traces.

Per process a run is one ``invoke_agent {agent}`` span with, as children, a ``chat {model}``
span per model call, an ``evaluate_policy {tool}`` span per policy evaluation, an
``execute_tool {tool}`` span per tool body that ran, and an ``await_approval {tool}`` span
per request decided (see :mod:`afk.observability._waits`). Times are the events' own.

A run paused in external mode ends its span there (``afk.run.state=paused``, not an error)
and stores the W3C trace context with the run; the process that resumes it parents its own
run span on that context, so the whole run is one trace however many processes it spans.
Failed runs and tool bodies that raised get an ERROR status; denials and pauses do not.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, Tracer, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from afk import __version__
from afk.approvals.requests import Request
from afk.llms._providers import _split
from afk.llms.model import model_label
from afk.observability import attributes as A
from afk.observability._waits import Waits, _present, ns

if TYPE_CHECKING:
    from afk.core._setup import RunSetup
    from afk.core._snapshot import RunSnapshot
    from afk.core.events import Event
    from afk.observability._observer import SpanFactory

_W3C = TraceContextTextMapPropagator()  # W3C whatever the app's global propagator is


def tracer_factory(provider: TracerProvider | None) -> SpanFactory:
    """Span observers on ``provider``'s tracer (the global provider's when None)."""
    get = provider.get_tracer if provider is not None else trace.get_tracer
    return functools.partial(SpanObserver, get("afk", __version__))


class _Open:
    """A child span in progress, current in the task that started it (so spans the model
    client or the tool body create nest under it)."""

    __slots__ = ("span", "task", "token")

    def __init__(self, span: Span) -> None:
        self.span = span
        self.token = otel_context.attach(trace.set_span_in_context(span))
        self.task = asyncio.current_task()

    def end(self, ts: float, error: str | None = None) -> None:
        if error is not None:
            _error(self.span, error)
        self.span.end(end_time=ns(ts))
        # Only the task that made it current can undo that; another task's copy of the
        # context (a tool call run beside others) ends with that task anyway.
        if asyncio.current_task() is self.task:
            otel_context.detach(self.token)


class SpanObserver:
    """The spans of one run in this process."""

    def __init__(self, tracer: Tracer, setup: RunSetup) -> None:
        self._tracer = tracer
        self._run_id = setup.run_id
        self._agent = setup.agent.name
        self._model_attrs = _model_attributes(setup.model)
        self._thread_id = setup.thread_id
        snapshot = setup.snapshot
        stored = snapshot.trace_context if snapshot is not None else {}
        self._resumed = snapshot is not None
        self._parent: Context | None = _W3C.extract(stored) if stored else None
        self._waits = Waits(tracer, setup.run_id, _pending(snapshot), self._parent)
        self._run: Span | None = None
        self._run_ctx = Context()
        self._ended = False
        self._chat: _Open | None = None
        self._tools: dict[tuple[int | None, str], _Open] = {}
        self._last_ts: float | None = None
        self._usage = [0, 0]
        self._cost: float | None = None

    # -- the observer protocol --------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        run = self._run_span(event.ts)
        handler = _HANDLERS.get(event.type)
        if handler is not None:
            handler(self, event, run)
        self._last_ts = event.ts

    def close(self) -> None:
        if self._run is not None and not self._ended and self._last_ts is not None:
            self._end(self._last_ts, "paused")

    def trace_context(self) -> dict[str, str]:
        carrier: dict[str, str] = {}
        if self._run is not None:
            _W3C.inject(carrier, context=self._run_ctx)
        return carrier

    # -- the run span ---------------------------------------------------------------------
    def _run_span(self, ts: float) -> Span:
        if self._run is not None:
            return self._run
        links = []
        if self._parent is not None:  # resumed: the trace is the run's; link the caller's
            caller = trace.get_current_span().get_span_context()
            if caller.is_valid:
                links.append(Link(caller))
        attributes = {
            A.OPERATION_NAME: "invoke_agent",
            A.AGENT_NAME: self._agent,
            A.CONVERSATION_ID: self._thread_id,
            A.RUN_ID: self._run_id,
            A.RUN_RESUMED: self._resumed,
            **self._model_attrs,
        }
        self._run = self._tracer.start_span(
            f"{A.SPAN_RUN} {self._agent}",
            context=self._parent,
            kind=SpanKind.INTERNAL,
            attributes=_present(attributes),
            links=links,
            start_time=ns(ts),
        )
        self._run_ctx = trace.set_span_in_context(self._run)
        return self._run

    def _end(self, ts: float, state: str, error: str | None = None) -> None:
        run = self._run
        assert run is not None
        for child in self._children():
            child.end(ts, error)
        run.set_attribute(A.RUN_STATE, state)
        run.set_attribute(A.INPUT_TOKENS, self._usage[0])
        run.set_attribute(A.OUTPUT_TOKENS, self._usage[1])
        if self._cost is not None:
            run.set_attribute(A.COST_USD, self._cost)
        if error is not None:
            _error(run, error)
        run.end(end_time=ns(ts))
        self._ended = True

    def _children(self) -> Iterator[_Open]:
        """Child spans still open, newest first (so each task's context unwinds in order)."""
        opened = [*self._tools.values(), *([self._chat] if self._chat else [])]
        self._tools.clear()
        self._chat = None
        return reversed(opened)

    def _child(self, name: str, event: Any, kind: SpanKind, **attributes: Any) -> Span:
        base = {A.RUN_ID: self._run_id, A.STEP: event.step}
        return self._tracer.start_span(
            name,
            context=self._run_ctx,
            kind=kind,
            start_time=ns(event.ts),
            attributes=_present({**base, **attributes}),
        )

    # -- events ---------------------------------------------------------------------------
    def _llm_called(self, event: Any, run: Span) -> None:
        model = _split(event.model)[1]
        span = self._child(
            f"{A.SPAN_CHAT} {model}",
            event,
            SpanKind.CLIENT,
            **{**self._model_attrs, A.OPERATION_NAME: "chat", A.REQUEST_MODEL: model},
        )
        self._chat = _Open(span)

    def _llm_completed(self, event: Any, run: Span) -> None:
        chat, self._chat = self._chat, None
        usage = event.usage
        if usage is not None:
            self._usage[0] += usage.input_tokens
            self._usage[1] += usage.output_tokens
            if usage.cost_usd is not None:
                self._cost = (self._cost or 0.0) + usage.cost_usd
        if chat is None:
            return
        if usage is not None:
            chat.span.set_attribute(A.INPUT_TOKENS, usage.input_tokens)
            chat.span.set_attribute(A.OUTPUT_TOKENS, usage.output_tokens)
            if usage.cost_usd is not None:
                chat.span.set_attribute(A.COST_USD, usage.cost_usd)
        chat.end(event.ts)

    def _policy(self, event: Any, run: Span) -> None:
        # The event comes right after the evaluation, and the run's previous event right
        # before it (nothing else happens in between): those two times bound it.
        start = self._last_ts if self._last_ts is not None else event.ts
        target = event.tool_name or A.MODEL_CALL
        attributes = {
            A.RUN_ID: self._run_id,
            A.STEP: event.step,
            A.POLICY_EVENT: event.event_type,
            A.POLICY_ACTION: event.action,
            A.POLICY_RULE: event.rule_id,
            A.POLICY_MATCHED: list(event.matched_rules),
            A.POLICY_REASON: event.reason,
            A.TOOL_NAME: event.tool_name,
            A.TOOL_CALL_ID: event.tool_call_id,
        }
        span = self._tracer.start_span(
            f"{A.SPAN_POLICY} {target}",
            context=self._run_ctx,
            start_time=ns(min(start, event.ts)),
            attributes=_present(attributes),
        )
        span.end(end_time=ns(event.ts))

    def _tool_started(self, event: Any, run: Span) -> None:
        span = self._child(
            f"{A.SPAN_TOOL} {event.tool_name}",
            event,
            SpanKind.INTERNAL,
            **{
                A.OPERATION_NAME: "execute_tool",
                A.TOOL_NAME: event.tool_name,
                A.TOOL_CALL_ID: event.tool_call_id,
                A.TOOL_TYPE: "function",
            },
        )
        self._tools[(event.step, event.tool_call_id)] = _Open(span)

    def _tool_completed(self, event: Any, run: Span) -> None:
        started = self._tools.pop((event.step, event.tool_call_id), None)
        if started is not None:
            started.end(event.ts, None if event.success else event.error or "tool failed")
            return
        # Nothing ran (denied, refused, or an outcome recorded before): a note on the run.
        note = {
            A.TOOL_NAME: event.tool_name,
            A.TOOL_CALL_ID: event.tool_call_id,
            "afk.tool_call.denied": event.denied,
            "afk.tool_call.error": event.error,
        }
        run.add_event("afk.tool_call.not_executed", _present(note), timestamp=ns(event.ts))

    def _requested(self, event: Any, run: Span) -> None:
        self._waits.opened(event.request, self._run_ctx)

    def _resolved(self, event: Any, run: Span) -> None:
        self._waits.decided(event, self._run_ctx)

    def _vote(self, event: Any, run: Span) -> None:
        self._waits.vote(event.request_id, event.ts, event.approver)
        self._note(event, run)

    def _note(self, event: Any, run: Span) -> None:
        """Events with no span of their own: pauses, reminders, grants, refused answers."""
        fields = {k: v for k, v in _NOTES[event.type](event).items() if v is not None}
        run.add_event(f"afk.{event.type}", fields, timestamp=ns(event.ts))

    def _completed(self, event: Any, run: Span) -> None:
        self._end(event.ts, event.state)

    def _failed(self, event: Any, run: Span) -> None:
        self._end(event.ts, "failed", f"{event.error_type}: {event.error}")

    def _cancelled(self, event: Any, run: Span) -> None:
        self._end(event.ts, "cancelled")


def _error(span: Span, error: str) -> None:
    """ERROR status; ``error.type`` is the exception's class when the text starts with one."""
    head = error.split(":", 1)[0].strip()
    span.set_attribute(A.ERROR_TYPE, head if head.isidentifier() else "_OTHER")
    span.set_status(Status(StatusCode.ERROR, error))


def _model_attributes(model: object) -> dict[str, Any]:
    provider, name = _split(model_label(model))
    own = getattr(model, "provider", None)
    return _present(
        {A.PROVIDER_NAME: own if isinstance(own, str) else provider, A.REQUEST_MODEL: name}
    )


def _pending(snapshot: RunSnapshot | None) -> list[Request]:
    """The requests a resumed run was waiting for when it paused."""
    step = snapshot.pending_step if snapshot is not None else None
    if step is None:
        return []
    found = [c.request for c in step.calls if c.request is not None and c.settled is None]
    if step.model_request is not None:
        found.append(step.model_request)
    return found


_NOTES: dict[str, Callable[[Any], dict[str, Any]]] = {
    "run_paused": lambda e: {"afk.request_ids": list(e.request_ids)},
    "run_resumed": lambda e: {"afk.request_ids": list(e.request_ids)},
    "approval_reminder": lambda e: {
        A.REQUEST_ID: e.request_id,
        "afk.reminder.kind": e.kind,
        A.APPROVERS: list(e.approvers),
    },
    "vote_recorded": lambda e: {A.REQUEST_ID: e.request_id, A.APPROVER: e.approver},
    "vote_refused": lambda e: {
        A.REQUEST_ID: e.request_id,
        A.APPROVER: e.approver,
        "afk.vote.why": e.why,
    },
    "grant_used": lambda e: {
        "afk.grant.id": e.grant_id,
        A.TOOL_NAME: e.tool_name,
        A.TOOL_CALL_ID: e.tool_call_id,
    },
    "warning": lambda e: {"afk.warning.message": e.message, "afk.warning.source": e.source},
}

_HANDLERS: dict[str, Callable[[SpanObserver, Any, Span], None]] = {
    "llm_called": SpanObserver._llm_called,
    "llm_completed": SpanObserver._llm_completed,
    "policy_decision": SpanObserver._policy,
    "tool_started": SpanObserver._tool_started,
    "tool_completed": SpanObserver._tool_completed,
    "approval_requested": SpanObserver._requested,
    "user_input_requested": SpanObserver._requested,
    "approval_resolved": SpanObserver._resolved,
    "user_input_resolved": SpanObserver._resolved,
    "vote_recorded": SpanObserver._vote,
    "run_completed": SpanObserver._completed,
    "run_failed": SpanObserver._failed,
    "run_cancelled": SpanObserver._cancelled,
    **{kind: SpanObserver._note for kind in _NOTES if kind != "vote_recorded"},
}
