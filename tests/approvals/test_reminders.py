"""Reminders and escalation: announced while waiting, and fired once from durable timers."""

from __future__ import annotations

import asyncio
import time

from approvals_support import finance_agent, finance_policy

from afk.agents import ApprovalDecision
from afk.core import InMemoryInteractiveProvider, Runner, RunnerConfig
from afk.store import _approvals_sql as a
from afk.store import _procs as q


async def test_a_waiting_run_announces_reminder_and_escalation() -> None:
    provider = InMemoryInteractiveProvider()
    policy = finance_policy(
        quorum=1, remind_after_s=0.02, escalate_after_s=0.05, escalate_to=("group:cfo",)
    )
    runner = Runner(policy, provider, RunnerConfig(interaction_mode="interactive"))
    handle = runner.run_stream(finance_agent(), user_message="250", requested_by="alice")
    await asyncio.sleep(0.08)
    [request] = provider.pending()
    provider.resolve_approval(request.request_id, ApprovalDecision(kind="allow", approver="dana"))
    result = await handle.result()
    reminders = [e for e in result.events if e.type == "approval_reminder"]
    assert [(r.kind, r.approvers) for r in reminders] == [  # type: ignore[union-attr]
        ("remind", ("alice", "bob", "carol")),
        ("escalate", ("alice", "bob", "carol", "dana")),
    ]


async def test_durable_timers_fire_once_across_workers(store_url: str) -> None:
    got: list[tuple[str, tuple[str, ...]]] = []
    # Far enough apart that a loaded machine's run (which starts the clock) is not late.
    policy = finance_policy(
        quorum=1, remind_after_s=0.4, escalate_after_s=0.8, escalate_to=("group:cfo",)
    )
    config = RunnerConfig(interaction_mode="external")
    async with (
        Runner(
            policy,
            config=config,
            store=store_url,
            notifier=lambda r: got.append((r.kind, r.approvers)),
        ) as one,
        Runner(
            policy,
            config=config,
            store=store_url,
            notifier=lambda r: got.append((r.kind, r.approvers)),
        ) as two,
    ):
        paused = await one.run(finance_agent(), user_message="250", requested_by="alice")
        assert await one.fire_due_timers() == []  # nothing due yet
        deadline = time.monotonic() + 5
        while len(got) < 2 and time.monotonic() < deadline:
            await asyncio.gather(one.fire_due_timers(), two.fire_due_timers())
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)
        await asyncio.gather(one.fire_due_timers(), two.fire_due_timers())
        assert got == [
            ("remind", ("alice", "bob", "carol")),
            ("escalate", ("alice", "bob", "carol", "dana")),
        ]
        # the widened set applies to decisions too
        await one.resolve(
            paused.pending_requests[0].request_id, ApprovalDecision(kind="allow", approver="dana")
        )
        assert one.store is not None
        kinds = [e.kind for e in await one.store.list_log()]
        assert kinds.count("reminded") == 1 and kinds.count("escalated") == 1


async def test_a_timer_whose_request_was_decided_is_cleared_not_sent(store_url: str) -> None:
    """Decided before its reminder came due: never sent, and once due it leaves the range of
    due timers, so a worker's pass does not scan the history of decided requests."""
    got: list[object] = []
    policy = finance_policy(quorum=1, remind_after_s=0.2)
    config = RunnerConfig(interaction_mode="external")
    async with Runner(policy, config=config, store=store_url, notifier=got.append) as runner:
        paused = await runner.run(finance_agent(), user_message="250", requested_by="alice")
        await runner.resolve(
            paused.pending_requests[0].request_id, ApprovalDecision(kind="allow", approver="bob")
        )
        store = runner.store
        assert store is not None
        later = time.time() + 1.0  # past the reminder's due time
        assert await store.claim_due_timers(now=later) == []
        due = q.one(a.ANY_DUE_TIMER, (later,))
        assert await store._run(due, tx=False) is None  # type: ignore[attr-defined]
        assert await runner.fire_due_timers() == [] and got == []
        assert "reminded" not in [e.kind for e in await store.list_log()]
