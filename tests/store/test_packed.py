"""Store schema 8 on every backend: snapshots, requests and ledger payloads stored deflated
(afk.store._packed), every MAC still over the text, and a v7 store migrated by setup."""

from __future__ import annotations

import hashlib
import json

import pytest
from store_support import Backend, request, run, to_v7
from test_migrate_v6 import ANN, EXTERNAL, POLICY, RAN, agent, url_of

from afk.audit.verify import verify
from afk.core import Runner
from afk.errors import TamperedRecordError
from afk.store import _migrate as m
from afk.store import _packed as pk
from afk.store import _seal as s
from afk.store._common import STORE_SCHEMA_VERSION
from afk.store.store import RunStore

FROZEN = {
    "snapshot": "ba0a80e0259c1dd7",
    "request": "4bc04a46d9d2f0f5",
    "payload": "3f2d9268b6bbdf01",
}


def test_the_dictionaries_are_frozen() -> None:
    """Stored values inflate only with these exact bytes: a change is a new format byte."""
    digests = {k: hashlib.sha256(v).hexdigest()[:16] for k, v in pk.DICTIONARIES.items()}
    assert (pk.FORMAT_DEFLATE, digests) == (1, FROZEN)


@pytest.mark.parametrize("column", pk.COLUMNS)
@pytest.mark.parametrize("text", ["{}", '{"a":"é ✓","b":[1,2.5,null]}', json.dumps("x" * 5000)])
def test_a_value_reads_back_exactly(column: pk.Column, text: str) -> None:
    assert pk.unpack(column, pk.pack(column, text)) == text
    assert pk.unpack(column, text) == text  # text as an older afk (or a hand) wrote it
    assert pk.unpack(column, text.encode()) == text  # the same, in a BYTEA column


@pytest.mark.parametrize("column", pk.COLUMNS)
def test_a_damaged_value_reads_as_text_no_mac_covers(column: pk.Column) -> None:
    packed = pk.pack(column, '{"step":1,"tool_args":{"amount":250}}')
    assert pk.unpack(column, packed[:-3]) == pk.UNDECODABLE
    assert pk.unpack(column, packed + b"\x00junk") == pk.UNDECODABLE
    assert pk.unpack(column, b"\x01\xff\xfe") == pk.UNDECODABLE


async def test_rows_are_stored_packed_and_read_back_whole(
    store: RunStore, backend: Backend
) -> None:
    sent = request("q1")
    await store.save_run(run(), requests=[sent])
    [(snapshot,)] = await backend.rows(f"SELECT snapshot FROM {backend.table('runs')}")
    [(text,)] = await backend.rows(f"SELECT request FROM {backend.table('requests')}")
    assert pk.is_packed(snapshot) and pk.is_packed(text)
    got = await store.get_request("q1")
    loaded = await store.load_run("run-1")
    assert got is not None and got.request == sent.request and s.record_ok(store.keys, got)
    assert loaded is not None and loaded.snapshot == run().snapshot
    assert s.record_ok(store.keys, loaded)


@pytest.mark.parametrize("how", ["flipped", "cut", "text"])
async def test_a_tampered_packed_snapshot_is_refused(backend: Backend, how: str) -> None:
    RAN.clear()
    async with Runner(POLICY, config=EXTERNAL, store=url_of(backend)) as runner:
        paused = await runner.run(agent(), user_message="order-t")
        await runner.resolve(paused.pending_requests[0].request_id, ANN)
    runs = backend.table("runs")
    [(stored,)] = await backend.rows(f"SELECT snapshot FROM {runs}")
    raw = bytes(stored)
    forged: bytes | str = {
        "flipped": raw[:20] + bytes([raw[20] ^ 0x01]) + raw[21:],
        "cut": raw[:-4],
        # The attacker's edit, deflated back the way afk does: the MAC still refuses it.
        "text": pk.pack("snapshot", pk.unpack("snapshot", raw).replace("250", "99999")),
    }[how]
    await backend.execute(f"UPDATE {runs} SET snapshot = ?", (forged,))
    async with Runner(POLICY, config=EXTERNAL, store=url_of(backend)) as runner:
        with pytest.raises(TamperedRecordError, match="does not verify"):
            await runner.resume(paused.run_id, agent())
    assert RAN == []


async def test_a_tampered_packed_ledger_payload_fails_verification(backend: Backend) -> None:
    async with Runner(POLICY, config=EXTERNAL, store=url_of(backend)) as runner:
        await runner.run(agent(), user_message="order-l")
        assert runner.store is not None
        assert (await verify(runner.store)).ok
        log = backend.table("log")
        [(stored,)] = await backend.rows(f"SELECT payload FROM {log} WHERE id = 1")
        raw = bytes(stored)
        await backend.execute(f"UPDATE {log} SET payload = ? WHERE id = 1", (raw[:-2],))
        report = await verify(runner.store)
        assert not report.ok and "id 1 (altered)" in report.summary()


