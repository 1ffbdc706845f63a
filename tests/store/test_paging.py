"""Keyset paging of list_requests / list_runs on both backends: pages in order without gaps
or repeats, cursors that survive inserts and created_at ties, typed errors for bad cursors
and limits, and listing queries served by an index (O(page), whatever is stored)."""

from __future__ import annotations

import base64
import sqlite3
from typing import Any

import pytest
from pg_support import PgSchema
from store_support import Backend, request, run

from afk.errors import ConfigurationError
from afk.store import Page
from afk.store import _paging as p
from afk.store._common import render
from afk.store.store import RunStore


async def _fill(store: RunStore, created: list[float], *, run_id: str = "run-1") -> None:
    await store.save_run(
        run(run_id),
        requests=[
            request(f"{run_id}-q{i:02d}", run_id, created_at=at) for i, at in enumerate(created)
        ],
    )


async def _walk(store: RunStore, limit: int, **filters: Any) -> list[Page[Any]]:
    pages: list[Page[Any]] = []
    cursor = None
    while True:
        page = await store.list_requests(limit=limit, cursor=cursor, **filters)
        pages.append(page)
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


async def test_pages_cover_every_request_once_in_order(store: RunStore) -> None:
    # Requests opened in one step share created_at: the request_id breaks the tie.
    await _fill(store, [105.0, 101.0, 101.0, 101.0, 103.0, 101.0, 104.0])
    everything = [r.request_id for r in await store.list_requests(limit=100)]
    assert len(everything) == 7
    pages = await _walk(store, 2)
    assert [len(page) for page in pages] == [2, 2, 2, 1]
    assert [r.request_id for page in pages for r in page] == everything
    ordered = sorted(
        await store.list_requests(limit=100), key=lambda r: (r.created_at, r.request_id)
    )
    assert everything == [r.request_id for r in ordered]


async def test_a_full_last_page_has_no_cursor(store: RunStore) -> None:
    await _fill(store, [101.0, 102.0, 103.0, 104.0])
    pages = await _walk(store, 2)
    assert [len(page) for page in pages] == [2, 2]  # no empty third page
    assert (await store.list_requests(limit=4)).next_cursor is None


async def test_ties_larger_than_a_page(store: RunStore) -> None:
    await _fill(store, [100.0] * 5)
    pages = await _walk(store, 2)
    assert [r.request_id for page in pages for r in page] == [f"run-1-q{i:02d}" for i in range(5)]


async def test_rows_inserted_between_pages(store: RunStore) -> None:
    await _fill(store, [101.0, 102.0, 103.0, 104.0])
    first = await store.list_requests(limit=2)
    assert first.next_cursor is not None
    # One behind the cursor (it is not shown: that part was read) and one ahead of it, and
    # one tied with the cursor's row but sorting after it.
    await store.save_run(
        run("run-2"),
        requests=[
            request("a-early", "run-2", created_at=100.5),
            request("z-late", "run-2", created_at=103.5),
            request("zz-tie", "run-2", created_at=102.0),
        ],
    )
    rest = await store.list_requests(limit=100, cursor=first.next_cursor)
    assert [r.request_id for r in first] == ["run-1-q00", "run-1-q01"]
    assert [r.request_id for r in rest] == ["zz-tie", "run-1-q02", "z-late", "run-1-q03"]


async def test_filters_page_and_a_cursor_keeps_its_filters(store: RunStore) -> None:
    await _fill(store, [101.0, 102.0, 103.0])
    await _fill(store, [101.5, 102.5], run_id="run-2")
    await store.decide(
        "run-1-q01", decision="{}", decided_by="human", approver="bob", bound_digest="d", now=1.0
    )
    pending = [r.request_id for page in await _walk(store, 1) for r in page]
    assert pending == ["run-1-q00", "run-2-q00", "run-2-q01", "run-1-q02"]
    every = [r.request_id for page in await _walk(store, 2, status=None) for r in page]
    assert every == ["run-1-q00", "run-2-q00", "run-1-q01", "run-2-q01", "run-1-q02"]
    one_run = [
        r.request_id for pg in await _walk(store, 1, run_id="run-1", status=None) for r in pg
    ]
    assert one_run == ["run-1-q00", "run-1-q01", "run-1-q02"]
    pending_page = await store.list_requests(limit=1)
    assert pending_page.next_cursor is not None
    with pytest.raises(ConfigurationError, match=r"cursor.*another listing"):
        await store.list_requests(status=None, cursor=pending_page.next_cursor)
    with pytest.raises(ConfigurationError, match=r"cursor.*another listing"):
        await store.list_runs(cursor=pending_page.next_cursor)


