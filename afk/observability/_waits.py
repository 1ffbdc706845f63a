"""Approval-wait spans: from a request's creation to its decision, in whichever process
sees the decision.

A span cannot be ended by another process, so none is started when a request opens: the
process that sees the decision creates it then, with the request's ``created_at`` as its
start and, for a request opened before a pause, the paused process's run span (from the
stored trace context) as its parent. A denial or an expiry is not an error; a decision
that is ``decided_by="error"`` (a provider that raised, a record that does not verify) is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import Status, StatusCode, Tracer

from afk.approvals.requests import ApprovalRequest, Request
from afk.observability import attributes as A


def ns(ts: float) -> int:
    """Epoch seconds (afk's event times) as OpenTelemetry's epoch nanoseconds."""
    return int(ts * 1e9)


@dataclass(slots=True, kw_only=True)
class _Wait:
    request: Request
    parent: Context | None  # None: the run span of the process that sees the decision
    votes: list[tuple[float, str | None]] = field(default_factory=list)


class Waits:
    """The open requests of one run, in this process, and the spans of their waits."""

    __slots__ = ("_open", "_run_id", "_tracer")

    def __init__(
        self, tracer: Tracer, run_id: str, pending: Iterable[Request], parent: Context | None
    ) -> None:
        self._tracer = tracer
        self._run_id = run_id
        self._open = {r.request_id: _Wait(request=r, parent=parent) for r in pending}

    def opened(self, request: Request, parent: Context) -> None:
        self._open[request.request_id] = _Wait(request=request, parent=parent)

    def vote(self, request_id: str, ts: float, approver: str | None) -> None:
        wait = self._open.get(request_id)
        if wait is not None:
            wait.votes.append((ts, approver))

    def decided(self, event: Any, run: Context) -> None:
        """An ``approval_resolved`` / ``user_input_resolved`` event: the wait's span."""
        wait = self._open.pop(event.request_id, None)
        if wait is None:  # not seen opening (should not happen): a point in time, still
            self._span(event, None, event.ts, run, [])
            return
        request = wait.request
        self._span(event, request, request.created_at, wait.parent or run, wait.votes)

    def _span(
        self,
        event: Any,
        request: Request | None,
        start: float,
        parent: Context,
        votes: list[tuple[float, str | None]],
    ) -> None:
        approval = request is None or isinstance(request, ApprovalRequest)
        target = (request.tool_name if request is not None else None) or A.MODEL_CALL
        name = f"{A.SPAN_APPROVAL if approval else A.SPAN_USER_INPUT} {target}"
        span = self._tracer.start_span(
            name,
            context=parent,
            start_time=ns(start),
            attributes=self._attributes(event, request, start),
        )
        for at, who in votes:
            span.add_event("afk.vote_recorded", _present({A.APPROVER: who}), timestamp=ns(at))
        if event.decided_by == "error":
            span.set_status(Status(StatusCode.ERROR, event.decision.reason or "decision failed"))
            span.set_attribute(A.ERROR_TYPE, "decision_error")
        span.end(end_time=ns(event.ts))

    def _attributes(self, event: Any, request: Request | None, start: float) -> dict[str, Any]:
        found: dict[str, Any] = {
            A.RUN_ID: self._run_id,
            A.STEP: event.step,
            A.REQUEST_ID: event.request_id,
            A.DECISION: event.decision.kind,
            A.APPROVER: event.approver,
            A.DECIDED_BY: event.decided_by,
            A.WAIT_SECONDS: max(event.ts - start, 0.0),
            A.EXPIRED: event.decided_by == "timeout",
        }
        if request is not None:
            found[A.REQUEST_KIND] = request.kind
            found[A.REQUEST_RULE] = request.rule_id
            found[A.TOOL_NAME] = request.tool_name
            found[A.TOOL_CALL_ID] = request.tool_call_id
            if isinstance(request, ApprovalRequest) and request.approvers:
                found[A.APPROVERS] = list(request.approvers)
        return _present(found)


def _present(values: dict[str, Any]) -> dict[str, Any]:
    """Attributes without the unknown ones: OpenTelemetry drops (and warns about) None."""
    return {k: v for k, v in values.items() if v is not None}
