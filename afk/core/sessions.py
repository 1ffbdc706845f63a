"""Conversations: the runs started with one ``thread_id`` continue one conversation.

``Runner.run(agent, user_message=..., thread_id="t-1")`` starts from the messages of the
thread's earlier runs. A :class:`Session` keeps them: the run store's threads when the runner
has a store (:class:`StoreSession`), the runner's memory otherwise (:class:`InMemorySession`),
or anything implementing the four methods.

The contract a run keeps with its session:

- ``take`` before it starts: one run per thread at a time. A second run on a held thread is
  refused with :class:`~afk.errors.ThreadBusyError` (not queued: a queued turn would answer a
  conversation its sender has not seen yet). A run that pauses keeps holding its thread.
- ``history``: the thread's earlier messages (without the agent's instructions, which every
  run puts first from the agent it is given).
- ``add_turn`` when the run completes or stops: its own messages (its user message, the
  model's turns, each tool call and result once, also across pause and resume), appended
  as one turn, which frees the thread. Once per run, even when its end is recorded twice.
- ``release`` when it fails or is cancelled: the thread is freed and the run's messages are
  left out (a failed turn can end mid-call: an assistant turn whose tool results never came,
  which no provider accepts in a history).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from afk.errors import ThreadBusyError
from afk.llms.messages import Message
from afk.store.store import RunStore, ThreadHolder, ThreadTurnRecord

_MESSAGES: Any = list[Message]


@runtime_checkable
class Session(Protocol):
    """Where conversation threads live. Implement it to keep them elsewhere."""

    async def take(self, thread_id: str, *, run_id: str) -> None:
        """Hold ``thread_id`` for ``run_id``; raise ThreadBusyError when another run holds it.
        Taking a thread the run already holds succeeds."""

    async def history(self, thread_id: str) -> list[Message]:
        """The thread's messages so far, oldest first (empty for a new thread)."""

    async def add_turn(self, thread_id: str, *, run_id: str, messages: Sequence[Message]) -> None:
        """Append ``run_id``'s ``messages`` as one turn and free the thread (once per run)."""

    async def release(self, thread_id: str, *, run_id: str) -> None:
        """Free the thread without a turn (the run failed or was cancelled)."""


class InMemorySession:
    """Threads in this process's memory: what a runner without a store uses."""

    def __init__(self) -> None:
        self._turns: dict[str, list[tuple[str, tuple[Message, ...]]]] = {}
        self._held: dict[str, str] = {}
        self._lock = asyncio.Lock()

    async def take(self, thread_id: str, *, run_id: str) -> None:
        """Hold ``thread_id`` for ``run_id`` (see :class:`Session`)."""
        async with self._lock:
            holder = self._held.get(thread_id)
            if holder is not None and holder != run_id:
                raise busy(thread_id, holder, "running")
            self._held[thread_id] = run_id

    async def history(self, thread_id: str) -> list[Message]:
        """The thread's messages so far (see :class:`Session`)."""
        return [m for _, turn in self._turns.get(thread_id, ()) for m in turn]

    async def add_turn(self, thread_id: str, *, run_id: str, messages: Sequence[Message]) -> None:
        """Append the run's turn and free the thread (see :class:`Session`)."""
        async with self._lock:
            turns = self._turns.setdefault(thread_id, [])
            if all(owner != run_id for owner, _ in turns):
                if self._held.get(thread_id) != run_id:
                    raise busy(thread_id, self._held.get(thread_id), "running", adding=run_id)
                turns.append((run_id, tuple(messages)))
            if self._held.get(thread_id) == run_id:
                del self._held[thread_id]

    async def release(self, thread_id: str, *, run_id: str) -> None:
        """Free the thread if ``run_id`` holds it (see :class:`Session`)."""
        async with self._lock:
            if self._held.get(thread_id) == run_id:
                del self._held[thread_id]


class StoreSession:
    """Threads in the run store (tables ``threads`` and ``thread_turns``), shared by every
    process using the store, sealed like its other rows. ``owner`` names this process (see
    ``Runner.owner``): a thread held by a run that never reached the store, from a process
    of this host that is gone, is taken over."""

    def __init__(self, store: RunStore, *, owner: str) -> None:
        self.store = store
        self.owner = owner

    async def take(self, thread_id: str, *, run_id: str) -> None:
        """Hold ``thread_id`` for ``run_id`` (see :class:`Session`)."""
        # Imported here: the worker module sits above this one.
        from afk.core._durable import ensure_ready
        from afk.core._worker import dead_on_this_host

        store, now = self.store, time.time()
        await ensure_ready(store)
        holder = await store.take_thread(thread_id, run_id=run_id, owner=self.owner, now=now)
        if holder is not None and holder.status is None and dead_on_this_host(holder.owner):
            holder = await store.take_thread(
                thread_id, run_id=run_id, owner=self.owner, now=now, take_from=holder.run_id
            )
        if holder is not None:
            raise busy(thread_id, holder.run_id, _state(holder))

    async def history(self, thread_id: str) -> list[Message]:
        """The thread's messages so far (see :class:`Session`); a turn whose row does not
        verify is refused (TamperedRecordError), never shown to the model."""
        from afk.core._durable import ensure_ready
        from afk.core._snapshot import from_json
        from afk.store._seal import record_ok, tampered

        await ensure_ready(self.store)
        found: list[Message] = []
        for turn in await self.store.thread_turns(thread_id):
            if not record_ok(self.store.keys, turn):
                raise tampered(turn, f"continue thread {thread_id!r}")
            found.extend(from_json(turn.messages, _MESSAGES))
        return found

    async def add_turn(self, thread_id: str, *, run_id: str, messages: Sequence[Message]) -> None:
        """Append the run's turn and free the thread (see :class:`Session`)."""
        from afk.core._snapshot import to_json

        turn = ThreadTurnRecord(
            thread_id=thread_id,
            turn=0,
            run_id=run_id,
            messages=to_json(list(messages), _MESSAGES),
            at=time.time(),
        )
        await self.store.add_thread_turn(turn)

    async def release(self, thread_id: str, *, run_id: str) -> None:
        """Free the thread if ``run_id`` holds it (see :class:`Session`)."""
        await self.store.release_thread(thread_id, run_id=run_id)


def busy(
    thread_id: str, holder: str | None, state: str, *, adding: str | None = None
) -> ThreadBusyError:
    """The refusal of a second run on a thread."""
    if adding is not None:
        who = "nobody" if holder is None else f"run {holder}"
        message = f"run {adding} cannot add its turn to thread {thread_id!r}: it is held by {who}"
    else:
        message = (
            f"thread {thread_id!r} is in use by run {holder} ({state}): one run per thread at a "
            "time; wait for it to end (a paused run: decide its requests and resume it)"
        )
    return ThreadBusyError(message, thread_id=thread_id, run_id=holder)


def _state(holder: ThreadHolder) -> str:
    return holder.status or "starting"


__all__ = [
    "InMemorySession",
    "Session",
    "StoreSession",
]
