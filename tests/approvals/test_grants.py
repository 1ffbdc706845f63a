"""Standing grants: "allow, and keep allowing this" for a scope, until revoked or expired."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from approvals_support import executed, finance_agent, finance_policy

from afk.agents import ApprovalDecision, GrantSpec
from afk.core import InMemoryInteractiveProvider, Runner, RunnerConfig
from afk.errors import GrantNotFoundError, InvalidDecisionError

INTERACTIVE = RunnerConfig(interaction_mode="interactive", approval_timeout_s=10)
EXTERNAL = RunnerConfig(interaction_mode="external")


@pytest.fixture(autouse=True)
def _clean() -> None:
    executed.clear()


def _grant(until_s: float = 60, **when: object) -> ApprovalDecision:
    spec = GrantSpec(scope="user", until=time.time() + until_s, when=dict(when))
    return ApprovalDecision(kind="allow", approver="bob", grant=spec)


async def _run(runner: Runner, amount: int, provider: InMemoryInteractiveProvider) -> list[str]:
    """Run one refund; approve (without a grant) whatever gets asked; return event types."""
    handle = runner.run_stream(finance_agent(), user_message=str(amount), requested_by="alice")
    while not handle.done():
        for request in provider.pending():
            provider.resolve_approval(
                request.request_id, ApprovalDecision(kind="allow", approver="bob")
            )
        await asyncio.sleep(0.005)
    return [e.type for e in (await handle.result()).events]


async def test_a_grant_allows_later_matching_calls_without_asking() -> None:
    provider = InMemoryInteractiveProvider()
    runner = Runner(finance_policy(quorum=1), provider, INTERACTIVE)
    handle = runner.run_stream(finance_agent(), user_message="150", requested_by="alice")
    while not provider.pending():
        await asyncio.sleep(0)
    request = provider.pending()[0]
    provider.resolve_approval(request.request_id, _grant(amount={"lte": 500}))
    assert (await handle.result()).state == "completed"

    later = await _run(runner, 300, provider)  # matches: runs unasked
    assert "grant_used" in later and "approval_requested" not in later
    bigger = await _run(runner, 900, provider)  # does not match the grant: asked
    assert "approval_requested" in bigger and "grant_used" not in bigger
    [grant] = await runner.grants()
    assert (grant.uses, grant.scope, grant.scope_value, grant.created_by) == (
        1,
        "user",
        "alice",
        "bob",
    )
    assert [e["amount"] for e in executed] == [150, 300, 900]


async def test_revocation_and_expiry_end_a_grant() -> None:
    provider = InMemoryInteractiveProvider()
    runner = Runner(finance_policy(quorum=1), provider, INTERACTIVE)
    handle = runner.run_stream(finance_agent(), user_message="150", requested_by="alice")
    while not provider.pending():
        await asyncio.sleep(0)
    provider.resolve_approval(provider.pending()[0].request_id, _grant(until_s=0.3))
    await handle.result()
    [grant] = await runner.grants()
    assert "grant_used" in await _run(runner, 200, provider)
    await runner.revoke_grant(grant.grant_id, by="carol")
    assert "approval_requested" in await _run(runner, 200, provider)
    assert await runner.grants() == []
    with pytest.raises(GrantNotFoundError):
        await runner.revoke_grant("grant_nope")


async def test_an_expired_grant_allows_nothing() -> None:
    provider = InMemoryInteractiveProvider()
    runner = Runner(finance_policy(quorum=1), provider, INTERACTIVE)
    handle = runner.run_stream(finance_agent(), user_message="150", requested_by="alice")
    while not provider.pending():
        await asyncio.sleep(0)
    provider.resolve_approval(provider.pending()[0].request_id, _grant(until_s=0.05))
    await handle.result()
    await asyncio.sleep(0.06)
    assert "approval_requested" in await _run(runner, 200, provider)


async def test_a_user_grant_needs_a_requester() -> None:
    provider = InMemoryInteractiveProvider()
    runner = Runner(finance_policy(quorum=1, approvers=()), provider, INTERACTIVE)
    handle = runner.run_stream(finance_agent(), user_message="150")  # no requested_by
    while not provider.pending():
        await asyncio.sleep(0)
    with pytest.raises(InvalidDecisionError, match="requested_by"):
        provider.resolve_approval(provider.pending()[0].request_id, _grant())
    handle.cancel()


async def test_grants_persist_in_the_store_and_each_use_is_logged(store_url: str) -> None:
    async with Runner(finance_policy(quorum=1), config=EXTERNAL, store=store_url) as runner:
        paused = await runner.run(finance_agent(), user_message="150", requested_by="alice")
        await runner.resolve(paused.pending_requests[0].request_id, _grant(amount={"lte": 500}))
        await runner.resume_ready([finance_agent()])
    async with Runner(finance_policy(quorum=1), config=EXTERNAL, store=store_url) as other:
        [grant] = await other.grants()  # another process sees it
        result = await other.run(finance_agent(), user_message="400", requested_by="alice")
        assert result.state == "completed" and result.tool_executions[0].grant_id == grant.grant_id
        result = await other.run(finance_agent(), user_message="400", requested_by="zoe")
        assert result.state == "paused"  # another user's run is not covered
        await other.revoke_grant(grant.grant_id, by="carol")
        result = await other.run(finance_agent(), user_message="400", requested_by="alice")
        assert result.state == "paused"
        assert other.store is not None
        kinds = [e.kind for e in await other.store.list_log()]
        assert kinds.count("grant_used") == 1
        assert "grant_created" in kinds and "grant_revoked" in kinds


async def test_grants_from_the_cli_approve_list_and_revoke(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from afk.cli.main import main as afk_main

    url = f"sqlite:///{tmp_path}/runs.db"
    async with Runner(finance_policy(quorum=1), config=EXTERNAL, store=url) as runner:
        paused = await runner.run(finance_agent(), user_message="150", requested_by="alice")
    request_id = paused.pending_requests[0].request_id
    argv = ["approvals", "approve", request_id, "--store", url, "--as", "bob"]
    grant = [
        "--grant-scope",
        "user",
        "--grant-for",
        "3600",
        "--grant-when",
        '{"amount": {"lte": 500}}',
    ]
    assert await asyncio.to_thread(afk_main, argv + grant) == 0
    capsys.readouterr()
    assert await asyncio.to_thread(afk_main, ["grants", "list", "--store", url]) == 0
    listed = capsys.readouterr().out
    assert "refund" in listed and "user=alice" in listed and '"lte": 500' in listed
    grant_id = listed.splitlines()[1].split()[0]
    assert await asyncio.to_thread(afk_main, ["grants", "revoke", grant_id, "--store", url]) == 0
    assert await asyncio.to_thread(afk_main, ["grants", "revoke", "grant_x", "--store", url]) == 1
    capsys.readouterr()
    assert await asyncio.to_thread(afk_main, ["grants", "list", "--store", url]) == 0
    assert "no active grants" in capsys.readouterr().out


async def test_grants_list_a_page_at_a_time_from_the_cli_and_in_memory(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from afk.approvals.grants import Grants
    from afk.cli.main import main as afk_main
    from afk.store import open_store
    from afk.store.store import GrantRecord

    def grant(i: int) -> GrantRecord:
        return GrantRecord(
            grant_id=f"grant_{i}", tool_name="refund", scope="user", scope_value="alice",
            when="{}", until=time.time() + 3600, created_by="bob", created_at=100.0 + i,
        )  # fmt: skip

    url = f"sqlite:///{tmp_path}/runs.db"
    store = open_store(url)
    await store.setup()
    for i in range(3):
        await store.add_grant(grant(i))
    await store.close()
    argv = ["grants", "list", "--store", url, "--wide", "--limit", "2"]
    assert await asyncio.to_thread(afk_main, argv) == 0
    out = capsys.readouterr().out
    assert "grant_0" in out and "grant_1" in out and "grant_2" not in out
    more = out.strip().splitlines()[-1]
    assert more.startswith("more: afk grants list --store") and "--limit 2 --cursor" in more
    assert await asyncio.to_thread(afk_main, more.removeprefix("more: afk ").split()) == 0
    rest = capsys.readouterr().out
    assert "grant_2" in rest and "grant_0" not in rest and "more:" not in rest
    # Without a store, the runner's grants are paged the same way.
    memory = Grants(None)
    memory._memory.update({g.grant_id: g for g in map(grant, range(3))})
    page = await memory.list(limit=2)
    assert [g.grant_id for g in page] == ["grant_0", "grant_1"]
    last = await memory.list(limit=2, cursor=page.next_cursor)
    assert [g.grant_id for g in last] == ["grant_2"]


async def test_the_grants_listing_is_a_page_of_50_by_default(tmp_path: Path) -> None:
    from afk.store.store import GrantRecord

    async with Runner(finance_policy(quorum=1), store=f"sqlite:///{tmp_path}/g.db") as runner:
        assert runner.store is not None
        await runner.grants()  # readies the store
        for i in range(55):
            await runner.store.add_grant(
                GrantRecord(
                    grant_id=f"grant_{i:02d}", tool_name="refund", scope="user",
                    scope_value="alice", when="{}", until=time.time() + 60, created_by="bob",
                    created_at=1000.0 + i,
                )
            )  # fmt: skip
        first = await runner.grants()
        assert len(first) == 50 and first.next_cursor is not None
        rest = await runner.grants(cursor=first.next_cursor)
        assert [g.grant_id for g in rest] == [f"grant_{i}" for i in range(50, 55)]
        assert rest.next_cursor is None
        assert len(await runner.grants(limit=None)) == 55  # asked for: every one
