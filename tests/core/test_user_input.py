"""request_user_input: a human types text that either answers the model or fills a tool argument."""

from __future__ import annotations

import asyncio
import threading

import pytest
from hitl_support import (
    headless,
    interactive,
    of_type,
    one,
    run_resolving,
    tool_messages,
    types,
    wait_pending_blocking,
)

from afk.agents import Agent, PolicyEngine, PolicyRule, UserInputDecision, UserInputRequest
from afk.errors import AlreadyDecidedError, RequestExpiredError
from afk.llms import FunctionModel, ScriptedModel, ToolCall, ToolMessage
from afk.tools import tool


class Mailer:
    def __init__(self) -> None:
        self.sent: list[dict] = []

        @tool
        def send_email(to: str, body: str) -> str:
            """Send an email."""
            self.sent.append({"to": to, "body": body})
            return f"sent to {to}"

        self.tool = send_email


def ask_rule(**kwargs) -> PolicyEngine:
    kwargs.setdefault("reason", "What should the email say?")
    return PolicyEngine(rules=[PolicyRule("ask-human", action="request_user_input", **kwargs)])


def mail_agent(mailer: Mailer, args: dict | None = None, model=None) -> Agent:
    call = ToolCall(
        "send_email", args if args is not None else {"to": "ceo@example.com", "body": "draft"}
    )
    return Agent("mailer", model or ScriptedModel([call, "Sent."]), "i", tools=[mailer.tool])


async def test_by_default_the_humans_text_is_the_result_and_the_tool_does_not_run():
    mailer = Mailer()
    seen: list[list] = []

    def model(messages, tools):
        seen.append(messages)
        if len(seen) == 1:
            return ToolCall("send_email", {"to": "ceo@example.com", "body": "draft"})
        return "ok"

    runner, provider = interactive(ask_rule())
    captured = []

    def answer(request):
        captured.append(request)
        provider.resolve_input(
            request.request_id,
            UserInputDecision(kind="allow", value="Don't email the CEO.", approver="bob"),
        )

    result = await run_resolving(
        runner, mail_agent(mailer, model=FunctionModel(model)), provider, answer
    )

    assert result.state == "completed"
    assert mailer.sent == []
    [request] = captured
    assert isinstance(request, UserInputRequest)
    assert request.prompt == "What should the email say?"
    assert request.input_target_arg is None
    assert request.tool_name == "send_email"
    assert request.tool_args == {"to": "ceo@example.com", "body": "draft"}
    assert request.rule_id == "ask-human"
    assert request.expires_at == pytest.approx(request.created_at + 300.0, abs=0.01)
    assert one(result, "user_input_requested").request == request
    resolved = one(result, "user_input_resolved")
    assert (resolved.decided_by, resolved.approver, resolved.decision.value) == (
        "human",
        "bob",
        "Don't email the CEO.",
    )
    [message] = [m for m in seen[1] if isinstance(m, ToolMessage)]
    assert message.content == "Don't email the CEO."
    assert "tool_started" not in types(result)
    assert types(result).count("run_paused") == 1


async def test_input_target_arg_puts_the_text_into_the_argument_and_runs_the_tool():
    mailer = Mailer()
    runner, provider = interactive(ask_rule(input_target_arg="body"))
    captured = []

    def answer(request):
        captured.append(request)
        provider.resolve_input(
            request.request_id, UserInputDecision(kind="allow", value="Hello from a human")
        )

    # the model did not even supply the argument the human will fill in
    result = await run_resolving(
        runner, mail_agent(mailer, {"to": "team@example.com"}), provider, answer
    )

    assert captured[0].input_target_arg == "body"
    assert mailer.sent == [{"to": "team@example.com", "body": "Hello from a human"}]
    assert result.tool_executions[0].args == {
        "to": "team@example.com",
        "body": "Hello from a human",
    }
    assert tool_messages(result.messages)[0].content == "sent to team@example.com"


async def test_a_human_deny_of_input_blocks_the_tool_and_reports_the_reason():
    mailer = Mailer()
    runner, provider = interactive(ask_rule(input_target_arg="body"))
    result = await run_resolving(
        runner,
        mail_agent(mailer),
        provider,
        lambda r: provider.resolve_input(
            r.request_id, UserInputDecision(kind="deny", reason="no emails today")
        ),
    )
    assert result.state == "completed"
    assert mailer.sent == []
    assert result.tool_executions[0].denied
    assert "no emails today" in tool_messages(result.messages)[0].content


async def test_a_human_deny_of_input_with_stop_run_stops_the_run():
    mailer = Mailer()
    runner, provider = interactive(ask_rule())
    result = await run_resolving(
        runner,
        mail_agent(mailer),
        provider,
        lambda r: provider.resolve_input(
            r.request_id, UserInputDecision(kind="deny", stop_run=True)
        ),
    )
    assert result.state == "stopped"
    assert mailer.sent == []


async def test_unanswered_input_times_out_to_deny():
    mailer = Mailer()
    runner, provider = interactive(ask_rule(input_target_arg="body"), input_timeout_s=0.05)
    async with asyncio.timeout(2):
        result = await runner.run(mail_agent(mailer), user_message="x")
    assert mailer.sent == []
    resolved = one(result, "user_input_resolved")
    assert (resolved.decided_by, resolved.decision.kind) == ("timeout", "deny")
    request = one(result, "user_input_requested").request
    with pytest.raises(RequestExpiredError):
        provider.resolve_input(request.request_id, UserInputDecision(kind="allow", value="late"))
    assert mailer.sent == []


async def test_input_fallback_allow_runs_the_tool_with_its_original_arguments():
    mailer = Mailer()
    runner, _provider = interactive(
        ask_rule(input_target_arg="body"), input_timeout_s=0.05, input_fallback="allow"
    )
    async with asyncio.timeout(2):
        result = await runner.run(mail_agent(mailer), user_message="x")
    assert mailer.sent == [{"to": "ceo@example.com", "body": "draft"}]
    resolved = one(result, "user_input_resolved")
    assert (resolved.decided_by, resolved.decision.kind) == ("timeout", "allow")


async def test_headless_input_fallback_allow_runs_the_tool_with_its_original_arguments():
    mailer = Mailer()
    result = await headless(ask_rule(), input_fallback="allow").run(
        mail_agent(mailer), user_message="x"
    )
    assert mailer.sent == [{"to": "ceo@example.com", "body": "draft"}]
    assert one(result, "user_input_resolved").decided_by == "fallback"
    assert "run_paused" not in types(result)


def test_input_answered_from_another_thread_and_a_second_answer_is_refused():
    mailer = Mailer()
    runner, provider = interactive(ask_rule(input_target_arg="body"))
    errors = []

    def human():
        [request] = wait_pending_blocking(provider, 1)
        provider.resolve_input(request.request_id, UserInputDecision(kind="allow", value="first"))
        try:
            provider.resolve_input(
                request.request_id, UserInputDecision(kind="allow", value="second")
            )
        except AlreadyDecidedError as exc:
            errors.append(exc)

    thread = threading.Thread(target=human)
    thread.start()
    result = runner.run_sync(mail_agent(mailer), user_message="x")
    thread.join(timeout=5)

    assert mailer.sent == [{"to": "ceo@example.com", "body": "first"}]
    assert len(errors) == 1
    assert errors[0].first_decision.value == "first"
    assert len(of_type(result, "user_input_resolved")) == 1
