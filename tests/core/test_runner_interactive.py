"""Interactive mode: a human answers through a provider; timeouts, late and bad answers."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from hitl_support import (
    Calls,
    drop_agent,
    gate,
    interactive,
    of_type,
    one,
    run_resolving,
    types,
    wait_pending,
)

from afk.agents import (
    Agent,
    ApprovalDecision,
    ApprovalRequest,
    UserInputDecision,
)
from afk.core import InMemoryInteractiveProvider, Runner, RunnerConfig
from afk.errors import (
    AlreadyDecidedError,
    InteractionError,
    InvalidDecisionError,
    RequestExpiredError,
    UnknownRequestError,
)
from afk.llms import FunctionModel, ToolCall, ToolMessage

# -- every action ------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["allow", "deny"])
async def test_allow_and_deny_rules_need_no_human(action):
    calls = Calls()
    runner, _provider = interactive(gate(action))
    async with asyncio.timeout(1):
        result = await runner.run(drop_agent(calls), user_message="drop")
    assert result.state == "completed"
    assert len(calls.log) == (1 if action == "allow" else 0)
    for absent in ("approval_requested", "run_paused", "run_resumed"):
        assert absent not in types(result)


async def test_request_approval_pauses_until_the_human_allows():
    calls = Calls()
    runner, provider = interactive(gate("request_approval", reason="Drops need a human."))

    def approve(request):
        assert calls.log == []  # nothing ran before the decision
        provider.resolve_approval(
            request.request_id, ApprovalDecision(kind="allow", approver="alice")
        )

    result = await run_resolving(runner, drop_agent(calls), provider, approve)

    assert result.state == "completed"
    assert calls.log == [("drop_table", {"name": "old_logs"})]
    resolved = one(result, "approval_resolved")
    assert resolved.decided_by == "human"
    assert resolved.approver == "alice"
    assert resolved.decision == ApprovalDecision(kind="allow", approver="alice")
    [execution] = result.tool_executions
    assert execution.decided_by == "human"
    assert execution.decision.kind == "allow"
    assert execution.policy.action == "request_approval"
    assert types(result) == [
        "run_started",
        "step_started",
        "llm_called",
        "llm_completed",
        "policy_decision",
        "approval_requested",
        "run_paused",
        "approval_resolved",
        "run_resumed",
        "tool_started",
        "tool_completed",
        "step_started",
        "llm_called",
        "llm_completed",
        "run_completed",
    ]
    assert provider.pending() == []


async def test_the_approval_request_describes_the_call_exactly():
    calls = Calls()
    runner, provider = interactive(
        gate("request_approval", reason="Drops need a human."), approval_timeout_s=30
    )
    captured = []

    def approve(request):
        captured.append(request)
        provider.resolve_approval(request.request_id, ApprovalDecision(kind="allow"))

    before = time.time()
    result = await run_resolving(runner, drop_agent(calls), provider, approve, thread_id="th-1")
    [request] = captured
    assert isinstance(request, ApprovalRequest)
    assert request == one(result, "approval_requested").request
    assert request.request_id
    assert request.run_id == result.run_id
    assert request.step == 1
    assert request.agent_name == "db-agent"
    assert request.tool_name == "drop_table"
    assert request.tool_args == {"name": "old_logs"}
    assert request.tool_call_id == result.tool_executions[0].tool_call_id
    assert request.rule_id == "test-rule"
    assert request.reason == "Drops need a human."
    assert before <= request.created_at <= time.time()
    assert request.expires_at == pytest.approx(request.created_at + 30, abs=0.01)


async def test_a_human_deny_blocks_the_tool_and_the_model_hears_the_reason():
    calls = Calls()
    seen: list[list] = []

    def model(messages, tools):
        seen.append(messages)
        if len(seen) == 1:
            return ToolCall("drop_table", {"name": "old_logs"})
        return "Understood, not dropping."

    agent = Agent("db-agent", FunctionModel(model), "i", tools=[calls.drop_table_tool()])
    runner, provider = interactive(gate("request_approval"))

    def deny(request):
        provider.resolve_approval(
            request.request_id, ApprovalDecision(kind="deny", reason="Table still used by billing.")
        )

    result = await run_resolving(runner, agent, provider, deny)

    assert result.state == "completed"
    assert result.final_text == "Understood, not dropping."
    assert calls.log == []
    resolved = one(result, "approval_resolved")
    assert (resolved.decided_by, resolved.decision.kind) == ("human", "deny")
    [message] = [m for m in seen[1] if isinstance(m, ToolMessage)]
    assert message.tool_call_id == result.tool_executions[0].tool_call_id
    assert "denied" in message.content.lower()
    assert "Table still used by billing." in message.content
    completed = one(result, "tool_completed")
    assert completed.denied is True
    assert "tool_started" not in types(result)


async def test_a_human_deny_with_stop_run_stops_the_run():
    calls = Calls()
    runner, provider = interactive(gate("request_approval"))

    def stop(request):
        provider.resolve_approval(
            request.request_id, ApprovalDecision(kind="deny", reason="enough", stop_run=True)
        )

    result = await run_resolving(runner, drop_agent(calls), provider, stop)
    assert result.state == "stopped"
    assert calls.log == []
    last = result.events[-1]
    assert (last.type, last.state) == ("run_completed", "stopped")
    # the model is not called again after the stop
    assert len(of_type(result, "llm_called")) == 1


async def test_resolving_from_a_task_wakes_the_run_at_once():
    calls = Calls()
    runner, provider = interactive(gate("request_approval"), approval_timeout_s=10)
    started = time.monotonic()
    await run_resolving(
        runner,
        drop_agent(calls),
        provider,
        lambda r: provider.resolve_approval(r.request_id, ApprovalDecision(kind="allow")),
    )
    assert time.monotonic() - started < 1.0
    assert calls.log == [("drop_table", {"name": "old_logs"})]


# -- edited arguments ----------------------------------------------------------------------------


async def test_edited_arguments_are_exactly_what_executes():
    calls = Calls()
    runner, provider = interactive(gate("request_approval"))

    def edit(request):
        provider.resolve_approval(
            request.request_id,
            ApprovalDecision(kind="allow", updated_tool_args={"name": "old_logs_2019"}),
        )

    result = await run_resolving(runner, drop_agent(calls), provider, edit)
    assert calls.log == [("drop_table", {"name": "old_logs_2019"})]
    assert result.tool_executions[0].args == {"name": "old_logs_2019"}
    assert one(result, "tool_started").args == {"name": "old_logs_2019"}
    assert result.tool_executions[0].output == "dropped old_logs_2019"


@pytest.mark.parametrize(
    "bad_args",
    [{"name": 42}, {}, {"name": "x", "cascade": True}],
)
async def test_invalid_edited_arguments_are_refused_and_the_request_stays_pending(bad_args):
    calls = Calls()
    runner, provider = interactive(gate("request_approval"))
    errors = []

    def edit(request):
        with pytest.raises(InvalidDecisionError) as info:
            provider.resolve_approval(
                request.request_id, ApprovalDecision(kind="allow", updated_tool_args=bad_args)
            )
        errors.append(info.value)
        assert [r.request_id for r in provider.pending()] == [request.request_id]
        assert calls.log == []
        provider.resolve_approval(
            request.request_id, ApprovalDecision(kind="allow", updated_tool_args={"name": "fixed"})
        )

    result = await run_resolving(runner, drop_agent(calls), provider, edit)
    assert isinstance(errors[0], InteractionError)
    assert calls.log == [("drop_table", {"name": "fixed"})]
    assert result.tool_executions[0].args == {"name": "fixed"}
    assert len(of_type(result, "approval_resolved")) == 1


async def test_an_approval_must_be_answered_with_an_approval_decision():
    calls = Calls()
    runner, provider = interactive(gate("request_approval"))

    def answer(request):
        with pytest.raises(InvalidDecisionError):
            provider.resolve_input(request.request_id, UserInputDecision(kind="allow", value="x"))
        provider.resolve_approval(request.request_id, ApprovalDecision(kind="allow"))

    await run_resolving(runner, drop_agent(calls), provider, answer)
    assert len(calls.log) == 1


def test_decisions_are_validated_when_written():
    with pytest.raises(InvalidDecisionError):
        ApprovalDecision(kind="maybe")  # type: ignore[arg-type]
    with pytest.raises(InvalidDecisionError):
        ApprovalDecision(kind="allow", stop_run=True)
    with pytest.raises(InvalidDecisionError):
        UserInputDecision(kind="allow")
    with pytest.raises(InvalidDecisionError):
        UserInputDecision(kind="allow", value="x", stop_run=True)
    assert UserInputDecision(kind="deny", stop_run=True).stop_run
    assert ApprovalDecision(kind="allow").updated_tool_args is None


# -- unknown, duplicate and late answers ----------------------------------------------------------


def test_an_unknown_request_id_raises_unknown_request_error():
    provider = InMemoryInteractiveProvider()
    with pytest.raises(UnknownRequestError) as info:
        provider.resolve_approval("req_nope", ApprovalDecision(kind="allow"))
    assert "req_nope" in str(info.value)
    with pytest.raises(UnknownRequestError):
        provider.resolve_input("req_nope", UserInputDecision(kind="deny"))


async def test_a_second_decision_raises_already_decided_and_the_first_stands():
    calls = Calls()
    runner, provider = interactive(gate("request_approval"))
    ids = []

    def twice(request):
        ids.append(request.request_id)
        first = ApprovalDecision(kind="allow", approver="alice")
        provider.resolve_approval(request.request_id, first)
        with pytest.raises(AlreadyDecidedError) as info:
            provider.resolve_approval(
                request.request_id, ApprovalDecision(kind="deny", approver="bob")
            )
        assert info.value.first_decision == first

    result = await run_resolving(runner, drop_agent(calls), provider, twice)
    assert calls.log == [("drop_table", {"name": "old_logs"})]
    assert one(result, "approval_resolved").approver == "alice"
    # still "already decided" (not unknown, not expired) after the run ended
    with pytest.raises(AlreadyDecidedError):
        provider.resolve_approval(ids[0], ApprovalDecision(kind="deny"))


async def test_an_unanswered_approval_times_out_to_deny():
    calls = Calls()
    runner, provider = interactive(gate("request_approval"), approval_timeout_s=0.05)
    async with asyncio.timeout(2):
        result = await runner.run(drop_agent(calls), user_message="drop")

    assert result.state == "completed"
    assert calls.log == []
    resolved = one(result, "approval_resolved")
    assert resolved.decided_by == "timeout"
    assert resolved.decision.kind == "deny"
    assert result.tool_executions[0].decided_by == "timeout"
    assert "run_resumed" in types(result)
    assert provider.pending() == []
    request = one(result, "approval_requested").request
    with pytest.raises(RequestExpiredError):
        provider.resolve_approval(request.request_id, ApprovalDecision(kind="allow"))
    assert calls.log == []


async def test_a_timeout_with_an_explicit_allow_fallback_runs_the_tool():
    calls = Calls()
    runner, _provider = interactive(
        gate("request_approval"), approval_timeout_s=0.05, approval_fallback="allow"
    )
    async with asyncio.timeout(2):
        result = await runner.run(drop_agent(calls), user_message="drop")
    assert calls.log == [("drop_table", {"name": "old_logs"})]
    resolved = one(result, "approval_resolved")
    assert (resolved.decided_by, resolved.decision.kind) == ("timeout", "allow")


async def test_a_decision_after_expires_at_raises_request_expired():
    provider = InMemoryInteractiveProvider()
    now = time.time()
    request = ApprovalRequest(
        request_id="req_old",
        run_id="run_1",
        step=1,
        agent_name="a",
        tool_name="drop_table",
        tool_args={"name": "t"},
        tool_call_id="call_1",
        rule_id="r",
        reason="why",
        created_at=now - 10,
        expires_at=now - 1,
    )
    waiter = asyncio.create_task(provider.request_approval(request))
    await wait_pending(provider, 1)
    with pytest.raises(RequestExpiredError):
        provider.resolve_approval("req_old", ApprovalDecision(kind="allow"))
    with pytest.raises(RequestExpiredError):  # and it stays expired
        provider.resolve_approval("req_old", ApprovalDecision(kind="allow"))
    assert provider.pending() == []
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)


async def test_a_decision_accepted_just_before_the_timeout_still_applies():
    """resolve_approval succeeded, so the decision must apply even if the timer fires before the
    run gets to read it."""
    calls = Calls()
    runner, provider = interactive(gate("request_approval"), approval_timeout_s=0.15)
    handle = runner.run_stream(drop_agent(calls), user_message="drop")
    [request] = await wait_pending(provider, 1)

    def human():
        provider.resolve_approval(
            request.request_id, ApprovalDecision(kind="allow", approver="quick")
        )

    thread = threading.Thread(target=human)
    thread.start()
    thread.join()
    time.sleep(0.2)  # keep the loop busy past the deadline: the timer and the decision race
    async with asyncio.timeout(2):
        result = await handle.result()
    assert calls.log == [("drop_table", {"name": "old_logs"})]
    resolved = one(result, "approval_resolved")
    assert (resolved.decided_by, resolved.approver) == ("human", "quick")


# -- custom providers ------------------------------------------------------------------------------


class ScriptedProvider:
    """An InteractionProvider that answers at once."""

    def __init__(self, decision):
        self.decision = decision
        self.requests = []

    async def request_approval(self, request):
        self.requests.append(request)
        return self.decision

    async def request_user_input(self, request):
        self.requests.append(request)
        return self.decision


async def test_any_object_with_the_two_methods_is_a_provider():
    calls = Calls()
    provider = ScriptedProvider(ApprovalDecision(kind="allow", approver="bot"))
    runner = Runner(
        policy_engine=gate("request_approval"),
        interaction_provider=provider,
        config=RunnerConfig(interaction_mode="interactive"),
    )
    result = await runner.run(drop_agent(calls), user_message="drop")
    assert len(calls.log) == 1
    assert provider.requests[0].tool_name == "drop_table"
    resolved = one(result, "approval_resolved")
    assert (resolved.decided_by, resolved.approver) == ("human", "bot")


async def test_a_provider_that_raises_counts_as_deny_by_error():
    class Broken(ScriptedProvider):
        async def request_approval(self, request):
            raise ConnectionError("slack is down")

    calls = Calls()
    runner = Runner(
        policy_engine=gate("request_approval"),
        interaction_provider=Broken(None),
        config=RunnerConfig(interaction_mode="interactive"),
    )
    result = await runner.run(drop_agent(calls), user_message="drop")
    assert result.state == "completed"
    assert calls.log == []
    resolved = one(result, "approval_resolved")
    assert (resolved.decided_by, resolved.decision.kind) == ("error", "deny")
    assert result.tool_executions[0].denied


async def test_the_runner_enforces_its_own_timeout_on_a_provider_that_never_answers():
    class Silent(ScriptedProvider):
        async def request_approval(self, request):
            await asyncio.Event().wait()

    calls = Calls()
    runner = Runner(
        policy_engine=gate("request_approval"),
        interaction_provider=Silent(None),
        config=RunnerConfig(interaction_mode="interactive", approval_timeout_s=0.05),
    )
    async with asyncio.timeout(2):
        result = await runner.run(drop_agent(calls), user_message="drop")
    assert calls.log == []
    resolved = one(result, "approval_resolved")
    assert (resolved.decided_by, resolved.decision.kind) == ("timeout", "deny")


# -- cancellation while waiting ---------------------------------------------------------


async def test_cancelling_a_waiting_run_closes_its_request():
    calls = Calls()
    runner, provider = interactive(gate("request_approval"))
    handle = runner.run_stream(drop_agent(calls), user_message="drop")
    [request] = await wait_pending(provider, 1)
    handle.cancel()
    async with asyncio.timeout(2):
        result = await handle.result()
    assert result.state == "cancelled"
    assert result.events[-1].type == "run_cancelled"
    assert calls.log == []
    assert provider.pending() == []
    with pytest.raises(RequestExpiredError):
        provider.resolve_approval(request.request_id, ApprovalDecision(kind="allow"))
    assert calls.log == []


async def test_a_provider_can_answer_from_notify_as_soon_as_the_request_is_announced():
    """approval_requested announces a request: it must be answerable at that moment."""

    class AutoApprover(InMemoryInteractiveProvider):
        def notify(self, event):
            if event.type == "approval_requested":
                self.resolve_approval(
                    event.request.request_id, ApprovalDecision(kind="allow", approver="auto")
                )

    calls = Calls()
    runner = Runner(
        policy_engine=gate("request_approval"),
        interaction_provider=AutoApprover(),
        config=RunnerConfig(interaction_mode="interactive", approval_timeout_s=0.2),
    )
    async with asyncio.timeout(2):
        result = await runner.run(drop_agent(calls), user_message="drop")
    assert result.warnings == []
    assert calls.log == [("drop_table", {"name": "old_logs"})]
    resolved = one(result, "approval_resolved")
    assert (resolved.decided_by, resolved.approver) == ("human", "auto")


async def test_a_gated_call_to_an_unknown_tool_is_still_asked_about_with_its_exact_arguments():
    calls = Calls()
    agent = drop_agent(
        calls, turns=[ToolCall("drop_database", {"db": "prod", "force": True}), "done"]
    )
    runner, provider = interactive(gate("request_approval"))
    captured = []

    def allow(request):
        captured.append(request)
        provider.resolve_approval(request.request_id, ApprovalDecision(kind="allow"))

    result = await run_resolving(runner, agent, provider, allow)
    assert captured[0].tool_name == "drop_database"
    assert captured[0].tool_args == {"db": "prod", "force": True}
    [execution] = result.tool_executions
    assert execution.success is False
    assert "drop_database" in execution.error
    assert calls.log == []
