"""Store schema 10 on every backend: SQLite's runs and requests WITHOUT ROWID, Postgres's
runs and requests indexes packed full (afk.store._migrate), a v9 store migrated by setup,
and run and request ids of both shapes (afk._ids) found by id and by prefix."""

from __future__ import annotations

import re
import sqlite3
import uuid

import pytest
from store_support import Backend, request, run, to_v9
from test_migrate_v6 import ANN, EXTERNAL, POLICY, RAN, agent, url_of

from afk._ids import new_id
from afk.audit.verify import verify
from afk.cli import _ids
from afk.core import Runner
from afk.store import _migrate as m
from afk.store import _seal as s
from afk.store._common import STORE_SCHEMA_VERSION
from afk.store._sqlite_driver import drive
from afk.store.store import RunStore

_NEW = re.compile(r"(run|req)_[a-z2-7]{26}")


def test_new_ids_carry_128_random_bits_in_26_lowercase_base32_characters() -> None:
    made = {new_id("req_") for _ in range(2000)}
    assert len(made) == 2000 and all(_NEW.fullmatch(i) for i in made)
    # The last character holds the 128th bit's group of three: each of its 8 values occurs.
    assert len({i[-1] for i in made}) == 8


async def _objects(backend: Backend) -> set[str]:
    if backend.name == "sqlite":
        return {name for (name,) in await backend.rows(m.SQLITE_OBJECTS)}
    sql = m.POSTGRES_OBJECTS.replace("%s", f"'{backend.schema}'")
    return {name for (name,) in await backend.rows(sql)}


async def _layout(backend: Backend) -> dict[str, bool]:
    """Per table (SQLite) or index (Postgres) of schema 10: whether it has that layout."""
    if backend.name == "sqlite":
        found = {}
        for table in ("runs", "requests"):
            [(ddl,)] = await backend.rows(m.SQLITE_TABLE_SQL.replace("?", f"'{table}'"))
            found[table] = "WITHOUT ROWID" in ddl.upper()
        return found
    rows = await backend.rows(
        "SELECT c.relname, c.reloptions FROM pg_class c JOIN pg_namespace n "
        f"ON n.oid = c.relnamespace WHERE n.nspname = '{backend.schema}' AND c.relkind = 'i'"
    )
    options = {name: opts or [] for name, opts in rows}
    return {name: "fillfactor=100" in options[name] for name in m.FILLED_INDEXES}


def _rebuild(backend: Backend) -> None:
    """What SQLite's setup runs after its other migrations (afk.store._migrate), run again
    by hand: a no-op once the tables are rebuilt."""
    with sqlite3.connect(backend.location, isolation_level=None) as conn:
        drive(conn, m.rebuild_without_rowid(), tx=True)
    conn.close()


async def test_a_new_store_has_the_schema_10_layout(store: RunStore, backend: Backend) -> None:
    assert set((await _layout(backend)).values()) == {True}
    assert not await _objects(backend) & m.ROWID_KEYS
    if backend.name == "sqlite":
        before = await backend.rows("SELECT name, sql FROM sqlite_master ORDER BY name")
        _rebuild(backend)
        assert await backend.rows("SELECT name, sql FROM sqlite_master ORDER BY name") == before


def test_a_store_keeping_a_rowid_table_is_not_current() -> None:
    version = str(STORE_SCHEMA_VERSION)
    assert m.is_current(version, m.EXPECTED)
    assert not m.is_current(version, {*m.EXPECTED, "sqlite_autoindex_runs_1"})
    assert not m.is_current("9", m.EXPECTED)


async def test_a_v9_store_migrates_and_its_runs_resume_verify_and_page(backend: Backend) -> None:
    RAN.clear()
    async with Runner(POLICY, config=EXTERNAL, store=url_of(backend)) as runner:
        paused = [await runner.run(agent(), user_message=f"order-{i}") for i in range(3)]
        await runner.resolve(paused[0].pending_requests[0].request_id, ANN)
        assert runner.store is not None
        run_ids = [p.run_id for p in paused]
        runs = [await runner.store.load_run(run_id) for run_id in run_ids]
        requests = list(await runner.store.list_requests(status=None))
        log = await runner.store.list_log()
    await to_v9(backend)
    assert set((await _layout(backend)).values()) == {False}

    async with Runner(POLICY, config=EXTERNAL, store=url_of(backend)) as runner:
        store = runner.store
        assert store is not None
        await store.setup()  # SQLite's rebuilds its rowid tables (m.rebuild_without_rowid)
        [(version,)] = await backend.rows(
            f"SELECT value FROM {backend.table('meta')} WHERE key = 'store_schema_version'"
        )
        assert version == str(STORE_SCHEMA_VERSION) == "10"
        assert set((await _layout(backend)).values()) == {True}
        names = await _objects(backend)
        assert names >= m.EXPECTED and not names & m.ROWID_KEYS
        assert m.is_current(version, names)
        assert [await store.load_run(run_id) for run_id in run_ids] == runs
        assert list(await store.list_requests(status=None)) == requests
        assert await store.list_log() == log
        assert all(s.record_ok(store.keys, q) for q in requests)
        assert (await verify(store)).ok
        pending = await store.list_requests(order="expires", rule="refunds", limit=1)
        rest = await store.list_requests(
            order="expires", rule="refunds", limit=1, cursor=pending.next_cursor
        )
        assert [q.request_id for q in [*pending, *rest]] == [
            p.pending_requests[0].request_id for p in paused[1:]
        ]
        for result in paused[1:]:
            await runner.resolve(result.pending_requests[0].request_id, ANN)
        done = [await runner.resume(p.run_id, agent()) for p in paused]
        assert [d.state for d in done] == ["completed"] * 3


@pytest.mark.parametrize("old", [True, False], ids=["32-hex", "base32"])
async def test_ids_of_either_shape_are_found_by_id_and_by_prefix(
    store: RunStore, old: bool
) -> None:
    def made(prefix: str) -> str:
        return f"{prefix}{uuid.uuid4().hex}" if old else new_id(prefix)

    run_id, request_id = made("run_"), made("req_")
    await store.save_run(run(run_id), requests=[request(request_id, run_id)])
    assert (await store.load_run(run_id)) is not None
    assert (await store.get_request(request_id)) is not None
    assert [q.request_id for q in await store.list_requests(run_id=run_id)] == [request_id]
    stem = request_id.removeprefix("req_")
    assert await _ids.resolve(store, _ids.REQUEST, stem[: _ids.MIN_PREFIX]) == request_id
    assert await _ids.resolve(store, _ids.REQUEST, request_id[:12]) == request_id
    assert await _ids.resolve(store, _ids.RUN, run_id.removeprefix("run_")[:6]) == run_id
    assert _ids.short_ids([request_id], _ids.REQUEST) == {request_id: stem[: _ids.SHORT]}
