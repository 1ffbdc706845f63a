"""Run-private machinery: numbering, recording and fanning out events; the active-time clock."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from afk.core.events import TERMINAL_TYPES, Event, RunWarning
from afk.errors import RunError

if TYPE_CHECKING:
    from afk.observability import RunObserver

E = TypeVar("E", bound=Event)
T = TypeVar("T")


class Emitter:
    """Gives each event its ``seq`` and ``ts``, keeps it, and hands it to ``notify``.

    A ``notify`` that raises becomes a ``warning`` event (or, on the terminal event, an entry
    in ``warnings`` only, since nothing may follow the terminal event).
    """

    __slots__ = (
        "_changed",
        "_closed",
        "_notify",
        "events",
        "observer",
        "run_id",
        "seq",
        "warnings",
    )

    def __init__(
        self,
        run_id: str,
        notify: Callable[[Event], Any] | None,
        observer: RunObserver | None = None,
    ) -> None:
        self.run_id = run_id
        self.observer = observer  # logs and spans (afk.observability); it never raises
        self.events: list[Event] = []
        self.warnings: list[str] = []
        self._notify = notify
        self.seq = 0  # restored from the snapshot when a run resumes
        self._changed: asyncio.Event | None = None
        self._closed = False

    async def emit(self, cls: type[E], step: int | None = None, **fields: Any) -> E:
        self.seq += 1
        event = cls(run_id=self.run_id, seq=self.seq, ts=time.time(), step=step, **fields)
        self.events.append(event)
        if self.observer is not None:
            self.observer.on_event(event)
        if self._changed is not None:
            self._changed.set()
        if isinstance(event, RunWarning):
            self.warnings.append(event.message)
        elif self._notify is not None:
            await self._call_notify(event)
        return event

    async def adopt(self, event: Event) -> None:
        """An event of a sub-agent's run (afk.core._subagents), renumbered into this run's
        sequence: the top run's stream holds its whole tree."""
        self.seq += 1
        adopted = dataclasses.replace(event, run_id=self.run_id, seq=self.seq)
        self.events.append(adopted)
        if self.observer is not None:
            self.observer.on_event(adopted)
        if self._changed is not None:
            self._changed.set()
        if self._notify is not None:
            await self._call_notify(adopted)

    async def _call_notify(self, event: Event) -> None:
        assert self._notify is not None
        try:
            outcome = self._notify(event)
            # None first: most hooks are plain functions, and isawaitable is an ABC check.
            if outcome is not None and inspect.isawaitable(outcome):
                await outcome
        except Exception as exc:
            message = f"notify({event.type}) raised {type(exc).__name__}: {exc}"
            if event.type in TERMINAL_TYPES:
                self.warnings.append(message)
            else:
                await self.emit(RunWarning, event.step, message=message, source="notify")

    @property
    def ended(self) -> bool:
        """Whether the terminal event has been emitted."""
        return bool(self.events) and self.events[-1].type in TERMINAL_TYPES

    def close(self) -> None:
        """No more events (the run ended or paused)."""
        self._closed = True
        if self.observer is not None:
            self.observer.close()
        if self._changed is not None:
            self._changed.set()

    async def follow(self) -> AsyncIterator[Event]:
        """Every event of the run, from the first, until the terminal one (or the pause)."""
        index = 0
        while True:
            while index < len(self.events):
                event = self.events[index]
                index += 1
                yield event
                if event.type in TERMINAL_TYPES:
                    return
            if self._closed:
                return
            if self._changed is None:
                self._changed = asyncio.Event()
            self._changed.clear()
            await self._changed.wait()


class ActiveClock:
    """Counts a run's active time; paused while the run waits for a human."""

    __slots__ = ("_since", "_used", "limit_s")

    def __init__(self, limit_s: float | None, *, used: float = 0.0, paused: bool = False) -> None:
        self.limit_s = limit_s
        self._used = used
        self._since: float | None = None if paused else time.monotonic()

    def pause(self) -> None:
        if self._since is not None:
            self._used += time.monotonic() - self._since
            self._since = None

    def resume(self) -> None:
        if self._since is None:
            self._since = time.monotonic()

    def used(self) -> float:
        return self._used + (time.monotonic() - self._since if self._since is not None else 0.0)

    def remaining(self) -> float | None:
        if self.limit_s is None:
            return None
        return self.limit_s - self.used()

    def check(self) -> None:
        left = self.remaining()
        if left is not None and left <= 0:
            raise self.exceeded()

    def exceeded(self) -> RunError:
        return RunError(f"max_run_time_s={self.limit_s} exceeded (active time, waits excluded)")

    async def bounded(self, work: Awaitable[T]) -> T:
        """``work`` within the run's remaining active time; past it, the budget's RunError.
        No timer at all when there is no limit (most runs): it is on every model call, tool
        call and policy evaluation."""
        if self.limit_s is None:
            return await work
        try:
            async with asyncio.timeout(self.remaining()) as budget:
                return await work
        except TimeoutError:
            if budget.expired():
                raise self.exceeded() from None
            raise
