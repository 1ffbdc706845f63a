"""`afk policy test POLICY --events FILE`, driven through its own argparse registration."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from afk.cli import policy_cmd

POLICY = """\
version: 1
rules:
  - id: big-refunds
    tool: "refund*"
    when: {amount: {gt: 100}}
    action: request_approval
    reason: Refunds over 100 need finance sign-off.
    approvers: [group:finance]
  - id: no-drops
    tool: drop_*
    action: deny
    stop_run: true
  - id: trial
    tool: "*"
    action: deny
    shadow: true
"""

RECORDED_REQUEST = {
    "type": "approval_requested",
    "run_id": "run_1",
    "seq": 4,
    "ts": 1.0,
    "step": 1,
    "request": {
        "request_id": "req_1",
        "run_id": "run_1",
        "step": 1,
        "agent_name": "billing",
        "tool_name": "refund_card",
        "tool_args": {"amount": 40},
        "tool_call_id": "call_1",
        "rule_id": "old-rule",
        "reason": None,
        "created_at": 1.0,
        "expires_at": 2.0,
        "kind": "approval",
    },
}


def run(tmp_path: Path, events: list, *flags: str, policy: str = POLICY) -> int:
    (tmp_path / "policy.yaml").write_text(policy, encoding="utf-8")
    lines = [e if isinstance(e, str) else json.dumps(e) for e in events]
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    parser = argparse.ArgumentParser(prog="afk")
    policy_cmd.register(parser.add_subparsers(dest="command"))
    argv = ["policy", "test", str(tmp_path / "policy.yaml")]
    args = parser.parse_args([*argv, "--events", str(tmp_path / "events.jsonl"), *flags])
    code: int = args.func(args)
    return code


EVENTS = [
    {"tool_name": "refund_card", "tool_args": {"amount": 500}, "agent_name": "billing"},
    "",
    {"tool_name": "drop_users"},
    {"tool_name": "read_rows", "context": {"env": "dev"}},
    {"event_type": "llm_before_execute"},
]


def test_prints_one_table_row_per_event(tmp_path, capsys):
    assert run(tmp_path, EVENTS) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["LINE", "TOOL", "AGENT", "ACTION", "RULE", "REASON", "SHADOW"]
    assert lines[1].split()[:5] == [
        "1",
        "refund_card",
        "billing",
        "request_approval",
        "big-refunds",
    ]
    assert "Refunds over 100 need finance sign-off." in lines[1]
    assert "trial -> deny" in lines[1]
    assert lines[2].split()[:5] == ["3", "drop_users", "-", "deny", "no-drops"]
    assert lines[3].split()[:5] == ["4", "read_rows", "-", "allow", "(default)"]
    assert lines[4].split()[:5] == ["5", "(model", "call)", "-", "allow"]
    assert len(lines) == 5


def test_json_prints_one_object_per_event(tmp_path, capsys):
    assert run(tmp_path, EVENTS, "--json") == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["line"] for row in rows] == [1, 3, 4, 5]
    first = rows[0]
    assert first["event"]["tool_args"] == {"amount": 500}
    assert first["decision"]["action"] == "request_approval"
    assert first["decision"]["approvers"] == ["group:finance"]
    assert first["decision"]["shadow"] == [
        {
            "action": "deny",
            "rule_id": "trial",
            "reason": None,
            "source": "rule",
            "would_change": True,
        }
    ]
    assert first["recorded"] is None


def test_explain_prints_every_rule_per_event(tmp_path, capsys):
    assert run(tmp_path, EVENTS[:1], "--explain") == 0
    out = capsys.readouterr().out
    assert out.startswith("line 1: tool_before_execute: tool='refund_card'")
    assert "no: tool 'refund_card' does not match 'drop_*'" in out


def test_recorded_requests_are_reevaluated_and_other_run_events_skipped(tmp_path, capsys):
    skipped = {"type": "policy_decision", "run_id": "run_1", "seq": 3, "ts": 1.0}
    assert run(tmp_path, [skipped, RECORDED_REQUEST]) == 0
    captured = capsys.readouterr()
    header, row = captured.out.splitlines()
    assert header.split()[-1] == "RECORDED"
    assert row.split()[:4] == ["2", "refund_card", "billing", "allow"]
    assert row.endswith("request_approval (old-rule)")
    assert "skipped recorded events without a tool call to evaluate: policy_decision x1" in (
        captured.err
    )


def test_an_empty_events_file_says_so(tmp_path, capsys):
    assert run(tmp_path, []) == 0
    assert capsys.readouterr().out.strip() == "no events to evaluate"


@pytest.mark.parametrize(
    ("events", "needle"),
    [
        (["{not json"], "events.jsonl:1: invalid JSON"),
        ([[1, 2]], "events.jsonl:1: each line must be a JSON object"),
        ([{"tool": "x"}], "events.jsonl:1: unknown key 'tool'; accepted keys: event_type"),
        ([{"tool_args": [1]}], "events.jsonl:1: tool_args: wrong type list"),
        ([{"step": True}], "events.jsonl:1: step: wrong type bool"),
        ([{}, {"event_type": "nope"}], "events.jsonl:2: PolicyEvent.event_type must be one of"),
        ([{"type": "approval_requested"}], "needs a 'request' object"),
    ],
)
def test_a_malformed_events_file_exits_2(tmp_path, capsys, events, needle):
    assert run(tmp_path, events) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert needle in captured.err


def test_a_malformed_policy_exits_2_naming_file_rule_and_field(tmp_path, capsys):
    bad = "version: 1\nrules:\n  - id: x\n    action: maybe\n"
    assert run(tmp_path, [{}], policy=bad) == 2
    err = capsys.readouterr().err
    assert "policy.yaml: rules[0] (id 'x'): action: must be one of allow" in err


def test_a_missing_events_file_exits_2(tmp_path, capsys):
    (tmp_path / "policy.yaml").write_text(POLICY, encoding="utf-8")
    parser = argparse.ArgumentParser()
    policy_cmd.register(parser.add_subparsers())
    args = parser.parse_args(
        ["policy", "test", str(tmp_path / "policy.yaml"), "--events", str(tmp_path / "nope")]
    )
    assert args.func(args) == 2
    assert "cannot read the events file" in capsys.readouterr().err


def test_test_requires_events(capsys):
    parser = argparse.ArgumentParser()
    policy_cmd.register(parser.add_subparsers())
    with pytest.raises(SystemExit):
        parser.parse_args(["policy", "test", "p.yaml"])


# -- afk policy check ----------------------------------------------------------------------
def check(tmp_path: Path, text: str, *flags: str, name: str = "policy.yaml") -> int:
    (tmp_path / name).write_text(text, encoding="utf-8")
    parser = argparse.ArgumentParser(prog="afk")
    policy_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["policy", "check", str(tmp_path / name), *flags])
    code: int = args.func(args)
    return code


def test_check_a_valid_policy_summarizes_rules_by_action(tmp_path, capsys):
    assert check(tmp_path, POLICY) == 0
    head, *actions = capsys.readouterr().out.splitlines()
    assert head == f"{tmp_path / 'policy.yaml'}: valid: 3 rules, default action allow"
    assert actions == [
        "  request_approval  1  big-refunds",
        "  deny              2  no-drops, trial (shadow)",
    ]


def test_check_json(tmp_path, capsys):
    assert check(tmp_path, POLICY, "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["valid"] is True and summary["rules"] == 3
    assert summary["actions"] == {
        "request_approval": ["big-refunds"],
        "deny": ["no-drops", "trial (shadow)"],
    }


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            "version: 1\nrules:\n  - id: x\n    action: maybe\n",
            "rules[0] (id 'x'): action: must be one of allow",
        ),
        ("version: 7\nrules: []\n", "version"),
        ("rules: []\n", "version"),
        ("version: 1\nrules:\n  - {id: a, action: deny}\n  - {id: a, action: deny}\n", "'a'"),
    ],
)
def test_check_an_invalid_policy_exits_2_with_one_line(tmp_path, capsys, text, needle):
    assert check(tmp_path, text) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith(f"afk policy check: {tmp_path / 'policy.yaml'}")
    assert needle in line


def test_check_counts_the_errors_it_does_not_show(tmp_path, capsys):
    bad = "version: 1\nrules:\n  - id: x\n    action: maybe\n  - id: y\n    action: never\n"
    assert check(tmp_path, bad) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "rules[0] (id 'x')" in line and line.endswith("(and 1 more error)")


def test_check_a_missing_or_unsupported_file(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="afk")
    policy_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["policy", "check", str(tmp_path / "nope.yaml")])
    assert args.func(args) == 2
    assert "cannot read the policy file" in capsys.readouterr().err
    assert check(tmp_path, "{}", name="policy.txt") == 2
    assert "unsupported policy file type" in capsys.readouterr().err


MCP_POLICY = """\
version: 1
rules:
  - id: github-writes
    server: github
    annotations: {readOnlyHint: false}
    action: request_approval
  - id: destructive
    annotations: {destructiveHint: true}
    action: deny
    priority: 10
