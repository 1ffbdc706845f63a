"""The RunStore contract, run against every backend (see conftest.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from typing import Any

import pytest
from store_support import (
    FAR,
    Backend,
    decision,
    entry,
    event,
    execution,
    request,
    run,
    unsealed,
)

from afk.errors import (
    AlreadyDecidedError,
    ConfigurationError,
    RequestExpiredError,
    UnknownRequestError,
)
from afk.store import StoreError
from afk.store.store import GrantRecord, RequestRecord, RunStore


async def decide(store: RunStore, request_id: str, **overrides: Any) -> RequestRecord:
    kwargs: dict[str, Any] = {
        "decision": decision(),
        "decided_by": "human",
        "approver": "alice",
        "bound_digest": "d" * 64,
        "now": 150.0,
    }
    return await store.decide(request_id, **(kwargs | overrides))


# -- runs ----------------------------------------------------------------------------------
async def test_save_and_load_run(store: RunStore) -> None:
    record = run()
    await store.save_run(record)
    assert unsealed(await store.load_run("run-1")) == record
    assert await store.load_run("nope") is None


async def test_save_run_upserts_but_keeps_created_at_and_lease(store: RunStore) -> None:
    await store.save_run(run())
    assert await store.acquire_lease("run-1", owner="w1", ttl_s=60, now=100.0)
    await store.save_run(run(status="completed", created_at=999.0, updated_at=300.0))
    loaded = await store.load_run("run-1")
    assert loaded is not None
    assert (loaded.status, loaded.updated_at, loaded.created_at) == ("completed", 300.0, 100.0)
    assert (loaded.lease_owner, loaded.lease_expires_at) == ("w1", 160.0)


async def test_list_runs_newest_first(store: RunStore) -> None:
    for i, status in enumerate(["paused", "completed", "paused"]):
        await store.save_run(run(f"run-{i}", status=status, updated_at=100.0 + i))
    assert [r.run_id for r in await store.list_runs()] == ["run-2", "run-1", "run-0"]
    assert [r.run_id for r in await store.list_runs(status="paused")] == ["run-2", "run-0"]
    assert [r.run_id for r in await store.list_runs(limit=1)] == ["run-2"]
    assert await store.list_runs(status="failed") == []


async def test_bursts_of_concurrent_calls(store: RunStore) -> None:
    await asyncio.gather(
        *(store.save_run(run(f"r{i}"), requests=[request(f"q{i}", f"r{i}")]) for i in range(40))
    )
    await asyncio.gather(*(decide(store, f"q{i}") for i in range(40)))
    assert len(await store.list_runs()) == 40
    assert await store.list_requests() == []


async def test_one_runs_decisions_saves_and_executions_at_once(store: RunStore) -> None:
    # Every writer of one run at the same time, each with a ledger entry: on Postgres they
    # take the same locks in the same order (rows first, the log's last), so none deadlocks
    # and the chain stays whole.
    requests = [request(f"q{i}") for i in range(8)]
    await store.save_run(run(), requests=requests, log=[entry("request_opened")])
    writes = [decide(store, f"q{i}", log=[entry("decided", request_id=f"q{i}")]) for i in range(8)]
    writes += [store.save_run(run(updated_at=200.0 + i), log=[entry("saved")]) for i in range(8)]
    # and a new run's first saves: the first inserts the row the others then wait for
    writes += [store.save_run(run("run-2"), log=[entry("saved", "run-2")]) for _ in range(8)]
    writes += [
        store.begin_execution(execution(f"k{i}"), log=[entry("execution_started")])
        for i in range(8)
    ]
    await asyncio.gather(*writes)
    await asyncio.gather(
        *(
            store.finish_execution(f"k{i}", result="{}", now=300.0, log=[entry("done")])
            for i in range(8)
        )
    )
    log = await store.list_log()
    assert len(log) == 41 and [e.id for e in log] == list(range(1, 42))
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(log))
    assert {r.status for r in await store.list_requests(status=None)} == {"decided"}


# -- requests ------------------------------------------------------------------------------
async def test_requests_are_inserted_once(store: RunStore) -> None:
    await store.save_run(run(), requests=[request("q1")])
    await decide(store, "q1")
    await store.save_run(run(updated_at=200.0), requests=[request("q1")])
    stored = await store.get_request("q1")
    assert stored is not None
    assert (stored.status, stored.decision) == ("decided", decision())
    assert await store.get_request("nope") is None


async def test_list_requests(store: RunStore) -> None:
    await store.save_run(run("a"), requests=[request("a2", "a", created_at=2.0)])
    await store.save_run(run("a"), requests=[request("a1", "a", created_at=1.0)])
    await store.save_run(run("b"), requests=[request("b1", "b", created_at=3.0)])
    await decide(store, "b1")
    assert [r.request_id for r in await store.list_requests()] == ["a1", "a2"]
    assert [r.request_id for r in await store.list_requests(run_id="b")] == []
    assert [r.request_id for r in await store.list_requests(status=None)] == ["a1", "a2", "b1"]
    decided = await store.list_requests(run_id="b", status="decided")
    assert [r.request_id for r in decided] == ["b1"]


# -- decide --------------------------------------------------------------------------------
async def test_decide_stores_decision_and_log_in_one_go(store: RunStore) -> None:
    await store.save_run(run(), requests=[request("q1")], log=[entry("request_opened")])
    new = await decide(store, "q1", log=[entry("decided", request_id="q1")])
    stored = await store.get_request("q1")
    assert new == stored
    assert stored is not None
    assert stored.status == "decided"
    assert (stored.decided_by, stored.approver, stored.decided_at) == ("human", "alice", 150.0)
    assert stored.bound_digest == "d" * 64
    log = await store.list_log()
    assert [(e.kind, e.request_id) for e in log] == [("request_opened", None), ("decided", "q1")]
    assert log[0].id < log[1].id
    assert all(time.time() - 60 < e.at <= time.time() for e in log)


async def test_decide_unknown(store: RunStore) -> None:
    with pytest.raises(UnknownRequestError) as info:
        await decide(store, "ghost", log=[entry("decided")])
    assert info.value.request_id == "ghost"
    assert await store.list_log() == []


async def test_second_decision_is_refused_and_writes_nothing(store: RunStore) -> None:
    await store.save_run(run(), requests=[request("q1")])
    await decide(store, "q1")
    first = await store.get_request("q1")
    with pytest.raises(AlreadyDecidedError) as info:
        await decide(store, "q1", decision=decision("deny", "bob"), log=[entry("decided")])
    assert info.value.first_decision == decision()
    assert info.value.request_id == "q1"
    assert await store.get_request("q1") == first
    assert await store.list_log() == []


async def test_decide_after_deadline_leaves_request_pending(store: RunStore) -> None:
    await store.save_run(run(), requests=[request("q1", expires_at=140.0)])
    with pytest.raises(RequestExpiredError):
        await decide(store, "q1", now=140.5, log=[entry("decided")])
    stored = await store.get_request("q1")
    assert stored is not None
    assert (stored.status, stored.decision) == ("pending", None)
    assert await store.list_log() == []
    # Exactly at the deadline is still in time.
    await decide(store, "q1", now=140.0)


async def test_timeout_fallback_expires_the_request(store: RunStore) -> None:
    await store.save_run(run(), requests=[request("q1", expires_at=140.0)])
    fallback = decision("deny", "fallback")
    new = await decide(
        store, "q1", decision=fallback, decided_by="timeout", approver=None, now=200.0,
        honour_expiry=False, log=[entry("expired", request_id="q1")],
    )  # fmt: skip
    assert await store.get_request("q1") == new
    assert (new.status, new.decision, new.decided_by) == ("expired", fallback, "timeout")
    assert (new.approver, new.decided_at) == (None, 200.0)
    for by in ("timeout", "human"):
        with pytest.raises(RequestExpiredError):
            await decide(store, "q1", decided_by=by, now=201.0, honour_expiry=False)
    assert [e.kind for e in await store.list_log()] == ["expired"]


async def test_log_refusal(store: RunStore) -> None:
    await store.log_refusal(entry("refused", request_id="q1"))
    await store.log_refusal(entry("refused", request_id="q2"))
    log = await store.list_log()
    assert [e.request_id for e in log] == ["q1", "q2"]
    assert [e.request_id for e in await store.list_log(after_id=log[0].id)] == ["q2"]
    assert [e.request_id for e in await store.list_log(limit=1)] == ["q1"]


# -- executions ----------------------------------------------------------------------------
async def test_execution_runs_once(store: RunStore) -> None:
    created, first = await store.begin_execution(execution("q1"), log=[entry("started")])
    assert created and unsealed(first) == execution("q1")
    again = await store.begin_execution(execution("q1", digest="e" * 64), log=[entry("x")])
    assert again == (False, first)
    assert await store.get_execution("q1") == first
    await store.finish_execution("q1", result='{"ok":true}', now=210.0, log=[entry("done")])
    done = dataclasses.replace(first, status="done", result='{"ok":true}', finished_at=210.0)
    assert unsealed(await store.get_execution("q1")) == unsealed(done)
    assert await store.begin_execution(first) == (False, await store.get_execution("q1"))
    assert [e.kind for e in await store.list_log()] == ["started", "done"]
    assert await store.get_execution("nope") is None


async def test_finish_execution_refuses_unknown_or_finished(store: RunStore) -> None:
    with pytest.raises(StoreError):
        await store.finish_execution("nope", result="1", now=1.0)
    await store.begin_execution(execution("k"))
    await store.finish_execution("k", result="1", now=1.0)
    with pytest.raises(StoreError):
        await store.finish_execution("k", result="2", now=2.0, log=[entry("done")])
    stored = await store.get_execution("k")
    assert stored is not None and stored.result == "1"
    assert await store.list_log() == []


# -- events --------------------------------------------------------------------------------
async def test_events_append_and_list(store: RunStore) -> None:
    await store.save_run(run(), events=[event("run-1", 1), event("run-1", 2)])
    await store.save_run(run("other"), events=[event("other", 1)])
    await store.save_run(run(), events=[event("run-1", 3)])
    assert [e.seq for e in await store.list_events("run-1")] == [1, 2, 3]
    assert await store.list_events("run-1", after_seq=2) == [event("run-1", 3)]
    assert await store.list_events("nope") == []


async def test_duplicate_event_fails_the_whole_save(store: RunStore) -> None:
    await store.save_run(run(), events=[event("run-1", 1)])
    with pytest.raises(StoreError):
        await store.save_run(
            run(status="completed", updated_at=200.0),
            requests=[request("q9")],
            events=[event("run-1", 2), event("run-1", 1)],
            log=[entry("x")],
        )
    loaded = await store.load_run("run-1")
    assert loaded is not None and loaded.status == "paused"
    assert [e.seq for e in await store.list_events("run-1")] == [1]
    assert await store.get_request("q9") is None
    assert await store.list_log() == []


# -- leases --------------------------------------------------------------------------------
async def test_leases(store: RunStore) -> None:
    await store.save_run(run())
    assert not await store.acquire_lease("nope", owner="w1", ttl_s=10, now=100.0)
    assert await store.acquire_lease("run-1", owner="w1", ttl_s=10, now=100.0)
    assert await store.acquire_lease("run-1", owner="w1", ttl_s=10, now=105.0)  # renew
    assert not await store.acquire_lease("run-1", owner="w2", ttl_s=10, now=114.0)
    leased = await store.load_run("run-1")
    assert leased is not None and (leased.lease_owner, leased.lease_expires_at) == ("w1", 115.0)
    assert await store.acquire_lease("run-1", owner="w2", ttl_s=10, now=115.5)  # expired
    await store.release_lease("run-1", owner="w1")  # not the holder: no effect
    assert not await store.acquire_lease("run-1", owner="w1", ttl_s=10, now=116.0)
    await store.release_lease("run-1", owner="w2")
    freed = await store.load_run("run-1")
    assert freed is not None and (freed.lease_owner, freed.lease_expires_at) == (None, None)
    assert await store.acquire_lease("run-1", owner="w1", ttl_s=10, now=116.0)


async def test_claim_run_takes_the_lease_then_reads_the_run_and_its_requests(
    store: RunStore,
) -> None:
    await store.save_run(run(), requests=[request("q1"), request("q2")])
    missing = await store.claim_run("nope", owner="w1", ttl_s=10, now=100.0)
    assert (missing.run, missing.leased, list(missing.requests)) == (None, False, [])
    claimed = await store.claim_run("run-1", owner="w1", ttl_s=10, now=100.0)
    assert claimed.leased and claimed.run is not None and claimed.next_cursor is None
    assert (claimed.run.lease_owner, claimed.run.lease_expires_at) == ("w1", 110.0)
    assert [r.request_id for r in claimed.requests] == ["q1", "q2"]
    held = await store.claim_run("run-1", owner="w2", ttl_s=10, now=105.0)
    assert held.run is not None and not held.leased and list(held.requests) == []
    assert held.run.lease_owner == "w1"  # the holder's lease is untouched
    late = await store.claim_run("run-1", owner="w2", ttl_s=10, now=110.5)  # expired
    assert late.leased and late.run is not None and late.run.lease_owner == "w2"


async def test_a_save_can_hand_back_its_holders_lease_in_the_same_transaction(
    store: RunStore,
) -> None:
    await store.save_run(run(), requests=[request("q1")])
    assert await store.acquire_lease("run-1", owner="w1", ttl_s=10, now=100.0)
    await store.save_run(run(status="completed", updated_at=101.0), release="w2")  # not its
    kept = await store.load_run("run-1")
    assert kept is not None and (kept.status, kept.lease_owner) == ("completed", "w1")
    await store.save_run(run(status="completed", updated_at=102.0), release="w1")
    freed = await store.load_run("run-1")
    assert freed is not None and (freed.lease_owner, freed.lease_expires_at) == (None, None)
    assert freed.updated_at == 102.0
    assert await store.held_leases(now=100.0) == []


async def test_the_grants_that_may_cover_a_call_are_found_by_tool_and_scope_value(
    store: RunStore,
) -> None:
    def grant(grant_id: str, tool: str, value: str, **kw: Any) -> GrantRecord:
        fields: dict[str, Any] = {
            "grant_id": grant_id, "tool_name": tool, "scope": "agent", "scope_value": value,
            "when": "{}", "until": 500.0, "created_by": "alice", "created_at": 100.0,
        }  # fmt: skip
        return GrantRecord(**(fields | kw))

    for g in [
        grant("g-later", "drop_table", "dba", created_at=120.0),
        grant("g-first", "drop_table", "t-1", scope="thread"),
        grant("g-other-tool", "send_email", "dba"),
        grant("g-other-agent", "drop_table", "ops"),
        grant("g-expired", "drop_table", "dba", until=150.0),
        grant("g-revoked", "drop_table", "dba"),
    ]:
        await store.add_grant(g)
    await store.revoke_grant("g-revoked", by="bob", now=110.0)
    found = await store.active_grants("drop_table", scope_values=["dba", "t-1"], now=200.0)
    assert [g.grant_id for g in found] == ["g-first", "g-later"]  # oldest first
    assert await store.active_grants("drop_table", scope_values=[], now=200.0) == []
    one = await store.get_grant("g-other-tool")
    assert one is not None and one.tool_name == "send_email"
    assert await store.get_grant("nope") is None


async def test_grants_are_listed_a_page_at_a_time(store: RunStore) -> None:
    for i in range(5):
        await store.add_grant(
            GrantRecord(
                grant_id=f"g{i}", tool_name="drop_table", scope="agent", scope_value="dba",
                when="{}", until=500.0 if i != 3 else 150.0, created_by="alice",
                created_at=100.0 + (i % 2),  # ties on created_at: grant_id breaks them
            )
        )  # fmt: skip
    seen, cursor = [], None
    while True:
        page = await store.list_grants(limit=2, cursor=cursor)
        assert len(page) <= 2
        seen += [g.grant_id for g in page]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ["g0", "g2", "g4", "g1", "g3"]  # by created_at, then grant_id
    active = await store.list_grants(active_at=200.0, limit=10)
    assert [g.grant_id for g in active] == ["g0", "g2", "g4", "g1"] and active.next_cursor is None
    first = await store.list_grants(limit=1)
    with pytest.raises(ConfigurationError, match="another listing or other filters"):
        await store.list_grants(active_at=200.0, limit=1, cursor=first.next_cursor)
    with pytest.raises(ConfigurationError, match="limit must be a whole number from 1 to 1000"):
        await store.list_grants(limit=0)
    assert len(await store.list_grants()) == 5  # no limit, no cursor: every grant


# -- readiness -----------------------------------------------------------------------------
async def test_ready_runs(store: RunStore) -> None:
    now = 1000.0
    cases = {  # run id -> (status, requests, lease); ready ones marked in `expected`
        "no-requests": ("paused", [], None),
        "all-expired": ("paused", [(990.0, "pending"), (995.0, "pending")], None),
        "one-live": ("paused", [(990.0, "pending"), (FAR, "pending")], None),
        "decided": ("paused", [(FAR, "decided")], None),
        "waiting": ("paused", [(FAR, "pending")], None),
        "deadline-now": ("paused", [(now, "pending")], None),
        "running": ("running", [], None),
        "leased": ("paused", [], ("w1", 1010.0)),
        "lease-expired": ("paused", [], ("w1", 999.0)),
    }
    for i, (run_id, (status, reqs, lease)) in enumerate(cases.items()):
        requests = [
            request(f"{run_id}-{j}", run_id, expires_at=exp) for j, (exp, _) in enumerate(reqs)
        ]
        await store.save_run(run(run_id, status=status, updated_at=100.0 + i), requests=requests)
        for req, (_, req_status) in zip(requests, reqs, strict=True):
            if req_status == "decided":
                await decide(store, req.request_id, now=now)
        if lease:
            await store.acquire_lease(run_id, owner=lease[0], ttl_s=lease[1] - 900.0, now=900.0)
    # Oldest ready first: saved ready at 100 and 108, expired just after 995, decided at 1000.
    expected = ["no-requests", "lease-expired", "all-expired", "decided"]
    assert [r.run_id for r in await store.ready_runs(now=now)] == expected
    assert [r.run_id for r in await store.ready_runs(now=now, limit=2)] == expected[:2]


# -- waiting for decisions -----------------------------------------------------------------
async def test_wait_wakes_when_another_connection_decides(
    store: RunStore, backend: Backend
) -> None:
    await store.save_run(run(), requests=[request("q1"), request("q2")])
    other = backend.open()

    async def decide_later() -> None:
        await asyncio.sleep(0.3)
        await decide(other, "q2")

    try:
        task = asyncio.create_task(decide_later())
        start = time.monotonic()
        await store.wait_for_decisions(["q1", "q2"], timeout_s=10)
        assert time.monotonic() - start < 1.3
        await task
    finally:
        await other.close()


async def test_wait_returns_on_timeout_or_at_once_when_decided(store: RunStore) -> None:
    await store.save_run(run(), requests=[request("q1"), request("q2")])
    start = time.monotonic()
    await store.wait_for_decisions(["q1"], timeout_s=0.4)
    assert 0.35 < time.monotonic() - start < 1.5
    await decide(store, "q2")
    start = time.monotonic()
    await store.wait_for_decisions(["q1", "q2"], timeout_s=10)
    assert time.monotonic() - start < 0.5


async def test_each_waiter_wakes_only_for_its_own_requests(store: RunStore) -> None:
    await store.save_run(run(), requests=[request(f"q{i}") for i in range(4)])

    async def waited(ids: list[str], timeout_s: float) -> float:
        start = time.monotonic()
        await store.wait_for_decisions(ids, timeout_s=timeout_s)
        return time.monotonic() - start

    waits = [
        asyncio.create_task(waited(ids, 1.2)) for ids in (["q0"], ["q0", "q1"], ["q2"], ["q3"])
    ]
    await asyncio.sleep(0.2)
    await decide(store, "q0")
    fast_a, fast_b, slow_a, slow_b = await asyncio.gather(*waits)
    assert max(fast_a, fast_b) < 0.9
    assert min(slow_a, slow_b) > 1.1


# -- setup ---------------------------------------------------------------------------------
async def test_setup_is_idempotent_even_when_concurrent(backend: Backend) -> None:
    stores = [backend.open() for _ in range(3)]
    try:
        await asyncio.gather(*(s.setup() for s in stores))  # first setup, all at once
        await stores[0].save_run(run(), requests=[request("q1")])
        await asyncio.gather(*(s.setup() for s in stores))
        assert unsealed(await stores[2].load_run("run-1")) == run()
        assert [r.request_id for r in await stores[1].list_requests()] == ["q1"]
    finally:
        for opened in stores:
            await opened.close()


async def test_newer_schema_version_is_refused(store: RunStore, backend: Backend) -> None:
    from afk.store._common import STORE_SCHEMA_VERSION as CURRENT

    meta = backend.table("meta")
    sql = f"UPDATE {meta} SET value = '{CURRENT + 1}' WHERE key = 'store_schema_version'"
    await backend.execute(sql)
    newer = backend.open()
    try:
        expected = rf"store_schema_version {CURRENT + 1}.*newer than the {CURRENT}"
        with pytest.raises(StoreError, match=expected):
            await newer.setup()
    finally:
        await newer.close()
