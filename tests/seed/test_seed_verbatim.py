"""Both seed examples, as written, after pointing "gpt-5.2-mini" at a scripted model."""

from __future__ import annotations

import subprocess
import sys

from seed_examples import HEADLESS, INTERACTIVE

SCRIPTED = """
from afk.llms import ScriptedModel, ToolCall, register_model
script = [ToolCall("drop_table", {"name": "old_logs"}), "Done."]
register_model("gpt-5.2-mini", ScriptedModel(script))
"""

HEADLESS_CHECKS = """
decisions = [e for e in result.events if e.type == "policy_decision"]
assert [(d.tool_name, d.action, d.rule_id) for d in decisions] == [
    ("drop_table", "request_approval", "gate-destructive-ops")
]
resolved = [e for e in result.events if e.type == "approval_resolved"]
assert [(r.decision.kind, r.decided_by) for r in resolved] == [("deny", "fallback")]
assert not any(e.type == "tool_started" for e in result.events)
assert result.tool_executions[0].denied and not result.tool_executions[0].executed
print("headless checks passed")
"""

APPROVE_FROM_ANOTHER_THREAD = """
import threading, time
from afk.tools import tool

ran = []

@tool
def drop_table(name: str) -> str:
    ran.append(name)
    return f"dropped {name}"

agent = Agent(
    name="change-manager",
    model="gpt-5.2-mini",
    instructions="You manage infrastructure changes. Always use available tools.",
    tools=[drop_table],
)

def human():
    while not provider.pending():
        time.sleep(0.001)
    request = provider.pending()[0]
    assert (request.tool_name, request.tool_args) == ("drop_table", {"name": "old_logs"})
    provider.resolve_approval(request.request_id, ApprovalDecision(kind="allow"))

threading.Thread(target=human).start()
result = runner.run_sync(agent, user_message="Drop old production tables")
assert result.state == "completed", result.error
assert ran == ["old_logs"], ran
print("interactive checks passed")
"""


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_headless_example_blocks_the_drop_and_audits_it() -> None:
    proc = _python(SCRIPTED + HEADLESS + HEADLESS_CHECKS)
    assert proc.returncode == 0, proc.stderr
    assert "State: completed" in proc.stdout
    assert "headless checks passed" in proc.stdout


def test_interactive_example_runs_the_approved_tool_exactly_once() -> None:
    proc = _python(SCRIPTED + HEADLESS + INTERACTIVE + APPROVE_FROM_ANOTHER_THREAD)
    assert proc.returncode == 0, proc.stderr
    assert "interactive checks passed" in proc.stdout
