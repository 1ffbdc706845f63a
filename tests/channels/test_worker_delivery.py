"""The worker loop feeds Runner(notifiers=...): a request opened and then decided reaches a
channel, from the store's ledger, while `work()` runs; a failing channel holds up nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels_support import Recorder, agent, paused

from afk.agents import ApprovalDecision, PolicyEngine, PolicyRule
from afk.approvals.notify import Notifiers
from afk.core import InMemoryInteractiveProvider, Runner, RunnerConfig
from afk.errors import ConfigurationError

POLICY = PolicyEngine([PolicyRule("gate-drops", tool="drop_*", action="request_approval")])


class Broken:
    """A channel that always fails."""

    name = "broken"

    async def notify(self, event: Any) -> None:
        raise RuntimeError("channel down")


async def test_the_worker_delivers_opened_and_decided(store_url: str) -> None:
    seen = Recorder()
    notifiers = Notifiers([seen, Broken()])
    config = RunnerConfig(interaction_mode="external")
    async with Runner(POLICY, config=config, store=store_url, notifiers=notifiers) as runner:
        await runner.deliver_notifications()  # the channels start at the ledger's head
        request_id = await paused(runner)
        await runner.resolve(request_id, ApprovalDecision(kind="allow", approver="ann"))
        stop = asyncio.Event()
        worker = asyncio.create_task(runner.work([agent()], poll_s=0.05, stop=stop))
        for _ in range(200):
            if {"request_opened", "request_decided"} <= {e.kind for e in seen.events}:
                break
            await asyncio.sleep(0.02)
        stop.set()
        await worker
    kinds = [e.kind for e in seen.events]
    assert kinds[:2] == ["request_opened", "request_decided"]
    assert {e.request.request_id for e in seen.events} == {request_id}


async def test_an_interactive_run_announces_its_request_while_it_waits(store_url: str) -> None:
    seen = Recorder()
    provider = InMemoryInteractiveProvider()
    config = RunnerConfig(interaction_mode="interactive")
    async with Runner(
        POLICY, provider, config, store=store_url, notifiers=Notifiers([seen])
    ) as runner:
        await runner.deliver_notifications()  # the channel starts at the ledger's head
        task = asyncio.create_task(runner.run(agent(), user_message="old_logs"))
        for _ in range(200):  # no worker runs: the runner itself delivers
            if seen.events:
                break
            await asyncio.sleep(0.02)
        assert [e.kind for e in seen.events] == ["request_opened"]
        assert not task.done()  # announced while the run waits for a human
        [request] = provider.pending()
        provider.resolve_approval(
            request.request_id, ApprovalDecision(kind="allow", approver="ann")
        )
        assert (await task).state == "completed"
    assert [e.kind for e in seen.events] == ["request_opened", "request_decided"]


async def test_runs_running_at_once_share_one_delivery_loop(store_url: str) -> None:
    provider = InMemoryInteractiveProvider()
    config = RunnerConfig(interaction_mode="interactive")
    notifiers = Notifiers([Recorder()])
    async with Runner(POLICY, provider, config, store=store_url, notifiers=notifiers) as runner:
        tasks = [asyncio.create_task(runner.run(agent(), user_message=f"t{i}")) for i in range(5)]
        while len(provider.pending()) < 5:
            await asyncio.sleep(0.01)
        loops = [t for t in asyncio.all_tasks() if "_deliver_every" in repr(t.get_coro())]
        assert len(loops) == 1  # not one per run: idle runs cost one loop, not five
        for request in provider.pending():
            allow = ApprovalDecision(kind="allow", approver="ann")
            provider.resolve_approval(request.request_id, allow)
        await asyncio.gather(*tasks)
        await asyncio.sleep(0)
        assert not [t for t in asyncio.all_tasks() if "_deliver_every" in repr(t.get_coro())]


def test_notifiers_must_be_notifiers() -> None:
    with pytest.raises(ConfigurationError, match=r"must be an afk\.approvals\.notify\.Notifiers"):
        Runner(notifiers=[Recorder()])  # type: ignore[arg-type]


async def test_delivering_needs_notifiers(store_url: str) -> None:
    async with Runner(store=store_url) as runner:
        with pytest.raises(ConfigurationError, match=r"needs Runner\(notifiers=\.\.\.\)"):
            await runner.deliver_notifications()


class Slow:
    """A channel that records an event, then takes a while to finish delivering it."""

    name = "slow"

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.entered = asyncio.Event()

    async def notify(self, event: Any) -> None:
        self.events.append(event)
        self.entered.set()
        await asyncio.sleep(0.3)


async def test_a_run_ending_mid_delivery_hands_nothing_out_twice(store_url: str) -> None:
    # The run ends while its runner's delivery loop is inside a channel's delivery: the loop
    # finishes that pass (its cursor moved past the event) before the last pass runs.
    slow = Slow()
    provider = InMemoryInteractiveProvider()
    config = RunnerConfig(interaction_mode="interactive")
    async with Runner(
        POLICY, provider, config, store=store_url, notifiers=Notifiers([slow])
    ) as runner:
        await runner.deliver_notifications()  # the channel starts at the ledger's head
        task = asyncio.create_task(runner.run(agent(), user_message="old_logs"))
        await asyncio.wait_for(slow.entered.wait(), 10)  # delivering request_opened
        [request] = provider.pending()
        provider.resolve_approval(
            request.request_id, ApprovalDecision(kind="allow", approver="ann")
        )
        assert (await task).state == "completed"
    assert [e.kind for e in slow.events] == ["request_opened", "request_decided"]
