"""The tool calls of one model step: gated each on its own, run side by side.

Per call, in order: policy (always, audited) → argument validation (if it would ask a human
or run) → request and decision → execution. Results go back in the model's call order.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from afk.agents.interaction import (
    ApprovalDecision,
    DecidedBy,
    Decision,
    Request,
    UserInputDecision,
    UserInputRequest,
)
from afk.agents.policy import PolicyDecision, PolicyEvent
from afk.core.events import ToolCompleted, ToolStarted
from afk.core.result import ToolExecution
from afk.llms.messages import ToolCall, ToolMessage
from afk.tools.tool import Tool, ToolArgumentsInvalid, ToolContext

if TYPE_CHECKING:
    from afk.core._run import Run


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

    async def run_step(self, step: int, calls: Sequence[ToolCall]) -> bool:
        """Handle every tool call of a step. Returns True when the run must stop."""
        items = [_Call(call=c, tool=self.run.agent.tools.get(c.name)) for c in calls]
        for item in items:
            item.policy = await self._evaluate(step, item)
        rule_stop = next((i.policy for i in items if i.policy and i.policy.stop_run), None)
        requests: list[Request] = []
        for item in items:
            await self._prepare(step, item, rule_stop)
            if item.request is not None:
                requests.append(item.request)
        await self.run.open_step_requests(step, requests)
        if len(items) == 1:
            if items[0].message is None:
                await self._finish(step, items[0], items)
        else:
            async with asyncio.TaskGroup() as group:
                for item in items:
                    if item.message is None:
                        item.task = group.create_task(self._finish(step, item, items))
        for item in items:
            assert item.message is not None and item.execution is not None
            self.run.messages.append(item.message)
            self.executions.append(item.execution)
        return rule_stop is not None or any(i.stop for i in items)

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
            await self._denied(step, item, policy.reason or "denied by policy")
            return
        if rule_stop is not None:
            await self._denied(step, item, f"run stopped by rule {rule_stop.rule_id!r}")
            return
        if item.tool is not None:  # unknown tools skip validation; they fail at execution
            ignore = policy.input_target_arg if policy.action == "request_user_input" else None
            if not await self._valid(step, item, ignore=ignore):
                return
        if policy.action in ("request_approval", "request_user_input"):
            item.request = self.run.new_request(
                step,
                policy,
                tool_name=item.call.name,
                tool_args=item.call.arguments,
                tool_call_id=item.id,
                tool_schema=item.tool.parameters if item.tool is not None else None,
            )

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
                decision, decided_by = await self.run.ask(step, request, stoppable=item)
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
            await self._settle(
                step, item, args, error=f"unknown tool {item.call.name!r} (tools: {known})"
            )
            return
        try:
            validated = tool.validate(args)
        except ToolArgumentsInvalid as exc:
            await self._settle(step, item, args, error=str(exc))
            return
        run = self.run
        run.clock.check()
        ctx = ToolContext(
            run_id=run.setup.run_id,
            agent_name=run.agent.name,
            tool_call_id=item.id,
            idempotency_key=item.request.request_id if item.request else item.id,
            context=run.context,
        )
        await run.emitter.emit(
            ToolStarted, step, tool_name=tool.name, tool_call_id=item.id, args=args
        )
        try:
            async with asyncio.timeout(run.clock.remaining()) as budget:
                output = await tool.invoke(validated, ctx)
        except TimeoutError:
            if budget.expired():
                raise run.clock.exceeded() from None
            await self._settle(step, item, args, error="TimeoutError", executed=True)
            return
        except Exception as exc:
            await self._settle(
                step, item, args, error=f"{type(exc).__name__}: {exc}", executed=True
            )
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
            output=output,
            error=failure,
            denied=denied is not None,
            executed=executed,
            policy=item.policy,
            decision=item.decision,
            decided_by=item.decided_by,
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
