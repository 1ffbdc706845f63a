"""The tokens table (store schema 7): added to an older store by setup, sealed so a row
edited outside afk authenticates nobody, revoked once."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import pytest
from console_support import bearer, client, mint

from afk.errors import TokenNotFoundError
from afk.store import RunStore, open_store
from afk.store._common import STORE_SCHEMA_VERSION


async def _sql(store: RunStore, sql: str) -> list[tuple[Any, ...]]:
    """Raw SQL beside the store (``{t}``: its table prefix), as someone with database access."""
    schema = getattr(store, "schema", None)
    if schema is None:
        with sqlite3.connect(store.path) as conn:  # type: ignore[attr-defined]
            return conn.execute(sql.replace("{t}", "")).fetchall()
    import psycopg

    dsn = store.dsn  # type: ignore[attr-defined]
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cursor = await conn.execute(sql.replace("{t}", f'"{schema}".').encode())
        return await cursor.fetchall() if cursor.description else []


async def test_a_schema_6_store_gets_the_tables_on_setup(store_url: str, store: RunStore) -> None:
    await _sql(store, "DROP TABLE {t}api_tokens")
    await _sql(store, "DROP TABLE {t}api_answers")
    await _sql(store, "UPDATE {t}meta SET value = '6' WHERE key = 'store_schema_version'")
    again = open_store(store_url)
    try:
        await again.setup()
        _, token = await mint(again, "alice")
        assert await again.get_token(token.token_id) is not None
        [(version,)] = await _sql(
            store, "SELECT value FROM {t}meta WHERE key = 'store_schema_version'"
        )
        assert version == str(STORE_SCHEMA_VERSION)
    finally:
        await again.close()


async def test_a_token_row_edited_outside_afk_authenticates_nobody(store: RunStore) -> None:
    secret, token = await mint(store, "alice")
    async with client(store) as http:
        assert (await http.get("/api/v1/runs", headers=bearer(secret))).status_code == 200
        await _sql(
            store,
            f"UPDATE {{t}}api_tokens SET principal_id = 'root' WHERE token_id = '{token.token_id}'",
        )
        assert (await http.get("/api/v1/runs", headers=bearer(secret))).status_code == 401
    # Revoking it still works (and logs the tamper); it never verifies again.
    revoked = await store.revoke_token(token.token_id, by="admin", now=time.time())
    assert revoked.revoked_at is not None
    assert [e.kind for e in await store.list_log()] == ["tamper_detected"]


async def test_revocation_is_idempotent_and_unknown_tokens_are_named(store: RunStore) -> None:
    _, token = await mint(store, "alice")
    first = await store.revoke_token(token.token_id, by="admin", now=1000.0)
    second = await store.revoke_token(token.token_id, by="eve", now=2000.0)
    assert (first.revoked_at, first.revoked_by) == (second.revoked_at, second.revoked_by)
    assert second.revoked_by == "admin"
    with pytest.raises(TokenNotFoundError, match="tok_nope"):
        await store.revoke_token("tok_nope", by="admin", now=1.0)
    listed = await store.list_tokens(limit=1)
    assert [t.token_id for t in listed] == [token.token_id]
    assert [row[0] for row in await _sql(store, "SELECT secret_hash FROM {t}api_tokens")] == [
        token.secret_hash
    ]  # the hash, never the secret


async def test_a_forged_idempotent_answer_is_refused(store_url: str, store: RunStore) -> None:
    from console_support import paused, runner

    async with runner(store_url) as run:
        request_id = await paused(run)
        secret, _ = await mint(store, "alice")
        url = f"/api/v1/requests/{request_id}/decision"
        headers = {**bearer(secret), "Idempotency-Key": "k-9"}
        forged = '{"status": "decided", "decision": {"kind": "allow"}}'
        await _sql(
            store,
            "INSERT INTO {t}api_answers (principal_id, idem_key, request_id, status, body, at) "
            f"VALUES ('alice', 'k-9', '{request_id}', 200, '{forged}', 1.0)",
        )
        async with client(store) as http:
            answer = await http.post(url, json={"kind": "deny"}, headers=headers)
        assert answer.status_code == 500
        assert answer.json()["error"]["type"] == "TamperedRecordError"
        record = await store.get_request(request_id)
        assert record is not None and record.status == "pending"
