"""The tool calls of one model step: gated each on its own, run side by side.

Per call, in order: policy (always, audited) → argument validation (if it would ask a human
or run) → request and decision → execution. Results go back in the model's call order.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from afk.agents.policy import PolicyDecision, PolicyEvent
from afk.approvals.grants import scope_values
from afk.approvals.requests import (
    ApprovalDecision,
    DecidedBy,
    Decision,
    Request,
    UserInputDecision,
    UserInputRequest,
)
from afk.core._snapshot import CallState, SettledCall, StepState
from afk.core.events import GrantUsed, ToolCompleted, ToolStarted
from afk.core.result import ToolExecution
from afk.errors import RunError
from afk.llms.messages import ToolCall, ToolMessage
from afk.tools.tool import Tool, ToolArgumentsInvalid, ToolContext

if TYPE_CHECKING:
    from afk.core._run import Run


class Paused(Exception):
    """Control flow: the run was checkpointed and stops here until its requests are decided."""

    def __init__(self, requests: list[Request]) -> None:
        self.requests = requests
        super().__init__("paused")


UNKNOWN_OUTCOME = (
    "outcome unknown: the process stopped while this call was running, and the tool is not "
    "declared idempotent, so it was not run again"
)


def discard(asked: Any) -> None:
    """Close a provider coroutine that was created up front but will never be awaited."""
    if inspect.iscoroutine(asked) and inspect.getcoroutinestate(asked) == inspect.CORO_CREATED:
        asked.close()


def json_copy(value: Any) -> Any:
    """A deep copy of JSON-shaped data (what models send); cheaper than copy.deepcopy."""
    if isinstance(value, dict):
        return {k: json_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_copy(v) for v in value]
    return value


def _to_text(output: Any) -> str:
    if isinstance(output, str):
        return output
    from pydantic_core import to_jsonable_python

    return json.dumps(to_jsonable_python(output, fallback=repr))


def _jsonable(output: Any) -> Any:
    if output is None or isinstance(output, str | int | float | bool):
        return output
    from pydantic_core import to_jsonable_python

    return to_jsonable_python(output, fallback=repr)


@dataclass(slots=True)
class _Call:
    call: ToolCall
    tool: Tool | None
    policy: PolicyDecision | None = None
    request: Request | None = None
    decision: Decision | None = None
    decided_by: DecidedBy | None = None
    execution: ToolExecution | None = None
    message: ToolMessage | None = None
    task: asyncio.Task[None] | None = None
    asked: Any = None  # the provider's pending answer, when it was asked up front
    grant_id: str | None = None
    waiting: bool = False
    stopped_by_sibling: bool = False
    stop: bool = False

    @property
    def id(self) -> str:
        assert self.call.id is not None
        return self.call.id


class ToolCallRunner:
    __slots__ = ("executions", "run")

    def __init__(self, run: Run) -> None:
        self.run = run
        self.executions: list[ToolExecution] = []

    async def prepare_step(self, step: int, calls: Sequence[ToolCall]) -> list[_Call]:
        """Policy for every call, then validation and requests; checkpoint when gated.

        Returns the calls for :meth:`complete` (a separate await, so a waiting run carries
        one frame less). External mode raises :class:`Paused` after the checkpoint.
        """
        items = [_Call(call=c, tool=self.run.agent.tools.get(c.name)) for c in calls]
        for item in items:
            item.policy = await self._evaluate(step, item)
        rule_stop = next((i.policy for i in items if i.policy and i.policy.stop_run), None)
        requests: list[Request] = []
        for item in items:
            await self._prepare(step, item, rule_stop)
            if item.request is not None:
                requests.append(item.request)
        run = self.run
        for item, asked in zip(
            (i for i in items if i.request is not None),
            await run.asking.open(step, requests),
            strict=True,
        ):
            item.asked = asked
        try:
            if requests:
                await run.checkpoint_step(self._state(step, items), requests)
                if run.external:
                    await self._pause(step, items, requests)
        except BaseException:
            for item in items:
                discard(item.asked)
            raise
        return items

    async def resume_step(self, state: StepState) -> bool:
        """Finish the step a run paused in, from its checkpoint: settled calls keep their
        outcome, gated ones take their decision from the store."""
        items = []
        for saved in state.calls:
            item = _Call(call=saved.call, tool=self.run.agent.tools.get(saved.call.name))
            item.policy, item.request = saved.policy, saved.request
            if saved.settled is not None:
                item.message, item.execution = saved.settled.message, saved.settled.execution
            elif saved.request is not None:
                self.run.asking.open_requests.append(saved.request)
            items.append(item)
        return await self.complete(state.step, items)

    async def _pause(self, step: int, items: list[_Call], requests: list[Request]) -> None:
        """External mode: run what is allowed now, checkpoint again, and stop the run."""
        allowed = [i for i in items if i.message is None and i.request is None]
        for item in allowed:
            await self._execute(step, item, item.call.arguments)
        if allowed:
            await self.run.checkpoint_step(self._state(step, items), [])
        raise Paused(requests)

    async def complete(self, step: int, items: list[_Call]) -> bool:
        """Decide and run every unsettled call; hand the results to the model in call order.
        Returns True when the run must stop."""
        try:
            if len(items) == 1:
                if items[0].message is None:
                    await self._finish(step, items[0], items)
            else:
                async with asyncio.TaskGroup() as group:
                    for item in items:
                        if item.message is None:
                            item.task = group.create_task(self._finish(step, item, items))
        finally:
            for item in items:
                discard(item.asked)
        for item in items:
            assert item.message is not None and item.execution is not None
            self.run.messages.append(item.message)
            self.executions.append(item.execution)
        return any(i.stop for i in items)

    @staticmethod
    def _state(step: int, items: list[_Call]) -> StepState:
        calls = []
        for item in items:
            assert item.policy is not None
            settled = None
            if item.message is not None and item.execution is not None:
                settled = SettledCall(message=item.message, execution=item.execution)
            calls.append(
                CallState(call=item.call, policy=item.policy, request=item.request, settled=settled)
            )
        paused = tuple(i.request.request_id for i in items if i.request is not None)
        return StepState(step=step, calls=calls, paused_ids=paused)

    async def _evaluate(self, step: int, item: _Call) -> PolicyDecision:
        run = self.run
        event = PolicyEvent(
            event_type="tool_before_execute",
            run_id=run.setup.run_id,
            thread_id=run.setup.thread_id,
            step=step,
            agent_name=run.agent.name,
            tool_name=item.call.name,
            tool_args=json_copy(item.call.arguments),
            tool_call_id=item.call.id,
            context=run.context,
        )
        decision = await run.evaluate(event)
        await run.emit_policy(step, event, decision)
        return decision

    async def _prepare(self, step: int, item: _Call, rule_stop: PolicyDecision | None) -> None:
        """Settle denied and malformed calls; open a request for gated ones."""
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
        if item.tool is not None:  # unknown tools skip validation; they fail at execution
            ignore = policy.input_target_arg if policy.action == "request_user_input" else None
            if not await self._valid(step, item, ignore=ignore):
                return
        if policy.action == "request_approval" and await self._granted(step, item):
            return  # a standing grant covers it: it runs without asking
        if policy.action in ("request_approval", "request_user_input"):
            item.request = self.run.asking.new_request(
                step,
                policy,
                tool_name=item.call.name,
                tool_args=item.call.arguments,
                tool_call_id=item.id,
                tool_schema=item.tool.parameters if item.tool is not None else None,
            )

    async def _granted(self, step: int, item: _Call) -> bool:
        run = self.run
        grants = run.setup.grants
        if grants is None or item.tool is None:
            return False
        values = scope_values(
            thread_id=run.setup.thread_id, agent_name=run.agent.name, user=run.setup.requested_by
        )
        grant = await grants.use(
            item.call.name, item.call.arguments, values, run_id=run.setup.run_id, call_id=item.id
        )
        if grant is None:
            return False
        item.grant_id = grant.grant_id
        assert item.policy is not None
        await run.emitter.emit(
            GrantUsed,
            step,
            grant_id=grant.grant_id,
            tool_name=item.call.name,
            tool_call_id=item.id,
            rule_id=item.policy.rule_id,
        )
        return True

    async def _valid(self, step: int, item: _Call, *, ignore: str | None = None) -> bool:
        assert item.tool is not None
        try:
            item.tool.validate(item.call.arguments, ignore=ignore)
        except ToolArgumentsInvalid as exc:
            await self._settle(step, item, item.call.arguments, error=str(exc))
            return False
        return True

    async def _finish(self, step: int, item: _Call, siblings: list[_Call]) -> None:
        """Wait for the call's decision (if gated), then run it or report the refusal."""
        request = item.request
        args = item.call.arguments
        if request is not None:
            item.waiting = True
            try:
                decision, decided_by = await self.run.asking.ask(
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
            if isinstance(decision, ApprovalDecision) and decision.updated_tool_args is not None:
                args = dict(decision.updated_tool_args)
            if isinstance(decision, UserInputDecision) and decided_by == "human":
                assert isinstance(request, UserInputRequest)
                if request.input_target_arg is None:
                    await self._settle(step, item, args, output=decision.value, executed=False)
                    return
                args = {**args, request.input_target_arg: decision.value}
        await self._execute(step, item, args)

    def _stop_siblings(self, item: _Call, siblings: list[_Call]) -> None:
        for other in siblings:
            if other is not item and other.waiting and other.task is not None:
                other.stopped_by_sibling = True
                other.task.cancel()

    async def _execute(self, step: int, item: _Call, args: dict[str, Any]) -> None:
        tool = item.tool
        if tool is None:
            known = ", ".join(sorted(self.run.agent.tools)) or "none"
            error = f"unknown tool {item.call.name!r} (tools: {known})"
            await self._settle(step, item, args, error=error)
            return
        run = self.run
        durable = run.durable
        if durable is not None and item.request is not None:
            # Execute what the store holds, and only if it is still what was approved.
            verified = await durable.verified_args(item.request)
            if isinstance(verified, str):
                await self._settle(step, item, args, error=verified)
                return
            args = verified
        try:
            validated = tool.validate(args)
        except ToolArgumentsInvalid as exc:
            await self._settle(step, item, args, error=str(exc))
            return
        run.clock.check()
        key = item.request.request_id if item.request else f"{run.setup.run_id}:{item.id}"
        ctx = ToolContext(
            run_id=run.setup.run_id,
            agent_name=run.agent.name,
            tool_call_id=item.id,
            idempotency_key=key,
            context=run.context,
        )

        async def invoke() -> Any:
            await run.emitter.emit(
                ToolStarted, step, tool_name=tool.name, tool_call_id=item.id, args=args
            )
            try:
                async with asyncio.timeout(run.clock.remaining()) as budget:
                    return await tool.invoke(validated, ctx)
            except TimeoutError:
                if budget.expired():
                    raise run.clock.exceeded() from None
                raise

        if durable is not None:
            outcome = await durable.execute_once(
                key, item.id, args, idempotent=tool.idempotent, invoke=invoke
            )
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

    async def _denied(self, step: int, item: _Call, reason: str) -> None:
        await self._settle(step, item, item.call.arguments, denied=reason)

    async def _settle(
        self,
        step: int,
        item: _Call,
        args: dict[str, Any],
        *,
        output: Any = None,
        error: str | None = None,
        denied: str | None = None,
        executed: bool = False,
    ) -> None:
        """Record the call's one outcome: event, execution record and message for the model."""
        success = error is None and denied is None
        shown = _jsonable(output)
        failure = f"denied: {denied}" if denied is not None else error
        await self.run.emitter.emit(
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
        if denied is not None:
            content = f"Tool call denied: {denied}"
        elif error is not None:
            content = f"Error: {error}"
        else:
            content = _to_text(output)
        item.message = ToolMessage(
            tool_call_id=item.id, tool_name=item.call.name, content=content, is_error=not success
        )