"""


def test_mcp_events_carry_server_and_annotations_with_the_spec_defaults(tmp_path, capsys):
    events = [
        {"tool_name": "github__list", "server": "github", "annotations": {"readOnlyHint": True}},
        {"tool_name": "github__comment", "server": "github", "annotations": {
            "readOnlyHint": False, "destructiveHint": False}},
        {"tool_name": "github__drop", "server": "github"},  # declares nothing: destructive
        {"tool_name": "local_drop"},  # not an MCP tool: no hints, no server
    ]  # fmt: skip
    assert run(tmp_path, events, "--json", policy=MCP_POLICY) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    decided = [(row["decision"]["action"], row["decision"]["rule_id"]) for row in rows]
    assert decided == [
        ("allow", None),
        ("request_approval", "github-writes"),
        ("deny", "destructive"),
        ("allow", None),
    ]
    assert rows[0]["event"]["server"] == "github"
    assert rows[0]["event"]["annotations"] == {
        "readOnlyHint": True,
        "destructiveHint": False,
        "idempotentHint": False,
        "openWorldHint": True,
    }
    assert rows[3]["event"]["annotations"] == {} and rows[3]["event"]["server"] is None


@pytest.mark.parametrize(
    ("event", "needle"),
    [
        ({"annotations": {"readOnly": True}}, "annotations: 'readOnly': True is not accepted"),
        ({"annotations": {"readOnlyHint": 1}}, "keys: readOnlyHint, destructiveHint"),
        ({"annotations": [1]}, "annotations: wrong type list"),
        ({"server": 5}, "server: wrong type int"),
    ],
)
def test_malformed_mcp_keys_exit_2_naming_the_field(tmp_path, capsys, event, needle):
    assert run(tmp_path, [event], policy=MCP_POLICY) == 2
    assert needle in capsys.readouterr().err
