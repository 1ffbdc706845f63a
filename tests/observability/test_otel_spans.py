"""Spans of in-process runs, read back from the OpenTelemetry SDK's in-memory exporter."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind
from otel_support import attrs, children, errors, memory_tracing, named
from traced_app import REFUND, refund_agent, refund_policy

from afk.agents import Agent, ApprovalDecision, PolicyEngine
from afk.core import InMemoryInteractiveProvider, Runner, RunnerConfig, RunResult
from afk.core.events import ApprovalRequested, ApprovalResolved
from afk.errors import ConfigurationError
from afk.llms import ScriptedModel, ToolCall
from afk.observability import _spans
from afk.tools import tool


def interactive(engine: PolicyEngine | None, tracing: object) -> tuple[Runner, Any]:
    provider = InMemoryInteractiveProvider()
    mode = RunnerConfig(interaction_mode="interactive")
    return Runner(engine, provider, mode, tracing=tracing), provider


async def decided(
    runner: Runner, agent: Agent, provider: Any, kind: Literal["allow", "deny"]
) -> RunResult:
    """Run ``agent``; alice decides its one request ``kind`` as soon as it is open."""
    task = asyncio.create_task(runner.run(agent, user_message="refund o-1"))
    async with asyncio.timeout(5):
        while not provider.pending():
            await asyncio.sleep(0.001)
        [request] = provider.pending()
        await asyncio.sleep(0.02)  # a wait long enough to measure
        provider.resolve_approval(request.request_id, ApprovalDecision(kind=kind, approver="alice"))
        return await task


async def test_an_approved_run_is_one_tree_with_genai_attributes() -> None:
    tracing, exporter = memory_tracing()
    runner, provider = interactive(refund_policy(), tracing)
    result = await decided(runner, refund_agent(), provider, "allow")
    assert result.state == "completed"
    spans = exporter.get_finished_spans()
    run = named(spans, "invoke_agent billing")
    assert run.parent is None and run.kind is SpanKind.INTERNAL
    assert len({s.context.trace_id for s in spans if s.context}) == 1
    assert children(spans, run) == [
        "chat claude-test",
        "evaluate_policy refund",
        "await_approval refund",
        "execute_tool refund",
        "chat claude-test",
    ]
    assert attrs(run) == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "billing",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-test",
        "gen_ai.usage.input_tokens": 32,
        "gen_ai.usage.output_tokens": 8,
        "afk.run.id": result.run_id,
        "afk.run.resumed": False,
        "afk.run.state": "completed",
    }
    first_chat = min((s for s in spans if s.name.startswith("chat")), key=_start)
    assert first_chat.kind is SpanKind.CLIENT
    assert attrs(first_chat)["gen_ai.operation.name"] == "chat"
    assert (
        attrs(first_chat)["gen_ai.usage.input_tokens"],
        attrs(first_chat)["gen_ai.usage.output_tokens"],
    ) == (12, 5)
    tool_span = named(spans, "execute_tool refund")
    [execution] = result.tool_executions
    assert attrs(tool_span)["gen_ai.tool.name"] == "refund"
    assert attrs(tool_span)["gen_ai.tool.call.id"] == execution.tool_call_id
    assert attrs(tool_span)["gen_ai.operation.name"] == "execute_tool"
    policy = attrs(named(spans, "evaluate_policy refund"))
    assert (policy["afk.policy.action"], policy["afk.policy.rule_id"]) == (
        "request_approval",
        "refunds-need-approval",
    )
    assert errors(spans) == []


async def test_the_approval_wait_spans_request_to_decision() -> None:
    tracing, exporter = memory_tracing()
    runner, provider = interactive(refund_policy(), tracing)
    result = await decided(runner, refund_agent(), provider, "allow")
    [requested] = [e for e in result.events if isinstance(e, ApprovalRequested)]
    [resolved] = [e for e in result.events if isinstance(e, ApprovalResolved)]
    wait = named(exporter.get_finished_spans(), "await_approval refund")
    request = requested.request
    assert wait.start_time == int(request.created_at * 1e9)
    assert wait.end_time == int(resolved.ts * 1e9)
    found = attrs(wait)
    assert found["afk.approval.request_id"] == request.request_id
    assert found["afk.approval.rule_id"] == "refunds-need-approval"
    assert found["afk.approval.approvers"] == ("alice",)
    assert (found["afk.approval.approver"], found["afk.approval.decided_by"]) == ("alice", "human")
    assert found["afk.approval.decision"] == "allow"
    assert found["afk.approval.wait_seconds"] == pytest.approx(resolved.ts - request.created_at)
    assert found["afk.approval.wait_seconds"] >= 0.02
    assert found["afk.approval.expired"] is False


async def test_a_call_the_human_denies_is_not_an_error() -> None:
    tracing, exporter = memory_tracing()
    runner, provider = interactive(refund_policy(), tracing)
    result = await decided(runner, refund_agent(REFUND, "Not refunded."), provider, "deny")
    assert result.state == "completed"
    spans = exporter.get_finished_spans()
    assert errors(spans) == []
    assert attrs(named(spans, "await_approval refund"))["afk.approval.decision"] == "deny"
    assert not [s for s in spans if s.name.startswith("execute_tool")]  # nothing ran
    run = named(spans, "invoke_agent billing")
    [note] = [e for e in run.events if e.name == "afk.tool_call.not_executed"]
    assert note.attributes is not None and note.attributes["afk.tool_call.denied"] is True


async def test_a_call_the_policy_denies_is_not_an_error() -> None:
    tracing, exporter = memory_tracing()
    runner = Runner(refund_policy("deny"), tracing=tracing)
    result = await runner.run(refund_agent(REFUND, "Not refunded."), user_message="refund o-1")
    assert result.state == "completed"
    spans = exporter.get_finished_spans()
    assert errors(spans) == []
    assert attrs(named(spans, "evaluate_policy refund"))["afk.policy.action"] == "deny"
    assert not [s for s in spans if s.name.startswith(("execute_tool", "await_approval"))]


async def test_a_tool_that_raises_is_an_error_and_the_run_is_not() -> None:
    tracing, exporter = memory_tracing()
    runner = Runner(tracing=tracing)
    agent = refund_agent(ToolCall("charge", {"order": "o-1"}), "The charge failed.")
    result = await runner.run(agent, user_message="charge o-1")
    assert result.state == "completed"
    spans = exporter.get_finished_spans()
    assert errors(spans) == ["execute_tool charge"]
    failed = named(spans, "execute_tool charge")
    assert attrs(failed)["error.type"] == "ConnectionError"
    assert "payment service unreachable" in (failed.status.description or "")


async def test_a_failed_run_is_an_error_and_so_is_the_model_call_that_failed() -> None:
    tracing, exporter = memory_tracing()
    result = await Runner(tracing=tracing).run(
        Agent("billing", ScriptedModel([], name="scripted"), "x"), user_message="hi"
    )
    assert result.state == "failed"
    spans = exporter.get_finished_spans()
    assert sorted(errors(spans)) == ["chat scripted", "invoke_agent billing"]
    run = named(spans, "invoke_agent billing")
    assert attrs(run)["error.type"] == "ModelError"
    assert attrs(run)["afk.run.state"] == "failed"
    assert "gen_ai.provider.name" not in attrs(run)  # unknown, so not made up


async def test_spans_made_in_a_tool_body_nest_under_its_execute_tool_span() -> None:
    tracing, exporter = memory_tracing()
    inner = tracing.get_tracer("the-app")

    @tool
    async def lookup(order: str) -> str:
        """Look an order up."""
        with inner.start_as_current_span("db query"):
            return f"{order}: shipped"

    agent = Agent(
        "billing",
        ScriptedModel(
            [[ToolCall("lookup", {"order": "a"}), ToolCall("lookup", {"order": "b"})], "ok"]
        ),
        "x",
        tools=[lookup],
    )
    with inner.start_as_current_span("http request") as outer:
        result = await Runner(tracing=tracing).run(agent, user_message="look")
    assert result.state == "completed"
    spans = exporter.get_finished_spans()
    run = named(spans, "invoke_agent billing")
    assert run.parent is not None and run.parent.span_id == outer.get_span_context().span_id
    tools = [s for s in spans if s.name == "execute_tool lookup"]
    assert len(tools) == 2  # two calls run side by side, each in its own task
    for span in tools:
        assert children(spans, span) == ["db query"]
    assert [s.name for s in spans if s.parent is None] == ["http request"]


async def test_parallel_tool_spans_leave_the_context_as_it_was(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from opentelemetry import trace

    tracing, exporter = memory_tracing()
    calls = [ToolCall("lookup", {"order": o}) for o in "abc"]
    before = trace.get_current_span()
    with caplog.at_level(logging.ERROR, logger="opentelemetry"):
        result = await Runner(tracing=tracing).run(
            refund_agent(calls, calls[:1], "done"), user_message="look"
        )
    assert result.state == "completed"
    assert trace.get_current_span() is before
    assert [r for r in caplog.records if r.name.startswith("opentelemetry")] == []
    assert len([s for s in exporter.get_finished_spans() if s.name.startswith("execute")]) == 4


async def test_an_observer_that_raises_changes_nothing_but_a_log_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: object, event: object, run: object) -> None:
        raise RuntimeError("exporter bug")

    monkeypatch.setitem(_spans._HANDLERS, "tool_started", broken)
    tracing, exporter = memory_tracing()
    with caplog.at_level(logging.WARNING, logger="afk.observability"):
        result = await Runner(tracing=tracing).run(
            refund_agent(ToolCall("lookup", {"order": "a"}), "ok"), user_message="look"
        )
    assert result.state == "completed" and result.warnings == []
    assert [r.getMessage() for r in caplog.records] == ["SpanObserver failed on tool_started"]
    assert "invoke_agent billing" in [s.name for s in exporter.get_finished_spans()]


@pytest.mark.parametrize("value", ["yes", 1, object()])
def test_tracing_takes_true_false_or_a_tracer_provider(value: object) -> None:
    with pytest.raises(ConfigurationError, match="tracing must be True, False or an OpenTelemetry"):
        Runner(tracing=value)


def _start(span: ReadableSpan) -> int:
    return span.start_time or 0


async def test_a_user_input_wait_has_its_own_span_name() -> None:
    tracing, exporter = memory_tracing()
    result = await Runner(refund_policy("request_user_input"), tracing=tracing).run(
        refund_agent(REFUND, "No input."), user_message="refund o-1"
    )
    assert result.state == "completed"
    wait = attrs(named(exporter.get_finished_spans(), "await_user_input refund"))
    assert (wait["afk.approval.kind"], wait["afk.approval.decided_by"]) == (
        "user_input",
        "fallback",
    )
    assert errors(exporter.get_finished_spans()) == []
