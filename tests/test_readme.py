"""What the README shows must work as shown."""

from __future__ import annotations

import re
from pathlib import Path

from afk.agents import PolicyEngine, PolicyEvent
from afk.core import Runner

README = Path(__file__).parents[1] / "README.md"


def test_the_readme_policy_file_loads_and_uses_every_feature(tmp_path: Path) -> None:
    [yaml_text] = re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml_text)
    engine = PolicyEngine.from_file(path)
    Runner(engine)  # its approver groups resolve
    rules = {r.rule_id: r for r in engine.rules}
    big = rules["big-refunds"]
    assert (big.quorum, big.approvers, big.escalate_to) == (2, ("group:finance",), ("group:cfo",))
    assert rules["no-prod-drops"].stop_run and rules["try-new-email-rule"].shadow
    assert rules["ask-why"].input_target_arg == "note"
    refund = PolicyEvent(
        tool_name="refund_order",
        agent_name="billing-eu",
        tool_args={"amount": 250, "currency": "USD"},
    )
    assert engine.evaluate(refund).action == "request_approval"
    small = PolicyEvent(tool_name="refund_order", agent_name="billing-eu", tool_args={"amount": 5})
    assert engine.evaluate(small).action == "allow"
    drop = PolicyEvent(tool_name="drop_table", tool_args={"database": "prod"})
    assert engine.evaluate(drop).action == "deny"
    model_call = PolicyEvent(event_type="llm_before_execute", context={"incident": True})
    assert engine.evaluate(model_call).action == "request_approval"
    calm = PolicyEvent(event_type="llm_before_execute", context={"incident": False})
    assert engine.evaluate(calm).action == "allow"
    email = PolicyEvent(tool_name="send_email", tool_args={"to": "x@competitor.com"})
    decision = engine.evaluate(email)
    assert decision.action == "allow" and decision.shadow[0].action == "deny"


def test_the_readme_has_exactly_the_two_setup_commands() -> None:
    text = README.read_text()
    assert "pip install . && afk demo" in text
    assert 'pip install -e ".[dev]" && python -m pytest' in text
