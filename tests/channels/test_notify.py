"""Lifecycle events from the ledger, delivered at least once per channel, on SQLite and
Postgres: each channel keeps its own place, one failing channel holds up no other, and a
delivery id is stable per (event, channel)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels_support import Recorder, agent, executed, paused, runner

from afk.agents import ApprovalDecision
from afk.approvals import Principal
from afk.approvals.notify import (
    Notifiers,
    RequestDecidedEvent,
    RequestOpenedEvent,
    deliver_pending,
    delivery_id,
    event_json,
)
from afk.errors import ConfigurationError
from afk.store import RunStore

ALICE = Principal(id="alice", authenticated_by="token:tok_test")


async def test_opened_then_decided_reach_a_channel_once_each(
    store_url: str, store: RunStore
) -> None:
    seen = Recorder()
    notifiers = Notifiers([seen])
    first = await deliver_pending(store, notifiers)  # a new channel starts at the head
    assert first.delivered == 0 and seen.events == []
    async with runner(store_url, approvers=["alice", "bob"]) as run:
        request_id = await paused(run)
        await deliver_pending(store, notifiers)
        [opened] = seen.events
        assert isinstance(opened, RequestOpenedEvent) and opened.request_id == request_id
        summary = opened.request
        assert summary.tool_name == "drop_table" and summary.tool_args == {"name": "old_logs"}
        assert (
            summary.rule_id == "gate-drops" and summary.reason == "Dropping a table needs a human."
        )
        assert summary.approvers == ("alice", "bob") and summary.status == "pending"
        await run.resolve(request_id, ApprovalDecision(kind="allow", reason="ok"), principal=ALICE)
        report = await deliver_pending(store, notifiers)
        assert report.delivered == 1 and report.failed == {}
        decided = seen.events[-1]
        assert isinstance(decided, RequestDecidedEvent)
        assert (decided.decision, decided.approver, decided.decided_by) == (
            "allow",
            "alice",
            "human",
        )
        assert decided.authenticated_by == "token:tok_test" and decided.reason == "ok"
        assert (await deliver_pending(store, notifiers)).delivered == 0  # nothing twice
        # Another process's Notifiers with the same channel name: the place is in the store.
        again = Recorder()
        assert (await deliver_pending(store, Notifiers([again]), after_id=0)).delivered == 0
        assert event_json(decided)["kind"] == "request_decided"
        assert event_json(decided)["request"]["tool_args"] == {"name": "old_logs"}


async def test_a_failing_channel_is_retried_and_blocks_no_other(
    store_url: str, store: RunStore
) -> None:
    good, flaky = Recorder("good"), Recorder("flaky", fail=2)
    notifiers = Notifiers([good, flaky])
    await deliver_pending(store, notifiers)
    async with runner(store_url) as run:
        await paused(run)
        report = await deliver_pending(store, notifiers)
        assert good.kinds == ["request_opened"] and flaky.events == []
        assert set(report.failed) == {"flaky"} and "channel down" in report.failed["flaky"]
        await deliver_pending(store, notifiers)  # flaky fails again; good has nothing new
        assert good.kinds == ["request_opened"] and flaky.tries == 2
        await deliver_pending(store, notifiers)
        assert flaky.kinds == ["request_opened"] and flaky.tries == 3
        assert delivery_id(good.events[0], "good") == delivery_id(flaky.events[0], "good")
        assert delivery_id(flaky.events[0], "flaky") != delivery_id(flaky.events[0], "good")
        assert good.events[0].event_id == flaky.events[0].event_id


async def test_a_channel_gives_up_on_an_event_after_max_attempts(
    store_url: str, store: RunStore
) -> None:
    broken = Recorder("broken", fail=99)
    notifiers = Notifiers([broken])
    await deliver_pending(store, notifiers)
    async with runner(store_url) as run:
        await paused(run)
        for _ in range(2):
            assert (await deliver_pending(store, notifiers, max_attempts=3)).gave_up == {}
        report = await deliver_pending(store, notifiers, max_attempts=3)
        assert list(report.gave_up) == ["broken"] and broken.tries == 3
        assert (await deliver_pending(store, notifiers, max_attempts=3)).delivered == 0
        assert broken.tries == 3


async def test_a_slow_channel_is_cut_off_and_the_decision_stands(
    store_url: str, store: RunStore
) -> None:
    class Hangs:
        name = "hangs"

        async def notify(self, event: object) -> None:
            await asyncio.sleep(30)

    quick = Recorder("quick")
    notifiers = Notifiers([Hangs(), quick], timeout_s=0.2)
    await deliver_pending(store, notifiers)
    async with runner(store_url) as run:
        request_id = await paused(run)
        await run.resolve(request_id, ApprovalDecision(kind="allow"), principal=ALICE)
        report = await deliver_pending(store, notifiers)
        assert "TimeoutError" in report.failed["hangs"]
        assert quick.kinds == ["request_opened", "request_decided"]
        [resumed] = await run.resume_ready([agent()])
        assert resumed.state == "completed" and executed == ["old_logs"]


async def test_quorum_votes_make_one_decided_event(store_url: str, store: RunStore) -> None:
    seen = Recorder()
    notifiers = Notifiers([seen])
    await deliver_pending(store, notifiers)
    async with runner(store_url, approvers=["alice", "bob"], quorum=2) as run:
        request_id = await paused(run)
        await run.resolve(request_id, ApprovalDecision(kind="allow"), principal=ALICE)
        await deliver_pending(store, notifiers)
        assert seen.kinds == ["request_opened"]  # one vote of two decides nothing
        bob = Principal(id="bob", authenticated_by="slack:T1/U2")
        await run.resolve(request_id, ApprovalDecision(kind="allow"), principal=bob)
        await deliver_pending(store, notifiers)
        assert seen.kinds == ["request_opened", "request_decided"]
        decided = seen.events[-1]
        assert isinstance(decided, RequestDecidedEvent)
        assert (decided.approver, decided.authenticated_by) == ("bob", "slack:T1/U2")


async def test_reminders_escalations_and_expiry_are_events(store_url: str, store: RunStore) -> None:
    seen = Recorder()
    notifiers = Notifiers([seen])
    await deliver_pending(store, notifiers)
    rule = {"approvers": ["alice"], "remind_after_s": 0.01, "escalate_after_s": 0.02,
            "escalate_to": ["carol"], "expires_after_s": 0.3}  # fmt: skip
    async with runner(store_url, **rule) as run:
        await paused(run)
        await asyncio.sleep(0.05)
        await run.fire_due_timers()
        await asyncio.sleep(0.3)
        await run.resume_ready([agent()])  # past the deadline: the fallback (deny) applies
        await deliver_pending(store, notifiers)
    assert seen.kinds == [
        "request_opened",
        "request_reminded",
        "request_escalated",
        "request_expired",
    ]
    assert getattr(seen.events[2], "approvers", None) == ("alice", "carol")
    assert executed == []


def test_notifiers_refuse_what_cannot_work() -> None:
    with pytest.raises(ConfigurationError, match="share a name"):
        Notifiers([Recorder("a"), Recorder("a")])
    with pytest.raises(ConfigurationError, match="channel name 'Bad Name'"):
        Notifiers({"Bad Name": Recorder()})
    with pytest.raises(ConfigurationError, match="no async notify"):
        Notifiers({"x": object()})  # type: ignore[dict-item]


async def test_channels_at_one_place_that_read_the_ledger_at_different_times_lose_nothing(
    store_url: str, store: RunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The channels' passes run at once: the first to read the ledger reads it before a
    # request opens, the second after. The second must not take the first's (empty) reading
    # of that place for its own and move past the request it never delivered.
    first, second = Recorder("first"), Recorder("second")
    notifiers = Notifiers([first, second])
    await deliver_pending(store, notifiers)  # both start at the head
    read = store.list_log
    opened = asyncio.Event()
    calls = 0

    async def list_log(**kw: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            entries = await read(**kw)
            async with runner(store_url) as run:
                await paused(run)
            opened.set()
            return entries
        await opened.wait()
        return await read(**kw)

    monkeypatch.setattr(store, "list_log", list_log)
    await deliver_pending(store, notifiers)
    monkeypatch.undo()
    await deliver_pending(store, notifiers)  # the first channel's turn to see it
    assert first.kinds == ["request_opened"] and second.kinds == ["request_opened"]
