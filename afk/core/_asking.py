"""Asking humans: opening requests, waiting for decisions under the runner's timeout,
applying fallbacks, and recording each decision once (in the store too, when there is one).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from afk._ids import new_id
from afk.agents.policy import PolicyDecision
from afk.approvals.approvers import expand_approvers
from afk.approvals.decide import Decided, Vote, VoteCounted, decide, eligible
from afk.approvals.principal import Principal, asserted
from afk.approvals.providers import InMemoryInteractiveProvider
from afk.approvals.requests import (
    ApprovalDecision,
    ApprovalRequest,
    DecidedBy,
    Decision,
    Request,
    UserInputDecision,
    UserInputRequest,
)
from afk.canonical import json_copy
from afk.core._fallback import denial, fallback_decision
from afk.core.events import (
    ApprovalReminder,
    ApprovalRequested,
    ApprovalResolved,
    RunPaused,
    RunResumed,
    UserInputRequested,
    UserInputResolved,
    VoteRecorded,
    VoteRefused,
)
from afk.errors import AfkError, InteractionError, RunError

if TYPE_CHECKING:
    from afk.core._durable import Durable
    from afk.core._emitter import ActiveClock, Emitter
    from afk.core._facts import RunFacts

# How often a run waiting in interactive mode checks the store for a decision made by
# another process (Postgres wakes it sooner through LISTEN/NOTIFY).
STORE_POLL_S = 0.25


class Asking:
    """The run's open requests and the wait for each decision."""

    __slots__ = ("_clock", "_durable", "_emitter", "facts", "open_requests", "paused")

    def __init__(
        self,
        facts: RunFacts,
        *,
        emitter: Emitter,
        clock: ActiveClock,
        durable: Durable | None,
        paused: tuple[str, ...] = (),
    ) -> None:
        self.facts = facts
        self._emitter = emitter
        self._clock = clock  # stopped while the run waits for a human, restarted after
        self._durable = durable
        self.open_requests: list[Request] = []  # a handful at most; a list is smallest
        self.paused = paused

    def new_request(
        self,
        step: int,
        decision: PolicyDecision,
        *,
        tool_name: str | None,
        tool_args: dict[str, Any],
        tool_call_id: str | None,
        tool_schema: dict[str, Any] | None = None,
    ) -> Request:
        facts = self.facts
        now = time.time()
        common: dict[str, Any] = dict(
            request_id=new_id("req_"),
            run_id=facts.run_id,
            step=step,
            agent_name=facts.agent_name,
            thread_id=facts.thread_id,
            tool_name=tool_name,
            tool_args=json_copy(tool_args),
            tool_call_id=tool_call_id,
            tool_schema=tool_schema,
            rule_id=decision.rule_id,
            reason=decision.reason,
            created_at=now,
            requested_by=facts.requested_by,
            path=facts.path,
        )
        if decision.action == "request_user_input":
            return UserInputRequest(
                **common,
                expires_at=now + facts.config.input_expiry_s,
                prompt=decision.reason or "Input requested",
                input_target_arg=decision.input_target_arg,
            )
        directory, settings = facts.directory, decision.approval
        # The rule's settings, resolved for this request: groups expanded to the people in
        # them now, delays turned into instants.
        return ApprovalRequest(
            **common,
            expires_at=now + (settings.expires_after_s or facts.config.approval_expiry_s),
            approvers=expand_approvers(settings.approvers, directory),
            quorum=settings.quorum,
            allow_self_approval=settings.allow_self_approval,
            remind_at=_after(now, settings.remind_after_s),
            escalate_at=_after(now, settings.escalate_after_s),
            escalate_to=expand_approvers(settings.escalate_to, directory),
            deny_decides=settings.deny_decides,
            allowed_decisions=settings.allowed_decisions,
        )

    async def open(self, step: int, requests: Sequence[Request]) -> list[Any]:
        """Announce a step's requests together; pause once, after the last of them.

        A provider whose ``request_*`` is a plain function (it registers the request when
        called, like InMemoryInteractiveProvider) is asked before the request is announced,
        so its ``pending()`` and ``notify`` hooks see it. Returns those awaitables, by request.
        """
        emit = self._emitter.emit
        asked: list[Any] = []
        for request in requests:
            self.open_requests.append(request)
            asked.append(self._ask_early(request))
            if isinstance(request, ApprovalRequest):
                await emit(ApprovalRequested, step, request=request)
            else:
                await emit(UserInputRequested, step, request=request)
        if requests and not self.facts.headless:
            self.paused = tuple(r.request_id for r in requests)
            await emit(RunPaused, step, request_ids=self.paused)
            self._clock.pause()
        return asked

    def _ask_early(self, request: Request) -> Any:
        if self.facts.headless or self.facts.external:
            return None
        fn = self._provider_method(request)
        if inspect.iscoroutinefunction(fn):
            # Started now, in the step's call order: a provider that shows one request at a
            # time (the console) then asks in the order the model made the calls, not in the
            # order each call's store read happens to finish.
            return asyncio.ensure_future(fn(request))
        return fn(request)

    def _provider_method(self, request: Request) -> Any:
        provider = self.facts.provider
        if isinstance(request, ApprovalRequest):
            return provider.request_approval
        return provider.request_user_input

    async def ask(
        self, step: int, request: Request, *, asked: Any = None, stoppable: Any = None
    ) -> tuple[Decision, DecidedBy]:
        """Wait for the decision on one open request and record it.

        The runner enforces the timeout; a provider that raises counts as a deny. The
        provider wait is inline on purpose: a waiting run's memory is mostly its frames.
        ``stoppable.stopped_by_sibling`` tells whether a cancellation came from a sibling's
        ``stop_run`` (the request then closes with a fallback deny) rather than from the run
        being cancelled.
        """
        durable = self._durable
        got: tuple[Decision, DecidedBy]
        limit: asyncio.Timeout | None = None
        try:
            if self.facts.headless:
                got = (fallback_decision(self.facts.config, request, "headless mode"), "fallback")
                if durable is not None:  # the stored request must not stay pending
                    got = await durable.record(request, *got)
            elif durable is not None:
                got = await self._from_store(request, asked)
            else:
                reminders = self._remind(step, request)
                try:
                    async with asyncio.timeout(max(request.expires_at - time.time(), 0.0)) as limit:
                        if asked is None:
                            asked = self._provider_method(request)(request)
                        got = await self._vote_in_memory(step, request, await asked)
                finally:
                    if reminders is not None:
                        reminders.cancel()
        except asyncio.CancelledError:
            if stoppable is None or not stoppable.stopped_by_sibling:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            got = await self._closed(request, "run stopped", "fallback")
        except TimeoutError:
            if limit is not None and limit.expired():
                got = await self._closed(request, "timed out", "timeout")
            else:
                got = await self._closed(request, "provider timeout", "error")
        except Exception as exc:
            why = f"interaction provider raised {type(exc).__name__}: {exc}"
            got = await self._closed(request, why, "error")
        decision, decided_by = got
        await self.record(step, request, decision, decided_by)
        return decision, decided_by

    def _remind(self, step: int, request: Request) -> asyncio.Task[None] | None:
        """While waiting in this process, announce reminder and escalation times as events."""
        due = _due_times(request)
        if not due:
            return None
        return asyncio.get_running_loop().create_task(self._announce(step, request, due))

    async def _announce(
        self, step: int, request: Request, due: list[tuple[float, Literal["remind", "escalate"]]]
    ) -> None:
        for at, kind in due:
            await asyncio.sleep(max(at - time.time(), 0.0))
            await self._emitter.emit(
                ApprovalReminder,
                step,
                request_id=request.request_id,
                kind=kind,
                approvers=eligible(request, time.time()) or (),
            )

    async def _from_store(self, request: Request, early: Any) -> tuple[Decision, DecidedBy]:
        """With a store the store is the truth: a decision made by any process (the CLI, a
        web inbox, this process's provider) is read from there, and the first one stands.
        The provider's answer is one vote, recorded through the same path as ``resolve``;
        when it decides nothing (refused, or short of a quorum) the wait goes on."""
        durable = self._durable
        assert durable is not None
        stored = await durable.stored_decision(request)
        if stored is not None:
            if isinstance(early, asyncio.Future):  # decided already: ask nobody
                early.cancel()
            return stored
        if self.facts.external:
            raise RunError(f"request {request.request_id} is still pending on resume")
        if early is None:
            early = self._provider_method(request)(request)
        asked: asyncio.Future[Any] | None = asyncio.ensure_future(early)
        try:
            while True:
                left = request.expires_at - time.time()
                if left <= 0:
                    timed_out = fallback_decision(self.facts.config, request, "timed out")
                    return await durable.record(request, timed_out, "timeout")
                watch = asyncio.ensure_future(
                    durable.wait_for_store(request, min(left, STORE_POLL_S * 40))
                )
                waiting = {watch} if asked is None else {asked, watch}
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                watch.cancel()
                if asked is not None and asked.done():
                    answered, asked = asked, None
                    got = await self._provider_answer(request, answered)
                    if got is not None:
                        return got
                stored = await durable.stored_decision(request)
                if stored is not None:
                    return stored
        finally:
            if asked is not None and not asked.done():
                asked.cancel()
                self._expire(request.request_id, "decided elsewhere")

    async def _provider_answer(
        self, request: Request, asked: asyncio.Future[Any]
    ) -> tuple[Decision, DecidedBy] | None:
        durable = self._durable
        assert durable is not None
        try:
            answer = asked.result()
        except Exception as exc:
            why = f"interaction provider raised {type(exc).__name__}: {exc}"
            return await durable.record(request, denial(request, why), "error")
        checked = _checked(request, answer, self.facts.provider)
        if checked is not None:  # tallied in memory, or not a decision at all
            who = answer.vote.principal if isinstance(answer, Decided) else None
            return await durable.record(request, *checked, principal=who)
        from afk.core import _durable_api

        vote = self._vote_of(answer)
        if isinstance(vote, InteractionError):
            refused = Vote(principal=None, decision=answer, at=time.time())
            await _durable_api.log_refused(durable.store, request, refused, vote)
            await self._announce_vote(request.step, request, refused, vote)
            return None
        try:
            await _durable_api.resolve(durable.store, request.request_id, answer, vote.principal)
        except InteractionError as exc:  # recorded in the ledger by resolve()
            await self._announce_vote(request.step, request, vote, exc)
            return None
        return await durable.stored_decision(request)

    async def _vote_in_memory(
        self, step: int, request: Request, answer: Any
    ) -> tuple[Decision, DecidedBy]:
        """No store: the provider's answer is one vote through the decision rule. One that
        decides nothing leaves the request open until it expires (the fallback then applies)."""
        checked = _checked(request, answer, self.facts.provider)
        if checked is not None:
            return checked
        vote = self._vote_of(answer)
        outcome: Decided | VoteCounted | InteractionError
        if isinstance(vote, InteractionError):
            outcome, vote = vote, Vote(principal=None, decision=answer, at=time.time())
        else:
            try:
                outcome = decide(request, vote, now=vote.at)
            except InteractionError as exc:
                outcome = exc
        if isinstance(outcome, Decided):
            return outcome.decision, "human"
        await self._announce_vote(step, request, vote, outcome)
        await asyncio.get_running_loop().create_future()  # until the runner's timeout
        raise AssertionError("unreachable")

    def _vote_of(self, decision: Decision) -> Vote | InteractionError:
        """The provider's answer as a vote by the principal it names: the provider's own
        ``principal`` (e.g. the console's OS account), else the decision's ``approver`` as
        the provider vouches for it, else anonymous."""
        provider = self.facts.provider
        own = getattr(provider, "principal", None)
        try:
            if isinstance(own, Principal):
                who: Principal | None = own
            else:
                who = asserted(decision.approver, f"provider:{type(provider).__name__}")
        except InteractionError as exc:
            return exc
        return Vote(principal=who, decision=decision, at=time.time())

    async def _announce_vote(
        self, step: int, request: Request, vote: Vote, outcome: VoteCounted | InteractionError
    ) -> None:
        principal = vote.principal
        who = principal.id if principal else None
        how = principal.authenticated_by if principal else None
        if isinstance(outcome, VoteCounted):
            await self._emitter.emit(
                VoteRecorded,
                step,
                request_id=request.request_id,
                approver=who,
                authenticated_by=how,
                needed=outcome.needed,
            )
            return
        await self._emitter.emit(
            VoteRefused,
            step,
            request_id=request.request_id,
            approver=who,
            authenticated_by=how,
            why=f"{type(outcome).__name__}: {outcome}",
        )

    async def record(
        self, step: int, request: Request, decision: Decision, decided_by: DecidedBy
    ) -> None:
        if request in self.open_requests:
            self.open_requests.remove(request)
        grants = self.facts.grants
        if grants is not None and decided_by == "human" and getattr(decision, "grant", None):
            await grants.add(request, decision)
        event_cls = ApprovalResolved if isinstance(request, ApprovalRequest) else UserInputResolved
        emit = self._emitter.emit
        await emit(
            event_cls,
            step,
            request_id=request.request_id,
            decision=decision,
            approver=decision.approver,
            decided_by=decided_by,
        )
        if self.paused and not any(r.request_id in self.paused for r in self.open_requests):
            ids, self.paused = self.paused, ()
            await emit(RunResumed, step, request_ids=ids)
            self._clock.resume()

    async def _closed(
        self, request: Request, why: str, by: DecidedBy
    ) -> tuple[Decision, DecidedBy]:
        """Close a request the run stops waiting for. A decision accepted first still wins."""
        late = self._expire(request.request_id, why)
        if late is not None:
            got: tuple[Decision, DecidedBy] = (late, "human")
        elif by == "timeout":
            got = (fallback_decision(self.facts.config, request, why), by)
        else:
            got = (denial(request, why), by)
        if self._durable is not None:
            got = await self._durable.record(request, *got)
        return got

    def _expire(self, request_id: str, note: str) -> Decision | None:
        expire = getattr(self.facts.provider, "expire", None)
        if not callable(expire):
            return None
        late = expire(request_id, note)
        return late if isinstance(late, ApprovalDecision | UserInputDecision) else None

    async def close_all(self, why: str) -> None:
        """The run ends: every open request is closed, each with a recorded decision.

        Best effort by design: this runs while the run is failing or being cancelled, maybe
        because the store itself failed, and must not turn that ending into an exception.
        """
        for request in list(self.open_requests):
            try:
                decision, by = await self._closed(request, why, "fallback")
            except AfkError:
                decision, by = denial(request, why), "fallback"
            await self.record(request.step, request, decision, by)


