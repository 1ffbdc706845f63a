"""The Postgres store's claims and wake-ups (a mixin of
:class:`~afk.store.postgres.PostgresStore`); the other readiness queries are shared
(afk.store._ops)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from afk.store import _common as c
from afk.store import _procs as q
from afk.store import _ready as r
from afk.store._docs import documented_as
from afk.store._pg_listener import Listener
from afk.store._procs import Proc
from afk.store.store import RunRecord, RunStore

T = TypeVar("T")
# SKIP LOCKED: a claimer passes over the run another claimer is taking right now instead of
# queueing behind it, so concurrent workers each get a different run in one statement.
_CLAIM_ANY = r.claim_sql("", " FOR UPDATE SKIP LOCKED")
_CLAIM_AGENTS = r.claim_sql("AND agent_name = ANY(?)", " FOR UPDATE SKIP LOCKED")


class _Store(Protocol):
    """What the mixin uses of the store."""

    _listener: Listener
    _mark: int | None
    _marked: bool

    def _take_mark(self) -> None: ...

    async def _run(self, proc: Proc[T], *, tx: bool, durable: bool = True) -> T: ...


@documented_as(RunStore)
class PostgresReady:
    """Readiness by index, one claim at a time, and LISTEN wake-ups."""

    async def claim_ready(
        self: _Store,
        *,
        owner: str,
        ttl_s: float,
        now: float,
        agents: Sequence[str] | None = None,
    ) -> RunRecord | None:
        names, expiry = r.check_agents(agents), now + r.check_ttl(ttl_s)
        self._take_mark()  # before the query: see wait_for_work
        if names == []:
            return None
        # A lease write: its commit need not wait for the disk (PostgresStore._run).
        sql, args = (_CLAIM_ANY, ()) if names is None else (_CLAIM_AGENTS, (names,))
        claim = q.last_one(sql, (owner, expiry, now, now, now, *args))
        row = await self._run(claim, tx=False, durable=False)
        return c.run_from_row(row) if row else None

    async def wait_for_work(self: _Store, *, timeout_s: float) -> None:
        # The mark was read by the first readiness query since the last wait, before it
        # ran, if the listener was listening then: a notification since then ends this
        # wait at once. Without one (not listening yet, or reconnected since) the wait
        # returns at once: something may have been missed. What this wait saw becomes the
        # mark, so waiting again without a query in between waits for the next one.
        try:
            await self._listener.wait_any(timeout_s, self._mark)
        finally:
            self._mark, self._marked = self._listener.mark(), False
