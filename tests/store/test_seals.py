"""The MAC contract, on every backend: each row the store writes is sealed with its keys, every
update of a covered column re-seals it in the same transaction, an update never re-seals a
row that did not verify, and a forged vote never counts towards a quorum."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest
from store_support import Backend, decision, entry, execution, request, run, unsealed

from afk.audit.keys import Keyring, SecretKey
from afk.errors import TamperedRecordError
from afk.store import PostgresStore, SQLiteStore, record_ok
from afk.store._seal import COVERED, covered
from afk.store.store import (
    GrantRecord,
    IdempotentAnswer,
    RunStore,
    ThreadTurnRecord,
    TokenRecord,
    VoteRecord,
)


def QUORUM_OF_TWO(votes: Sequence[VoteRecord]) -> bool:
    """The decision rule as the store sees it: two verified votes decide."""
    return len(votes) >= 2


NOW = 150.0


def grant(grant_id: str = "g1") -> GrantRecord:
    return GrantRecord(
        grant_id=grant_id, tool_name="drop_table", scope="agent", scope_value="dba",
        when="{}", until=4e9, created_by="alice", created_at=100.0, source_request_id="q1",
    )  # fmt: skip


def vote(approver: str, kind: str = "allow", request_id: str = "q1") -> VoteRecord:
    return VoteRecord(
        request_id=request_id, approver=approver, kind=kind,  # type: ignore[arg-type]
        decision=decision(kind, approver), bound_digest="d" * 64, at=NOW,
    )  # fmt: skip


async def sealed_everywhere(store: RunStore) -> None:
    """Every stored row of every sealed table verifies."""
    for r in await store.list_runs():
        assert r.mac and record_ok(store.keys, r), r
    for q in await store.list_requests(status=None):
        assert q.mac and record_ok(store.keys, q), q
        for v in await store.list_votes(q.request_id):
            assert v.mac and record_ok(store.keys, v), v
    for g in await store.list_grants():
        assert g.mac and record_ok(store.keys, g), g


async def test_every_write_and_update_is_sealed(store: RunStore) -> None:
    await store.save_run(run(), requests=[request("q1"), request("q2")])
    await sealed_everywhere(store)
    first = await store.load_run("run-1")
    await store.save_run(run(status="completed", updated_at=300.0))
    second = await store.load_run("run-1")
    assert first is not None and second is not None and first.mac != second.mac
    assert record_ok(store.keys, second)

    pending = await store.get_request("q1")
    decided = await store.decide(
        "q1", decision=decision(), decided_by="human", approver="alice", bound_digest="b",
        now=NOW,
    )  # fmt: skip
    assert pending is not None and decided.mac != pending.mac
    assert await store.get_request("q1") == decided and record_ok(store.keys, decided)

    _, started = await store.begin_execution(execution("q1"))
    await store.finish_execution("q1", result="{}", now=NOW)
    done = await store.get_execution("q1")
    assert done is not None and done.status == "done" and done.mac != started.mac
    assert record_ok(store.keys, started) and record_ok(store.keys, done)

    await store.add_grant(grant())
    assert await store.use_grant("g1", now=NOW)  # uses is not covered: still verifies
    revoked = await store.revoke_grant("g1", by="bob", now=NOW)
    assert revoked.revoked_by == "bob" and record_ok(store.keys, revoked)
    await sealed_everywhere(store)


async def test_leases_leave_the_run_sealed(store: RunStore) -> None:
    await store.save_run(run())
    assert await store.acquire_lease("run-1", owner="w1", ttl_s=60, now=NOW)
    leased = await store.load_run("run-1")
    assert leased is not None and leased.lease_owner == "w1" and record_ok(store.keys, leased)
    # created_at is kept by the upsert, and the seal is over the kept value.
    await store.save_run(run(created_at=999.0, updated_at=200.0))
    kept = await store.load_run("run-1")
    assert kept is not None and kept.created_at == 100.0 and record_ok(store.keys, kept)


async def test_a_mac_passed_by_the_caller_is_ignored(store: RunStore) -> None:
    await store.save_run(dataclasses.replace(run(), mac="x:forged"))
    loaded = await store.load_run("run-1")
    assert loaded is not None and loaded.mac != "x:forged" and record_ok(store.keys, loaded)


@pytest.mark.parametrize("kind", list(COVERED), ids=lambda k: k.__name__)
def test_each_covered_field_counts(kind: type) -> None:
    keys = Keyring(SecretKey(secret=bytes(32)))
    turn = ThreadTurnRecord(thread_id="t", turn=1, run_id="run-1", messages="[]", at=NOW)
    token = TokenRecord(
        token_id="tok_1", principal_id="alice", secret_hash="h" * 64, created_at=NOW,
        expires_at=4e9, created_by="admin",
    )  # fmt: skip
    answer = IdempotentAnswer(
        principal_id="alice", key="k-1", request_id="q1", status=200, body="{}", at=NOW
    )
    samples = [run(), request("q"), grant(), execution("k"), vote("alice"), turn, token, answer]
    [record] = [r for r in samples if type(r) is kind]
    sealed = dataclasses.replace(record, mac=keys.mac(*covered(record)))
    assert record_ok(keys, sealed)
    _, fields = COVERED[kind]
    for name, field_kind in fields:
        value = getattr(record, name)
        other = 7.5 if field_kind == "real" else 9 if field_kind == "int" else f"{value}x"
        assert not record_ok(keys, dataclasses.replace(sealed, **{name: other})), name


async def test_a_row_written_with_another_key_does_not_verify(
    store: RunStore, backend: Backend
) -> None:
    await store.save_run(run())
    other = Keyring(SecretKey(secret=b"another deployment's secret key!"))
    elsewhere = _reopen(backend, other)
    try:
        loaded = await elsewhere.load_run("run-1")
        assert loaded is not None and not record_ok(elsewhere.keys, loaded)
        rotated = Keyring(other.current, (store.keys.current,))  # the old key kept for reading
        assert record_ok(rotated, loaded)
    finally:
        await elsewhere.close()


def _reopen(backend: Backend, keys: Keyring) -> RunStore:
    if backend.name == "sqlite":
        return SQLiteStore(backend.location, keys=keys)
    return PostgresStore(backend.location, schema=backend.schema, keys=keys)


async def test_a_forged_request_is_neither_decided_nor_voted_on(
    store: RunStore, backend: Backend
) -> None:
    await store.save_run(run(), requests=[request("q1")])
    await backend.execute(f"UPDATE {backend.table('requests')} SET tool_name = 'x'")
    with pytest.raises(TamperedRecordError, match="requests row 'q1' does not verify"):
        await store.decide(
            "q1", decision=decision(), decided_by="human", approver="a", bound_digest="b",
            now=NOW,
        )  # fmt: skip
    with pytest.raises(TamperedRecordError):
        await store.add_vote(vote("alice"), decides=QUORUM_OF_TWO, now=NOW)
    stored = await store.get_request("q1")
    assert stored is not None and stored.status == "pending" and not record_ok(store.keys, stored)
    assert await store.list_votes("q1") == []
    kinds = [(e.kind, e.request_id) for e in await store.list_log()]
    assert kinds == [("tamper_detected", "q1"), ("tamper_detected", "q1")]


async def test_a_forged_vote_does_not_count_towards_the_quorum(
    store: RunStore, backend: Backend
) -> None:
    await store.save_run(run(), requests=[request("q1")])
    forged = vote("mallory")
    cols = "request_id, approver, kind, decision, bound_digest, at"
    values = f"'q1', 'mallory', 'allow', '{forged.decision}', '{'d' * 64}', {NOW}"
    await backend.execute(f"INSERT INTO {backend.table('votes')} ({cols}) VALUES ({values})")
    stored, agreeing = await store.add_vote(
        vote("alice"), decides=QUORUM_OF_TWO, now=NOW, log=[entry("v")]
    )
    assert (stored.status, agreeing) == ("pending", 1)  # mallory's row is not a vote
    stored, agreeing = await store.add_vote(vote("bob"), decides=QUORUM_OF_TWO, now=NOW)
    assert (stored.status, agreeing) == ("decided", 2) and record_ok(store.keys, stored)
    tampered = [e for e in await store.list_log() if e.kind == "tamper_detected"]
    assert len(tampered) == 2 and all('"table":"votes"' in e.payload for e in tampered)


async def test_updates_do_not_launder_a_forged_row(store: RunStore, backend: Backend) -> None:
    await store.begin_execution(execution("q1"))
    await backend.execute(f"UPDATE {backend.table('executions')} SET tool_call_id = 'other'")
    await store.finish_execution("q1", result="{}", now=NOW)
    done = await store.get_execution("q1")
    assert done is not None and done.status == "done" and not record_ok(store.keys, done)

    await store.add_grant(grant())
    await backend.execute(f"UPDATE {backend.table('grants')} SET until = 5e9")
    revoked = await store.revoke_grant("g1", by="bob", now=NOW)
    assert revoked.revoked_at == NOW and not record_ok(store.keys, revoked)
    log = await store.list_log()
    assert [e.kind for e in log] == ["tamper_detected", "tamper_detected"]
    assert unsealed(revoked).until == 5e9


async def test_a_grant_added_twice_is_logged_once(store: RunStore) -> None:
    await store.add_grant(grant(), log=[entry("grant_created")])
    await store.add_grant(dataclasses.replace(grant(), until=5e9), log=[entry("grant_created")])
    assert [e.kind for e in await store.list_log()] == ["grant_created"]
    [kept] = await store.list_grants()
    assert kept.until == 4e9 and record_ok(store.keys, kept)  # the first one stands