def _due_times(request: Request) -> list[tuple[float, Literal["remind", "escalate"]]]:
    remind = getattr(request, "remind_at", None)
    escalate = getattr(request, "escalate_at", None)
    due: list[tuple[float, Literal["remind", "escalate"]]] = []
    if remind is not None:
        due.append((remind, "remind"))
    if escalate is not None:
        due.append((escalate, "escalate"))
    return sorted(due)


def _after(now: float, delay: float | None) -> float | None:
    return None if delay is None else now + delay


def _checked(request: Request, answer: Any, provider: Any) -> tuple[Decision, DecidedBy] | None:
    """A provider's answer that needs no vote: one already through the decision rule (the
    in-memory provider tallies its own votes), or a deny when it is not the decision type the
    request needs. None: a decision to count as a vote."""
    if isinstance(answer, Decided):
        if type(provider) is InMemoryInteractiveProvider:  # ours: it ran decide() itself
            return answer.decision, "human"
        return _confirmed(request, answer)
    expected = ApprovalDecision if isinstance(request, ApprovalRequest) else UserInputDecision
    if isinstance(answer, expected):
        return None
    why = f"interaction provider returned {type(answer).__name__}, not {expected.__name__}"
    return denial(request, why), "error"


def _confirmed(request: Request, answer: Decided) -> tuple[Decision, DecidedBy]:
    """An outcome a provider says it tallied is checked again against the decision rule:
    its votes must decide this request (a provider cannot hand over a decision nobody could
    have made). A deny otherwise."""
    prior = [v for v in answer.votes if v is not answer.vote]
    try:
        again = decide(request, answer.vote, votes=prior, now=answer.vote.at)
    except InteractionError as exc:
        return denial(request, f"provider's decision refused: {exc}"), "error"
    if not isinstance(again, Decided) or again.decision != answer.decision:
        return denial(request, "provider's decision is not what its votes decide"), "error"
    return again.decision, "human"
