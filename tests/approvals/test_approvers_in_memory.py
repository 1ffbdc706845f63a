"""Approvers, quorum and self-approval, enforced by the in-memory provider."""

from __future__ import annotations

import asyncio

import pytest
from approvals_support import executed, finance_agent, finance_policy

from afk.agents import ApprovalDecision
from afk.core import InMemoryInteractiveProvider, Runner, RunnerConfig
from afk.errors import (
    AlreadyDecidedError,
    ConfigurationError,
    DuplicateVoteError,
    UnauthorizedApproverError,
)

INTERACTIVE = RunnerConfig(interaction_mode="interactive", approval_timeout_s=10)


@pytest.fixture(autouse=True)
def _clean() -> None:
    executed.clear()


async def _waiting(**rule: object) -> tuple[InMemoryInteractiveProvider, object, str]:
    provider = InMemoryInteractiveProvider()
    runner = Runner(finance_policy(**rule), provider, INTERACTIVE)
    handle = runner.run_stream(finance_agent(), user_message="250", requested_by="alice")
    while not provider.pending():
        await asyncio.sleep(0)
    return provider, handle, provider.pending()[0].request_id


async def test_the_request_carries_who_may_decide_it() -> None:
    provider, handle, _ = await _waiting()
    [request] = provider.pending()
    assert request.approvers == ("alice", "bob", "carol")  # type: ignore[union-attr]
    assert (request.quorum, request.requested_by) == (2, "alice")  # type: ignore[union-attr]
    handle.cancel()  # type: ignore[attr-defined]


async def test_two_distinct_approvers_make_a_quorum_and_a_duplicate_voter_does_not() -> None:
    provider, handle, request_id = await _waiting()
    assert (
        provider.resolve_approval(request_id, ApprovalDecision(kind="allow", approver="bob"))
        == "pending"
    )
    with pytest.raises(DuplicateVoteError):
        provider.resolve_approval(request_id, ApprovalDecision(kind="allow", approver="bob"))
    assert provider.pending()  # still waiting: one distinct vote so far
    assert executed == []
    assert (
        provider.resolve_approval(request_id, ApprovalDecision(kind="allow", approver="carol"))
        == "decided"
    )
    result = await handle.result()  # type: ignore[attr-defined]
    assert result.state == "completed"
    assert executed == [{"order": "o-250", "amount": 250}]
    with pytest.raises(AlreadyDecidedError):
        provider.resolve_approval(request_id, ApprovalDecision(kind="allow", approver="alice"))


async def test_one_deny_decides() -> None:
    provider, handle, request_id = await _waiting()
    provider.resolve_approval(request_id, ApprovalDecision(kind="allow", approver="bob"))
    provider.resolve_approval(
        request_id, ApprovalDecision(kind="deny", approver="carol", reason="duplicate refund")
    )
    result = await handle.result()  # type: ignore[attr-defined]
    assert executed == []
    assert "duplicate refund" in (result.final_text or "")


async def test_the_requester_cannot_approve_their_own_run() -> None:
    provider, handle, request_id = await _waiting(quorum=1)
    with pytest.raises(UnauthorizedApproverError, match="own"):
        provider.resolve_approval(request_id, ApprovalDecision(kind="allow", approver="alice"))
    assert provider.pending()
    provider.resolve_approval(request_id, ApprovalDecision(kind="allow", approver="bob"))
    assert (await handle.result()).state == "completed"  # type: ignore[attr-defined]


async def test_self_approval_when_the_rule_allows_it() -> None:
    provider, handle, request_id = await _waiting(quorum=1, allow_self_approval=True)
    provider.resolve_approval(request_id, ApprovalDecision(kind="allow", approver="alice"))
    assert (await handle.result()).state == "completed"  # type: ignore[attr-defined]


async def test_someone_outside_the_approvers_is_refused_even_to_deny() -> None:
    provider, handle, request_id = await _waiting()
    for kind in ("allow", "deny"):
        with pytest.raises(UnauthorizedApproverError, match="not an approver"):
            provider.resolve_approval(request_id, ApprovalDecision(kind=kind, approver="mallory"))  # type: ignore[arg-type]
    with pytest.raises(UnauthorizedApproverError, match="named approver"):
        provider.resolve_approval(request_id, ApprovalDecision(kind="allow"))
    assert provider.pending()
    handle.cancel()  # type: ignore[attr-defined]


async def test_votes_for_different_edits_do_not_add_up() -> None:
    provider, handle, request_id = await _waiting()
    edit = {"order": "o-250", "amount": 120}
    provider.resolve_approval(request_id, ApprovalDecision(kind="allow", approver="bob"))
    assert (
        provider.resolve_approval(
            request_id, ApprovalDecision(kind="allow", approver="carol", updated_tool_args=edit)
        )
        == "pending"
    )
    # One vote for the original arguments and one for an edit are not two votes for anything.
    assert provider.pending()
    handle.cancel()  # type: ignore[attr-defined]


async def test_escalation_widens_who_may_decide_once_due() -> None:
    provider, handle, request_id = await _waiting(
        quorum=1, escalate_after_s=0.05, escalate_to=("group:cfo",), expires_after_s=10
    )
    with pytest.raises(UnauthorizedApproverError):
        provider.resolve_approval(request_id, ApprovalDecision(kind="allow", approver="dana"))
    await asyncio.sleep(0.06)
    provider.resolve_approval(request_id, ApprovalDecision(kind="allow", approver="dana"))
    assert (await handle.result()).state == "completed"  # type: ignore[attr-defined]


def test_a_rule_naming_an_unknown_group_fails_at_construction() -> None:
    from afk.agents import PolicyEngine, PolicyRule

    engine = PolicyEngine(
        [PolicyRule("r", action="request_approval", approvers=("group:legal",))],
        groups={"finance": ["alice"]},
    )
    with pytest.raises(ConfigurationError, match=r"'legal'.*groups: finance"):
        Runner(engine)


async def test_when_configured_denies_need_the_quorum_too() -> None:
    provider, handle, request_id = await _waiting(deny_decides=False)
    deny = ApprovalDecision(kind="deny", approver="bob", reason="looks wrong")
    assert provider.resolve_approval(request_id, deny) == "pending"
    assert (
        provider.resolve_approval(request_id, ApprovalDecision(kind="allow", approver="carol"))
        == "pending"
    )
    deny2 = ApprovalDecision(kind="deny", approver="alice", reason="agreed")  # alice may vote no
    with pytest.raises(UnauthorizedApproverError):  # ...but not on her own run
        provider.resolve_approval(request_id, deny2)
    handle.cancel()  # type: ignore[attr-defined]