async def test_every_request_is_complete_beyond_a_page(
    store: RunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(p, "MAX_LIMIT", 2)  # every_request reads MAX_LIMIT rows at a time
    await _fill(store, [101.0, 102.0, 103.0, 104.0, 105.0])
    found = await p.every_request(store, run_id="run-1")
    assert [r.request_id for r in found] == [f"run-1-q{i:02d}" for i in range(5)]


async def test_runs_page_newest_first(store: RunStore) -> None:
    for i, (at, status) in enumerate([(100.0, "paused"), (102.0, "completed"), (102.0, "paused")]):
        await store.save_run(run(f"run-{i}", status=status, updated_at=at))
    await store.save_run(run("run-3", status="paused", updated_at=101.0))
    seen, cursor = [], None
    while True:
        page = await store.list_runs(limit=1, cursor=cursor)
        seen += [r.run_id for r in page]
        if (cursor := page.next_cursor) is None:
            break
    assert seen == ["run-2", "run-1", "run-3", "run-0"]  # updated_at ties: run_id, descending
    paused = await store.list_runs(status="paused", limit=2)
    assert [r.run_id for r in paused] == ["run-2", "run-3"]
    rest = await store.list_runs(status="paused", limit=2, cursor=paused.next_cursor)
    assert [r.run_id for r in rest] == ["run-0"] and rest.next_cursor is None


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not a cursor!",
        "e30",
        "WzEsInJlcXVlc3RzIl0",
        "%%%",
        "WzIsInJlcXVlc3RzIiwxLDJd",
        "x" * 5000,
    ],
)
async def test_a_bad_cursor_is_a_typed_error_naming_it(store: RunStore, cursor: str) -> None:
    with pytest.raises(ConfigurationError, match="invalid cursor"):
        await store.list_requests(cursor=cursor)


@pytest.mark.parametrize(
    "payload",
    [
        '[1,"requests",null,"pending","1.0","x"]',  # a position that is not a number
        '[1,"requests",null,"pending",NaN,"x"]',
        '[1,"requests",null,"pending",1.0,7]',
        '[1,"requests",null,"pending",1.0]',
        '[1,"requests","run-1","pending",1.0,"x"]',  # another run's listing
        '{"at":1.0}',
    ],
)
async def test_a_cursor_holding_no_position_is_refused(store: RunStore, payload: str) -> None:
    cursor = base64.urlsafe_b64encode(payload.encode()).rstrip(b"=").decode()
    with pytest.raises(ConfigurationError, match="invalid cursor"):
        await store.list_requests(cursor=cursor)


@pytest.mark.parametrize("limit", [0, -1, 1001, True, 2.5, "5"])
async def test_limit_is_checked(store: RunStore, limit: Any) -> None:
    with pytest.raises(ConfigurationError, match="limit must be a whole number from 1 to 1000"):
        await store.list_requests(limit=limit)
    with pytest.raises(ConfigurationError, match="limit"):
        await store.list_runs(limit=limit)


# -- the plans ------------------------------------------------------------------------------
_CURSOR = (5.0, "q3")
_REQUEST_SHAPES = [  # filters -> the index that must serve them
    ({"run_id": None, "status": "pending"}, "requests_page_status"),
    ({"run_id": "r1", "status": "pending"}, "requests_page_run_status"),
]
# Each request read puts its tool schema back: one primary-key probe per row returned.
_SUBQUERY = "CORRELATED SCALAR SUBQUERY"
_SCHEMA_LOOKUP = "SEARCH s USING INDEX sqlite_autoindex_tool_schemas_1 (schema_id=?)"


