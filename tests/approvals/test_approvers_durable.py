"""The same approver rules through the store: Runner.resolve from any process, and the CLI."""

from __future__ import annotations

import pytest
from approvals_support import executed, finance_agent, finance_policy

from afk.agents import ApprovalDecision
from afk.cli.main import main as afk_main
from afk.core import Runner, RunnerConfig
from afk.errors import DuplicateVoteError, UnauthorizedApproverError

EXTERNAL = RunnerConfig(interaction_mode="external")


@pytest.fixture(autouse=True)
def _clean() -> None:
    executed.clear()


async def _paused(store_url: str, **rule: object) -> tuple[Runner, str]:
    runner = Runner(finance_policy(**rule), config=EXTERNAL, store=store_url)
    result = await runner.run(finance_agent(), user_message="250", requested_by="alice")
    return runner, result.pending_requests[0].request_id


async def test_quorum_of_two_through_the_store(store_url: str) -> None:
    runner, request_id = await _paused(store_url)
    try:
        bob = ApprovalDecision(kind="allow", approver="bob")
        assert await runner.resolve(request_id, bob) == "pending"
        with pytest.raises(DuplicateVoteError):
            await runner.resolve(request_id, bob)
        assert await runner.resume_ready([finance_agent()]) == []  # not decided yet
        carol = ApprovalDecision(kind="allow", approver="carol")
        assert await runner.resolve(request_id, carol) == "decided"
        [done] = await runner.resume_ready([finance_agent()])
        assert done.state == "completed" and executed == [{"order": "o-250", "amount": 250}]
        assert runner.store is not None
        votes = await runner.store.list_votes(request_id)
        assert [v.approver for v in votes] == ["bob", "carol"]
    finally:
        await runner.aclose()


async def test_self_approval_and_outsiders_are_refused_and_recorded(store_url: str) -> None:
    runner, request_id = await _paused(store_url, quorum=1)
    try:
        with pytest.raises(UnauthorizedApproverError, match="own"):
            await runner.resolve(request_id, ApprovalDecision(kind="allow", approver="alice"))
        with pytest.raises(UnauthorizedApproverError, match="not an approver"):
            await runner.resolve(request_id, ApprovalDecision(kind="deny", approver="mallory"))
        assert runner.store is not None
        refusals = [e for e in await runner.store.list_log() if e.kind == "refused"]
        assert [e.actor for e in refusals] == ["alice", "mallory"]
        assert all("UnauthorizedApproverError" in e.payload for e in refusals)
        [pending] = await runner.pending_requests()  # nothing was decided
        assert pending.request_id == request_id
    finally:
        await runner.aclose()


async def test_unauthorized_approver_is_refused_by_the_cli(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    runner, request_id = await _paused(store_url, quorum=1)
    await runner.aclose()
    import asyncio

    code = await asyncio.to_thread(
        afk_main, ["approvals", "approve", request_id, "--store", store_url, "--as", "mallory"]
    )
    assert code == 1
    assert "not an approver" in capsys.readouterr().err
    code = await asyncio.to_thread(
        afk_main, ["approvals", "approve", request_id, "--store", store_url, "--as", "bob"]
    )
    assert code == 0


async def test_configured_deny_quorum_through_the_store(store_url: str) -> None:
    runner, request_id = await _paused(store_url, deny_decides=False)
    try:
        assert (
            await runner.resolve(request_id, ApprovalDecision(kind="deny", approver="bob"))
            == "pending"
        )
        assert (
            await runner.resolve(request_id, ApprovalDecision(kind="allow", approver="carol"))
            == "pending"
        )
        [pending] = await runner.pending_requests()
        assert pending.request_id == request_id  # one deny did not decide
    finally:
        await runner.aclose()
