"""The Postgres store's LISTEN/NOTIFY wake-ups: for runs waiting on decisions, and for
workers waiting for work."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from afk.errors import StoreError

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    Conn = AsyncConnection[tuple[Any, ...]]

# While the listener cannot connect, waiters fall back to polling at this pace.
RETRY_S = 0.5


class Listener:
    """The store's one LISTEN connection, shared by every waiter in the process: a connection
    per waiter would let a worker holding many paused runs exhaust the server's connections.

    A wake-up only makes a waiter re-check the database, so a notification from another
    schema using the same channel never ends a wait wrongly. When the connection drops
    (the server restarted, or killed it), every waiter is woken, since notifications may be
    lost until it is back; the next wait connects and LISTENs again.

    ``generation`` counts notifications heard and connections lost: a worker that read it
    before looking for work (while listening) knows, when it is about to wait, whether
    something happened in between (:meth:`wait_any`).
    """

    def __init__(self, connect: Callable[[], Awaitable[Conn]], channel: str) -> None:
        self._connect = connect
        self._channel = channel
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._any: set[asyncio.Event] = set()
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None
        self.generation = 0

    def mark(self) -> int | None:
        """``generation`` when listening now (None when not: anything may be missed)."""
        task, ready = self._task, self._ready
        if task is None or task.done() or ready is None or not ready.done():
            return None
        return None if ready.cancelled() or ready.exception() else self.generation

    async def wait(
        self, ids: set[str], timeout_s: float, any_decided: Callable[[], Awaitable[bool]]
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        event = asyncio.Event()
        for request_id in ids:
            self._waiters.setdefault(request_id, set()).add(event)
        try:
            while True:
                event.clear()
                # Listening before checking: a decision committed before the check is seen by
                # it, one committed after it wakes us.
                listening = await self._try_start()
                remaining = deadline - loop.time()
                if await any_decided() or remaining <= 0:
                    return
                pause = remaining if listening else min(RETRY_S, remaining)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), pause)
                if loop.time() >= deadline and not event.is_set():
                    return
        finally:
            for request_id in ids:
                events = self._waiters.get(request_id, set())
                events.discard(event)
                if not events:
                    self._waiters.pop(request_id, None)

    async def wait_any(self, timeout_s: float, since: int | None) -> None:
        """Return after any notification, a lost connection, or ``timeout_s``; at once when
        ``since`` (a :meth:`mark`) is None or behind ``generation``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout_s)
        if not await self._try_start():
            await asyncio.sleep(min(RETRY_S, max(0.0, timeout_s)))
            return
        if since is None or since != self.generation:
            return
        event = asyncio.Event()
        self._any.add(event)
        try:
            remaining = deadline - loop.time()
            if remaining > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
        finally:
            self._any.discard(event)

    async def _try_start(self) -> bool:
        """Whether listening (started now if need be); False while it cannot connect."""
        try:
            await self._started()
        except StoreError:
            return False
        return True

    async def _started(self) -> None:
        loop = asyncio.get_running_loop()
        task = self._task
        if task is None or task.done() or task.get_loop() is not loop or self._ready is None:
            self._ready = loop.create_future()
            # A start-up that fails while no one waits (the store closing) is not an error
            # to report when the future is collected: the next waiter starts again.
            self._ready.add_done_callback(_retrieved)
            self._task = loop.create_task(self._listen(self._ready))
        # Shielded: one waiter being cancelled must not cancel the start-up others await.
        await asyncio.shield(self._ready)

    async def _listen(self, ready: asyncio.Future[None]) -> None:
        import psycopg

        try:
            conn = await self._connect()
            try:
                # Quoted: pg_notify names the channel exactly, LISTEN would fold case.
                await conn.execute(f'LISTEN "{self._channel}"'.encode())
                ready.set_result(None)
                async with aclosing(conn.notifies()) as notes:
                    async for note in notes:
                        self.generation += 1
                        for event in (*self._waiters.get(note.payload, ()), *self._any):
                            event.set()
            finally:
                with contextlib.suppress(psycopg.Error):
                    await conn.close()
        except (StoreError, psycopg.Error) as exc:
            if not ready.done():
                ready.set_exception(StoreError(f"cannot listen for decisions: {exc}"))
        finally:
            if not ready.done():
                ready.set_exception(StoreError("the decision listener stopped while starting"))
            self.generation += 1
            for events in (*self._waiters.values(), self._any):
                for event in events:
                    event.set()

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done() and task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def _retrieved(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()
