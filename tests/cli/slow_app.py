"""An application whose refund tool takes a while: ``--app tests.cli.slow_app:app``.

The tool writes ``start`` and ``end`` lines to $AFK_TEST_SIDE_EFFECTS, so a test can signal a
worker while the body runs and check that it ran to the end exactly once.
"""

from __future__ import annotations

import os
import time
from typing import Any

from afk.agents import Agent, PolicyEngine, PolicyRule
from afk.core import Runner, RunnerConfig
from afk.llms import ScriptedModel, ToolCall
from afk.tools import tool

APP = "tests.cli.slow_app:app"


def _note(line: str) -> None:
    with open(os.environ["AFK_TEST_SIDE_EFFECTS"], "a", encoding="utf-8") as out:
        out.write(line + "\n")


@tool
def slow_refund(amount: int) -> str:
    """Refund, slowly."""
    _note(f"start {amount}")
    time.sleep(float(os.environ.get("AFK_TEST_TOOL_SECONDS", "1.5")))
    _note(f"end {amount}")
    return f"refunded {amount}"


policy = PolicyEngine([PolicyRule("gate", tool="slow_refund", action="request_approval")])


def agent() -> Agent:
    call = ToolCall("slow_refund", {"amount": 250})
    return Agent("slow-billing", ScriptedModel([call, "Done."]), "You refund.", tools=[slow_refund])


def app() -> dict[str, Any]:
    return {
        "runner": Runner(policy, config=RunnerConfig(interaction_mode="external")),
        "agents": [agent()],
    }