def _queries() -> list[tuple[str, list[Any], str]]:
    found = []
    for filters, index in _REQUEST_SHAPES:
        for cursor in (None, p.encode_cursor("requests", tuple(filters.values()), _CURSOR)):
            found.append((*p.requests_query(limit=10, cursor=cursor, **filters), index))
    for cursor in (None, p.encode_cursor("runs", ("paused",), _CURSOR)):
        found.append((*p.runs_query(status="paused", limit=10, cursor=cursor), "runs_page_status"))
    return found


def _unfiltered() -> list[tuple[str, list[Any], str]]:
    """Listings without a status filter: one scan per status, merged."""
    found = []
    for cursor in (None, p.encode_cursor("requests", (None, None), _CURSOR)):
        sql, args = p.requests_query(run_id=None, status=None, limit=10, cursor=cursor)
        found.append((sql, args, "requests_page_status"))
    for cursor in (None, p.encode_cursor("runs", (None,), _CURSOR)):
        found.append((*p.runs_query(status=None, limit=10, cursor=cursor), "runs_page_status"))
    return found


def _one_run() -> list[tuple[str, list[Any], str]]:
    """All of one run's requests: its rows on the run_status index, sorted (a run holds few;
    store schema 8 dropped requests_page_run, which spared the sort)."""
    found = []
    for cursor in (None, p.encode_cursor("requests", ("r1", None), _CURSOR)):
        sql, args = p.requests_query(run_id="r1", status=None, limit=10, cursor=cursor)
        found.append((sql, args, "requests_page_run_status"))
    return found


