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
from typing import Any, Literal

from afk.agents.policy import PolicyEvent
from afk.approvals.requests import Request, UserInputDecision
from afk.core._asking import Asking
from afk.core._call import Paused, discard
from afk.core._durable import Durable, NestedDurable
from afk.core._emitter import ActiveClock, Emitter
from afk.core._facts import RunFacts
from afk.core._gate import PolicyGate
from afk.core._setup import RunSetup
from afk.core._snapshot import RunSnapshot, StepState
from afk.core._tool_call import (
    Prepared,
    StepDone,
    ToolCallRunner,
    discard_asked,
    new_questions,
)
from afk.core.events import (
    LLMCalled,
    LLMCompleted,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunStarted,
    StepStarted,
    TextDelta,
)
from afk.core.result import RunResult, RunState
from afk.errors import RunError
from afk.llms._calling import model_kwargs, run_settings
from afk.llms._output import OutputValidationError, retries_so_far
from afk.llms.messages import (
    AssistantMessage,
    Message,
    ModelResponse,
    ToolCall,
    ToolSpec,
    Usage,
    UserMessage,
)
from afk.llms.model import model_label
from afk.observability import observe_run


# The loop's typed steps: each step's handler returns the next one.
@dataclass(frozen=True, slots=True)
class CallModel:
    """Call the model for a new step; ``let_through``: the step's model call was gated and
    has been allowed already (a run resumed from that gate), so it is not asked again."""

    let_through: bool = False


@dataclass(frozen=True, slots=True)
class RunTools:
    """Gate, ask about and run the tool calls of the model's turn in ``step`` (``text``:
    what the model said with them)."""

    step: int
    calls: tuple[ToolCall, ...]
    text: str | None = None


@dataclass(frozen=True, slots=True)
class Finish:
    """The run ends with ``state``; ``text``: the model's last words, if any."""

    state: Literal["completed", "stopped"]
    text: str | None = None


