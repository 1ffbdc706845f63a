"""The ready index on both backends: a paused run becomes claimable in the transaction of its
last decision (or once its requests expire), claimers take runs one at a time and never the
same one, leases can be listed and taken over, and waiters wake on decisions."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from store_support import FAR, Backend, decision, request, run

from afk.errors import ConfigurationError
from afk.store import _sqlite_ready
from afk.store.store import RunStore, VoteRecord

NOW = 1000.0


async def decide(store: RunStore, request_id: str, now: float = NOW) -> None:
    await store.decide(
        request_id, decision=decision(), decided_by="human", approver="alice",
        bound_digest="d" * 64, now=now,
    )  # fmt: skip


async def claim(store: RunStore, owner: str = "w1", now: float = NOW, **kw: Any) -> str | None:
    found = await store.claim_ready(owner=owner, ttl_s=30, now=now, **kw)
    if found is not None:
        assert (found.lease_owner, found.lease_expires_at) == (owner, now + 30)
    return found.run_id if found is not None else None


@pytest.fixture(params=["returning", "select-then-update"])
def claim_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """SQLite claims with UPDATE ... RETURNING, or (SQLite < 3.35) select then update."""
    if request.param != "returning":
        monkeypatch.setattr(_sqlite_ready, "RETURNING", False)
    name: str = request.param
    return name


async def test_ready_after_the_last_decision_not_before(store: RunStore, claim_path: str) -> None:
    await store.save_run(run(), requests=[request("q1"), request("q2")])
    assert await claim(store) is None
    await decide(store, "q1")
    assert await claim(store) is None  # q2 still pending
    assert await store.next_wake_at() == FAR
    await decide(store, "q2", now=NOW - 5)
    assert await store.next_wake_at() == NOW - 5
    assert await claim(store) == "run-1"
    leased = await store.load_run("run-1")
    assert leased is not None and (leased.lease_owner, leased.lease_expires_at) == ("w1", NOW + 30)


async def test_claim_run_on_each_claim_path(store: RunStore, claim_path: str) -> None:
    await store.save_run(run(), requests=[request("q1")])
    claimed = await store.claim_run("run-1", owner="w1", ttl_s=10, now=NOW)
    assert claimed.leased and claimed.run is not None and claimed.run.lease_owner == "w1"
    assert [r.request_id for r in claimed.requests] == ["q1"]
    held = await store.claim_run("run-1", owner="w2", ttl_s=10, now=NOW + 1)
    assert not held.leased and held.run is not None and held.run.lease_owner == "w1"
    missing = await store.claim_run("nope", owner="w1", ttl_s=10, now=NOW)
    assert (missing.run, missing.leased) == (None, False)


async def test_ready_once_every_pending_request_expired(store: RunStore) -> None:
    requests = [request("q1", expires_at=500.0), request("q2", expires_at=700.0)]
    await store.save_run(run(), requests=requests)
    assert await store.next_wake_at() == 700.0
    assert await claim(store, now=600.0) is None  # q2 still in time
    assert await claim(store, now=700.0) is None  # exactly at its deadline: still in time
    assert await claim(store, now=700.001) == "run-1"


async def test_a_paused_run_without_requests_is_ready_from_its_save(store: RunStore) -> None:
    await store.save_run(run("a", updated_at=300.0))
    await store.save_run(run("b", updated_at=200.0))
    assert await claim(store, now=150.0) is None
    assert await store.next_wake_at() == 200.0
    assert [await claim(store, now=400.0) for _ in range(3)] == ["b", "a", None]  # oldest first


async def test_only_paused_runs_are_ready(store: RunStore) -> None:
    for i, status in enumerate(["running", "completed", "failed", "paused"]):
        await store.save_run(run(f"r{i}", status=status))
    assert await store.ready_runs(now=NOW) == [await store.load_run("r3")]
    await store.save_run(run("r3", status="completed", updated_at=200.0))
    assert await claim(store) is None
    assert await store.next_wake_at() is None
    assert await store.ready_runs(now=NOW) == []


async def test_a_run_saved_again_keeps_its_decided_requests_decided(store: RunStore) -> None:
    await store.save_run(run(), requests=[request("q1")])
    await decide(store, "q1")
    # Re-saving passes the request again (insert-once): the stored, decided row counts.
    await store.save_run(run(updated_at=900.0), requests=[request("q1"), request("q2")])
    assert await claim(store) is None
    await decide(store, "q2")
    assert await claim(store) == "run-1"


async def test_a_vote_that_decides_makes_the_run_ready(store: RunStore) -> None:
    await store.save_run(run(), requests=[request("q1")])

    def vote(approver: str) -> VoteRecord:
        return VoteRecord(
            request_id="q1", approver=approver, kind="allow", decision=decision("allow", approver),
            bound_digest="d" * 64, at=NOW,
        )  # fmt: skip

    await store.add_vote(vote("alice"), decides=lambda votes: len(votes) >= 2, now=NOW)
    assert await claim(store) is None
    stored, counted = await store.add_vote(
        vote("bob"), decides=lambda votes: len(votes) >= 2, now=NOW
    )
    assert (stored.status, counted) == ("decided", 2)
    assert await claim(store) == "run-1"


async def test_a_claimed_run_is_not_claimable_until_its_lease_expires(store: RunStore) -> None:
    await store.save_run(run())
    assert await claim(store, "w1") == "run-1"
    assert await claim(store, "w1") is None  # not even by its own owner: it is being resumed
    assert await claim(store, "w2", now=NOW + 30) is None  # lease live until NOW + 30
    assert await store.ready_runs(now=NOW + 30) == []
    assert await claim(store, "w2", now=NOW + 30.5) == "run-1"
    await store.release_lease("run-1", owner="w2")
    assert await claim(store, "w3", now=NOW + 31) == "run-1"


async def test_agents_filter(store: RunStore, claim_path: str) -> None:
    await store.save_run(run("dba-run", agent_name="dba", updated_at=100.0))
    await store.save_run(run("ops-run", agent_name="ops", updated_at=200.0))
    assert await claim(store, agents=[]) is None
    assert await claim(store, agents=["ops", "billing"]) == "ops-run"
    assert await claim(store, agents=["ops"]) is None
    assert await claim(store, agents=("dba",)) == "dba-run"
    with pytest.raises(ConfigurationError, match="agents must be a sequence"):
        await store.claim_ready(owner="w1", ttl_s=30, now=NOW, agents="dba")
    with pytest.raises(ConfigurationError, match="ttl_s must be"):
        await store.claim_ready(owner="w1", ttl_s=0, now=NOW)


async def test_concurrent_claimers_never_get_the_same_run(
    store: RunStore, backend: Backend
) -> None:
    ids = {f"run-{i:02d}" for i in range(40)}
    for run_id in sorted(ids):
        await store.save_run(run(run_id))
    other = backend.open()

    async def claimer(on: RunStore, name: str) -> list[str]:
        got = []
        while (found := await claim(on, name)) is not None:
            got.append(found)
        return got

    try:
        claims = await asyncio.gather(
            *(claimer(on, f"w{i}") for i in range(6) for on in (store, other))
        )
    finally:
        await other.close()
    everything = [run_id for got in claims for run_id in got]
    assert sorted(everything) == sorted(ids)


async def test_held_leases(store: RunStore) -> None:
    for i, ttl in enumerate([50.0, 10.0, 30.0]):
        await store.save_run(run(f"r{i}"))
        assert await store.acquire_lease(f"r{i}", owner=f"w{i}", ttl_s=ttl, now=NOW)
    await store.save_run(run("free"))
    held = await store.held_leases(now=NOW + 10)  # r1's lease ends at NOW + 10: still live
    assert [(r.run_id, r.lease_owner) for r in held] == [("r1", "w1"), ("r2", "w2"), ("r0", "w0")]
    assert [r.run_id for r in await store.held_leases(now=NOW + 11)] == ["r2", "r0"]
    assert [r.run_id for r in await store.held_leases(now=NOW, limit=1)] == ["r1"]
    await store.release_lease("r2", owner="w2")
    assert [r.run_id for r in await store.held_leases(now=NOW)] == ["r1", "r0"]
    with pytest.raises(ConfigurationError, match="limit"):
        await store.held_leases(now=NOW, limit=0)


async def test_take_over_a_dead_owners_lease(store: RunStore) -> None:
    await store.save_run(run())
    assert await store.acquire_lease("run-1", owner="dead", ttl_s=30, now=NOW)
    args: dict[str, Any] = {"owner": "me", "ttl_s": 60, "now": NOW + 1}
    assert not await store.take_over_lease("run-1", from_owner="someone-else", **args)
    assert not await store.take_over_lease("nope", from_owner="dead", **args)
    assert await store.take_over_lease("run-1", from_owner="dead", **args)
    moved = await store.load_run("run-1")
    assert moved is not None and (moved.lease_owner, moved.lease_expires_at) == ("me", NOW + 61)
    assert not await store.acquire_lease("run-1", owner="dead", ttl_s=30, now=NOW + 2)
    assert not await store.take_over_lease("run-1", from_owner="dead", **args)  # moved once
    await store.release_lease("run-1", owner="me")
    assert not await store.take_over_lease("run-1", from_owner="me", **args)  # no lease left


# -- waking --------------------------------------------------------------------------------
async def _waited(store: RunStore, timeout_s: float) -> float:
    start = time.monotonic()
    await store.wait_for_work(timeout_s=timeout_s)
    return time.monotonic() - start


async def test_a_decision_by_another_connection_wakes_a_waiter(
    store: RunStore, backend: Backend
) -> None:
    await store.save_run(run(), requests=[request("q1")])
    other = backend.open()
    try:
        assert await claim(store) is None
        await store.wait_for_work(timeout_s=0.05)  # listening now, wherever that is needed
        assert await claim(store) is None
        waiter = asyncio.create_task(_waited(store, 10))
        await asyncio.sleep(0.3)
        assert not waiter.done()
        await decide(other, "q1")
        assert await asyncio.wait_for(waiter, 5) < 1.5
        assert await claim(store) == "run-1"
    finally:
        await other.close()


async def test_a_decision_through_the_same_store_wakes_a_waiter(store: RunStore) -> None:
    await store.save_run(run(), requests=[request("q1")])
    await store.wait_for_work(timeout_s=0.05)
    assert await claim(store) is None
    waiter = asyncio.create_task(_waited(store, 10))
    await asyncio.sleep(0.2)
    await decide(store, "q1")
    assert await asyncio.wait_for(waiter, 5) < 1.0


async def test_a_ready_paused_run_saved_wakes_a_waiter(store: RunStore, backend: Backend) -> None:
    other = backend.open()
    try:
        await store.wait_for_work(timeout_s=0.05)
        assert await claim(store) is None
        waiter = asyncio.create_task(_waited(store, 10))
        await asyncio.sleep(0.2)
        await other.save_run(run(updated_at=time.time()))
        assert await asyncio.wait_for(waiter, 5) < 1.0
    finally:
        await other.close()


async def test_a_decision_before_the_wait_is_not_missed(store: RunStore, backend: Backend) -> None:
    await store.save_run(run(), requests=[request("q1")])
    other = backend.open()
    try:
        await store.wait_for_work(timeout_s=0.05)
        assert await claim(store) is None
        await decide(other, "q1")  # after the claim found nothing, before the wait
        await asyncio.sleep(0.2)  # let any notification arrive before waiting
        assert await _waited(store, 5) < 0.5
    finally:
        await other.close()


async def test_a_later_query_does_not_hide_a_decision_from_the_wait(
    store: RunStore, backend: Backend
) -> None:
    # A worker's pass: claim (nothing), then next_wake_at for its timeout, then wait. A
    # decision between the claim and next_wake_at must still end the wait.
    await store.save_run(run(), requests=[request("q1")])
    other = backend.open()
    try:
        await store.wait_for_work(timeout_s=0.05)
        assert await claim(store) is None
        await decide(other, "q1")
        await asyncio.sleep(0.2)  # let any notification arrive first
        assert await store.next_wake_at() == NOW
        assert await _waited(store, 5) < 0.5
        assert 0.35 < await _waited(store, 0.4) < 1.5  # consumed: the next wait waits
    finally:
        await other.close()


async def test_an_idle_wait_lasts_its_timeout(store: RunStore) -> None:
    await store.save_run(run(), requests=[request("q1")])
    await store.wait_for_work(timeout_s=0.05)
    assert await claim(store) is None
    assert 0.35 < await _waited(store, 0.4) < 1.5
    assert 0.35 < await _waited(store, 0.4) < 1.5  # the last wait's return is no wake-up
    assert await _waited(store, 0) < 0.5


# -- migration -----------------------------------------------------------------------------
async def test_a_v3_store_gets_its_ready_index(store: RunStore, backend: Backend) -> None:
    await store.save_run(run("decided"), requests=[request("q1", "decided")])
    await decide(store, "q1", now=300.0)
    await store.save_run(run("waiting"), requests=[request("q2", "waiting", expires_at=800.0)])
    await store.save_run(run("fresh", updated_at=200.0))
    await store.save_run(run("done", status="completed"))
    await store.close()
    # Back to what a v3 store looked like: no wake_at, no ready index.
    for sql in (
        f"DROP INDEX {backend.table('runs_ready') if backend.schema else 'runs_ready'}",
        f"ALTER TABLE {backend.table('runs')} DROP COLUMN wake_at",
        f"UPDATE {backend.table('meta')} SET value = '3' WHERE key = 'store_schema_version'",
    ):
        await backend.execute(sql)
    upgraded = backend.open()
    try:
        await upgraded.setup()
        assert await upgraded.next_wake_at() == 100.0  # the decided run: ready since its save
        ready = await upgraded.ready_runs(now=NOW)
        assert [r.run_id for r in ready] == ["decided", "fresh", "waiting"]
        assert [r.run_id for r in await upgraded.ready_runs(now=700.0)] == ["decided", "fresh"]
    finally:
        await upgraded.close()


async def test_two_decisions_on_one_run_at_once_leave_it_ready(
    store: RunStore, backend: Backend
) -> None:
    """Each decision recomputes wake_at from the run's pending requests; taken at once (two
    connections), neither may count the other's request as still pending."""
    other = backend.open()
    try:
        for i in range(10):
            run_id, first, second = f"r{i}", f"q{i}a", f"q{i}b"
            await store.save_run(
                run(run_id),
                requests=[request(first, run_id, expires_at=FAR),
                          request(second, run_id, expires_at=FAR)],
            )  # fmt: skip
            await asyncio.gather(decide(store, first), decide(other, second))
            ready = await store.ready_runs(now=NOW + 1, limit=100)
            assert run_id in [r.run_id for r in ready], f"run {run_id} left waiting"
    finally:
        await other.close()
