"""Ids typed by unique prefix (``afk approvals show 3f2a``, approve, deny, input, ``runs show``,
``grants revoke``), found with one range query on the primary key; an ambiguous prefix is
refused naming the candidates."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from durable_app import Env, afk, make_env, request_id, start
from pg_support import PgSchema

from afk.cli._ids import REQUEST, RUN, next_prefix, prefix_query, short_ids
from afk.store import RequestRecord, RunRecord, open_store

FAR = 4_000_000_000.0


@pytest.fixture
def env(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    """AFK_STORE on each backend, for the tests that fill the store themselves."""
    made = make_env(tmp_path, monkeypatch)
    monkeypatch.setenv("AFK_STORE", store_url)
    return made


@pytest.fixture
def sqlite_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    """A SQLite store that ``start`` pauses real runs in."""
    return make_env(tmp_path, monkeypatch)


def _requests(url: str, ids: list[str]) -> None:
    """One paused run per id (``run_<id>``), each with one pending request ``req_<id>``."""

    async def go() -> None:
        store = open_store(url)
        await store.setup()
        try:
            for stem in ids:
                body = {"request_id": f"req_{stem}", "tool_args": {"n": 1}, "rule_id": "rule"}
                await store.save_run(
                    RunRecord(
                        run_id=f"run_{stem}",
                        agent_name="billing",
                        status="paused",
                        snapshot="{}",
                        schema_version=1,
                        created_at=100.0,
                        updated_at=100.0,
                    ),
                    requests=[
                        RequestRecord(
                            request_id=f"req_{stem}",
                            run_id=f"run_{stem}",
                            kind="approval",
                            request=json.dumps(body),
                            args_digest="d" * 64,
                            status="pending",
                            created_at=100.0,
                            expires_at=FAR,
                            tool_name="refund",
                        )
                    ],
                )
        finally:
            await store.close()

    asyncio.run(go())


def test_a_unique_prefix_approves_with_or_without_req(sqlite_env: Env) -> None:
    run = start(sqlite_env)
    rid = request_id(run)
    stem = rid.removeprefix("req_")
    shown = afk("approvals", "show", stem[:6])
    assert shown.code == 0, shown.err
    assert rid in shown.out
    approved = afk("approvals", "approve", f"req_{stem[:5]}")
    assert approved.code == 0, approved.err
    assert afk("approvals", "show", rid, "--json").json()["status"] == "decided"


def test_runs_show_takes_a_prefix(sqlite_env: Env) -> None:
    run = start(sqlite_env)
    out = afk("runs", "show", run.run_id.removeprefix("run_")[:8])
    assert out.code == 0, out.err
    assert run.run_id in out.out


def test_an_ambiguous_prefix_is_refused_naming_the_candidates(env: Env, store_url: str) -> None:
    _requests(store_url, ["abcd1111", "abcd2222", "abce3333"])
    for argv in (["approvals", "show", "abcd"], ["approvals", "deny", "req_abcd"]):
        out = afk(*argv)
        assert out.code == 2
        assert "ambiguous" in out.err
        assert "req_abcd1111, req_abcd2222" in out.err and "abce" not in out.err
    # Nothing was decided by the refused deny.
    assert afk("approvals", "show", "abcd1", "--json").json()["status"] == "pending"
    assert afk("runs", "show", "abcd", "--json").code == 2  # runs too


def test_a_full_id_wins_over_longer_ids_it_is_a_prefix_of(env: Env, store_url: str) -> None:
    _requests(store_url, ["feed", "feed0001"])
    out = afk("approvals", "show", "req_feed", "--json")
    assert out.code == 0, out.err
    assert out.json()["request_id"] == "req_feed"


def test_no_match_and_too_short(env: Env, store_url: str) -> None:
    _requests(store_url, ["abcd1111"])
    missing = afk("approvals", "approve", "ffff")
    assert missing.code == 1
    assert "no request with id 'ffff'" in missing.err
    short = afk("approvals", "show", "abcd"[:3])  # three characters stand for nothing else
    assert short.code == 1
    assert "no request with id 'abc'" in short.err
    assert afk("approvals", "show", "abcd").code == 0


def test_the_range_query_is_an_index_search_on_sqlite(tmp_path: Path) -> None:
    env_db = tmp_path / "runs.db"
    _requests(f"sqlite:///{env_db}", ["abcd1111"])
    for kind in (REQUEST, RUN):
        sql, args = prefix_query(kind, "req_ab", 6)
        with sqlite3.connect(env_db) as db:
            query = f"EXPLAIN QUERY PLAN {sql.replace('{t}', '')}"
            plan = " ".join(str(row) for row in db.execute(query, args))
        # runs and requests are WITHOUT ROWID since store schema 10: their primary key's
        # b-tree is the table, searched as "USING PRIMARY KEY".
        assert "SEARCH" in plan and "USING" in plan and "PRIMARY KEY" in plan, plan
        assert "SCAN" not in plan, plan


def test_the_range_query_can_use_the_primary_key_on_postgres(pg_schema: PgSchema) -> None:
    import psycopg

    _requests(pg_schema.url, ["abcd1111"])
    sql, args = prefix_query(REQUEST, "req_ab", 6)
    with psycopg.connect(pg_schema.dsn, autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off")  # a tiny table: ask whether an index can serve
        prefixed = sql.replace("{t}", f'"{pg_schema.schema}".').replace("?", "%s")
        rows = conn.execute(f"EXPLAIN {prefixed}", args).fetchall()
    plan = " ".join(r[0] for r in rows)
    assert "Index" in plan and "requests_pkey" in plan, plan


def test_next_prefix_bounds_exactly_the_strings_with_the_prefix() -> None:
    assert next_prefix("req_3f2a") == "req_3f2b"
    assert next_prefix("a\U0010ffff") == "b"
    assert next_prefix("\ud7ff") == "\ue000"  # past the surrogates
    assert next_prefix("\U0010ffff") is None


def test_short_ids_grow_until_they_differ() -> None:
    ids = ["req_0123456789ab", "req_01234567ffff", "req_fedcba9876"]
    assert short_ids(ids, REQUEST) == {
        "req_0123456789ab": "012345678",
        "req_01234567ffff": "01234567f",
        "req_fedcba9876": "fedcba98",
    }
    assert short_ids(["run_custom"], RUN) == {"run_custom": "custom"}


def test_grants_revoke_takes_a_prefix(sqlite_env: Env) -> None:
    rid = request_id(start(sqlite_env))
    granted = afk("approvals", "approve", rid, "--grant-scope", "agent", "--grant-for", "600")
    assert granted.code == 0, granted.err
    stem = rid.removeprefix("req_")
    out = afk("grants", "revoke", stem[:6])
    assert out.code == 0, out.err
    assert out.out.startswith(f"grant_{stem} revoked")
    assert afk("grants", "revoke", "zzzz").code == 1  # no such grant