class Run:
    """One run: its changing state (messages, step, usage) and the loop over its steps.

    The loop owns the run; the machinery it calls (policy gate, asking, tool calls, the
    durable journal) gets the run's :class:`RunFacts` and the services it needs, never the
    run itself."""

    __slots__ = (
        "agent",
        "asking",
        "cancel_requested",
        "clock",
        "durable",
        "emitter",
        "facts",
        "gate",
        "history",
        "messages",
        "output",
        "settings",
        "setup",
        "specs",
        "step",
        "tool_calls",
        "usage",
    )

    def __init__(self, setup: RunSetup) -> None:
        self.setup = setup
        self.agent = setup.agent
        facts = self.facts = RunFacts.of(setup, started_at=time.time())
        notify = getattr(setup.provider, "notify", None)
        observer: Any = observe_run(setup)
        if setup.nested is not None:  # a sub-agent: its events go to its parent's stream
            notify, observer = forward_to(setup.nested.parent_emitter), None
        emitter = self.emitter = Emitter(
            setup.run_id, notify if callable(notify) else None, observer
        )
        self.specs: list[ToolSpec] = self.agent.tool_specs
        self.settings = run_settings(
            self.agent.model_settings,
            setup.model_settings,
            tool_names=list(self.agent.tools),
            agent_name=self.agent.name,
        )
        self.output: Any = None  # the validated answer, with Agent(output_type=...)
        self.cancel_requested = False
        snap = setup.snapshot
        limit = setup.config.max_run_time_s
        if snap is None:
            self.clock = ActiveClock(limit)
            self.messages: list[Message] = [self.agent.system_message, *setup.history]
            self.messages.append(UserMessage(content=setup.user_message))
            self.history = len(setup.history)
            self.usage: Usage | None = None
            self.step = 0
        else:
            self.clock = ActiveClock(limit, used=snap.active_s, paused=True)
            self.messages = list(snap.messages)  # the Runner put the history back in
            self.history = snap.history
            self.usage = snap.usage
            self.step = snap.step
            emitter.seq = snap.seq
        self.durable: Durable | None = None
        if setup.store is not None:
            journal = Durable if setup.nested is None else NestedDurable
            self.durable = journal(
                facts,
                setup.store,
                emitter=emitter,
                owner=setup.owner,
                lease_ttl_s=setup.lease_ttl_s,
            )
        paused = snap.pending_step.paused_ids if snap and snap.pending_step else ()
        self.asking = Asking(
            facts, emitter=emitter, clock=self.clock, durable=self.durable, paused=paused
        )
        self.gate = PolicyGate(
            facts, setup.engines, clock=self.clock, emitter=emitter, durable=self.durable
        )
        self.tool_calls = ToolCallRunner(
            facts,
            emitter=emitter,
            clock=self.clock,
            gate=self.gate,
            asking=self.asking,
            durable=self.durable,
        )
        if snap is not None:
            self.tool_calls.executions.extend(snap.executions)

    def continue_from(self, history: list[Message]) -> None:
        """Start after ``history`` (the run's thread so far), before it executes."""
        self.messages[1:1] = history
        self.history = len(history)

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
        nxt: CallModel | RunTools | Finish = CallModel()
        try:
            if self.cancel_requested:
                raise asyncio.CancelledError
            if self.durable is not None:
                await self.durable.ready()
            if resume is not None:
                nxt = await self._resume(resume)
            while not isinstance(nxt, Finish):
                if isinstance(nxt, CallModel):
                    nxt = await self._model_step(nxt)
                    continue
                final_text = nxt.text  # the turn's text, also when its calls stop the run
                # The tool step inline: a run waiting for a human carries one frame less.
                prepared = await self.tool_calls.prepare_step(nxt.step, nxt.calls)
                if prepared.requests:
                    await self._checkpoint_gated(prepared)
                # complete(), inline: its frame would be one more while the run waits.
                try:
                    await self.tool_calls.settle(nxt.step, prepared.calls)
                finally:
                    discard_asked(prepared.calls)
                done = self.tool_calls.done(nxt.step, prepared.calls)
                if done.asked is not None:
                    done = await self._questions(done)
                self.messages.extend(done.messages)
                nxt = Finish("stopped", final_text) if done.stop else CallModel()
            state, final_text = nxt.state, nxt.text
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
            output=self.output,
        )

    async def _resume(self, pending: StepState) -> CallModel | Finish:
        """Finish the step the run paused in."""
        if pending.model_request is not None:
            allowed = await self._model_gate_decided(pending.step, pending.model_request)
            if allowed and await self._model_denied_now(pending.step):
                allowed = False
            return CallModel(let_through=True) if allowed else Finish("stopped")
        done = await self.tool_calls.resume_step(pending)
        if done.asked is not None:
            done = await self._questions(done)
        self.messages.extend(done.messages)
        return Finish("stopped") if done.stop else CallModel()

    async def _model_step(self, nxt: CallModel) -> RunTools | Finish | CallModel:
        """A new step (unless its model call was let through already), its model call, and
        what the model asked for."""
        if not nxt.let_through:
            self._check_steps(self.step)
            self.step += 1
            await self.emitter.emit(StepStarted, self.step)
            if not await self._gate_model_call(self.step):
                return Finish("stopped")
        turn = await self._call_model(self.step)
        self.messages.append(turn)
        if not turn.tool_calls:
            return self._final_answer(turn.text)
        return RunTools(self.step, turn.tool_calls, turn.text)

    def _final_answer(self, text: str | None) -> Finish | CallModel:
        """The model's answer ends the run; with an output type only once it validates: an
        invalid one goes back to the model with what is wrong, ``max_output_retries`` times."""
        checker = self.agent.output_validator
        if checker is None:
            return Finish("completed", text)
        value, problem = checker.validate(text)
        if problem is None:
            self.output = value
            return Finish("completed", text)
        if retries_so_far(self.messages) >= self.agent.max_output_retries:
            raise OutputValidationError(
                f"the model's answer did not validate as {checker.spec.name} after "
                f"max_output_retries={self.agent.max_output_retries} retries: {problem}"
            )
        self.messages.append(UserMessage(content=checker.retry_message(problem)))
        return CallModel()

    async def _checkpoint_gated(self, prepared: Prepared) -> None:
        """Persist a step that opened requests. External mode runs the step's calls that
        need nobody, checkpoints again, and pauses the run."""
        try:
            await self.checkpoint_step(prepared.state(), prepared.requests)
            if self.facts.external:
                if await self.tool_calls.run_allowed(prepared):
                    asked = new_questions(prepared.calls)  # their tools asked as they ran
                    await self.checkpoint_step(prepared.state(), asked)
                    raise Paused([*prepared.requests, *asked])
                raise Paused(prepared.requests)
        except BaseException:
            prepared.discard()
            raise

    async def _questions(self, done: StepDone) -> StepDone:
        """Tools of the step asked humans from inside their bodies (afk.core._tool_asks):
        store the questions with the step; then pause (external mode), or wait here and
        enter those tools again, until every call of the step has settled."""
        while done.asked is not None:
            asked = done.asked
            await self.checkpoint_step(asked.state(), asked.requests)
            if self.facts.external:
                raise Paused(asked.requests)
            done = await self.tool_calls.complete(asked.step, asked.calls)
        return done

    async def _finish(self, state: RunState) -> None:
        """Persist the ending. A store failing here must not make run() raise: the result
        says so in ``warnings``; a later resume finds the execution records and does not run
        any tool body twice."""
        if state != "paused":
            await self._end_turn(state)
        if self.durable is None:
            return
        try:
            if state != "paused":
                await self.durable.finish(state, self.snapshot(None))  # the lease with it
            await self.durable.release()
        except Exception as exc:
            self.emitter.warnings.append(
                f"could not record the run's end ({state}) in the store: "
                f"{type(exc).__name__}: {exc}"
            )

    async def _end_turn(self, state: RunState) -> None:
        """Hand the thread back: with this run's messages as its next turn when the run
        completed or stopped, without them when it failed or was cancelled (see
        afk.core.sessions). Before the run's end is stored: a crash in between resumes the
        run, which adds the turn again, and the session keeps the first."""
        session, thread_id = self.setup.session, self.setup.thread_id
        if session is None or thread_id is None:
            return
        run_id = self.setup.run_id
        try:
            if state in ("completed", "stopped"):
                turn = self.messages[1 + self.history :]
                await session.add_turn(thread_id, run_id=run_id, messages=turn)
            else:
                await session.release(thread_id, run_id=run_id)
        except Exception as exc:
            self.emitter.warnings.append(
                f"could not add the run's turn to thread {thread_id!r}: {type(exc).__name__}: {exc}"
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
            history=self.history,
            executions=list(self.tool_calls.executions),
            usage=self.usage,
            active_s=round(self.clock.used(), 6),
            pending_step=pending,
            trace_context=self.emitter.observer.trace_context() if self.emitter.observer else {},
        )

    async def checkpoint_step(self, pending: StepState, requests: list[Request]) -> None:
        """Persist the step whose requests were just opened. External mode stops here."""
        if self.durable is None:
            return
        if not self.facts.external:
            self.durable.keep_lease()  # this process keeps waiting: others must not resume it
        await self.durable.checkpoint("paused", self.snapshot(pending), requests)

    # -- the model -----------------------------------------------------------------------
    async def _call_model(self, step: int) -> AssistantMessage:
        """One model call; returns the assistant turn, every tool call with an id."""
        self.clock.check()
        model = self.setup.model
        await self.emitter.emit(
            LLMCalled, step, model=model_label(model), message_count=len(self.messages)
        )
        response = await self.clock.bounded(self._complete(step, model))
        calls = tuple(c if c.id else replace(c, id=new_tool_call_id()) for c in response.tool_calls)
        if response.usage is not None:
            self.usage = response.usage if self.usage is None else self.usage + response.usage
        await self.emitter.emit(
            LLMCompleted, step, text=response.text, tool_calls=calls, usage=response.usage
        )
        return AssistantMessage(text=response.text, tool_calls=calls)

    def _model_kwargs(self, model: Any, method: str) -> dict[str, Any]:
        checker = self.agent.output_validator
        output = checker.spec if checker is not None else None
        return model_kwargs(model, method, self.settings, output, self.emitter.warnings)

    async def _complete(self, step: int, model: Any) -> ModelResponse:
        stream = getattr(model, "stream", None)
        if not callable(stream):
            kwargs = self._model_kwargs(model, "complete")
            response: ModelResponse = await model.complete(self.messages, self.specs, **kwargs)
            return response
        final: ModelResponse | None = None
        async for chunk in stream(self.messages, self.specs, **self._model_kwargs(model, "stream")):
            if isinstance(chunk, str):
                if chunk:
                    await self.emitter.emit(TextDelta, step, delta=chunk)
            else:
                final = chunk
        if final is None:
            raise RunError(f"model {model_label(model)} streamed no final ModelResponse")
        return final

    def _model_event(self, step: int) -> PolicyEvent:
        return PolicyEvent(
            event_type="llm_before_execute",
            run_id=self.setup.run_id,
            thread_id=self.setup.thread_id,
            step=step,
            agent_name=self.agent.name,
            context=self.facts.context,
        )

    async def _model_denied_now(self, step: int) -> bool:
        """A model call whose run waited for its approval meets the policy of now, as a
        waiting tool call does: a deny rule added meanwhile stops it. Only a deny counts."""
        if not self.gate.gates_model:
            return False
        return (await self.gate.decide(step, self._model_event(step))).action == "deny"

    async def _gate_model_call(self, step: int) -> bool:
        """Policy for the model call itself; only when some rule covers model calls."""
        if not self.gate.gates_model:
            return True
        decision = await self.gate.decide(step, self._model_event(step))
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
            if self.facts.external:
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


def _first_error(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def new_tool_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


# What a sub-agent's run keeps to itself: its start and end are not its parent's.
_OWN_EVENTS = frozenset({"run_started", "run_completed", "run_failed", "run_cancelled"})


def forward_to(parent: Emitter) -> Any:
    """A sub-agent run's ``notify``: its events, but its start and end, into ``parent``."""

    async def forward(event: Any) -> None:
        if event.type not in _OWN_EVENTS:
            await parent.adopt(event)

    return forward
