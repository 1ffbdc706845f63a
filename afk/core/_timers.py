"""Durable reminders and escalations coming due: what ``Runner.fire_due_timers`` (and so a
worker) does. Not among the decision's modules (afk.core._durable_api): an approver's
``afk approvals approve`` builds none of this."""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from afk.approvals._rows import load_request
from afk.approvals.decide import eligible
from afk.audit.entries import to_log
from afk.store._seal import record_ok, tamper_log

if TYPE_CHECKING:
    from afk.approvals.requests import Request
    from afk.store.store import RunStore


@dataclass(frozen=True, slots=True, kw_only=True)
class Reminder:
    """A pending request's reminder or escalation came due (sent to ``Runner(notifier=)``)."""

    kind: Literal["remind", "escalate"]
    request: Request
    approvers: tuple[str, ...]  # who may decide now (widened when escalated)
    due_at: float


async def fire_due_timers(store: RunStore, notifier: Any) -> list[Reminder]:
    from afk.audit.entries import ReminderSent, RequestEscalated

    now = time.time()
    sent = []
    for timer in await store.claim_due_timers(now=now):
        record = await store.get_request(timer.request_id)
        if record is None:
            continue
        if not record_ok(store.keys, record):  # its approvers may be forged: tell no one
            await store.log_refusal(tamper_log(record, f"send a {timer.kind} timer"))
            continue
        request = load_request(record)
        reminder = Reminder(
            kind=timer.kind,
            request=request,
            approvers=eligible(request, now) or (),
            due_at=timer.due_at,
        )
        sent_as = RequestEscalated if timer.kind == "escalate" else ReminderSent
        entry = sent_as(
            run_id=request.run_id,
            request_id=request.request_id,
            approvers=reminder.approvers,
            at=now,
        )
        await store.log_refusal(to_log(entry))  # the decision log's generic append
        if notifier is not None:
            outcome = notifier(reminder)
            if inspect.isawaitable(outcome):
                await outcome
        sent.append(reminder)
    return sent
