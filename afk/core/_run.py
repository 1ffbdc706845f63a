"""One run of an agent, as a sequence of small steps.

call model → evaluate policy per tool call → validate → ask (and wait) → execute → record.
Private: the public surface is :class:`afk.core.Runner`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from afk.agents.agent import Agent
from afk.agents.interaction import (
    ApprovalDecision,
    ApprovalRequest,
    DecidedBy,
    Decision,
    Request,
    UserInputDecision,
    UserInputRequest,
)
from afk.agents.policy import PolicyDecision, PolicyEngine, PolicyEvent, combine
from afk.core._emitter import ActiveClock, Emitter
from afk.core._tool_call import ToolCallRunner, json_copy
from afk.core.config import RunnerConfig
from afk.core.events import (
    ApprovalRequested,
    ApprovalResolved,
    LLMCalled,
    LLMCompleted,
    PolicyDecisionEvent,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunPaused,
    RunResumed,
    RunStarted,
    StepStarted,
    TextDelta,
    UserInputRequested,
    UserInputResolved,
)
from afk.core.result import RunResult, RunState
from afk.errors import RunError
from afk.llms.messages import (
    AssistantMessage,
    Message,
    ModelResponse,
    ToolCall,
    ToolSpec,
    Usage,
    UserMessage,
)
from afk.llms.model import Model, model_label


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSetup:
    """Everything a run needs, checked by the Runner before the run starts."""

    agent: Agent
    model: Model
    engines: tuple[PolicyEngine, ...]
    config: RunnerConfig
    provider: Any
    user_message: str
    context: dict[str, Any]
    thread_id: str | None
    run_id: str


_NO_CONTEXT: MappingProxyType[str, Any] = MappingProxyType({})


class Run:
    __slots__ = (
        "_llm_gated",
        "_paused",
        "agent",
        "clock",
        "config",
        "context",
        "emitter",
        "headless",
        "messages",
        "open_requests",
        "setup",
        "specs",
        "tool_calls",
        "usage",
    )

    def __init__(self, setup: RunSetup) -> None:
        self.setup = setup
        self.agent = setup.agent
        self.config = setup.config
        self.headless = setup.config.interaction_mode == "headless"
        notify = getattr(setup.provider, "notify", None)
        self.emitter = Emitter(setup.run_id, notify if callable(notify) else None)
        self.clock = ActiveClock(setup.config.max_run_time_s)
        self.context = MappingProxyType(setup.context) if setup.context else _NO_CONTEXT
        self.messages: list[Message] = [self.agent.system_message]
        self.messages.append(UserMessage(content=setup.user_message))
        self.specs: list[ToolSpec] = self.agent.tool_specs
        self.usage: Usage | None = None
        self.open_requests: list[Request] = []  # a handful at most; a list is smallest
        self._paused: tuple[str, ...] = ()
        self._llm_gated = any(e.covers("llm_before_execute") for e in setup.engines)
        self.tool_calls = ToolCallRunner(self)

    # -- top level -----------------------------------------------------------------------
    async def execute(self) -> RunResult:
        """The step loop: model call, then the step's tool calls, until the model is done.

        Inline rather than a helper so a waiting run carries one coroutine frame less.
        """
        emit = self.emitter.emit
        await emit(
            RunStarted,
            agent_name=self.agent.name,
            model=model_label(self.setup.model),
            thread_id=self.setup.thread_id,
            user_message=self.setup.user_message,
        )
        state: RunState | None = None
        final_text: str | None = None
        error: str | None = None
        step = 0
        try:
            while state is None:
                self._check_steps(step)
                step += 1
                await emit(StepStarted, step)
                if not await self._gate_model_call(step):
                    state = "stopped"
                    break
                turn = await self._call_model(step)
                self.messages.append(turn)
                final_text = turn.text
                if not turn.tool_calls:
                    state = "completed"
                elif await self.tool_calls.run_step(step, turn.tool_calls):
                    state = "stopped"
            await emit(RunCompleted, state=state, final_text=final_text)
        except asyncio.CancelledError:
            await self._close_open_requests("run cancelled")
            state = "cancelled"
            await emit(RunCancelled)
        except Exception as exc:
            cause = _first_error(exc)
            await self._close_open_requests("run failed")
            state, error = "failed", f"{type(cause).__name__}: {cause}"
            await emit(RunFailed, error=str(cause), error_type=type(cause).__name__)
        return RunResult(
            run_id=self.setup.run_id,
            state=state,
            final_text=final_text,
            tool_executions=self.tool_calls.executions,
            events=self.emitter.events,
            warnings=self.emitter.warnings,
            messages=self.messages,
            error=error,
            usage=self.usage,
        )

    def _check_steps(self, done: int) -> None:
        limit = self.agent.max_steps
        if done >= limit:
            raise RunError(
                f"max_steps={limit} reached: the agent made {limit} model calls without finishing"
            )

    # -- the model -----------------------------------------------------------------------
    async def _call_model(self, step: int) -> AssistantMessage:
        """One model call; returns the assistant turn, every tool call with an id."""
        self.clock.check()
        model = self.setup.model
        await self.emitter.emit(
            LLMCalled, step, model=model_label(model), message_count=len(self.messages)
        )
        try:
            async with asyncio.timeout(self.clock.remaining()) as budget:
                response = await self._complete(step, model)
        except TimeoutError:
            if budget.expired():
                raise self.clock.exceeded() from None
            raise
        calls = tuple(c if c.id else replace(c, id=new_tool_call_id()) for c in response.tool_calls)
        if response.usage is not None:
            self.usage = response.usage if self.usage is None else self.usage + response.usage
        await self.emitter.emit(
            LLMCompleted, step, text=response.text, tool_calls=calls, usage=response.usage
        )
        return AssistantMessage(text=response.text, tool_calls=calls)

    async def _complete(self, step: int, model: Any) -> ModelResponse:
        stream = getattr(model, "stream", None)
        if not callable(stream):
            response: ModelResponse = await model.complete(self.messages, self.specs)
            return response
        final: ModelResponse | None = None
        async for chunk in stream(self.messages, self.specs):
            if isinstance(chunk, str):
                if chunk:
                    await self.emitter.emit(TextDelta, step, delta=chunk)
            else:
                final = chunk
        if final is None:
            raise RunError(f"model {model_label(model)} streamed no final ModelResponse")
        return final

    async def _gate_model_call(self, step: int) -> bool:
        """Policy for the model call itself; only when some rule covers model calls."""
        if not self._llm_gated:
            return True
        event = PolicyEvent(
            event_type="llm_before_execute",
            run_id=self.setup.run_id,
            thread_id=self.setup.thread_id,
            step=step,
            agent_name=self.agent.name,
            context=self.context,
        )
        decision = await self.evaluate(event)
        await self.emit_policy(step, event, decision)
        if decision.action == "allow":
            return True
        if decision.action == "deny":
            return False
        request = self.new_request(step, decision, tool_name=None, tool_args={}, tool_call_id=None)
        await self.open_step_requests(step, [request])
        answer, decided_by = await self.ask(step, request)
        if answer.kind == "deny":
            return False
        if isinstance(answer, UserInputDecision) and decided_by == "human" and answer.value:
            self.messages.append(UserMessage(content=answer.value))
        return True

    # -- policy --------------------------------------------------------------------------
    async def evaluate(self, event: PolicyEvent) -> PolicyDecision:
        decision: PolicyDecision | None = None
        for engine in self.setup.engines:
            found = await engine.aevaluate(event)
            decision = found if decision is None else combine(decision, found)
        if decision is None:
            return PolicyDecision(action="allow")
        return decision

    async def emit_policy(self, step: int, event: PolicyEvent, decision: PolicyDecision) -> None:
        await self.emitter.emit(
            PolicyDecisionEvent,
            step,
            event_type=event.event_type,
            tool_name=event.tool_name,
            tool_call_id=event.tool_call_id,
            action=decision.action,
            rule_id=decision.rule_id,
            matched_rules=decision.matched_rules,
            reason=decision.reason,
        )

    # -- asking humans -------------------------------------------------------------------
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
        now = time.time()
        common: dict[str, Any] = dict(
            request_id=f"req_{uuid.uuid4().hex}",
            run_id=self.setup.run_id,
            step=step,
            agent_name=self.agent.name,
            thread_id=self.setup.thread_id,
            tool_name=tool_name,
            tool_args=json_copy(tool_args),
            tool_call_id=tool_call_id,
            tool_schema=tool_schema,
            rule_id=decision.rule_id,
            reason=decision.reason,
            created_at=now,
        )
        if decision.action == "request_user_input":
            return UserInputRequest(
                **common,
                expires_at=now + self.config.input_timeout_s,
                prompt=decision.reason or "Input requested",
                input_target_arg=decision.input_target_arg,
            )
        return ApprovalRequest(**common, expires_at=now + self.config.approval_timeout_s)

    async def open_step_requests(self, step: int, requests: Sequence[Request]) -> None:
        """Announce a step's requests together; pause once, after the last of them."""
        for request in requests:
            self.open_requests.append(request)
            if isinstance(request, ApprovalRequest):
                await self.emitter.emit(ApprovalRequested, step, request=request)
            else:
                await self.emitter.emit(UserInputRequested, step, request=request)
        if requests and not self.headless:
            self._paused = tuple(r.request_id for r in requests)
            await self.emitter.emit(RunPaused, step, request_ids=self._paused)
            self.clock.pause()

    async def ask(
        self, step: int, request: Request, *, stoppable: Any = None
    ) -> tuple[Decision, DecidedBy]:
        """Wait for the decision on one open request and record it.

        ``stoppable.stopped_by_sibling`` tells whether a cancellation came from a sibling's
        ``stop_run`` (the request then closes with a fallback deny) rather than from the run
        being cancelled. One frame on purpose: a waiting run's memory is mostly its frames.
        """
        decision: Decision
        decided_by: DecidedBy = "human"
        if self.headless:
            decision, decided_by = self._fallback(request, "headless mode"), "fallback"
            await self.record_decision(step, request, decision, decided_by)
            return decision, decided_by
        provider = self.setup.provider
        is_approval = isinstance(request, ApprovalRequest)
        ask = provider.request_approval if is_approval else provider.request_user_input
        try:
            async with asyncio.timeout(max(request.expires_at - time.time(), 0.0)) as limit:
                decision = await ask(request)
        except asyncio.CancelledError:
            if stoppable is None or not stoppable.stopped_by_sibling:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            decision, decided_by = self._closed(request, "run stopped", "fallback")
        except TimeoutError:
            if limit.expired():
                decision, decided_by = self._closed(request, "timed out", "timeout")
            else:
                decision, decided_by = self._closed(request, "provider timeout", "error")
        except Exception as exc:
            why = f"interaction provider raised {type(exc).__name__}: {exc}"
            decision, decided_by = self._closed(request, why, "error")
        else:
            expected = ApprovalDecision if is_approval else UserInputDecision
            if not isinstance(decision, expected):
                got = type(decision).__name__
                why = f"interaction provider returned {got}, not {expected.__name__}"
                decision, decided_by = _deny(request, why), "error"
        await self.record_decision(step, request, decision, decided_by)
        return decision, decided_by

    async def record_decision(
        self, step: int, request: Request, decision: Decision, decided_by: DecidedBy
    ) -> None:
        if request in self.open_requests:
            self.open_requests.remove(request)
        event_cls = ApprovalResolved if isinstance(request, ApprovalRequest) else UserInputResolved
        await self.emitter.emit(
            event_cls,
            step,
            request_id=request.request_id,
            decision=decision,
            approver=decision.approver,
            decided_by=decided_by,
        )
        if self._paused and not any(r.request_id in self._paused for r in self.open_requests):
            ids, self._paused = self._paused, ()
            await self.emitter.emit(RunResumed, step, request_ids=ids)
            self.clock.resume()

    def _closed(self, request: Request, why: str, by: DecidedBy) -> tuple[Decision, DecidedBy]:
        """Close a request the run stops waiting for. A decision accepted first still wins."""
        late = self._expire(request.request_id, why)
        if late is not None:
            return late, "human"
        if by == "timeout":
            return self._fallback(request, why), by
        return _deny(request, why), by

    def _fallback(self, request: Request, why: str) -> Decision:
        if isinstance(request, ApprovalRequest):
            kind = self.config.approval_fallback
            return ApprovalDecision(kind=kind, reason=f"{why}: approval_fallback={kind}")
        kind = self.config.input_fallback
        if kind == "allow":
            # Fallback "allow" for input means: run with the original arguments, no text.
            return UserInputDecision(kind="allow", value="", reason=f"{why}: input_fallback=allow")
        return UserInputDecision(kind="deny", reason=f"{why}: input_fallback=deny")

    def _expire(self, request_id: str, note: str) -> Decision | None:
        expire = getattr(self.setup.provider, "expire", None)
        if not callable(expire):
            return None
        late = expire(request_id, note)
        return late if isinstance(late, ApprovalDecision | UserInputDecision) else None

    async def _close_open_requests(self, why: str) -> None:
        for request in list(self.open_requests):
            late = self._expire(request.request_id, why)
            if late is not None:
                await self.record_decision(request.step, request, late, "human")
            else:
                await self.record_decision(request.step, request, _deny(request, why), "fallback")


def _deny(request: Request, reason: str) -> Decision:
    if isinstance(request, ApprovalRequest):
        return ApprovalDecision(kind="deny", reason=reason)
    return UserInputDecision(kind="deny", reason=reason)


def _first_error(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def new_tool_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


__all__ = ["Run", "RunSetup", "ToolCall"]
