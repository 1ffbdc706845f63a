"""The worker loop: the one behind :meth:`Runner.work` and ``afk worker``.

Each pass fires due reminders, takes over runs whose lease holder is a dead process on this
host, claims ready runs one by one from the store's ready index (never the same run as another
worker) up to ``concurrency``, and says what it cannot resume and why. Between passes it waits
for the store to signal work (a decision committed), for the next run's wake-up time (an
expiry), or for ``poll_s`` as a safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from afk.agents.agent import Agent
from afk.core._timers import Reminder
from afk.core.result import RunResult
from afk.errors import AfkError, RunLockedError, RunNotResumableError

if TYPE_CHECKING:
    from afk.core.runner import Runner
    from afk.store.store import RunRecord, RunStore

_log = logging.getLogger("afk.worker")

# A run this worker failed to resume is parked for this long (its lease kept), so one bad run
# is not claimed again on every pass ahead of the others.
PARK_S = 60.0
# How often a worker looks for dead lease holders and explains the runs it leaves alone.
SURVEY_S = 1.0
# Due reminders and escalations are looked for at most this often (and every poll_s).
TIMERS_S = 0.5


def _prepare() -> None:
    """What a resume builds on first use, built before the first wait: the pydantic adapters
    of the snapshot and of every event (about 0.1 s here, pydantic's import included, once
    per process). A fresh worker's first decision then reaches its tool like the next ones:
    44 -> 21 ms p50 from decision to tool start here (SQLite)."""
    from afk.core import _snapshot, events

    _snapshot.prepare()
    events.prepare()


@dataclass(frozen=True, slots=True, kw_only=True)
class Resumed:
    """A run this worker resumed, and where it got to (``paused`` again, ``completed``...)."""

    kind: Literal["resumed"] = "resumed"
    result: RunResult


@dataclass(frozen=True, slots=True, kw_only=True)
class CannotResume:
    """A ready run this worker does not resume now, and why.

    ``reason``: ``unknown_agent`` (the app defines no agent of that name), ``held`` (another
    live worker holds its lease until ``until``), ``failed`` (resuming raised; parked for
    ``PARK_S``)."""

    kind: Literal["cannot_resume"] = "cannot_resume"
    run_id: str
    reason: Literal["unknown_agent", "held", "failed"]
    detail: str
    until: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TookOver:
    """A run whose lease holder was a dead process on this host, taken over at once."""

    kind: Literal["took_over"] = "took_over"
    run_id: str
    dead_owner: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerSent:
    """A reminder or escalation sent to the runner's notifier."""

    kind: Literal["timer_sent"] = "timer_sent"
    reminder: Reminder


WorkerReport = Resumed | CannotResume | TookOver | TimerSent
OnReport = Callable[[WorkerReport], Any]


def dead_on_this_host(owner: str, *, host: str | None = None) -> bool:
    """Whether a lease owner (``host:pid:nonce``, see ``Runner.owner``) is a process of this
    host that no longer runs. Unknown shapes and other hosts are never dead: their leases are
    waited out."""
    parts = owner.split(":")
    if len(parts) != 3 or parts[0] != (host or socket.gethostname()) or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return _zombie(pid)


