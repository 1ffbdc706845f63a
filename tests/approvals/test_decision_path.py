"""One decision path: every answer, whatever brought it, is one vote by an authenticated
principal through afk.approvals.decide; spellings of a name are one person."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest
from approvals_support import executed, finance_agent, finance_policy

from afk.agents import ApprovalDecision
from afk.approvals.principal import Principal, canonical_id
from afk.cli._identity import IDENTITIES_ENV, os_account
from afk.cli.console_provider import ConsoleInteractionProvider
from afk.cli.main import main as afk_main
from afk.core import Runner, RunnerConfig
from afk.errors import (
    ConfigurationError,
    DuplicateVoteError,
    InvalidPrincipalError,
    UnauthorizedApproverError,
)

EXTERNAL = RunnerConfig(interaction_mode="external")
# Short waits: a refused answer leaves the request open until it expires.
INTERACTIVE = RunnerConfig(interaction_mode="interactive", approval_timeout_s=0.5)


@pytest.fixture(autouse=True)
def _clean() -> None:
    executed.clear()


def test_canonical_ids_make_spellings_one_person() -> None:
    fullwidth = "\uff41\uff4c\uff49\uff43\uff45"
    for spelling in ("alice", "Alice", "ALICE", "alice ", "\talice", fullwidth):
        assert canonical_id(spelling) == "alice"
    assert canonical_id("  Ada   Lovelace ") == "ada lovelace"
    for bad in ("", "   ", "ali\u200bce", "bob\u202e", "x\x1b[2K"):
        with pytest.raises(InvalidPrincipalError):
            canonical_id(bad)
    with pytest.raises(InvalidPrincipalError):
        Principal(id="alice", authenticated_by="")


class Answers:
    """A custom provider that answers every approval with the same decision."""

    def __init__(self, decision: ApprovalDecision) -> None:
        self.decision = decision

    async def request_approval(self, request: Any) -> ApprovalDecision:
        return self.decision

    async def request_user_input(self, request: Any) -> Any:
        raise AssertionError("not asked")


@pytest.mark.parametrize(
    "answer",
    [
        ApprovalDecision(kind="allow"),  # anonymous
        ApprovalDecision(kind="allow", approver="mallory"),  # not an approver
        ApprovalDecision(kind="allow", approver="Bob"),  # one vote of a quorum of two
    ],
    ids=["anonymous", "outsider", "one-of-two"],
)
async def test_a_custom_provider_answer_is_one_vote_not_a_decision(
    answer: ApprovalDecision,
) -> None:
    runner = Runner(finance_policy(), Answers(answer), INTERACTIVE)
    handle = runner.run_stream(finance_agent(), user_message="250", requested_by="alice")
    events = [e async for e in handle]
    result = await handle.result()
    assert executed == []  # the refund never ran
    kinds = [e.type for e in events]
    assert ("vote_recorded" if answer.approver == "Bob" else "vote_refused") in kinds
    [execution] = result.tool_executions
    assert execution.denied and execution.decided_by == "timeout"


async def test_the_console_provider_decides_as_the_os_account_not_a_name() -> None:
    # `approvers: [alice], quorum: 2` — one "y" at the terminal satisfied it before.
    console = ConsoleInteractionProvider(out=io.StringIO(), read_line=lambda: "y\n")
    assert console.principal.authenticated_by.startswith("os:uid=")
    policy = finance_policy(approvers=("alice", "bob"), quorum=2)
    runner = Runner(policy, console, INTERACTIVE)
    handle = runner.run_stream(finance_agent(), user_message="250")
    refused = [e for e in [e async for e in handle] if e.type == "vote_refused"]
    assert executed == []
    assert refused and refused[0].approver == os_account()[1]  # type: ignore[union-attr]


async def test_a_refused_provider_vote_is_in_the_ledger_and_the_request_stays_open(
    store_url: str,
) -> None:
    runner = Runner(
        finance_policy(quorum=1),
        Answers(ApprovalDecision(kind="allow", approver="mallory")),
        RunnerConfig(interaction_mode="interactive", approval_timeout_s=30.0),
        store=store_url,
    )
    try:
        task = asyncio.ensure_future(
            runner.run(finance_agent(), user_message="250", requested_by="alice")
        )
        assert runner.store is not None
        await runner.grants()  # sets the store up before we read its ledger
        for _ in range(200):
            refusals = [e for e in await runner.store.list_log() if e.kind == "refused"]
            if refusals:
                break
            await asyncio.sleep(0.02)
        assert refusals[0].actor == "mallory"
        assert json.loads(refusals[0].payload)["authenticated_by"] == "provider:Answers"
        [pending] = await runner.pending_requests()  # still open for a real approver
        assert executed == []
        await runner.resolve(pending.request_id, ApprovalDecision(kind="allow", approver="bob"))
        result = await asyncio.wait_for(task, 10)
        assert result.state == "completed" and executed == [{"order": "o-250", "amount": 250}]
    finally:
        await runner.aclose()


async def _paused(store_url: str, **rule: Any) -> tuple[Runner, str]:
    runner = Runner(finance_policy(**rule), config=EXTERNAL, store=store_url)
    result = await runner.run(finance_agent(), user_message="250", requested_by="Erin")
    return runner, result.pending_requests[0].request_id


async def test_spellings_of_one_approver_do_not_make_a_quorum(store_url: str) -> None:
    runner, request_id = await _paused(store_url)
    try:
        assert await runner.resolve(request_id, ApprovalDecision(kind="allow", approver="bob"))
        for spelling in ("Bob", "bob ", "\tbob", "BOB"):
            with pytest.raises(DuplicateVoteError):
                await runner.resolve(request_id, ApprovalDecision(kind="allow", approver=spelling))
        assert await runner.resume_ready([finance_agent()]) == []
        assert executed == []
    finally:
        await runner.aclose()


async def test_the_requester_cannot_approve_under_another_spelling(store_url: str) -> None:
    policy_groups = {"approvers": ("erin", "bob"), "quorum": 1}
    runner, request_id = await _paused(store_url, **policy_groups)
    try:
        for spelling in ("erin", "Erin", "ERIN", "erin ", " erin\t"):
            with pytest.raises(UnauthorizedApproverError, match="own"):
                await runner.resolve(request_id, ApprovalDecision(kind="allow", approver=spelling))
        assert (await runner.pending_requests())[0].request_id == request_id
    finally:
        await runner.aclose()


async def test_a_principal_passed_to_resolve_is_what_the_ledger_records(store_url: str) -> None:
    runner, request_id = await _paused(store_url, quorum=1)
    try:
        carol = Principal(id="Carol", authenticated_by="token:tok_123")
        # The body says "dana"; the authenticated principal decides.
        decision = ApprovalDecision(kind="allow", approver="dana")
        assert await runner.resolve(request_id, decision, principal=carol) == "decided"
        assert runner.store is not None
        record = await runner.store.get_request(request_id)
        assert record is not None and record.approver == "carol"
        [entry] = [e for e in await runner.store.list_log() if e.kind == "decided"]
        assert entry.actor == "carol"
        assert json.loads(entry.payload)["authenticated_by"] == "token:tok_123"
    finally:
        await runner.aclose()


async def _cli(*argv: str) -> int:
    return await asyncio.to_thread(afk_main, list(argv))


async def test_the_cli_decides_as_the_os_account_and_as_only_where_mapped(
    store_url: str,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    me = os_account()[1]
    runner, request_id = await _paused(store_url, approvers=("bob", me), quorum=1)
    await runner.aclose()
    unmapped = tmp_path / "none.json"
    unmapped.write_text(json.dumps({"accounts": {}}))
    monkeypatch.setenv(IDENTITIES_ENV, str(unmapped))
    code = await _cli("approvals", "approve", request_id, "--store", store_url, "--as", "bob")
    assert code == 2 and "may not decide as 'bob'" in capsys.readouterr().err
    mapped = tmp_path / "bob.json"
    mapped.write_text(json.dumps({"accounts": {me: {"act_as": ["Bob"]}}}))
    mapped.chmod(0o666)  # others could write it: refused
    monkeypatch.setenv(IDENTITIES_ENV, str(mapped))
    code = await _cli("approvals", "approve", request_id, "--store", store_url, "--as", "bob")
    assert code == 2 and "writable by group or others" in capsys.readouterr().err
    mapped.chmod(0o644)
    code = await _cli("approvals", "approve", request_id, "--store", store_url, "--as", "bob")
    assert code == 0
    runner = Runner(config=EXTERNAL, store=store_url)
    try:
        assert runner.store is not None
        [entry] = [e for e in await runner.store.list_log() if e.kind == "decided"]
        details = json.loads(entry.payload)
        assert entry.actor == "bob" and details["operator"] == me
        assert details["authenticated_by"].startswith("os:uid=")
    finally:
        await runner.aclose()


def test_requested_by_that_is_not_a_name_is_refused_at_run_start() -> None:
    runner = Runner(finance_policy(), config=RunnerConfig())
    with pytest.raises(ConfigurationError, match="requested_by"):
        runner.run_sync(finance_agent(), user_message="250", requested_by="erin\u200b")


async def test_a_rule_limits_the_decisions_a_reviewer_may_take(store_url: str) -> None:
    from afk.agents import GrantSpec
    from afk.errors import InvalidDecisionError

    runner, request_id = await _paused(store_url, quorum=1, allowed_decisions=["allow", "deny"])
    try:
        edit = ApprovalDecision(
            kind="allow", approver="bob", updated_tool_args={"order": "o-250", "amount": 1}
        )
        with pytest.raises(InvalidDecisionError, match="does not allow the decision 'edit'"):
            await runner.resolve(request_id, edit)
        grant = ApprovalDecision(
            kind="allow", approver="bob", grant=GrantSpec(scope="user", until=9e9)
        )
        with pytest.raises(InvalidDecisionError, match="'grant'"):
            await runner.resolve(request_id, grant)
        plain = ApprovalDecision(kind="allow", approver="bob")
        assert await runner.resolve(request_id, plain) == "decided"
        [done] = await runner.resume_ready([finance_agent()])
        assert executed == [{"order": "o-250", "amount": 250}] and done.state == "completed"
    finally:
        await runner.aclose()


async def test_edited_arguments_are_strict_json_at_the_cli_and_the_api(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from afk.errors import InvalidDecisionError

    runner, request_id = await _paused(store_url, quorum=1)
    try:
        nan = ApprovalDecision(
            kind="allow", approver="bob", updated_tool_args={"order": "o", "amount": float("nan")}
        )
        with pytest.raises(InvalidDecisionError, match="amount"):
            await runner.resolve(request_id, nan)
    finally:
        await runner.aclose()
    for text in ('{"order": "o", "amount": 1, "amount": 1000}', '{"order": "o", "amount": NaN}'):
        code = await _cli(
            "approvals", "approve", request_id, "--store", store_url, "--as", "bob", "--args", text
        )
        assert code == 2 and "--args" in capsys.readouterr().err
    runner = Runner(config=EXTERNAL, store=store_url)
    try:
        assert (await runner.pending_requests())[0].request_id == request_id  # still open
    finally:
        await runner.aclose()


async def test_an_in_memory_decision_with_a_store_records_its_principal(store_url: str) -> None:
    from afk.core import InMemoryInteractiveProvider

    provider = InMemoryInteractiveProvider()
    config = RunnerConfig(interaction_mode="interactive", approval_timeout_s=30.0)
    runner = Runner(finance_policy(quorum=1), provider, config, store=store_url)
    bob = Principal(id="Bob", authenticated_by="oidc:https://id.example.com")
    try:
        handle = runner.run_stream(finance_agent(), user_message="250", requested_by="alice")
        async for event in handle:
            if event.type == "approval_requested":
                request_id = event.request.request_id  # type: ignore[union-attr]
                provider.resolve_approval(request_id, ApprovalDecision(kind="allow"), principal=bob)
        assert (await handle.result()).state == "completed"
        assert runner.store is not None
        [entry] = [e for e in await runner.store.list_log() if e.kind == "decided"]
        details = json.loads(entry.payload)
        assert entry.actor == "bob" and details["authenticated_by"].startswith("oidc:")
    finally:
        await runner.aclose()


async def test_a_provider_cannot_hand_over_a_decision_its_votes_do_not_make() -> None:
    from afk.approvals import Decided, Vote

    class Forger(Answers):
        async def request_approval(self, request: Any) -> Any:
            mallory = Vote(
                principal=Principal(id="mallory", authenticated_by="made up"),
                decision=ApprovalDecision(kind="allow", approver="mallory"),
                at=request.created_at,
            )
            return Decided(decision=mallory.decision, vote=mallory, votes=(mallory,))

    runner = Runner(finance_policy(quorum=1), Forger(ApprovalDecision(kind="allow")), INTERACTIVE)
    result = await runner.run(finance_agent(), user_message="250", requested_by="alice")
    assert executed == []
    [execution] = result.tool_executions
    assert execution.denied and execution.decided_by == "error"