def _sqlite_fill(conn: sqlite3.Connection) -> None:
    conn.executemany(
        "INSERT INTO requests (request_id, run_id, kind, request, args_digest, status, "
        "created_at, expires_at) VALUES (?, ?, 'approval', '{}', 'd', ?, ?, 1e10)",
        [(f"q{i}", f"r{i % 50}", "decided" if i % 3 else "pending", i // 2) for i in range(3000)],
    )
    conn.executemany(
        "INSERT INTO runs (run_id, agent_name, status, snapshot, schema_version, created_at, "
        "updated_at) VALUES (?, 'a', ?, '{}', 1, 1.0, ?)",
        [(f"r{i}", "paused" if i % 4 else "completed", i // 3) for i in range(2000)],
    )
    conn.execute("ANALYZE")


async def test_sqlite_listings_use_their_index(tmp_path: Any) -> None:
    from afk.store import SQLiteStore

    store = SQLiteStore(tmp_path / "plans.db")
    await store.setup()
    await store.close()
    with sqlite3.connect(tmp_path / "plans.db") as conn:
        for filled in (False, True):
            if filled:
                _sqlite_fill(conn)
            for sql, args, index in _queries():
                plan = _sqlite_plan(conn, sql, args)
                assert len(plan) == 1 and f"USING INDEX {index} (" in plan[0], (sql, plan)
                assert ("<(?,?)" in plan[0] or ">(?,?)" in plan[0]) == ("(?, ?)" in sql), plan
                assert not any("TEMP B-TREE" in step for step in plan), plan
            for sql, args, index in _one_run():
                plan = _sqlite_plan(conn, sql, args)
                assert f"USING INDEX {index} (run_id=?)" in plan[0], (sql, plan)
                assert plan[1:] == ["USE TEMP B-TREE FOR ORDER BY"], plan
            for sql, args, index in _unfiltered():
                plan = _sqlite_plan(conn, sql, args)
                scans = [step for step in plan if step.startswith(("SEARCH", "SCAN "))]
                searches = [step for step in scans if step.startswith("SEARCH")]
                # One range scan per status on the status index; what else is scanned is
                # each branch's own LIMITed output (at most a page), never the table.
                assert len(searches) == sql.count(" UNION ALL ") + 1, plan
                assert all(f"USING INDEX {index} (status=?" in s for s in searches), plan
                assert all(s.startswith(("SEARCH", "SCAN s")) for s in scans), plan


def _sqlite_plan(conn: sqlite3.Connection, sql: str, args: list[Any]) -> list[str]:
    """The plan's steps, but for each row's schema probe (which must be a key lookup)."""
    plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + _sqlite(sql), args)]
    probes = [step for step in plan if step.startswith(_SUBQUERY) or "tool_schemas" in step]
    lookups = [step for step in probes if step == _SCHEMA_LOOKUP]
    assert len(lookups) == sql.count("SELECT body FROM") == len(probes) // 2, plan
    return [step for step in plan if step not in probes]


def _sqlite(sql: str) -> str:
    return render(sql, prefix="", postgres=False)


async def test_postgres_listings_use_their_index_empty_and_filled(pg_schema: PgSchema) -> None:
    import psycopg

    store = Backend("postgres", pg_schema.dsn, pg_schema.schema).open()
    await store.setup()
    await store.close()
    prefix = f'"{pg_schema.schema}".'
    async with await psycopg.AsyncConnection.connect(pg_schema.dsn, autocommit=True) as conn:
        for filled in (False, True):  # before and after ANALYZE has statistics
            if filled:
                await _postgres_fill(conn, prefix)
            for sql, args, index in [*_queries(), *_unfiltered()]:
                await _assert_pg_plan(conn, render(sql, prefix=prefix, postgres=True), args, index)
            for sql, args, index in _one_run():
                rendered = render(sql, prefix=prefix, postgres=True)
                await _assert_pg_plan(conn, rendered, args, index, sorted_=True)


async def _assert_pg_plan(
    conn: Any, sql: str, args: list[Any], index: str, *, sorted_: bool = False
) -> None:
    rows = await (await conn.execute(f"EXPLAIN {sql}".encode(), args)).fetchall()
    plan = "\n".join(row[0] for row in rows)
    lines = plan.splitlines()
    scans = [line for line in lines if "Scan" in line and "tool_schemas_pkey" not in line]
    if sorted_:  # one run's rows, found on the index (a bitmap of them, or its order)
        used = [s for s in scans if f"using {index} on" in s or f"Index Scan on {index}" in s]
        assert used and all(s in used or "Bitmap Heap Scan" in s for s in scans), plan
    else:
        assert scans and all("Index Scan" in s and f"using {index} on" in s for s in scans), plan
    assert ("Sort  " in plan) == sorted_ and "Seq Scan" not in plan, plan
    # The schema put back: one primary-key probe per row (SubPlan), nothing scanned.
    probes = [line for line in lines if "tool_schemas" in line]
    assert all("Index Scan using tool_schemas_pkey" in line for line in probes), plan
    assert len(probes) == (sql.count("SELECT body FROM") if "requests" in sql else 0), plan


async def _postgres_fill(conn: Any, prefix: str) -> None:
    await conn.execute(
        f"INSERT INTO {prefix}requests (request_id, run_id, kind, request, args_digest, status, "
        "created_at, expires_at) SELECT 'q' || i, 'r' || (i % 50), 'approval', '{}'::bytea, 'd', "
        "CASE WHEN i % 3 = 0 THEN 'pending' ELSE 'decided' END, (i / 2)::float8, 1e10 "
        "FROM generate_series(1, 20000) AS i".encode()
    )
    await conn.execute(
        f"INSERT INTO {prefix}runs (run_id, agent_name, status, snapshot, schema_version, "
        "created_at, updated_at) SELECT 'r' || i, 'a', CASE WHEN i % 4 = 0 THEN 'completed' "
        "ELSE 'paused' END, '{}'::bytea, 1, 1.0, (i / 3)::float8 "
        "FROM generate_series(1, 20000) AS i".encode()
    )
    await conn.execute(f"ANALYZE {prefix}requests".encode())
    await conn.execute(f"ANALYZE {prefix}runs".encode())
