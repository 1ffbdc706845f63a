"""The Runner: runs agents under policy, asking humans when a rule says so."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from afk._ids import new_id
from afk.agents.agent import Agent
from afk.agents.policy import PolicyEngine
from afk.approvals._rows import load_request
from afk.approvals.approvers import GROUP_PREFIX, ApproverDirectory, StaticDirectory
from afk.approvals.grants import Grants
from afk.approvals.principal import Principal, asserted, canonical_id
from afk.approvals.providers import HeadlessInteractionProvider, InMemoryInteractiveProvider
from afk.approvals.requests import Decision, Request
from afk.canonical import check_json
from afk.core import _durable_api, _timers
from afk.core._durable import ensure_ready
from afk.core._run import Run
from afk.core._setup import Nested, RunSetup
from afk.core._snapshot import RunSnapshot, with_history
from afk.core._subagents import ChildRuns
from afk.core._timers import Reminder
from afk.core._worker import OnReport, Resumed, Worker, WorkerReport
from afk.core.config import RunnerConfig
from afk.core.events import Event
from afk.core.result import RunInfo, RunResult
from afk.core.sessions import InMemorySession, Session, StoreSession
from afk.errors import AfkError, ConfigurationError, InvalidArgumentsError
from afk.llms.messages import AssistantMessage, Message, SystemMessage, ToolMessage, UserMessage
from afk.llms.registry import resolve_model
from afk.llms.settings import ModelSettings
from afk.observability import span_factory
from afk.store._paging import DEFAULT_LIMIT, Page
from afk.store.store import GrantRecord, RunRecord, RunStore

if TYPE_CHECKING:
    from afk.approvals.notify import DeliveryReport, Notifiers

_log = logging.getLogger("afk.runner")
T = TypeVar("T")
NOTIFY_S = 0.5  # how often a running run's requests are delivered to Runner(notifiers=)


class RunHandle:
    """A run in progress: ``async for event in handle``, ``await handle.result()``,
    ``handle.cancel()``."""

    __slots__ = ("_run", "_task", "run_id")

    def __init__(self, run: Run, task: asyncio.Task[RunResult]) -> None:
        self._run = run
        self._task = task
        self.run_id = run.setup.run_id

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._run.emitter.follow()

    async def result(self) -> RunResult:
        """Wait for the run to end or pause and return its result. Cancelling the waiter does not
        cancel the run."""
        return await asyncio.shield(self._task)

    def cancel(self) -> None:
        """Cancel the run: it ends as ``cancelled`` with a ``run_cancelled`` event, even when it has
        not started yet."""
        if not self._run.emitter.events:
            # Not started yet: a task cancelled before its first step never runs its body,
            # so ask the run to cancel itself and still end with a proper run_cancelled.
            self._run.cancel_requested = True
        else:
            self._task.cancel()

    def done(self) -> bool:
        """Whether the run has ended or paused."""
        return self._task.done()


class Runner:
    """Runs agents. Configuration errors raise here or before ``run_started``; failures
    during a run end it in a state (``failed``, ``stopped``, ...) and never raise.

    With a ``store`` (an object, a URL such as ``"sqlite:///runs.db"``, or ``AFK_STORE``),
    runs are durable: every request and decision is on disk, ``external`` mode returns
    ``paused`` runs, and :meth:`resume` continues them from any process.

    ``tracing=True`` (the global tracer provider) or ``tracing=provider`` (a
    ``TracerProvider``) records OpenTelemetry spans of every run: see
    :mod:`afk.observability`. Needs ``pip install "afk-agents[otel]"``.
    """

    def __init__(
        self,
        policy_engine: PolicyEngine | None = None,
        interaction_provider: Any = None,
        config: RunnerConfig | None = None,
        *,
        store: Any = None,
        lease_ttl_s: float = 30.0,
        directory: ApproverDirectory | None = None,
        notifier: Callable[[Reminder], Any] | None = None,
        tracing: Any = False,
        session: Session | None = None,
        notifiers: Notifiers | None = None,
    ) -> None:
        config = RunnerConfig() if config is None else config
        if not isinstance(config, RunnerConfig):
            raise ConfigurationError(
                f"Runner config must be a RunnerConfig, got {type(config).__name__}"
            )
        if policy_engine is not None and not isinstance(policy_engine, PolicyEngine):
            raise ConfigurationError(
                f"Runner policy_engine must be a PolicyEngine, got {type(policy_engine).__name__}"
            )
        if notifiers is not None and not _is_notifiers(notifiers):
            raise ConfigurationError(
                "Runner notifiers must be an afk.approvals.notify.Notifiers (the channels: "
                f"webhooks, Slack, email), got {type(notifiers).__name__}"
            )
        if session is not None and not isinstance(session, Session):
            raise ConfigurationError(
                "Runner session must implement afk.core.Session (take, history, add_turn, "
                f"release), got {type(session).__name__}"
            )
        opened, self._store_spec = _open_store(store)
        self.store: RunStore | None = opened
        # A store opened here from a URL (or AFK_STORE) is ours to close; an object is not.
        self._owns_store = self.store is not None and not isinstance(store, RunStore)
        _check_provider(config, interaction_provider, has_store=self.store is not None)
        self.config = config
        self.policy_engine = policy_engine
        self.interaction_provider = interaction_provider
        self.lease_ttl_s = lease_ttl_s
        self.directory = directory if directory is not None else _directory_of(policy_engine)
        _check_groups(policy_engine, self.directory)
        self._grants = Grants(self.store)
        self.notifier = notifier
        self._tracing = span_factory(tracing)  # imports OpenTelemetry only when on
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # Told of every request opened, reminded, escalated, decided or expired, from the
        # store's ledger, by the worker loop (or deliver_notifications).
        self.notifiers = notifiers
        # The delivery loop while runs run, and what tells it to stop after its pass.
        self._pump: tuple[asyncio.Task[None], asyncio.Event] | None = None
        self._notifying_runs = 0
        self._delivering: tuple[object, asyncio.Lock] = (None, asyncio.Lock())
        # Conversation threads: the one given, else the store's, else this runner's memory.
        self._session = session
        self._memory_session = InMemorySession()

    @property
    def session(self) -> Session:
        """Where this runner keeps conversation threads (see :mod:`afk.core.sessions`)."""
        if self._session is not None:
            return self._session
        if self.store is not None:
            return StoreSession(self.store, owner=self.owner)
        return self._memory_session

    def _start(self, run: Run) -> Coroutine[Any, Any, RunResult]:
        """The run's coroutine: on a thread, one that first takes the thread and puts its
        history in (the thread is taken before anything else happens, so a busy thread
        raises and nothing runs); with notifiers and a store, one that delivers what the
        run's requests go through while it runs; else the run itself, so a waiting run
        carries no frame more."""
        on_thread = run.setup.session is not None and run.setup.thread_id is not None
        work = self._on_thread(run) if on_thread else run.execute()
        if self.notifiers is not None and self.store is not None:
            return self._notifying(work)
        return work

    async def _notifying(self, work: Coroutine[Any, Any, RunResult]) -> RunResult:
        """Run ``work`` while this runner's one delivery loop runs every NOTIFY_S (a request
        it opens is announced while the run waits for it, not only when a worker passes by),
        and deliver once more when it ends (its decisions and expiries). One loop however
        many runs are running: it stops with the last of them."""
        self._notifying_runs += 1
        if self._pump is None or self._pump[0].done():
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            self._pump = (loop.create_task(self._deliver_every(NOTIFY_S, stop)), stop)
        try:
            return await work
        finally:
            self._notifying_runs -= 1
            if self._notifying_runs == 0 and self._pump is not None:
                # Stopped after the pass under way, not cancelled in it: a pass cut off
                # between a channel's delivery and its cursor's move hands that event out
                # again on the next pass.
                pump, stop = self._pump
                self._pump = None
                stop.set()
                await asyncio.gather(pump, return_exceptions=True)
            try:
                await self.deliver_notifications()
            except Exception:  # a channel's or the store's failure never fails the run
                _log.warning("notification delivery failed", exc_info=True)

    async def _deliver_every(self, interval_s: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.deliver_notifications()
            except Exception:
                _log.warning("notification delivery failed", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)

    async def _on_thread(self, run: Run) -> RunResult:
        setup = run.setup
        assert setup.session is not None and setup.thread_id is not None
        try:
            await setup.session.take(setup.thread_id, run_id=setup.run_id)
            run.continue_from(await setup.session.history(setup.thread_id))
        except BaseException:
            await _give_back(setup)
            run.emitter.close()
            raise
        return await run.execute()

    # -- starting runs -------------------------------------------------------------------
    def run_stream(
        self,
        agent: Agent,
        *,
        user_message: str,
        context: dict[str, Any] | None = None,
        thread_id: str | None = None,
        requested_by: str | None = None,
        messages: Sequence[Message] | None = None,
        model_settings: ModelSettings | None = None,
    ) -> RunHandle:
        """Start a run on the running event loop and return its handle."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise ConfigurationError(
                "run_stream() must be called inside a running event loop; "
                "use run_sync() from plain code"
            ) from None
        setup = self._setup(
            agent, user_message, context, thread_id, requested_by, messages,
            model_settings=model_settings,
        )  # fmt: skip
        run = Run(setup)
        return RunHandle(run, asyncio.create_task(self._start(run)))  # _start: see there

    async def run(
        self,
        agent: Agent,
        *,
        user_message: str,
        context: dict[str, Any] | None = None,
        thread_id: str | None = None,
        requested_by: str | None = None,
        messages: Sequence[Message] | None = None,
        model_settings: ModelSettings | None = None,
    ) -> RunResult:
        """Run ``agent`` on ``user_message`` until it completes, stops, fails, is cancelled or
        (external mode) pauses, and return the result. Failures during the run end it in a state and
        never raise; configuration errors raise before it starts. ``context`` is visible to policy
        conditions and tools (with a store it must be JSON data: it is checkpointed);
        ``requested_by`` scopes grants and forbids self-approval.

        ``thread_id`` continues that conversation: the run starts from the messages of the
        thread's earlier runs and, when it completes or stops, adds its own (see
        :mod:`afk.core.sessions`); a thread another run is on (running or paused) raises
        ThreadBusyError. ``messages`` gives the conversation so far instead (a
        ``result.messages``, say: its leading instructions are replaced by the agent's).
        ``model_settings`` (an ``afk.llms.ModelSettings``) override the agent's, field by
        field, for this run."""
        setup = self._setup(
            agent, user_message, context, thread_id, requested_by, messages,
            model_settings=model_settings,
        )  # fmt: skip
        return await self._start(Run(setup))  # _start: see there

    def run_sync(
        self,
        agent: Agent,
        *,
        user_message: str,
        context: dict[str, Any] | None = None,
        thread_id: str | None = None,
        requested_by: str | None = None,
        messages: Sequence[Message] | None = None,
        model_settings: ModelSettings | None = None,
    ) -> RunResult:
        """:meth:`run` from plain (non-async) code; closes a store the runner opened itself when the
        run returns. Raises ConfigurationError inside a running event loop."""
        _no_running_loop("run_sync")

        async def run_and_release() -> RunResult:
            try:
                return await self.run(
                    agent,
                    user_message=user_message,
                    context=context,
                    thread_id=thread_id,
                    requested_by=requested_by,
                    messages=messages,
                    model_settings=model_settings,
                )
            finally:
                await self._release_store()

        return asyncio.run(run_and_release())

    async def _release_store(self) -> None:
        # Store connections belong to the event loop that opened them, and run_sync's loop
        # ends here: close them, and keep a fresh store for the next call. It is opened from
        # the spec given, never from `store.url`: that is masked (no password) and a Postgres
        # one has lost its `?afk_schema=`, so it would lead somewhere else.
        if self._owns_store and self.store is not None:
            await self.store.close()
            self.store = self._grants.store = _open_store(self._store_spec)[0]

    async def aclose(self) -> None:
        """Close the store connections this runner opened, and the pooled HTTP clients of
        the models it resolved by name (in this event loop)."""
        from afk.llms._http import close_pools

        await close_pools()
        if self._owns_store and self.store is not None:
            await self.store.close()

    async def __aenter__(self) -> Runner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- durable runs ----------------------------------------------------------------------
    async def resolve(
        self, request_id: str, decision: Decision, *, principal: Principal | None = None
    ) -> Literal["decided", "pending"]:
        """Record ``principal``'s decision (or quorum vote) in the store, from any process.

        ``principal`` is the person your application authenticated; it is what the ledger
        records, whatever ``decision.approver`` says. Without one, ``decision.approver`` is
        taken as a name your code vouches for (``authenticated_by="app"``), and no name at all
        is an anonymous answer, which decides only requests with no approver rule. Single use:
        refused (and logged) when unknown, already decided (naming the first decision),
        expired, malformed, or by a principal who may not decide it."""
        store = await self._ready_store("resolve")
        who = principal if principal is not None else asserted(decision.approver, "app")
        return await _durable_api.resolve(store, request_id, decision, who)

    async def pending_requests(
        self, *, limit: int = 50, cursor: str | None = None
    ) -> Page[Request]:
        """One page of the undecided requests in the store, across runs, oldest first: at
        most ``limit`` (1 to 1000). Its ``next_cursor``, passed as ``cursor``, gives the next
        page (None on the last); the cost of a page does not grow with the store."""
        store = await self._ready_store("pending_requests")
        found = await store.list_requests(status="pending", limit=limit, cursor=cursor)
        return Page([load_request(r) for r in found], next_cursor=found.next_cursor)

    async def get_request(self, request_id: str) -> Request:
        """The stored request ``request_id`` (any status), as the store holds it: exact
        canonical arguments, rule, reason, approvers, expiry. Raises UnknownRequestError;
        TamperedRecordError for a row changed outside afk."""
        store = await self._ready_store("get_request")
        return await _durable_api.get_request(store, request_id)

    async def get_run(self, run_id: str) -> RunInfo:
        """The stored run ``run_id``: its state and the requests it waits on. Raises
        RunNotFoundError; TamperedRecordError for a row changed outside afk."""
        store = await self._ready_store("get_run")
        return await _durable_api.get_run(store, run_id)

    # -- the same, from plain code (a Flask or Django view) ----------------------------------
    def resolve_sync(
        self, request_id: str, decision: Decision, *, principal: Principal | None = None
    ) -> Literal["decided", "pending"]:
        """:meth:`resolve` from plain (non-async) code."""
        return self._sync(
            "resolve_sync", lambda: self.resolve(request_id, decision, principal=principal)
        )

    def pending_requests_sync(self, *, limit: int = 50, cursor: str | None = None) -> Page[Request]:
        """:meth:`pending_requests` from plain (non-async) code."""
        return self._sync(
            "pending_requests_sync", lambda: self.pending_requests(limit=limit, cursor=cursor)
        )

    def resume_sync(
        self, run_id: str, agent: Agent, *, context: dict[str, Any] | None = None
    ) -> RunResult:
        """:meth:`resume` from plain (non-async) code."""
        return self._sync("resume_sync", lambda: self.resume(run_id, agent, context=context))

    def get_request_sync(self, request_id: str) -> Request:
        """:meth:`get_request` from plain (non-async) code."""
        return self._sync("get_request_sync", lambda: self.get_request(request_id))

    def get_run_sync(self, run_id: str) -> RunInfo:
        """:meth:`get_run` from plain (non-async) code."""
        return self._sync("get_run_sync", lambda: self.get_run(run_id))

    def _sync(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        _no_running_loop(what)

        async def call_and_release() -> T:
            try:
                return await call()
            finally:
                await self._release_store()

        return asyncio.run(call_and_release())

    async def resume(
        self,
        run_id: str,
        agent: Agent,
        *,
        context: dict[str, Any] | None = None,
        model_settings: ModelSettings | None = None,
    ) -> RunResult:
        """Continue a paused run from its checkpoint. Returns it still ``paused`` when some
        request is undecided and not yet expired. ``context``: live application objects
        (a connection, a client) for the tools and policies of this stretch of the run, seen
        over the stored context and never checkpointed; a key the stored context holds with
        another value is refused. ``model_settings``: as for :meth:`run` (a checkpoint does not
        keep the first stretch's)."""
        return await self._resume(run_id, agent, context, model_settings)

    async def _resume(
        self,
        run_id: str,
        agent: Agent,
        context: dict[str, Any] | None = None,
        model_settings: ModelSettings | None = None,
        leased: RunRecord | None = None,
    ) -> RunResult:
        """:meth:`resume`; ``leased``: the run's row as a worker's ``claim_ready`` took it
        (its lease this runner's), so the claim reads only its requests."""
        if context is not None and not isinstance(context, dict):
            raise ConfigurationError("resume() context must be a dict or None")
        store = await self._ready_store("resume")
        claimed = await _durable_api.claim(
            store, run_id, agent, self.owner, self.lease_ttl_s, leased=leased
        )
        if isinstance(claimed, RunResult):
            return claimed
        snapshot, records = claimed
        try:
            if snapshot.history and snapshot.thread_id is not None:
                history = await self.session.history(snapshot.thread_id)
                snapshot = with_history(snapshot, history)
            _check_live_context(snapshot.context, context)
        except BaseException:
            await store.release_lease(run_id, owner=self.owner)
            raise
        setup = self._setup(
            agent,
            snapshot.user_message,
            snapshot.context,
            snapshot.thread_id,
            snapshot.requested_by,
            run_id=snapshot.run_id,
            snapshot=snapshot,
            live_context=context,
            model_settings=model_settings,
        )
        run = Run(setup)
        assert run.durable is not None
        run.durable.remember(records)
        run.durable.keep_lease()
        return await run.execute()

    async def resume_ready(
        self, agents: Sequence[Agent], *, on_report: OnReport | None = None
    ) -> list[RunResult]:
        """One pass of the worker loop: resume, one after another, every paused run of
        ``agents`` whose requests are all decided (or expired), claiming each from the
        store's ready index so that no other worker resumes it too, and return how each
        ended. ``on_report`` also hears the reminders sent, the runs taken over from dead
        workers, and why a ready run is left alone (unknown agent, held, failed)."""
        store = await self._ready_store("resume_ready")
        results: list[RunResult] = []

        async def collect(report: WorkerReport) -> None:
            if isinstance(report, Resumed):
                results.append(report.result)
            elif on_report is not None:
                outcome = on_report(report)
                if inspect.isawaitable(outcome):
                    await outcome

        worker = Worker(self, store, agents, concurrency=1, poll_s=1.0, on_report=collect)
        survey = True
        while await worker.pass_once(survey=survey) or worker.tasks:
            survey = False
            await asyncio.gather(*worker.tasks)
        return results

    async def deliver_notifications(self) -> DeliveryReport:
        """One delivery pass of ``notifiers`` (what ``work()`` runs beside each pass): every
        channel hears the ledger's request events it has not yet, at least once, each with a
        stable delivery id; one failing channel holds up no other."""
        from afk.approvals.notify import deliver_pending

        store = await self._ready_store("deliver_notifications")
        if self.notifiers is None:
            raise ConfigurationError("Runner.deliver_notifications() needs Runner(notifiers=...)")
        # One pass at a time in this runner: its runs' loop and its worker share an owner, so
        # the store's per-channel lease would let two passes hand out the same events twice.
        loop = asyncio.get_running_loop()
        if self._delivering[0] is not loop:  # a lock per event loop (run_sync makes new ones)
            self._delivering = (loop, asyncio.Lock())
        async with self._delivering[1]:
            return await deliver_pending(store, self.notifiers, owner=self.owner)

    async def fire_due_timers(self) -> list[Reminder]:
        """Send each due reminder / escalation of a pending request to ``notifier`` once,
        across all workers, and record it in the decision log."""
        store = await self._ready_store("fire_due_timers")
        return await _timers.fire_due_timers(store, self.notifier)

    async def work(
        self,
        agents: Sequence[Agent],
        *,
        concurrency: int = 1,
        poll_s: float = 0.5,
        stop: asyncio.Event | None = None,
        on_report: OnReport | None = None,
    ) -> None:
        """The worker loop (``afk worker`` runs this): until ``stop`` is set, fire due
        reminders and escalations, take over at once the runs whose lease holder is a dead
        process on this host, resume ready runs of ``agents`` (at most ``concurrency`` at a
        time, claimed one by one so no two workers get the same run), and tell ``on_report``
        each :class:`~afk.core.Resumed` run and why a ready run is left alone
        (:class:`~afk.core.CannotResume`: unknown agent, held by another worker until when,
        failed). It wakes when a decision is committed; ``poll_s`` is only a safety net.
        When ``stop`` is set it starts nothing new and returns once the runs it started have
        paused or ended (their leases released)."""
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigurationError(f"work() concurrency must be an int >= 1, got {concurrency!r}")
        if isinstance(poll_s, bool) or not isinstance(poll_s, int | float) or not poll_s > 0:
            raise ConfigurationError(f"work() poll_s must be a number > 0, got {poll_s!r}")
        store = await self._ready_store("work")
        worker = Worker(
            self, store, agents, concurrency=concurrency, poll_s=poll_s, on_report=on_report
        )
        await worker.run(stop or asyncio.Event())

    # -- standing grants -----------------------------------------------------------------
    async def grants(
        self,
        *,
        active_only: bool = True,
        limit: int | None = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page[GrantRecord]:
        """Standing grants (in the store when there is one), oldest first, a page at a time
        like every listing: ``limit`` (1 to 1000, default 50) of them, after ``cursor`` (an
        earlier page's ``next_cursor``); ``limit=None`` without a cursor: every one."""
        if self.store is not None:
            await ensure_ready(self.store)
        active_at = time.time() if active_only else None
        return await self._grants.list(active_at=active_at, limit=limit, cursor=cursor)

    async def revoke_grant(self, grant_id: str, *, by: str | None = None) -> GrantRecord:
        """Stop a grant from allowing anything more; the first revocation stands."""
        if self.store is not None:
            await ensure_ready(self.store)
        return await self._grants.revoke(grant_id, by=by)

    async def _ready_store(self, what: str) -> RunStore:
        if self.store is None:
            raise ConfigurationError(
                f"Runner.{what}() needs a run store: Runner(..., store='sqlite:///runs.db') "
                "or set AFK_STORE"
            )
        await ensure_ready(self.store)
        return self.store

    def _setup(
        self,
        agent: Agent,
        user_message: str,
        context: dict[str, Any] | None,
        thread_id: str | None,
        requested_by: str | None,
        messages: Sequence[Message] | None = None,
        *,
        run_id: str | None = None,
        snapshot: RunSnapshot | None = None,
        live_context: dict[str, Any] | None = None,
        model_settings: ModelSettings | None = None,
    ) -> RunSetup:
        if not isinstance(agent, Agent):
            raise ConfigurationError(f"run() needs an Agent, got {type(agent).__name__}")
        if not isinstance(user_message, str):
            raise ConfigurationError("run() user_message must be a string")
        if context is not None and not isinstance(context, dict):
            raise ConfigurationError("run() context must be a dict or None")
        if context and self.store is not None and snapshot is None:
            _check_storable(context)
        if thread_id is not None and (not isinstance(thread_id, str) or not thread_id.strip()):
            raise ConfigurationError(
                f"run() thread_id must be a non-empty string, got {thread_id!r}"
            )
        history = _history(messages, thread_id)
        if requested_by is not None:
            try:  # one person, however it is spelled: "Erin" may not approve erin's run
                requested_by = canonical_id(requested_by, what="run() requested_by")
            except AfkError as exc:
                raise ConfigurationError(str(exc)) from None
        engines = tuple(e for e in (self.policy_engine, agent.policy_engine) if e is not None)
        # Only an agent with sub-agents (Agent.as_tool) needs them; its parent is set below.
        children = ChildRuns(self._child_setup) if agent.has_sub_agents else None
        setup = RunSetup(
            agent=agent,
            model=resolve_model(agent.model),
            engines=engines,
            config=self.config,
            provider=self.interaction_provider,
            user_message=user_message,
            context=dict(context) if context else None,
            thread_id=thread_id,
            run_id=run_id or new_id("run_"),
            requested_by=requested_by,
            store=self.store,
            owner=self.owner,
            lease_ttl_s=self.lease_ttl_s,
            snapshot=snapshot,
            directory=self.directory,
            grants=self._grants,
            tracing=self._tracing,
            history=history,
            session=self.session if thread_id is not None else None,
            live_context=dict(live_context) if live_context else None,
            model_settings=model_settings,
            children=children,
        )
        if children is not None:
            children.parent = setup
        return setup

    def _child_setup(
        self,
        parent: RunSetup,
        agent: Agent,
        user_message: str,
        nested: Nested,
        snapshot: RunSnapshot | None,
    ) -> RunSetup:
        """A sub-agent's run under ``parent``: the parent's policy engines first, then its
        own agent's (authority only narrows), the parent's run id, context and services."""
        own = (agent.policy_engine,) if agent.policy_engine is not None else ()
        setup = dataclasses.replace(
            parent,
            agent=agent,
            model=resolve_model(agent.model),
            engines=(*parent.engines, *own),
            user_message=user_message,
            snapshot=snapshot,
            history=(),
            session=None,
            tracing=None,
            model_settings=None,
            nested=nested,
            children=(children := ChildRuns(self._child_setup) if agent.has_sub_agents else None),
        )
        if children is not None:
            children.parent = setup
        return setup


def _check_storable(context: dict[str, Any]) -> None:
    """A durable run checkpoints its context as JSON: refuse, before the run starts, what
    JSON cannot hold, naming the key (live objects go to ``resume(context=...)``)."""
    try:
        check_json(context, "context")
    except InvalidArgumentsError as exc:
        raise ConfigurationError(
            f"run() {exc}: a durable run stores its context in every checkpoint, so it "
            "must be JSON data; pass live objects (connections, clients) to "
            "resume(context=...) or reach them from the tool itself"
        ) from None


def _check_live_context(stored: dict[str, Any], live: dict[str, Any] | None) -> None:
    """A live context adds to the stored one; it may not change what policy saw when the
    run paused."""
    for key, value in (live or {}).items():
        if key in stored and stored[key] != value:
            raise ConfigurationError(
                f"resume() context[{key!r}] would replace the stored context's value that "
                "policy and tools saw before the run paused; a live context may only add keys"
            )


def _history(messages: Sequence[Message] | None, thread_id: str | None) -> tuple[Message, ...]:
    """The conversation ``run(messages=...)`` gives, without its leading instructions (the
    agent's come first)."""
    if messages is None:
        return ()
    if thread_id is not None:
        raise ConfigurationError(
            "run() takes thread_id (the thread keeps the conversation) or messages (you keep "
            "it), not both"
        )
    if not isinstance(messages, list | tuple):
        raise ConfigurationError("run() messages must be a list of afk.llms messages")
    found = list(messages)
    while found and isinstance(found[0], SystemMessage):
        del found[0]
    bad = next((m for m in found if not isinstance(m, MESSAGE_TYPES)), None)
    if bad is not None or any(isinstance(m, SystemMessage) for m in found):
        raise ConfigurationError(
            "run() messages must be user, assistant and tool messages (afk.llms.messages) "
            f"after any leading instructions, got {type(bad).__name__ if bad else 'SystemMessage'}"
        )
    return tuple(found)


MESSAGE_TYPES = (UserMessage, AssistantMessage, ToolMessage, SystemMessage)


async def _give_back(setup: RunSetup) -> None:
    """Free the thread a run took when the run cannot start after all."""
    if setup.session is not None and setup.thread_id is not None:
        try:
            await setup.session.release(setup.thread_id, run_id=setup.run_id)
        except Exception:
            _log.warning("could not free thread %r", setup.thread_id, exc_info=True)


def _is_notifiers(value: object) -> bool:
    from afk.approvals.notify import Notifiers  # only when channels are configured

    return isinstance(value, Notifiers)


def _directory_of(engine: PolicyEngine | None) -> StaticDirectory:
    return StaticDirectory(getattr(engine, "groups", None) or {})


def _check_groups(engine: PolicyEngine | None, directory: ApproverDirectory) -> None:
    """A rule naming a group the static directory does not know could never be approved."""
    if engine is None or not isinstance(directory, StaticDirectory):
        return
    for rule in engine.rules:
        for entry in (*rule.approvers, *rule.escalate_to):
            group = entry.removeprefix(GROUP_PREFIX)
            if entry.startswith(GROUP_PREFIX) and group not in directory.groups:
                known = ", ".join(sorted(directory.groups)) or "none"
                raise ConfigurationError(
                    f"PolicyRule {rule.rule_id!r}: approvers group {group!r} is not in the "
                    f"approver directory (groups: {known}); define it under 'groups:' in the "
                    "policy file or pass Runner(directory=...)"
                )


def _no_running_loop(what: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise ConfigurationError(
        f"{what}() cannot be called from a running event loop; await the async method instead"
    )


def _open_store(spec: Any) -> tuple[RunStore | None, Any]:
    """The store for ``spec`` (``AFK_STORE`` when None) and the spec it came from, kept
    unmasked so the same store can be opened again."""
    from afk.store import open_store

    if spec is None:
        spec = os.environ.get("AFK_STORE", "").strip() or None
        if spec is None:
            return None, None
    return open_store(spec), spec


def _check_provider(config: RunnerConfig, provider: Any, *, has_store: bool) -> None:
    mode = config.interaction_mode
    if mode == "external" and not has_store:
        raise ConfigurationError(
            "interaction_mode='external' needs a run store to persist paused runs: "
            "Runner(..., store='sqlite:///runs.db') or set AFK_STORE"
        )
    if mode == "interactive":
        if provider is None:
            raise ConfigurationError(
                "interaction_mode='interactive' needs interaction_provider=..., "
                "e.g. InMemoryInteractiveProvider()"
            )
        for method in ("request_approval", "request_user_input"):
            if not callable(getattr(provider, method, None)):
                raise ConfigurationError(
                    f"interaction_provider {type(provider).__name__} has no {method}() method"
                )
    if mode == "headless" and isinstance(provider, InMemoryInteractiveProvider):
        raise ConfigurationError(
            "interaction_mode='headless' never asks a human, so InMemoryInteractiveProvider "
            "would wait for nothing; use interaction_mode='interactive'"
        )
    if isinstance(provider, HeadlessInteractionProvider):
        for name in ("approval_fallback", "input_fallback"):
            if getattr(provider, name) != getattr(config, name):
                raise ConfigurationError(
                    f"HeadlessInteractionProvider.{name}={getattr(provider, name)!r} conflicts "
                    f"with RunnerConfig.{name}={getattr(config, name)!r}: the runner applies "
                    "RunnerConfig's fallbacks; set them there"
                )


__all__ = [
    "RunHandle",
    "Runner",
]
