"""The Postgres store's LISTEN/NOTIFY wake-ups for runs waiting on decisions."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from afk.errors import StoreError
from afk.store import _common as c

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    Conn = AsyncConnection[tuple[Any, ...]]


class Listener:
    """The store's one LISTEN connection, shared by every waiter in the process: a connection
    per waiter would let a worker holding many paused runs exhaust the server's connections.

    A wake-up only makes a waiter re-check the database, so a notification from another
    schema using the same channel, or a lost connection, never ends a wait early.
    """

    def __init__(self, connect: Callable[[], Awaitable[Conn]]) -> None:
        self._connect = connect
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None

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
                await self._started()
                remaining = deadline - loop.time()
                if await any_decided() or remaining <= 0:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
                if loop.time() >= deadline and not event.is_set():
                    return
        finally:
            for request_id in ids:
                events = self._waiters.get(request_id, set())
                events.discard(event)
                if not events:
                    self._waiters.pop(request_id, None)

    async def _started(self) -> None:
        loop = asyncio.get_running_loop()
        task = self._task
        if task is None or task.done() or task.get_loop() is not loop or self._ready is None:
            self._ready = loop.create_future()
            self._task = loop.create_task(self._listen(self._ready))
        # Shielded: one waiter being cancelled must not cancel the start-up others await.
        await asyncio.shield(self._ready)

    async def _listen(self, ready: asyncio.Future[None]) -> None:
        import psycopg

        try:
            conn = await self._connect()
            try:
                await conn.execute(f"LISTEN {c.DECISIONS_CHANNEL}")
                ready.set_result(None)
                async with aclosing(conn.notifies()) as notes:
                    async for note in notes:
                        for event in self._waiters.get(note.payload, ()):
                            event.set()
            finally:
                await conn.close()
        except (StoreError, psycopg.Error) as exc:
            if not ready.done():
                ready.set_exception(StoreError(f"cannot listen for decisions: {exc}"))
        finally:
            if not ready.done():
                ready.set_exception(StoreError("the decision listener stopped while starting"))
            for events in self._waiters.values():
                for event in events:
                    event.set()

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done() and task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
