"""External mode: a gated run is persisted and returns paused; any process resumes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from billing_app import billing_agent, policy
from durable_support import lines, track

from afk.agents import ApprovalDecision
from afk.core import Runner, RunnerConfig
from afk.core._snapshot import SCHEMA_VERSION
from afk.errors import (
    AlreadyDecidedError,
    ConfigurationError,
    InvalidDecisionError,
    RequestExpiredError,
    RunNotFoundError,
    RunNotResumableError,
    UnknownRequestError,
)
from afk.store import open_store


def external(store_url: str, **config: float) -> Runner:
    mode = RunnerConfig(interaction_mode="external", **config)  # type: ignore[arg-type]
    return track(Runner(policy, config=mode, store=store_url))


async def test_a_gated_run_pauses_with_its_request_and_nothing_runs(
    store_url: str, side_effects: Path
) -> None:
    result = await external(store_url).run(billing_agent(), user_message="order-1")
    assert result.state == "paused"
    [request] = result.pending_requests
    assert (request.tool_name, request.tool_args) == ("refund", {"order": "order-1", "amount": 250})
    assert result.events[-1].type == "run_paused"
    assert not any(e.type == "run_completed" for e in result.events)
    assert lines(side_effects) == []
    pending = await external(store_url).pending_requests()
    assert [p.request_id for p in pending] == [request.request_id]


async def test_resolve_then_resume_elsewhere_runs_the_tool_exactly_once(
    store_url: str, side_effects: Path
) -> None:
    paused = await external(store_url).run(billing_agent(), user_message="order-2")
    request_id = paused.pending_requests[0].request_id
    await external(store_url).resolve(request_id, ApprovalDecision(kind="allow", approver="alice"))
    [done] = await external(store_url).resume_ready([billing_agent()])
    assert done.state == "completed"
    assert done.final_text == "order-2: refunded 250 on order-2"
    assert lines(side_effects) == [f"order-2 250 {request_id}"]  # idempotency key = request id
    resolved = next(e for e in done.events if e.type == "approval_resolved")
    assert (resolved.decided_by, resolved.approver) == ("human", "alice")  # type: ignore[union-attr]
    assert await external(store_url).resume_ready([billing_agent()]) == []
    with pytest.raises(RunNotResumableError):
        await external(store_url).resume(done.run_id, billing_agent())
    assert lines(side_effects) == [f"order-2 250 {request_id}"]


async def test_a_resumed_run_that_ends_holds_no_lease(store_url: str, side_effects: Path) -> None:
    # Its last save hands the lease back in the same transaction (save_run(release=)).
    runner = external(store_url)
    paused = await runner.run(billing_agent(), user_message="order-9")
    await runner.resolve(paused.pending_requests[0].request_id, ApprovalDecision(kind="allow"))
    done = await runner.resume(paused.run_id, billing_agent())
    assert done.state == "completed"
    assert runner.store is not None
    record = await runner.store.load_run(paused.run_id)
    assert record is not None and (record.status, record.lease_owner) == ("completed", None)
    assert record.lease_expires_at is None
    assert await runner.store.held_leases(now=0.0) == []


async def test_a_second_decision_is_refused_and_the_first_stands(
    store_url: str, side_effects: Path
) -> None:
    paused = await external(store_url).run(billing_agent(), user_message="order-3")
    request_id = paused.pending_requests[0].request_id
    runner = external(store_url)
    await runner.resolve(request_id, ApprovalDecision(kind="deny", reason="not this one"))
    with pytest.raises(AlreadyDecidedError) as refused:
        await runner.resolve(request_id, ApprovalDecision(kind="allow"))
    assert refused.value.first_decision == ApprovalDecision(kind="deny", reason="not this one")
    [done] = await runner.resume_ready([billing_agent()])
    assert lines(side_effects) == []
    assert "Tool call denied: not this one" in (done.final_text or "")


async def test_unknown_expired_and_malformed_resolutions_are_refused(store_url: str) -> None:
    runner = external(store_url, approval_timeout_s=0.2)
    with pytest.raises(UnknownRequestError):
        await runner.resolve("req_nope", ApprovalDecision(kind="allow"))
    paused = await runner.run(billing_agent(), user_message="order-4")
    request_id = paused.pending_requests[0].request_id
    with pytest.raises(InvalidDecisionError, match="amount"):
        await runner.resolve(
            request_id, ApprovalDecision(kind="allow", updated_tool_args={"order": "x"})
        )
    import asyncio

    await asyncio.sleep(0.3)
    with pytest.raises(RequestExpiredError):
        await runner.resolve(request_id, ApprovalDecision(kind="allow"))


async def test_expiry_across_downtime_applies_the_fallback_exactly_once(
    store_url: str, side_effects: Path
) -> None:
    import asyncio

    paused = await external(store_url, approval_timeout_s=0.2).run(
        billing_agent(), user_message="order-5"
    )
    request_id = paused.pending_requests[0].request_id
    await asyncio.sleep(0.3)  # nobody is running while the deadline passes
    [done] = await external(store_url).resume_ready([billing_agent()])
    resolved = [e for e in done.events if e.type == "approval_resolved"]
    assert [(e.decided_by, e.decision.kind) for e in resolved] == [("timeout", "deny")]  # type: ignore[union-attr]
    assert lines(side_effects) == []
    assert done.state == "completed"
    store = external(store_url).store
    assert store is not None
    record = await store.get_request(request_id)
    assert record is not None and (record.status, record.decided_by) == ("expired", "timeout")
    with pytest.raises(RequestExpiredError):
        await external(store_url).resolve(request_id, ApprovalDecision(kind="allow"))


async def test_edited_arguments_are_what_executes(store_url: str, side_effects: Path) -> None:
    paused = await external(store_url).run(billing_agent(), user_message="order-6")
    request_id = paused.pending_requests[0].request_id
    edit = {"order": "order-6", "amount": 100}
    await external(store_url).resolve(
        request_id, ApprovalDecision(kind="allow", updated_tool_args=edit)
    )
    [done] = await external(store_url).resume_ready([billing_agent()])
    assert lines(side_effects) == [f"order-6 100 {request_id}"]
    assert done.tool_executions[0].args == edit


async def test_resume_without_decision_stays_paused_and_unknown_runs_raise(store_url: str) -> None:
    paused = await external(store_url).run(billing_agent(), user_message="order-7")
    again = await external(store_url).resume(paused.run_id, billing_agent())
    assert again.state == "paused"
    assert [r.request_id for r in again.pending_requests] == [
        r.request_id for r in paused.pending_requests
    ]
    with pytest.raises(RunNotFoundError):
        await external(store_url).resume("run_missing", billing_agent())


def test_external_mode_without_a_store_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AFK_STORE", raising=False)
    with pytest.raises(ConfigurationError, match="store"):
        Runner(policy, config=RunnerConfig(interaction_mode="external"))


async def test_one_unreadable_run_does_not_stop_the_others_from_resuming(
    store_url: str, side_effects: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from dataclasses import replace

    broken = await external(store_url).run(billing_agent(), user_message="order-b")
    fine = await external(store_url).run(billing_agent(), user_message="order-f")
    runner = external(store_url)
    for paused in (broken, fine):
        request_id = paused.pending_requests[0].request_id
        await runner.resolve(request_id, ApprovalDecision(kind="allow"))
    assert runner.store is not None
    record = await runner.store.load_run(broken.run_id)
    assert record is not None
    written = f'"schema_version":{SCHEMA_VERSION}'
    newer = record.snapshot.replace(written, '"schema_version":99')
    assert newer != record.snapshot
    await runner.store.save_run(replace(record, snapshot=newer))
    results = await runner.resume_ready([billing_agent()])
    assert [r.run_id for r in results] == [fine.run_id]
    assert lines(side_effects)[0].startswith("order-f ")
    assert "newer than this afk" in caplog.text


async def test_policy_decisions_reach_the_ledger_with_the_change_they_lead_to(
    store_url: str, side_effects: Path
) -> None:
    from afk.audit import verify

    runner = external(store_url)
    paused = await runner.run(billing_agent(), user_message="order-l")
    await runner.resolve(paused.pending_requests[0].request_id, ApprovalDecision(kind="allow"))
    await runner.resume_ready([billing_agent()])
    assert runner.store is not None
    kinds = [e.kind for e in await runner.store.list_log()]
    # the gating decision is written with the request it opened, in one transaction
    assert kinds[:2] == ["policy_decision", "request_opened"]
    # the resumed run puts the approved call to the policy of now again: logged too
    assert kinds[2:] == ["decided", "policy_decision", "execution_started", "execution_finished"]
    assert (await verify(runner.store)).ok


async def test_headless_runs_with_a_store_record_their_fallback_decisions(store_url: str) -> None:
    runner = track(
        Runner(policy, config=RunnerConfig(interaction_mode="headless"), store=store_url)
    )
    result = await runner.run(billing_agent(), user_message="order-h")
    assert result.state == "completed"
    assert await runner.pending_requests() == []
    assert runner.store is not None
    [record] = await runner.store.list_requests(status=None)
    assert (record.status, record.decided_by) == ("decided", "fallback")


async def test_a_paused_snapshot_keeps_its_active_time_to_the_microsecond(store_url: str) -> None:
    # Every stored digit costs bytes on disk for each paused run; the run-time budget
    # (max_run_time_s) needs no finer clock.
    runner = external(store_url)
    paused = await runner.run(billing_agent(), user_message="order-us")
    store = open_store(store_url)
    try:
        record = await store.load_run(paused.run_id)
        assert record is not None
        active_s = json.loads(record.snapshot)["active_s"]
        assert active_s > 0 and round(active_s, 6) == active_s
    finally:
        await store.close()