def _zombie(pid: int) -> bool:
    """A killed child not yet reaped still answers kill(0); Linux shows it as state Z."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


class Worker:
    """One worker loop over a runner's store (use :meth:`Runner.work`)."""

    def __init__(
        self,
        runner: Runner,
        store: RunStore,
        agents: Sequence[Agent],
        *,
        concurrency: int,
        poll_s: float,
        on_report: OnReport | None,
    ) -> None:
        self.runner = runner
        self.store = store
        self.agents = {a.name: a for a in agents}
        self.concurrency = concurrency
        self.poll_s = poll_s
        self.on_report = on_report
        self.tasks: set[asyncio.Task[None]] = set()
        self._told: dict[str, str] = {}  # run id -> what we last said about it
        self._last_survey = 0.0
        self._last_timers = 0.0
        self._held: dict[str, str] = {}  # run id -> holder, as of the last survey
        self._delivery: asyncio.Task[Any] | None = None  # the notifiers' pass, if one runs

    async def run(self, stop: asyncio.Event) -> None:
        _prepare()
        while not stop.is_set():
            await self.pass_once()
            await self._wait(stop)
        if self.tasks:  # finish what was started: tool bodies end, leases are released
            await asyncio.gather(*self.tasks, return_exceptions=True)
        if self._delivery is not None:
            await asyncio.gather(self._delivery, return_exceptions=True)

    async def pass_once(self, *, survey: bool = True) -> int:
        """One pass; the number of runs it started. ``survey``: also take over dead
        holders' runs and explain the ready runs left alone (at most every SURVEY_S)."""
        now = time.time()
        # A busy worker passes once per run it finishes: asking for due timers on every pass
        # would be a store round trip per run. As often as an idle worker's poll is enough.
        if now - self._last_timers >= min(self.poll_s, TIMERS_S):
            self._last_timers = now
            for reminder in await self.runner.fire_due_timers():
                await self._report(TimerSent(reminder=reminder))
        self._deliver()
        now = time.time()
        if survey and now - self._last_survey >= SURVEY_S:
            self._last_survey = now
            await self._take_over_dead(now)
            await self._survey(now)
        started = 0
        while len(self.tasks) < self.concurrency:
            record = await self.store.claim_ready(
                owner=self.runner.owner,
                ttl_s=self.runner.lease_ttl_s,
                now=time.time(),
                agents=list(self.agents),
            )
            if record is None:
                break
            self._start(record, self.agents[record.agent_name])
            started += 1
        return started

    def _deliver(self) -> None:
        """Start a notifiers' pass unless one is still running: a task of its own, as a
        webhook's retries can take seconds and must not hold up resuming runs."""
        if self.runner.notifiers is None or (self._delivery and not self._delivery.done()):
            return
        self._delivery = asyncio.get_running_loop().create_task(self.runner.deliver_notifications())
        self._delivery.add_done_callback(_log_failure)

    def _start(self, record: RunRecord, agent: Agent) -> None:
        task = asyncio.get_running_loop().create_task(self._resume(record, agent))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _resume(self, record: RunRecord, agent: Agent) -> None:
        run_id = record.run_id
        self._told.pop(run_id, None)
        try:
            # The row claim_ready returned was read under the lease it took: the claim
            # reads only the run's requests (one lease write and one run read less).
            result = await self.runner._resume(run_id, agent, leased=record)
        except (RunLockedError, RunNotResumableError) as exc:
            _log.info("run %s not resumed: %s", run_id, exc, extra={"run_id": run_id})
            return
        except AfkError as exc:
            # One unreadable run (a snapshot from a newer afk, a forged row) must not stop
            # the rest, nor be claimed again ahead of them on every pass.
            detail = f"{type(exc).__name__}: {exc}"
            _log.error("cannot resume run %s: %s", run_id, detail, extra={"run_id": run_id})
            until = time.time() + PARK_S
            with contextlib.suppress(AfkError):
                await self.store.acquire_lease(
                    run_id, owner=self.runner.owner, ttl_s=PARK_S, now=time.time()
                )
            await self._report(
                CannotResume(run_id=run_id, reason="failed", detail=detail, until=until)
            )
            return
        await self._report(Resumed(result=result))

    async def _take_over_dead(self, now: float) -> None:
        for record in await self.store.held_leases(now=now):
            owner = record.lease_owner or ""
            if owner == self.runner.owner or not dead_on_this_host(owner):
                continue
            agent = self.agents.get(record.agent_name)
            if agent is None or len(self.tasks) >= self.concurrency:
                continue
            took = await self.store.take_over_lease(
                record.run_id,
                from_owner=owner,
                owner=self.runner.owner,
                ttl_s=self.runner.lease_ttl_s,
                now=time.time(),
            )
            if took:
                _log.warning(
                    "run %s: lease holder %s is dead; taking the run over",
                    record.run_id,
                    owner,
                    extra={"run_id": record.run_id},
                )
                await self._report(TookOver(run_id=record.run_id, dead_owner=owner))
                self._start(record, agent)  # read before the take-over: claimed again

    async def _survey(self, now: float) -> None:
        """Say, once per run and cause, why a ready run is not being resumed here."""
        for record in await self.store.ready_runs(now=now, limit=100):
            if record.agent_name not in self.agents:
                known = ", ".join(sorted(self.agents)) or "none"
                await self._tell(
                    record,
                    CannotResume(
                        run_id=record.run_id,
                        reason="unknown_agent",
                        detail=f"its agent {record.agent_name!r} is not defined by this app "
                        f"(agents: {known})",
                    ),
                )
        # Another worker resuming a run holds its lease for a moment: say so only when the
        # same holder still has it one survey later (a slow tool, or a worker that hangs).
        seen, self._held = self._held, {}
        for record in await self.store.held_leases(now=now):
            owner = record.lease_owner or ""
            if owner == self.runner.owner or record.status != "paused":
                continue
            self._held[record.run_id] = owner
            if seen.get(record.run_id) != owner:
                continue
            await self._tell(
                record,
                CannotResume(
                    run_id=record.run_id,
                    reason="held",
                    detail=f"held by {owner}",
                    until=record.lease_expires_at,
                ),
            )

    async def _tell(self, record: RunRecord, report: CannotResume) -> None:
        said = f"{report.reason}:{report.detail}"
        if self._told.get(record.run_id) != said:
            self._told[record.run_id] = said
            await self._report(report)

    async def _report(self, report: WorkerReport) -> None:
        if self.on_report is None:
            return
        outcome = self.on_report(report)
        if inspect.isawaitable(outcome):
            await outcome

    async def _wait(self, stop: asyncio.Event) -> None:
        """Until work may be there: a store signal, the next wake-up (an expiry), a slot
        freeing up (when all are busy), ``stop``, or ``poll_s`` at the latest."""
        free = len(self.tasks) < self.concurrency
        timeout = self.poll_s
        if free:
            wake = await self.store.next_wake_at()
            # A wake-up already past is a ready run claim_ready did not hand us (another
            # agent's, or leased): waiting for it would spin, so only future ones count.
            if wake is not None and wake > time.time():
                timeout = min(timeout, wake - time.time())
        waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(stop.wait())]
        if free:
            waiters.append(asyncio.ensure_future(self.store.wait_for_work(timeout_s=timeout)))
        if self.tasks:
            waiters.append(
                asyncio.ensure_future(
                    asyncio.wait(set(self.tasks), return_when=asyncio.FIRST_COMPLETED)
                )
            )
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)


def _log_failure(task: asyncio.Task[Any]) -> None:
    """A notifiers' pass that failed as a whole (a store error): logged, retried next pass."""
    if not task.cancelled() and task.exception() is not None:
        _log.warning("notification delivery failed: %s", task.exception())
