"""One run of an agent, as a sequence of small steps.

call model → evaluate policy per tool call → validate → ask (and wait) → execute → record.
With a store, a checkpoint after a step's requests are opened makes the run durable; in
external mode the run then returns ``paused`` and is later resumed from that checkpoint.
Private: the public surface is :class:`afk.core.Runner`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from afk.agents.agent import Agent
from afk.agents.policy import PolicyDecision, PolicyEngine, PolicyEvent, combine
from afk.approvals.approvers import ApproverDirectory
from afk.approvals.grants import Grants
from afk.approvals.requests import Request, UserInputDecision
from afk.core._asking import Asking
from afk.core._call import Paused, discard
from afk.core._durable import Durable
from afk.core._emitter import ActiveClock, Emitter
from afk.core._snapshot import RunSnapshot, StepState
from afk.core._tool_call import ToolCallRunner
from afk.core.config import RunnerConfig
from afk.core.events import (
    LLMCalled,
    LLMCompleted,
    PolicyDecisionEvent,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunStarted,
    StepStarted,
    TextDelta,
)
from afk.core.result import RunResult, RunState
from afk.errors import RunError
from afk.llms.messages import AssistantMessage, Message, ModelResponse, ToolSpec, Usage, UserMessage
from afk.llms.model import Model, model_label
from afk.observability import SpanFactory, observe_run
from afk.store.store import RunStore


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSetup:
    """Everything a run needs, checked by the Runner before the run starts."""

    agent: Agent
    model: Model
    engines: tuple[PolicyEngine, ...]
    config: RunnerConfig
    provider: Any
    user_message: str
    context: dict[str, Any] | None
    thread_id: str | None
    run_id: str
    requested_by: str | None = None
    store: RunStore | None = None
    owner: str = ""
    lease_ttl_s: float = 30.0
    snapshot: RunSnapshot | None = None  # set when resuming
    directory: ApproverDirectory | None = None
    grants: Grants | None = None
    tracing: SpanFactory | None = None  # Runner(tracing=...): spans of this run


_NO_CONTEXT: MappingProxyType[str, Any] = MappingProxyType({})


class Run:
    __slots__ = (
        "_llm_gated",
        "agent",
        "asking",
        "cancel_requested",
        "clock",
        "config",
        "context",
        "durable",
        "emitter",
        "external",
        "headless",
        "messages",
        "setup",
        "specs",
        "started_at",
        "step",
        "tool_calls",
        "usage",
    )

    def __init__(self, setup: RunSetup) -> None:
        self.setup = setup
        self.agent = setup.agent
        self.config = setup.config
        mode = setup.config.interaction_mode
        self.headless = mode == "headless"
        self.external = mode == "external"
        notify = getattr(setup.provider, "notify", None)
        self.emitter = Emitter(
            setup.run_id, notify if callable(notify) else None, observe_run(setup)
        )
        self.context = MappingProxyType(setup.context) if setup.context else _NO_CONTEXT
        self.specs: list[ToolSpec] = self.agent.tool_specs
        self._llm_gated = any(e.covers("llm_before_execute") for e in setup.engines)
        self.tool_calls = ToolCallRunner(self)
        self.started_at = time.time()
        self.cancel_requested = False
        snap = setup.snapshot
        if snap is None:
            self.clock = ActiveClock(setup.config.max_run_time_s)
            self.messages: list[Message] = [self.agent.system_message]
            self.messages.append(UserMessage(content=setup.user_message))
            self.usage: Usage | None = None
            self.step = 0
            self.asking = Asking(self)
        else:
            paused = snap.pending_step.paused_ids if snap.pending_step else ()
            self.clock = ActiveClock(setup.config.max_run_time_s, used=snap.active_s, paused=True)
            self.messages = list(snap.messages)
            self.usage = snap.usage
            self.step = snap.step
            self.emitter.seq = snap.seq
            self.tool_calls.executions.extend(snap.executions)
            self.asking = Asking(self, paused=paused)
        self.durable: Durable | None = None
        if setup.store is not None:
            self.durable = Durable(
                self, setup.store, owner=setup.owner, lease_ttl_s=setup.lease_ttl_s
            )

    # -- top level -----------------------------------------------------------------------
    async def execute(self) -> RunResult:
        """The step loop: model call, then the step's tool calls, until the model is done.

        Inline rather than a helper so a waiting run carries one coroutine frame less.
        """
        emit = self.emitter.emit
        resume = self.setup.snapshot.pending_step if self.setup.snapshot else None
        if self.setup.snapshot is None:
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
        pending: list[Request] = []
        gated_step = False  # resuming a step whose model call was already let through
        try:
            if self.cancel_requested:
                raise asyncio.CancelledError
            if self.durable is not None:
                await self.durable.ready()
            if resume is not None:
                state, gated_step = await self._resume(resume)
            while state is None:
                if not gated_step:
                    self._check_steps(self.step)
                    self.step += 1
                    await emit(StepStarted, self.step)
                    if not await self._gate_model_call(self.step):
                        state = "stopped"
                        break
                gated_step = False
                step = self.step
                turn = await self._call_model(step)
                self.messages.append(turn)
                final_text = turn.text
                if not turn.tool_calls:
                    state = "completed"
                else:
                    calls = await self.tool_calls.prepare_step(step, turn.tool_calls)
                    if await self.tool_calls.complete(step, calls):
                        state = "stopped"
            expired = tuple(t.tool_call_id for t in self.tool_calls.executions if t.expired)
            await emit(RunCompleted, state=state, final_text=final_text, expired_calls=expired)
        except Paused as pause:
            state, pending = "paused", pause.requests
        except asyncio.CancelledError:
            if self.emitter.ended:
                pass  # cancelled while a notify hook handled the terminal event: it stands
            else:
                await self.asking.close_all("run cancelled")
                state = "cancelled"
                await emit(RunCancelled)
        except Exception as exc:
            cause = _first_error(exc)
            await self.asking.close_all("run failed")
            state, error = "failed", f"{type(cause).__name__}: {cause}"
            await emit(RunFailed, error=str(cause), error_type=type(cause).__name__)
        finally:
            self.emitter.close()
        assert state is not None
        await self._finish(state)
        return self._result(state, final_text, error, pending)

    def _result(
        self, state: RunState, final_text: str | None, error: str | None, pending: list[Request]
    ) -> RunResult:
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
            pending_requests=pending,
        )

    async def _resume(self, pending: StepState) -> tuple[RunState | None, bool]:
        """Finish the step the run paused in. Returns ("stopped" or None, and whether the
        step's model call was the gated thing and may now proceed)."""
        if pending.model_request is not None:
            allowed = await self._model_gate_decided(pending.step, pending.model_request)
            return (None if allowed else "stopped"), True
        stopped = await self.tool_calls.resume_step(pending)
        return ("stopped" if stopped else None), False

    async def _finish(self, state: RunState) -> None:
        """Persist the ending. A store failing here must not make run() raise: the result
        says so in ``warnings``; a later resume finds the execution records and does not run
        any tool body twice."""
        if self.durable is None:
            return
        try:
            if state != "paused":
                await self.durable.checkpoint(state, None)
            await self.durable.release()
        except Exception as exc:
            self.emitter.warnings.append(
                f"could not record the run's end ({state}) in the store: "
                f"{type(exc).__name__}: {exc}"
            )

    def _check_steps(self, done: int) -> None:
        limit = self.agent.max_steps
        if done >= limit:
            raise RunError(
                f"max_steps={limit} reached: the agent made {limit} model calls without finishing"
            )

    def snapshot(self, pending: StepState | None) -> RunSnapshot:
        return RunSnapshot(
            run_id=self.setup.run_id,
            agent_name=self.agent.name,
            user_message=self.setup.user_message,
            thread_id=self.setup.thread_id,
            requested_by=self.setup.requested_by,
            context=dict(self.setup.context or {}),
            step=self.step,
            seq=self.emitter.seq,
            messages=list(self.messages),
            executions=list(self.tool_calls.executions),
            usage=self.usage,
            active_s=self.clock.used(),
            pending_step=pending,
            trace_context=self.emitter.observer.trace_context() if self.emitter.observer else {},
        )

    async def checkpoint_step(self, pending: StepState, requests: list[Request]) -> None:
        """Persist the step whose requests were just opened. External mode stops here."""
        if self.durable is None:
            return
        if not self.external:
            self.durable.keep_lease()  # this process keeps waiting: others must not resume it
        await self.durable.checkpoint("paused", pending, requests)

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
        asking = self.asking
        request = asking.new_request(
            step, decision, tool_name=None, tool_args={}, tool_call_id=None
        )
        [asked] = await asking.open(step, [request])
        try:
            pending = StepState(step=step, paused_ids=(request.request_id,), model_request=request)
            await self.checkpoint_step(pending, [request])
            if self.external:
                raise Paused([request])
            return await self._model_gate_decided(step, request, asked)
        finally:
            discard(asked)

    async def _model_gate_decided(self, step: int, request: Request, asked: Any = None) -> bool:
        if self.setup.snapshot is not None and request not in self.asking.open_requests:
            self.asking.open_requests.append(request)
        answer, decided_by = await self.asking.ask(step, request, asked=asked)
        if answer.kind == "deny":
            return False
        if isinstance(answer, UserInputDecision) and decided_by == "human" and answer.value:
            self.messages.append(UserMessage(content=answer.value))
        return True

    # -- policy --------------------------------------------------------------------------
    async def evaluate(self, event: PolicyEvent) -> PolicyDecision:
        """Every engine's decision, combined. The engines share one ``policy_timeout_s`` for
        their async conditions (a hung one is denied, naming its rule), and the run's
        remaining active time bounds it all: policy time counts towards ``max_run_time_s``."""
        self.clock.check()
        limit = self.config.policy_timeout_s
        deadline = asyncio.get_running_loop().time() + limit
        if self.config.max_run_time_s is None:  # no budget to enforce: no timer on the path
            return await self._evaluate_all(event, limit, deadline)
        try:
            async with asyncio.timeout(self.clock.remaining()) as budget:
                return await self._evaluate_all(event, limit, deadline)
        except TimeoutError:
            if budget.expired():
                raise self.clock.exceeded() from None
            raise

    async def _evaluate_all(
        self, event: PolicyEvent, limit: float, deadline: float
    ) -> PolicyDecision:
        decision: PolicyDecision | None = None
        for engine in self.setup.engines:
            found = await engine.aevaluate(event, timeout_s=limit, deadline=deadline)
            decision = found if decision is None else combine(decision, found)
        return decision if decision is not None else PolicyDecision(action="allow")

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
            shadow=decision.shadow,
        )
        if self.durable is not None:
            await self.durable.log_policy(event, decision)


def _first_error(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def new_tool_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"
