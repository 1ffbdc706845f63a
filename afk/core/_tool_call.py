"""The tool calls of one model step: gated each on its own, run side by side.

Per call, in order: canonical arguments → policy (always, audited) → argument checks (if it
would ask a human or run) → request and decision → execution. Results go back in the model's
call order. Rules, approvers, events and records all see the canonical arguments: validated,
defaults filled in, as JSON, so nobody is shown something other than what runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from afk.agents.policy import PolicyDecision, PolicyEvent
from afk.approvals.grants import scope_values
from afk.approvals.requests import (
    ApprovalDecision,
    CallApproval,
    Request,
    ToolAnswer,
    UserInputDecision,
    UserInputRequest,
)
from afk.canonical import json_copy, jsonable
from afk.core._call import (
    DENIED,
    UNKNOWN_OUTCOME,
    Call,
    discard,
    normalize_call,
    tool_message,
)
from afk.core._snapshot import CallState, StepState, args_digest
from afk.core._tool_asks import ChildPaused, ToolAsks, ToolPaused, answer_of
from afk.core.events import GrantUsed, ToolCompleted, ToolStarted
from afk.core.result import ToolExecution
from afk.errors import InvalidArgumentsError, RunError
from afk.llms.messages import ToolCall, ToolMessage
from afk.tools.tool import Tool, ToolArgumentsInvalid, ToolContext

if TYPE_CHECKING:
    from afk.core._asking import Asking
    from afk.core._durable import Durable
    from afk.core._emitter import ActiveClock, Emitter
    from afk.core._facts import RunFacts
    from afk.core._gate import PolicyGate


@dataclass(slots=True, kw_only=True)
class Prepared:
    """A step's calls after policy and validation: the requests it opened (announced, not
    yet decided), for the run loop to checkpoint before :meth:`ToolCallRunner.complete`."""

    step: int
    calls: list[Call]
    requests: list[Request]

    def state(self) -> StepState:
        """The step as its checkpoint holds it."""
        return step_state(self.step, self.calls)

    def discard(self) -> None:
        """The step ends before its calls are decided: stop asking the provider."""
        discard_asked(self.calls)


@dataclass(frozen=True, slots=True, kw_only=True)
class StepDone:
    """A step's tool messages for the model, in call order; ``stop``: the run must stop.
    ``asked``: some tool asked a human from inside its body and waits for the answer: the
    step is not done; the loop checkpoints ``asked`` and hands it to :meth:`complete` again
    (or pauses the run)."""

    messages: list[ToolMessage]
    stop: bool
    asked: Prepared | None = None


class ToolCallRunner:
    """Gates, asks about and runs the tool calls of one run's steps. ``executions``: every
    call's record, in call order, for the run's result and its snapshots."""

    __slots__ = ("_asking", "_clock", "_durable", "_emitter", "_facts", "_gate", "executions")

    def __init__(
        self,
        facts: RunFacts,
        *,
        emitter: Emitter,
        clock: ActiveClock,
        gate: PolicyGate,
        asking: Asking,
        durable: Durable | None,
    ) -> None:
        self._facts = facts
        self._emitter = emitter
        self._clock = clock
        self._gate = gate
        self._asking = asking
        self._durable = durable
        self.executions: list[ToolExecution] = []

    async def prepare_step(self, step: int, calls: Sequence[ToolCall]) -> Prepared:
        """Policy for every call, then validation and requests, announced together.

        The caller checkpoints the step when it opened requests, then hands it to
        :meth:`complete` (a separate await, so a waiting run carries one frame less).
        """
        tools = self._facts.tools
        items = [Call(call=c, tool=tools.get(c.name), position=i) for i, c in enumerate(calls)]
        for item in items:
            normalize_call(item)
            item.policy = await self._evaluate(step, item)
        rule_stop = next((i.policy for i in items if i.policy and i.policy.stop_run), None)
        requests: list[Request] = []
        for item in items:
            await self._prepare(step, item, rule_stop, opened=len(requests))
            if item.request is not None:
                requests.append(item.request)
        for item, asked in zip(
            (i for i in items if i.request is not None),
            await self._asking.open(step, requests),
            strict=True,
        ):
            item.asked = asked
        return Prepared(step=step, calls=items, requests=requests)

    async def run_allowed(self, prepared: Prepared) -> bool:
        """External mode, before the run pauses: run the step's calls that need nobody.
        Returns whether any ran (the step is then checkpointed again)."""
        allowed = [i for i in prepared.calls if i.execution is None and i.request is None]
        for item in allowed:
            await self._execute(prepared.step, item, item.arguments)
        return bool(allowed)

    async def resume_step(self, state: StepState) -> StepDone:
        """Finish the step a run paused in, from its checkpoint: settled calls keep their
        outcome, gated ones take their decision from the store, and every other call is put
        to the policy again: a snapshot saying "allow" proves nothing on its own. One the
        policy now denies is denied; one it now gates runs only if a standing grant covers
        it (as a fresh call would), else it is denied (fail closed: it was in no stored
        request, so no human ever saw it)."""
        items = []
        for saved in state.calls:
            item = Call(call=saved.call, tool=self._facts.tools.get(saved.call.name))
            item.policy, item.request = saved.policy, saved.request
            item.questions, item.answers = saved.asked, saved.answers
            item.child, item.child_waits = saved.child, saved.child_waits
            item.entries = saved.entries
            if item.waits_on_question and saved.settled is None:
                self._asking.open_requests.append(item.questions[-1])
            if saved.settled is not None:
                item.execution = saved.settled
            elif saved.request is not None:
                self._asking.open_requests.append(saved.request)
                await self._recheck(state.step, item)
            else:
                normalize_call(item)
                policy = item.policy = await self._evaluate(state.step, item)
                if policy.action == "deny":
                    item.stop = policy.stop_run
                    await self._denied(state.step, item, policy.reason or "denied by policy")
                elif policy.action == "request_user_input" or (
                    policy.action == "request_approval"
                    and not await self._granted(state.step, item)
                ):
                    why = (
                        f"the policy now gates this call ({policy.action}, rule "
                        f"{policy.rule_id!r}) and it was not in any stored request"
                    )
                    await self._denied(state.step, item, why)
            items.append(item)
        return await self.complete(state.step, items)

    async def _recheck(self, step: int, item: Call) -> None:
        """A gated call whose run waited for its decision meets the policy of now: a deny
        rule added meanwhile stops it, whatever the human decided. Only a deny counts: a
        rule removed meanwhile cannot skip a human's deny, nor a request still open."""
        normalize_call(item)
        now = await self._evaluate(step, item)
        if now.action != "deny":
            return
        item.policy, item.stop = now, now.stop_run
        why = now.reason or "denied by policy"
        await self._denied(step, item, f"{why} (policy now denies it: rule {now.rule_id!r})")

    async def complete(self, step: int, items: list[Call]) -> StepDone:
        """Decide and run every unsettled call; the results for the model in call order.

        The run loop does the same inline (:meth:`settle`, then :meth:`done`), so that a run
        waiting for a human carries no frame of this method."""
        try:
            await self.settle(step, items)
        finally:
            discard_asked(items)
        return self.done(step, items)

    def settle(self, step: int, items: list[Call]) -> Awaitable[None]:
        """What decides and runs the step's unsettled calls: the one call's own coroutine
        (no frame around it while it waits), else a task group over them. The caller awaits
        it, then calls :func:`discard_asked` (also when it raises) and :meth:`done`."""
        for position, item in enumerate(items):
            item.position = position  # a resumed step lists its calls in call order too
            if item.args is None:
                normalize_call(item)
        if len(items) == 1:
            if items[0].execution is None:
                return self._finish(step, items[0], items)
            return _nothing()
        return self._finish_all(step, items)

    async def _finish_all(self, step: int, items: list[Call]) -> None:
        async with asyncio.TaskGroup() as group:
            for item in items:
                if item.execution is None:
                    item.task = group.create_task(self._finish(step, item, items))

    def done(self, step: int, items: list[Call]) -> StepDone:
        """The settled step's messages; or, when a tool waits on its question, the step
        again (``asked``) with the requests to store."""
        if any(item.execution is None for item in items):  # a tool waits on its question
            requests = new_questions(items)
            return StepDone(
                messages=[], stop=False, asked=Prepared(step=step, calls=items, requests=requests)
            )
        messages = []
        for item in items:
            assert item.execution is not None
            messages.append(tool_message(item.execution, item.request))
            self.executions.append(item.execution)
        return StepDone(messages=messages, stop=any(i.stop for i in items))

    async def _evaluate(
        self, step: int, item: Call, args: dict[str, Any] | None = None
    ) -> PolicyDecision:
        """The policy's decision on the call, with its own arguments or ``args``."""
        facts = self._facts
        event = PolicyEvent(
            event_type="tool_before_execute",
            run_id=facts.run_id,
            thread_id=facts.thread_id,
            step=step,
            agent_name=facts.agent_name,
            tool_name=item.call.name,
            tool_args=json_copy(item.arguments if args is None else args),
            tool_call_id=item.call.id,
            context=facts.context,
            tool_annotations=(item.tool or Tool).annotations,
            tool_server=(item.tool or Tool).server,
        )
        return await self._gate.decide(step, event)

    async def _prepare(
        self, step: int, item: Call, rule_stop: PolicyDecision | None, *, opened: int
    ) -> None:
        """Settle denied and malformed calls; open a request for gated ones. ``opened``:
        requests this step opened so far (they are not among the run's open ones yet)."""
        policy = item.policy
        assert policy is not None
        if policy.action == "deny":
            item.stop = policy.stop_run
            await self._denied(step, item, policy.reason or "denied by policy")
            return
        if rule_stop is not None:
            item.stop = True
            await self._denied(step, item, f"run stopped by rule {rule_stop.rule_id!r}")
            return
        if item.error is not None:  # whatever the policy said: nothing to ask about or run
            await self._settle(step, item, item.arguments, error=f"invalid arguments: {item.error}")
            return
        if item.tool is not None and not item.canonical:  # unknown tools fail at execution
            ignore = policy.input_target_arg if policy.action == "request_user_input" else None
            if not await self._valid(step, item, ignore=ignore):
                return
        if policy.action == "request_approval" and await self._granted(step, item):
            return  # a standing grant covers it: it runs without asking
        if policy.action in ("request_approval", "request_user_input"):
            cap = self._facts.config.max_open_requests
            if len(self._asking.open_requests) + opened >= cap:
                why = (
                    f"too many open approval requests in this run (cap {cap}): wait for "
                    "the open ones to be decided before asking for more"
                )
                await self._denied(step, item, why)
                return
            item.request = self._asking.new_request(
                step,
                policy,
                tool_name=item.call.name,
                tool_args=item.arguments,
                tool_call_id=item.id,
                tool_schema=item.tool.parameters if item.tool is not None else None,
            )

    async def _granted(self, step: int, item: Call) -> bool:
        """Whether a standing grant answers this gated call, so nobody is asked: an allow
        grant lets it run; a deny grant settles it denied, with the grant's reason."""
        facts = self._facts
        grants = facts.grants
        if grants is None or item.tool is None:
            return False
        values = scope_values(
            thread_id=facts.thread_id, agent_name=facts.agent_name, user=facts.requested_by
        )
        grant = await grants.use(
            item.call.name, item.arguments, values, run_id=facts.run_id, call_id=item.id
        )
        if grant is None:
            return False
        item.grant_id = grant.grant_id
        assert item.policy is not None
        await self._emitter.emit(
            GrantUsed,
            step,
            grant_id=grant.grant_id,
            tool_name=item.call.name,
            tool_call_id=item.id,
            rule_id=item.policy.rule_id,
        )
        if grant.effect == "deny":
            why = grant.reason or "denied by a standing grant"
            await self._denied(step, item, f"{why} (standing deny {grant.grant_id})")
        return True

    async def _valid(self, step: int, item: Call, *, ignore: str | None = None) -> bool:
        assert item.tool is not None
        try:
            item.tool.validate(item.arguments, ignore=ignore)
        except ToolArgumentsInvalid as exc:
            await self._settle(step, item, item.arguments, error=str(exc))
            return False
        return True

    async def _finish(self, step: int, item: Call, siblings: list[Call]) -> None:
        """Wait for the call's decision (if gated), then run it or report the refusal."""
        if item.waits_on_question:
            await self._answer(step, item)
        if item.child_waits and not self._facts.external:
            await self._child_decided(step, item)
        request = item.request
        if request is None:
            if item.error is not None:  # a resumed call whose arguments no longer pass
                await self._settle(step, item, item.arguments, error=item.error)
            else:
                await self._execute(step, item, item.arguments)
            return
        if item.decision is not None and item.decided_by is not None:
            decision, decided_by = item.decision, item.decided_by  # entered again: decided
        else:
            item.waiting = True
            try:
                decision, decided_by = await self._asking.ask(
                    step, request, asked=item.asked, stoppable=item
                )
            finally:
                item.waiting = False
        item.decision, item.decided_by = decision, decided_by
        if decision.kind == "deny":
            if decision.stop_run:
                item.stop = True
                self._stop_siblings(item, siblings)
            await self._denied(step, item, decision.reason or "denied")
            return
        args = dict(request.tool_args)  # what the human was shown
        if isinstance(decision, ApprovalDecision) and decision.updated_tool_args is not None:
            args = dict(decision.updated_tool_args)
        if isinstance(decision, UserInputDecision) and decided_by == "human":
            assert isinstance(request, UserInputRequest)
            if request.input_target_arg is None:
                await self._settle(step, item, args, output=decision.value, executed=False)
                return
            args = {**args, request.input_target_arg: decision.value}
        if args != request.tool_args and await self._denies_decided(step, item, args):
            return
        await self._execute(step, item, args)

    async def _denies_decided(self, step: int, item: Call, args: dict[str, Any]) -> bool:
        """Arguments a human changed (edited, or an answer filled in) meet the policy before
        they run: a deny rule that matches them stops the call, as it would have stopped the
        model asking for them. Only a deny counts: the human's decision is the approval a
        gating rule asks for. Whether it denied (the call is then settled as denied)."""
        now = await self._evaluate(step, item, args)
        if now.action != "deny":
            return False
        item.policy, item.stop = now, now.stop_run
        why = now.reason or "denied by policy"
        await self._denied(
            step, item, f"{why} (policy denies the arguments as decided: rule {now.rule_id!r})"
        )
        return True

    async def _answer(self, step: int, item: Call) -> None:
        """Wait for the answer to the question the call's tool asked last."""
        question = item.questions[-1]
        item.waiting = True
        try:
            decision, decided_by = await self._asking.ask(
                step, question, asked=item.question_asked, stoppable=item
            )
        finally:
            item.waiting, item.question_asked = False, None
        item.answers += (answer_of(question, decision, decided_by),)

    async def _child_decided(self, step: int, item: Call) -> None:
        """Wait here (not external: nobody else resumes this run) until each request the
        call's sub-agent paused on is decided; the child, entered again, takes them."""
        for request in item.child_waits:
            item.waiting = True
            try:
                await self._asking.ask(step, request, stoppable=item)
            finally:
                item.waiting = False
        item.child_waits = ()

    def _stop_siblings(self, item: Call, siblings: list[Call]) -> None:
        for other in siblings:
            if other is not item and other.waiting and other.task is not None:
                other.stopped_by_sibling = True
                other.task.cancel()

    async def _execute(self, step: int, item: Call, args: dict[str, Any]) -> None:
        tool = item.tool
        if tool is None:
            known = ", ".join(sorted(self._facts.tools)) or "none"
            error = f"unknown tool {item.call.name!r} (tools: {known})"
            await self._settle(step, item, args, error=error)
            return
        runnable = await self._runnable(step, item, tool, args)
        if runnable is None:
            return
        args, validated = runnable
        facts, durable, clock, emitter = self._facts, self._durable, self._clock, self._emitter
        clock.check()
        # Not the model's call id: a model may reuse one, in a later step or the same one.
        # The digest: a step re-run after a crash that asks for another call at the same
        # position runs that call, instead of being handed the first one's outcome.
        assert item.position >= 0
        key = (
            item.request.request_id
            if item.request
            else f"{facts.scope}:{step}:{item.position}:{args_digest(args)[:16]}"
        )
        entry = f"{key}#{item.entries}" if item.entries else key  # one record per entry
        # Only for a tool that takes one: most calls need none of it.
        ctx = self._context(step, item, args, key) if tool.wants_context else None

        async def invoke() -> Any:
            await emitter.emit(
                ToolStarted, step, tool_name=tool.name, tool_call_id=item.id, args=args
            )
            # As JSON data now: a store could not record a NaN in the output.
            return jsonable(await clock.bounded(tool.invoke(validated, ctx)))

        if durable is not None:
            try:
                outcome = await durable.execute_once(
                    entry, item.id, args, idempotent=tool.idempotent, invoke=invoke
                )
            except ToolPaused as paused:
                item.entries += 1
                if isinstance(paused, ChildPaused):
                    durable.adopt_log(paused.log)
                    item.child, item.child_waits = paused.snapshot, tuple(paused.requests)
                    item.new_requests += tuple(paused.requests)
                else:
                    await self._asked(step, item, paused.request)
                return  # unsettled: entered again once answered or decided
            failed = UNKNOWN_OUTCOME if outcome.unknown else outcome.error
            await self._settle(step, item, args, output=outcome.output, error=failed, executed=True)
            return
        try:
            output = await invoke()
        except RunError:
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            await self._settle(step, item, args, error=error, executed=True)
            return
        await self._settle(step, item, args, output=output, executed=True)

    def _context(self, step: int, item: Call, args: dict[str, Any], key: str) -> ToolContext:
        """What a tool that declares a ToolContext parameter is given for this call."""
        facts = self._facts
        return ToolContext(
            run_id=facts.run_id,
            agent_name=facts.agent_name,
            tool_call_id=item.id,
            idempotency_key=key,
            context=facts.context,
            approval=_approval(item, args),
            asks=self._questions(step, item, args),
            children=self._children(step, item),
        )

    def _questions(self, step: int, item: Call, args: dict[str, Any]) -> ToolAsks:
        """What the call's tool asks a human through: inline without a store, by pausing
        the call with one (afk.core._tool_asks)."""
        asking, facts = self._asking, self._facts

        def make(decision: PolicyDecision) -> Request:
            return asking.new_request(
                step, decision, tool_name=item.call.name, tool_args=args, tool_call_id=item.id
            )

        async def inline(request: Request) -> ToolAnswer:
            [asked] = await asking.open(step, [request])
            try:
                decision, decided_by = await asking.ask(step, request, asked=asked)
            finally:
                discard(asked)
            return answer_of(request, decision, decided_by)

        return ToolAsks(
            asked=item.questions,
            answers=item.answers,
            make=make,
            policy=item.policy,
            inline=inline if self._durable is None and not facts.external else None,
        )

    def _children(self, step: int, item: Call) -> Any:
        """How the call's tool runs a sub-agent (Agent.as_tool): the run's child runner bound
        to this call, or None when the run has none."""
        children = self._facts.children
        if children is None:
            return None
        return children.bind(
            call_id=item.id, saved=item.child, emitter=self._emitter, durable=self._durable
        )

    async def _asked(self, step: int, item: Call, question: Request) -> None:
        """The call's tool asked ``question`` and stopped: announce it (the loop stores it
        with the step's checkpoint)."""
        item.questions += (question,)
        item.new_requests += (question,)
        [item.question_asked] = await self._asking.open(step, [question])

    async def _runnable(
        self, step: int, item: Call, tool: Tool, args: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The arguments to run, canonical and as the function receives them; or None, the
        call settled with the reason it cannot run."""
        durable = self._durable
        if durable is not None and item.request is not None:
            # Execute what the store holds, and only if it is still what was approved.
            verified = await durable.verified_args(item.request)
            if isinstance(verified, str):
                await self._settle(step, item, args, error=verified)
                return None
            args = verified
        try:
            if args != item.args:  # a human's edit or input is shown as it runs too
                args = tool.canonical_args(args)
            return args, tool.validate(args)
        except ToolArgumentsInvalid as exc:
            error = str(exc)
        except InvalidArgumentsError as exc:
            error = f"invalid arguments: {exc}"
        await self._settle(step, item, args, error=error)
        return None

    async def _denied(self, step: int, item: Call, reason: str) -> None:
        await self._settle(step, item, item.arguments, denied=reason)

    async def _settle(
        self,
        step: int,
        item: Call,
        args: dict[str, Any],
        *,
        output: Any = None,
        error: str | None = None,
        denied: str | None = None,
        executed: bool = False,
    ) -> None:
        """Record the call's one outcome: its event and its record, from which the model's
        message (tool_message) and the checkpoint's entry are derived."""
        success = error is None and denied is None
        shown = jsonable(output)
        failure = f"{DENIED}{denied}" if denied is not None else error
        await self._emitter.emit(
            ToolCompleted,
            step,
            tool_name=item.call.name,
            tool_call_id=item.id,
            success=success,
            denied=denied is not None,
            output=shown,
            error=failure,
        )
        item.execution = ToolExecution(
            tool_name=item.call.name,
            tool_call_id=item.id,
            args=args,
            success=success,
            output=shown,
            error=failure,
            denied=denied is not None,
            executed=executed,
            policy=item.policy,
            decision=item.decision,
            decided_by=item.decided_by,
            grant_id=item.grant_id,
        )


def _approval(item: Call, args: dict[str, Any]) -> CallApproval | None:
    """What ``ToolContext.approval`` tells the tool: who let this gated call run."""
    if item.grant_id is not None:
        return CallApproval(decided_by="grant", grant_id=item.grant_id)
    decision, request = item.decision, item.request
    if decision is None or request is None or item.decided_by is None:
        return None
    return CallApproval(
        decided_by=item.decided_by,
        request_id=request.request_id,
        approver=decision.approver if item.decided_by == "human" else None,
        reason=decision.reason,
        edited=args != dict(request.tool_args),
    )


def step_state(step: int, items: list[Call]) -> StepState:
    """A step's calls as its checkpoint holds them: settled ones with their outcome, gated
    ones with their request."""
    calls = []
    for item in items:
        assert item.policy is not None
        calls.append(
            CallState(
                call=item.call,
                policy=item.policy,
                request=item.request,
                settled=item.execution,
                asked=item.questions,
                answers=item.answers,
                child=item.child,
                child_waits=item.child_waits,
                entries=item.entries,
            )
        )
    paused = tuple(i.request.request_id for i in items if i.request is not None)
    paused += tuple(i.questions[-1].request_id for i in items if i.questions)
    paused += tuple(r.request_id for i in items for r in i.child_waits)
    return StepState(step=step, calls=calls, paused_ids=paused)


def discard_asked(items: list[Call]) -> None:
    """Close the provider coroutines of the step's calls that were never awaited."""
    for item in items:
        discard(item.asked)


async def _nothing() -> None:
    """A step whose one call settled already: nothing to wait for."""


def new_questions(items: list[Call]) -> list[Request]:
    """The requests the step's tools opened since its last checkpoint (their questions, and
    their sub-agents' requests), for the next one to store; taken, so each is stored once."""
    found = [r for i in items for r in i.new_requests]
    for item in items:
        item.new_requests = ()
    return found
