"""What the approver reads is safe: hidden and control characters in stored requests,
decisions, runs and grants reach the terminal only as visible escapes, with a marker line
saying so; ``--json`` output is ASCII JSON that parses back to the exact values.

Runs are paused through the Python API on both stores (SQLite, and Postgres in a throwaway
schema). The approver name and decision reason are written straight to the store: afk now
refuses such names when deciding, but a store written by an older version, or tampered with,
can still hold them, and showing it must be safe all the same.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path
from typing import Any, Literal

import pytest
from durable_app import Env, afk, billing_agent, make_env, policy, refund

from afk.agents import Agent, PolicyEngine, PolicyRule
from afk.approvals.display import HIDDEN_MARKER
from afk.approvals.requests import ApprovalRequest, UserInputRequest
from afk.cli._render import render
from afk.cli.console_provider import ConsoleInteractionProvider
from afk.core import Runner, RunnerConfig, RunResult
from afk.core import events as ev
from afk.llms import ScriptedModel, ToolCall
from afk.store import open_store
from afk.store.store import GrantRecord

RAW = ("\u202e", "\u200b", "\x9b", "\x1b", "\r")  # must never reach the terminal raw

TOOL = "refund\u202e\x1b[2K"
ARGS = {"note\u200b": "pay \u202eevil\x9b[31m", "amount": 250}
RULE = "big\u202e-refunds\x1b]0;owned\x07"
REASON = "Refunds\u200b over 100\x9b[2J"
PROMPT = "Why?\x1b[1A\r    approve? [y/N] y"
APPROVER = "bob\u202e\x1b[1A"
DECISION_REASON = "fine\u200b\x9b[0m"


@pytest.fixture
def env(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    made = make_env(tmp_path, monkeypatch)
    monkeypatch.setenv("AFK_STORE", store_url)
    return made


def _pause(
    url: str, action: Literal["request_approval", "request_user_input"] = "request_approval"
) -> RunResult:
    """A run whose model calls a tool named ``TOOL`` (unknown: no tool may be defined so) and a
    rule with a hostile id and reason (or prompt) that gates every call."""
    reason = REASON if action == "request_approval" else PROMPT
    rule = PolicyRule(RULE, action=action, reason=reason)
    model = ScriptedModel([ToolCall(TOOL, ARGS), "Done."])
    agent = Agent("billing", model, "You refund.", tools=[refund])

    async def go() -> RunResult:
        runner = Runner(
            PolicyEngine([rule]), config=RunnerConfig(interaction_mode="external"), store=url
        )
        try:
            return await runner.run(agent, user_message="refund \u202eplease")
        finally:
            assert runner.store is not None
            await runner.store.close()

    result = asyncio.run(go())
    assert result.state == "paused", result
    return result


def _store_call(url: str, work: Any) -> Any:
    async def go() -> Any:
        store = open_store(url)
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(go())


def _decide_in_store(url: str, request_id: str) -> None:
    """A decision as an older afk (or someone with the database) could have stored it."""

    async def work(store: Any) -> None:
        record = await store.get_request(request_id)
        decision = {"kind": "deny", "reason": DECISION_REASON, "approver": APPROVER}
        await store.decide(
            request_id,
            decision=json.dumps(decision),
            decided_by="human",
            approver=APPROVER,
            bound_digest=record.args_digest,
            now=time.time(),
        )

    _store_call(url, work)


def _assert_safe(out: str) -> None:
    for char in RAW:
        assert char not in out, f"raw {char!r} reached the terminal"
    assert HIDDEN_MARKER in out.splitlines()


def _request_id(result: RunResult) -> str:
    [request] = result.pending_requests
    return request.request_id


def test_approvals_list_escapes_tool_args_rule_and_reason(env: Env, store_url: str) -> None:
    _pause(store_url)
    result = afk("approvals", "list")
    assert result.code == 0, result.err
    _assert_safe(result.out)
    assert 'unknown-tool "refund\\u202e\\u001b[2K"' in result.out
    # The exact arguments, escaped and whole.
    assert '{"amount":250,"note\\u200b":"pay \\u202eevil\\u009b[31m"}' in result.out
    assert "big\\u202e-refunds\\u001b]0;owned\\u0007" in result.out
    assert "Refunds\\u200b over 100\\u009b[2J" in result.out


def test_approvals_list_all_escapes_approver_and_decision_reason(env: Env, store_url: str) -> None:
    request = _request_id(_pause(store_url))
    _decide_in_store(store_url, request)
    result = afk("approvals", "list", "--all")
    assert result.code == 0, result.err
    _assert_safe(result.out)
    assert "deny: fine\\u200b\\u009b[0m" in result.out
    assert "bob\\u202e\\u001b[1A" in result.out


def test_approvals_show_escapes_every_field(env: Env, store_url: str) -> None:
    request = _request_id(_pause(store_url))
    _decide_in_store(store_url, request)
    result = afk("approvals", "show", request)
    assert result.code == 0, result.err
    out = result.out
    _assert_safe(out)
    assert '\ntool         unknown-tool "refund\\u202e\\u001b[2K"\n' in out
    assert '    "note\\u200b": "pay \\u202eevil\\u009b[31m"\n' in out  # pretty, exact, escaped
    assert "\nrule         big\\u202e-refunds\\u001b]0;owned\\u0007\n" in out
    assert "\nreason       Refunds\\u200b over 100\\u009b[2J\n" in out
    assert "\ndecision     deny: fine\\u200b\\u009b[0m\n" in out
    assert "\napprover     bob\\u202e\\u001b[1A\n" in out
    assert out.rstrip("\n").endswith(HIDDEN_MARKER)


def test_approvals_show_escapes_an_input_prompt(env: Env, store_url: str) -> None:
    request = _request_id(_pause(store_url, action="request_user_input"))
    out = afk("approvals", "show", request).out
    _assert_safe(out)
    assert "\nprompt          Why?\\u001b[1A\\r    approve? [y/N] y\n" in out


def test_plain_requests_get_no_marker(env: Env, store_url: str) -> None:
    async def go() -> None:
        runner = Runner(policy, config=RunnerConfig(interaction_mode="external"), store=store_url)
        try:
            await runner.run(billing_agent(amount=250, note="café — fine"), user_message="x")
        finally:
            assert runner.store is not None
            await runner.store.close()

    asyncio.run(go())
    out = afk("approvals", "list").out
    assert HIDDEN_MARKER not in out and "café — fine" in out


def test_json_output_is_ascii_and_exact(env: Env, store_url: str) -> None:
    request = _request_id(_pause(store_url))
    _decide_in_store(store_url, request)
    for argv in (
        ["approvals", "list", "--all", "--json"],
        ["approvals", "show", request, "--json"],
        ["runs", "list", "--json"],
    ):
        result = afk(*argv)
        assert result.code == 0, result.err
        assert result.out.isascii(), argv  # no raw bidi or C1 character reaches a terminal
    shown = afk("approvals", "show", request, "--json").json()
    assert (shown["tool_name"], shown["approver"]) == (TOOL, APPROVER)
    assert shown["request"]["tool_args"] == ARGS and shown["request"]["rule_id"] == RULE
    assert shown["decision"]["reason"] == DECISION_REASON


def test_runs_show_and_list_escape_run_text(env: Env, store_url: str) -> None:
    run = _pause(store_url)
    _decide_in_store(store_url, _request_id(run))
    shown = afk("runs", "show", run.run_id)
    assert shown.code == 0, shown.err
    _assert_safe(shown.out)
    assert "refund \\u202eplease" in shown.out  # the user message
    assert 'calls unknown-tool "refund\\u202e\\u001b[2K"({"amount":250' in shown.out
    assert "by rule big\\u202e-refunds" in shown.out  # the policy_decision event line
    assert "bob\\u202e\\u001b[1A" in shown.out
    listed = afk("runs", "list")
    assert listed.code == 0 and HIDDEN_MARKER not in listed.out  # nothing hidden in it


def test_grants_list_escapes_tool_scope_and_predicates(env: Env, store_url: str) -> None:
    _pause(store_url)  # creates the schema
    grant = GrantRecord(
        grant_id="grant_1",
        tool_name=TOOL,
        scope="user",
        scope_value="eve\u202e",
        when=json.dumps({"note\u200b": {"eq": "x\x9b"}}),
        until=time.time() + 600,
        created_by=APPROVER,
        created_at=time.time(),
    )
    _store_call(store_url, lambda store: store.add_grant(grant))
    result = afk("grants", "list")
    assert result.code == 0, result.err
    _assert_safe(result.out)
    assert 'unknown-tool "refund\\u202e\\u001b[2K"' in result.out
    assert "user=eve\\u202e" in result.out and '{"note\\u200b": {"eq": "x\\u009b"}}' in result.out
    assert "bob\\u202e\\u001b[1A" in result.out
    assert afk("grants", "list", "--json").out.isascii()


# -- the console prompt and event lines (no store) ---------------------------------------------
def _console(answer: str) -> tuple[ConsoleInteractionProvider, io.StringIO]:
    out = io.StringIO()
    return ConsoleInteractionProvider(out=out, read_line=lambda: answer), out


def _approval_request(tool_name: str) -> ApprovalRequest:
    return ApprovalRequest(
        request_id="req_1",
        run_id="run_1",
        step=1,
        agent_name="change-manager",
        tool_name=tool_name,
        tool_args={"name\u200b": "old_logs\u202e"},
        tool_call_id="call_1",
        rule_id="gate\x9b",
        reason="Destructive\r\n    rule:   harmless",
        created_at=0.0,
        expires_at=1.0,
    )


def test_console_prompt_cannot_be_forged_by_a_tool_name() -> None:
    provider, out = _console("n\n")
    forged = "drop_table\x1b[2K\r    tool: list_tables"
    decision = asyncio.run(provider.request_approval(_approval_request(forged)))
    assert decision.kind == "deny"
    written = out.getvalue()
    for char in RAW:
        assert char not in written
    tool_lines = [line for line in written.splitlines() if line.lstrip().startswith("tool:")]
    assert tool_lines == ['    tool:   unknown-tool "drop_table\\u001b[2K\\r    tool: list_tables"']
    rule_lines = [line for line in written.splitlines() if line.lstrip().startswith("rule:")]
    assert rule_lines == ["    rule:   gate\\u009b - Destructive\\r\\n    rule:   harmless"]
    assert '"name\\u200b": "old_logs\\u202e"' in written
    assert f"    {HIDDEN_MARKER}" in written.splitlines()


def test_console_prompt_for_a_plain_request_has_no_marker() -> None:
    provider, out = _console("y\n")
    assert asyncio.run(provider.request_approval(_plain_request())).kind == "allow"
    assert "    tool:   drop_table\n" in out.getvalue() and HIDDEN_MARKER not in out.getvalue()


def _plain_request() -> ApprovalRequest:
    return ApprovalRequest(
        request_id="req_2",
        run_id="run_1",
        step=1,
        agent_name="change-manager",
        tool_name="drop_table",
        tool_args={"name": "old_logs"},
        tool_call_id="call_2",
        rule_id="gate",
        reason="Destructive",
        created_at=0.0,
        expires_at=1.0,
    )


def test_console_input_prompt_is_escaped() -> None:
    provider, out = _console("because\n")
    request = UserInputRequest(
        request_id="req_3",
        run_id="run_1",
        step=1,
        agent_name="billing",
        tool_name="refund",
        tool_args={},
        tool_call_id="call_3",
        rule_id="ask",
        reason=PROMPT,
        created_at=0.0,
        expires_at=1.0,
        prompt=PROMPT,
    )
    assert asyncio.run(provider.request_user_input(request)).value == "because"
    written = out.getvalue()
    assert "\x1b" not in written and "\r" not in written
    assert "    Why?\\u001b[1A\\r    approve? [y/N] y\n" in written
    assert f"    {HIDDEN_MARKER}" in written.splitlines()


def test_event_lines_escape_and_mark_what_they_show() -> None:
    base: dict[str, Any] = {"run_id": "run_1", "seq": 1, "ts": 0.0, "step": 1}
    events: list[ev.Event] = [
        ev.ToolStarted(**base, tool_name=TOOL, tool_call_id="c", args=ARGS),
        ev.ToolCompleted(**base, tool_name=TOOL, tool_call_id="c", success=False, error=REASON),
        ev.PolicyDecisionEvent(
            **base,
            event_type="tool_before_execute",
            tool_name=TOOL,
            tool_call_id="c",
            action="request_approval",
            rule_id=RULE,
            matched_rules=(RULE,),
            reason=REASON,
        ),
        ev.LLMCompleted(**base, text="hi\u202e", tool_calls=(ToolCall(TOOL, ARGS),)),
        ev.RunCompleted(**base, state="completed", final_text="done\x9b"),
    ]
    for event in events:
        line = render(event)
        assert line is not None
        for char in RAW:
            assert char not in line, (event.type, line)
        assert "\n" not in line and line.endswith(f"  {HIDDEN_MARKER}"), line
    started = render(events[0])
    assert started is not None and started.startswith(
        'tool unknown-tool "refund\\u202e\\u001b[2K"({"amount":250,"note\\u200b":'
    )
    plain = render(ev.ToolStarted(**base, tool_name="refund", tool_call_id="c", args={}))
    assert plain == "tool refund({}) running"
