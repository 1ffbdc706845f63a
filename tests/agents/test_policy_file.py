"""PolicyEngine.from_file / from_dict: YAML and JSON policy files, and their error messages."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from afk.agents.policy import PolicyEngine, PolicyEvent
from afk.errors import ConfigurationError

EXAMPLE = """\
version: 1
default_action: allow
shadow: false
rules:
  - id: big-refunds
    tool: "refund*"            # glob or list of globs
    when: {amount: {gt: 100}}
    agent: "billing-*"
    context: {env: prod}
    action: request_approval
    reason: Refunds over 100 need finance sign-off.
    approvers: [group:finance]
    quorum: 2
    allow_self_approval: false
    expires_after_s: 14400
    priority: 10
    event_types: [tool_before_execute]
    stop_run: false
    shadow: false
  - id: no-drops
    tool: [drop_*, truncate]
    action: deny
    stop_run: true
"""

BIG_REFUND = PolicyEvent(
    tool_name="refund_card",
    tool_args={"amount": 250},
    agent_name="billing-eu",
    context={"env": "prod"},
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_of(tmp_path: Path, name: str, text: str) -> str:
    with pytest.raises(ConfigurationError) as info:
        PolicyEngine.from_file(write(tmp_path, name, text))
    return str(info.value)


def dict_error(data: object) -> str:
    with pytest.raises(ConfigurationError) as info:
        PolicyEngine.from_dict(data, source="policy.yaml")
    return str(info.value)


# -- loading ---------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_the_documented_yaml_example_loads(tmp_path, suffix):
    engine = PolicyEngine.from_file(write(tmp_path, "policy" + suffix, EXAMPLE))
    decision = engine.evaluate(BIG_REFUND)
    assert decision.action == "request_approval"
    assert decision.rule_id == "big-refunds"
    assert decision.reason == "Refunds over 100 need finance sign-off."
    assert (decision.approvers, decision.quorum, decision.expires_after_s) == (
        ("group:finance",),
        2,
        14400,
    )
    drop = engine.evaluate(PolicyEvent(tool_name="drop_users"))
    assert (drop.action, drop.stop_run) == ("deny", True)
    assert engine.evaluate(PolicyEvent(tool_name="read")).action == "allow"


def test_json_and_yaml_give_the_same_engine(tmp_path):
    import yaml

    data = yaml.safe_load(EXAMPLE)
    from_json = PolicyEngine.from_file(write(tmp_path, "policy.json", json.dumps(data)))
    from_yaml = PolicyEngine.from_file(write(tmp_path, "policy.yaml", EXAMPLE))
    assert from_json.rules == from_yaml.rules
    assert from_json.evaluate(BIG_REFUND) == from_yaml.evaluate(BIG_REFUND)


def test_from_dict_accepts_a_document_and_top_level_settings():
    engine = PolicyEngine.from_dict(
        {"version": 1, "default_action": "deny", "shadow": True, "rules": []}
    )
    assert (engine.default_action, engine.shadow, engine.rules) == ("deny", True, ())
    assert PolicyEngine.from_dict({"version": 1}).evaluate(BIG_REFUND).action == "allow"


def test_from_dict_accepts_tuples_from_python_callers():
    engine = PolicyEngine.from_dict(
        {"version": 1, "rules": ({"id": "r", "tool": ("a", "b"), "action": "deny"},)}
    )
    assert engine.evaluate(PolicyEvent(tool_name="b")).action == "deny"


def test_a_single_event_type_may_be_a_string():
    engine = PolicyEngine.from_dict(
        {
            "version": 1,
            "rules": [{"id": "m", "action": "deny", "event_types": "llm_before_execute"}],
        }
    )
    assert engine.covers("llm_before_execute")


# -- malformed documents ---------------------------------------------------------------------
def test_a_bad_action_names_file_rule_field_and_accepted_values():
    rules = [{"id": f"r{i}", "action": "deny"} for i in range(2)]
    rules.append({"id": "x", "action": "maybe"})
    assert dict_error({"version": 1, "rules": rules}) == (
        "policy.yaml: rules[2] (id 'x'): action: must be one of allow, deny, request_approval,"
        " request_user_input, got 'maybe'"
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"version": 2}, "policy.yaml: version: must be 1"),
        ({"rules": []}, "policy.yaml: missing required key 'version'"),
        ({"version": 1, "rule": []}, "policy.yaml: unknown key 'rule'; accepted keys: version"),
        ({"version": 1, "default_action": "block"}, "default_action: must be one of allow"),
        ({"version": 1, "shadow": "no"}, "policy.yaml: shadow: must be true or false"),
        ({"version": 1, "rules": {"id": "x"}}, "policy.yaml: rules: must be a list of rules"),
        ({"version": 1, "rules": ["deny"]}, "rules[0]: must be a mapping"),
        ({"version": 1, "rules": [{"action": "deny"}]}, "rules[0]: missing required key 'id'"),
        (
            {"version": 1, "rules": [{"id": "x", "action": "deny", "tools": "a"}]},
            "rules[0] (id 'x'): unknown key 'tools'; accepted keys: id, description, tool",
        ),
        (
            {"version": 1, "rules": [{"id": "x", "action": "deny", "tool": 5}]},
            "rules[0] (id 'x'): tool: must be a glob string or a non-empty list of glob strings",
        ),
        (
            {"version": 1, "rules": [{"id": "x", "action": "deny", "priority": "high"}]},
            "rules[0] (id 'x'): priority: must be an integer, got 'high'",
        ),
        (
            {"version": 1, "rules": [{"id": "x", "action": "deny", "event_types": ["tool"]}]},
            "event_types: must be one of tool_before_execute, llm_before_execute",
        ),
        (
            {"version": 1, "rules": [{"id": "x", "action": "deny", "event_types": "tool"}]},
            "event_types: entries must be among tool_before_execute, llm_before_execute",
        ),
        (
            {"version": 1, "rules": [{"id": "x", "action": "deny", "when": {"a": {"gtt": 1}}}]},
            "rules[0] (id 'x'): when: 'a': unknown operator 'gtt'; accepted: eq, ne, gt",
        ),
        (
            {
                "version": 1,
                "rules": [{"id": "x", "action": "deny", "context": {"a": {"regex": "("}}}],
            },
            "rules[0] (id 'x'): context: 'a': regex: invalid regular expression",
        ),
        (
            {"version": 1, "rules": [{"id": "x", "action": "deny", "approvers": ["bob"]}]},
            "rules[0] (id 'x'): approvers: goes only with action 'request_approval'",
        ),
        (
            {"version": 1, "rules": [{"id": "x", "action": "allow", "stop_run": True}]},
            "rules[0] (id 'x'): stop_run: true goes only with action 'deny'",
        ),
        (
            {"version": 1, "rules": [{"id": "", "action": "deny"}]},
            "rules[0] (id ''): id: must be a non-empty string",
        ),
        (
            {
                "version": 1,
                "rules": [{"id": "x", "action": "deny"}, {"id": "x", "action": "allow"}],
            },
            "policy.yaml: rules[1] (id 'x'): id: duplicate rule id, first used by rules[0]",
        ),
        ([], "policy.yaml: the top level must be a mapping"),
        (None, "got nothing (empty document)"),
    ],
)
def test_malformed_documents_say_where_and_what(data, expected):
    assert expected in dict_error(data)


def test_every_schema_error_is_reported_at_once():
    message = dict_error(
        {
            "version": 1,
            "rules": [
                {"id": "a", "action": "nope"},
                {"id": "b", "action": "deny", "enabled": "yes"},
            ],
        }
    )
    assert "rules[0] (id 'a'): action" in message
    assert "rules[1] (id 'b'): enabled: must be true or false" in message


def test_a_late_error_still_yields_no_engine(tmp_path):
    good = [{"id": f"r{i}", "action": "allow"} for i in range(50)]
    data = {"version": 1, "rules": [*good, {"id": "bad", "action": "deny", "when": {"a": []}}]}
    assert "rules[50] (id 'bad'): when" in dict_error(data)


# -- malformed files -------------------------------------------------------------------------
def test_yaml_syntax_errors_give_file_and_line(tmp_path):
    message = error_of(tmp_path, "p.yaml", "version: 1\nrules:\n  - id: [unclosed\n")
    assert message.startswith(str(tmp_path / "p.yaml") + ": line ")
    assert "invalid YAML" in message


def test_duplicate_yaml_keys_are_refused(tmp_path):
    text = "version: 1\nrules:\n  - id: a\n    action: allow\n    action: deny\n"
    message = error_of(tmp_path, "p.yaml", text)
    assert "line 5: duplicate key 'action'" in message


def test_yaml_anchors_and_merges_still_work(tmp_path):
    text = """\
    version: 1
    rules:
      - &base {id: a, action: deny, tool: x}
      - {<<: *base, id: b, tool: y}
    """
    engine = PolicyEngine.from_file(write(tmp_path, "p.yaml", text))
    assert engine.evaluate(PolicyEvent(tool_name="y")).rule_id == "b"


def test_json_syntax_errors_and_duplicate_keys(tmp_path):
    assert "line 2 column" in error_of(tmp_path, "p.json", '{"version": 1,\n "rules": [}')
    message = error_of(tmp_path, "p.json", '{"version": 1, "version": 1}')
    assert "p.json: duplicate key 'version'" in message


def test_empty_and_non_mapping_files(tmp_path):
    assert "empty document" in error_of(tmp_path, "p.yaml", "")
    assert "got list" in error_of(tmp_path, "p.yaml", "- a\n- b\n")


def test_unsupported_extensions_and_missing_files(tmp_path):
    assert "use .yaml, .yml or .json" in error_of(tmp_path, "policy.toml", "version = 1")
    with pytest.raises(ConfigurationError, match="cannot read"):
        PolicyEngine.from_file(tmp_path / "absent.yaml")


def test_yaml_without_pyyaml_says_what_to_install(tmp_path, monkeypatch):
    path = write(tmp_path, "p.yaml", "version: 1\n")
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(ConfigurationError, match=r"install afk-agents\[yaml\]"):
        PolicyEngine.from_file(path)


def test_importing_afk_agents_imports_no_parser_or_validator():
    code = (
        "import sys, afk.agents, afk.agents.policy; "
        "print(sorted(m for m in ('yaml', 'jsonschema', 'pydantic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
