"""Store schema 6 on every backend: events kept as one compressed batch per checkpoint, tool
schemas kept once, and ids found by prefix with one primary-key range scan."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from store_support import Backend, event, request, run

from afk.audit.keys import Keyring, SecretKey
from afk.errors import ConfigurationError
from afk.store import StoreError
from afk.store import _event_batches as eb
from afk.store import _packed as pk
from afk.store import _seal as s
from afk.store import _tool_schemas as ts
from afk.store._common import render
from afk.store._prefix import prefix_sql
from afk.store.store import EventRow, GrantRecord, RunStore

SCHEMA = {
    "additionalProperties": False,
    "properties": {"order": {"title": "Order", "type": "string"}, "amount": {"type": "integer"}},
    "required": ["order", "amount"],
    "type": "object",
}


def with_schema(request_id: str, run_id: str = "run-1", *, schema: Any = SCHEMA) -> Any:
    """A request whose JSON carries a tool schema, written the way the runner writes it."""
    text = json.dumps(
        {"step": 1, "tool_args": {"order": "A-1"}, "tool_schema": schema, "quorum": 1},
        separators=(",", ":"),
    )
    return request(request_id, run_id, request=text)


# -- events --------------------------------------------------------------------------------
async def test_each_save_is_one_batch_and_any_seq_pages_from_it(
    store: RunStore, backend: Backend
) -> None:
    await store.save_run(run(), events=[event("run-1", n) for n in (1, 2, 3)])
    await store.save_run(run(), events=[event("run-1", n) for n in (4, 5)])
    batches = await backend.rows(f"SELECT run_id, last_seq FROM {backend.table('event_batches')}")
    assert sorted(batches) == [("run-1", 3), ("run-1", 5)]
    for after in range(6):
        seqs = [e.seq for e in await store.list_events("run-1", after_seq=after)]
        assert seqs == list(range(after + 1, 6)), after


async def test_events_read_back_byte_for_byte(store: RunStore) -> None:
    odd = [
        EventRow(run_id="run-1", seq=1, type="run_started", payload='{ "a" : "é\\u00e9" }', ts=1.5),
        EventRow(run_id="run-1", seq=2, type="x", payload="not json at all\n", ts=1e-7),
        EventRow(run_id="run-1", seq=3, type="y", payload='{"n":1.0000000000000002}', ts=0.1),
    ]
    await store.save_run(run(), events=odd)
    assert await store.list_events("run-1") == odd


async def test_an_append_that_does_not_continue_the_seq_is_refused(store: RunStore) -> None:
    await store.save_run(run(), events=[event("run-1", 1), event("run-1", 2)])
    for events in (
        [event("run-1", 2)],
        [event("run-1", 1)],
        [event("run-1", 4), event("run-1", 3)],
    ):
        with pytest.raises(StoreError, match="already stored or out of order"):
            await store.save_run(run(status="completed"), events=events)
    loaded = await store.load_run("run-1")
    assert loaded is not None and loaded.status == "paused"  # the whole save rolled back
    assert [e.seq for e in await store.list_events("run-1")] == [1, 2]
    await store.save_run(run(), events=[event("run-1", 5)])  # gaps are allowed, as before
    assert [e.seq for e in await store.list_events("run-1", after_seq=1)] == [2, 5]


async def test_a_damaged_batch_is_a_store_error_naming_the_run(
    store: RunStore, backend: Backend
) -> None:
    await store.save_run(run(), events=[event("run-1", 1)])
    junk = "X'00ff'" if backend.name == "sqlite" else "'\\x00ff'::bytea"
    await backend.execute(f"UPDATE {backend.table('event_batches')} SET events = {junk}")
    with pytest.raises(StoreError, match="an event batch of run 'run-1' does not decode"):
        await store.list_events("run-1")


def test_the_batch_dictionary_is_frozen() -> None:
    # Stored batches inflate only with these exact bytes: a new dictionary is a new format.
    digest = hashlib.sha256(eb.DICTIONARY).hexdigest()
    assert (eb.FORMAT_DEFLATE_JSON, digest[:16]) == (1, FROZEN_DICTIONARY)


FROZEN_DICTIONARY = "9dfc2546184a154e"


# -- tool schemas --------------------------------------------------------------------------
async def test_a_tool_schema_is_stored_once_and_read_back_whole(
    store: RunStore, backend: Backend
) -> None:
    first, second = with_schema("q1"), with_schema("q2", schema=dict(SCHEMA))
    await store.save_run(run(), requests=[first])
    await store.save_run(run("run-2"), requests=[second])
    schemas = await backend.rows(f"SELECT schema_id, body FROM {backend.table('tool_schemas')}")
    assert [json.loads(body) for _, body in schemas] == [SCHEMA]
    [(stored,), _] = await backend.rows(
        f"SELECT request FROM {backend.table('requests')} ORDER BY request_id"
    )
    text = pk.unpack("request", stored)  # store schema 8: packed (afk.store._packed)
    assert json.loads(text)["tool_schema"] is None and json.loads(text)["tool_args"]
    for sent in (first, second):
        got = await store.get_request(sent.request_id)
        assert got is not None and got.request == sent.request
        assert s.record_ok(store.keys, got)
    listed = await store.list_requests(status=None)
    assert [r.request for r in listed] == [first.request, second.request]


async def test_small_or_absent_schemas_stay_inline(store: RunStore, backend: Backend) -> None:
    records = [request("q0"), with_schema("q1", schema={"type": "object"})]
    await store.save_run(run(), requests=records)
    assert await backend.rows(f"SELECT * FROM {backend.table('tool_schemas')}") == []
    for sent in records:
        got = await store.get_request(sent.request_id)
        assert got is not None and got.request == sent.request and s.record_ok(store.keys, got)


@pytest.mark.parametrize(
    "forge",
    [
        "UPDATE {tool_schemas} SET body = replace(body, 'integer', 'number')",
        "DELETE FROM {tool_schemas}",
        "UPDATE {requests} SET schema_at = schema_at + 1",
    ],
)
async def test_a_forged_schema_row_or_offset_leaves_the_request_unverifiable(
    store: RunStore, backend: Backend, forge: str
) -> None:
    await store.save_run(run(), requests=[with_schema("q1")])
    names = {name: backend.table(name) for name in ("tool_schemas", "requests")}
    await backend.execute(forge.format(**names))
    got = await store.get_request("q1")
    assert got is not None and not s.record_ok(store.keys, got)


async def test_a_forged_request_text_leaves_the_request_unverifiable(
    store: RunStore, backend: Backend
) -> None:
    await store.save_run(run(), requests=[with_schema("q1")])
    edit = lambda text: text.replace('"A-1"', '"A-2"')  # noqa: E731
    await backend.edit_packed("requests", "request", ("request_id", "q1"), edit)
    got = await store.get_request("q1")
    assert got is not None and '"A-2"' in got.request and not s.record_ok(store.keys, got)


# -- ids by prefix -------------------------------------------------------------------------
async def test_ids_with_prefix_on_every_kind(store: RunStore) -> None:
    for run_id in ("run_ab1", "run_ab2", "run_b", "run_ab3"):
        await store.save_run(run(run_id), requests=[request(f"req_{run_id[4:]}", run_id)])
    await store.add_grant(grant("grant_ab"))
    assert await store.ids_with_prefix("run", "run_ab") == ["run_ab1", "run_ab2", "run_ab3"]
    assert await store.ids_with_prefix("run", "run_ab", limit=2) == ["run_ab1", "run_ab2"]
    assert await store.ids_with_prefix("request", "req_b") == ["req_b"]
    assert await store.ids_with_prefix("grant", "grant_") == ["grant_ab"]
    assert await store.ids_with_prefix("run", "run_c") == []
    assert await store.ids_with_prefix("run", "") == ["run_ab1", "run_ab2", "run_ab3", "run_b"]


async def test_ids_with_prefix_checks_its_arguments(store: RunStore) -> None:
    with pytest.raises(ConfigurationError, match="kind must be one of 'run', 'request', 'grant'"):
        await store.ids_with_prefix("runs", "x")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="limit must be a whole number from 1 to 1000"):
        await store.ids_with_prefix("run", "x", limit=0)
    with pytest.raises(ConfigurationError, match="prefix must be a str"):
        await store.ids_with_prefix("run", 5)  # type: ignore[arg-type]


def grant(grant_id: str) -> GrantRecord:
    return GrantRecord(
        grant_id=grant_id,
        tool_name="refund",
        scope="thread",
        scope_value="t-1",
        when="{}",
        until=4e9,
        created_by="ann",
        created_at=100.0,
    )


# -- plans ---------------------------------------------------------------------------------
def _plan_queries() -> list[tuple[str, list[Any], str]]:
    """(query, parameters, the primary-key index it must be a range scan of)."""
    found = [
        (eb.LIST, ["run-1", 3], "event_batches"),
        (eb.LATER, ["run-1", 3], "event_batches"),
    ]
    for table, column in (("runs", "run_id"), ("requests", "request_id"), ("grants", "grant_id")):
        sql, args = prefix_sql(table, column, "ab", 6)
        found.append((sql, args, table))
    return found


async def test_schema_6_queries_are_primary_key_range_scans(
    store: RunStore, backend: Backend
) -> None:
    for n in range(200):  # enough rows that a scan would not be free
        await store.save_run(run(f"r{n}"), events=[event(f"r{n}", 1)])
    for sql, args, table in _plan_queries():
        if backend.name == "sqlite":
            text = render(sql, prefix="", postgres=False)
            rows = await backend.rows(f"EXPLAIN QUERY PLAN {_inline(text, args)}")
            plan = " / ".join(str(row[3]) for row in rows)
            # event_batches is WITHOUT ROWID since store schema 8, runs and requests since 10:
            # their primary key is the table.
            key = "sqlite_autoindex" if table == "grants" else "PRIMARY KEY"
            assert f"SEARCH {table} USING" in plan and key in plan, plan
            assert "TEMP B-TREE" not in plan, plan
        else:
            text = render(sql, prefix=f'"{backend.schema}".', postgres=True)
            plan = await _pg_plan(backend, _inline(text, args))
            assert f"using {table}_pkey on {table}" in plan, plan
            assert "Seq Scan" not in plan and "Sort" not in plan, plan


async def _pg_plan(backend: Backend, sql: str) -> str:
    """EXPLAIN with the store's own planner settings; a sequential scan ruled out, since a
    table this small could be read whole for free: the question is whether an index can
    serve the query."""
    import psycopg

    from afk.store.postgres import PLANNER_SETTINGS

    async with await psycopg.AsyncConnection.connect(backend.location, autocommit=True) as conn:
        await conn.execute(PLANNER_SETTINGS)
        await conn.execute("SET enable_seqscan = off")
        rows = await (await conn.execute(f"EXPLAIN {sql}".encode())).fetchall()
    return " / ".join(row[0] for row in rows)


def _inline(sql: str, args: list[Any]) -> str:
    """``sql`` with its parameters written in (EXPLAIN through raw connections)."""
    for arg in args:
        value = f"'{arg}'" if isinstance(arg, str) else str(arg)
        sql = sql.replace("%s" if "%s" in sql else "?", value, 1)
    return sql


# -- finding the schema in a request's text -------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        # a nested "tool_schema" key and a key-like string come first: neither is taken
        '{"tool_args":{"tool_schema":{"x":"' + "y" * 80 + '"}},"note":"\\"tool_schema\\":{",'
        '"tool_schema":' + json.dumps(SCHEMA) + "}",
        # whitespace anywhere JSON allows it, and unicode
        '{ "é" : [1, 2] ,\n "tool_schema" :\t' + json.dumps(SCHEMA, indent=1) + " }",
    ],
)
def test_the_top_level_schema_is_the_one_moved_and_the_text_comes_back_exact(text: str) -> None:
    stored, schema_id, at, body = ts.split(_keys(), text)
    assert schema_id is not None and at is not None and body is not None
    assert json.loads(body) == SCHEMA
    moved, kept = json.loads(stored), json.loads(text)
    assert moved.pop("tool_schema") is None and kept.pop("tool_schema") == SCHEMA
    assert moved == kept  # everything else, the nested "tool_schema" too, stays in place
    assert ts.joined(stored, at, body) == text


@pytest.mark.parametrize(
    "text", ["[1, 2]", "not json", '{"tool_schema": 5}', '{"a": 1}', "{", '{"tool_schema":, "']
)
def test_text_without_a_schema_object_stays_as_it_is(text: str) -> None:
    assert ts.split(_keys(), text) == (text, None, None, None)


def _keys() -> Keyring:
    return Keyring(SecretKey(secret=b"test-compact-key-0123456789abcdef"))