async def test_a_v7_store_migrates_and_its_runs_resume_verify_and_page(backend: Backend) -> None:
    RAN.clear()
    async with Runner(POLICY, config=EXTERNAL, store=url_of(backend)) as runner:
        paused = [await runner.run(agent(), user_message=f"order-{i}") for i in range(3)]
        await runner.resolve(paused[0].pending_requests[0].request_id, ANN)
        assert runner.store is not None
        run_ids = [p.run_id for p in paused]
        runs = [await runner.store.load_run(run_id) for run_id in run_ids]
        requests = list(await runner.store.list_requests(status=None))
        log = await runner.store.list_log()
        events = [await runner.store.list_events(run_id) for run_id in run_ids]
    await to_v7(backend)
    [(text,)] = await backend.rows(f"SELECT snapshot FROM {backend.table('runs')} LIMIT 1")
    assert isinstance(text, str) and text.startswith("{")  # as store schema 7 held it

    async with Runner(POLICY, config=EXTERNAL, store=url_of(backend)) as runner:
        store = runner.store
        assert store is not None
        await store.setup()
        [(version,)] = await backend.rows(
            f"SELECT value FROM {backend.table('meta')} WHERE key = 'store_schema_version'"
        )
        assert version == str(STORE_SCHEMA_VERSION) == "10"
        for table, _, column in m.PACKED:
            stored = await backend.rows(f"SELECT {column} FROM {backend.table(table)}")
            assert stored and all(pk.is_packed(value) for (value,) in stored), table
        for table, _, columns in m.DIGESTS:
            rows = await backend.rows(f"SELECT {columns[-1]} FROM {backend.table(table)}")
            assert all(len(bytes(v)) == 39 and v[0] == pk.FORMAT_KEYED for (v,) in rows), table
        assert [await store.load_run(run_id) for run_id in run_ids] == runs
        assert list(await store.list_requests(status=None)) == requests
        assert await store.list_log() == log
        assert [await store.list_events(run_id) for run_id in run_ids] == events
        if backend.name == "sqlite":
            [(ddl,)] = await backend.rows(m.SQLITE_TABLE_SQL.replace("?", "'event_batches'"))
            assert "WITHOUT ROWID" in ddl  # rebuilt, its rows kept
        assert all(s.record_ok(store.keys, q) for q in requests)
        assert (await verify(store)).ok
        page = await store.list_requests(status=None, limit=2)
        rest = await store.list_requests(status=None, limit=2, cursor=page.next_cursor)
        assert [q.request_id for q in [*page, *rest]] == [q.request_id for q in requests]
        for result in paused[1:]:
            await runner.resolve(result.pending_requests[0].request_id, ANN)
        done = [await runner.resume(run_id, agent()) for run_id in run_ids]
        assert [d.state for d in done] == ["completed"] * 3, [d.error for d in done]
        assert sorted(RAN) == ["order-0", "order-1", "order-2"]
        assert (await verify(store)).ok
    again = backend.open()
    try:
        await again.setup()  # a second setup finds nothing left to pack
    finally:
        await again.close()


@pytest.mark.parametrize(
    "text",
    ["0123456789ab:" + "f" * 64, "0" * 64, "", "ABCDEF012345:" + "0" * 64, "legacy:é"],
)
def test_a_digest_reads_back_exactly(text: str) -> None:
    packed = pk.pack_digest(text)
    assert packed is not None and pk.unpack_digest(packed) == text
    assert len(packed) == (39 if text.startswith("0123") else len(text.encode()))
    assert pk.unpack_digest(text) == text and pk.pack_digest(None) is None


async def test_a_tampered_packed_run_mac_is_refused(backend: Backend) -> None:
    RAN.clear()
    async with Runner(POLICY, config=EXTERNAL, store=url_of(backend)) as runner:
        paused = await runner.run(agent(), user_message="order-m")
        await runner.resolve(paused.pending_requests[0].request_id, ANN)
    runs = backend.table("runs")
    [(mac,)] = await backend.rows(f"SELECT mac FROM {runs}")
    raw = bytes(mac)
    await backend.execute(f"UPDATE {runs} SET mac = ?", (raw[:-1] + bytes([raw[-1] ^ 1]),))
    async with Runner(POLICY, config=EXTERNAL, store=url_of(backend)) as runner:
        with pytest.raises(TamperedRecordError, match="does not verify"):
            await runner.resume(paused.run_id, agent())
    assert RAN == []
