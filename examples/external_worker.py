"""External mode: a run pauses on disk, you approve it from the shell, a worker resumes it.

From a checkout (``pip install -e .``), in the examples directory (so that ``--app
external_worker:app`` imports this file):

    cd examples
    export AFK_STORE=sqlite:///external.db       # or a postgresql:// URL, see the README
    python external_worker.py                    # starts a refund run; it pauses
    afk approvals list
    afk approvals approve REQ --reason "invoice checked"   # REQ: the id printed above
    afk worker --once --app external_worker:app  # resumes it; the refund runs
    python external_worker.py --paid             # it ran exactly once

Nothing waits in memory between these commands: each is its own process, and the run lives
in the store. The request waits until it is decided or expires (external mode default:
3 days, ``approval_timeout_s``). ``afk approvals approve`` decides as your OS account;
``afk worker`` without ``--once`` keeps resuming runs as decisions come in.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from afk.agents import Agent, PolicyEngine, PolicyRule
from afk.core import Runner, RunnerConfig
from afk.llms import ScriptedModel, ToolCall
from afk.tools import tool

PAID = Path("paid.jsonl")  # the refund's side effect, in the current directory


@tool
def refund(order_id: str, amount: int) -> str:
    """Refund an order.

    Args:
        order_id: The order to refund.
        amount: How much to refund, in dollars.
    """
    with PAID.open("a", encoding="utf-8") as out:
        out.write(json.dumps({"order_id": order_id, "amount": amount}) + "\n")
    return f"refunded {amount} on {order_id}"


policy = PolicyEngine(
    [
        PolicyRule(
            "big-refunds",
            tool="refund",
            when={"amount": {"gt": 100}},
            action="request_approval",
            reason="Refunds over 100 need a person's approval.",
        )
    ]
)
# The scripted model picks its turn from the conversation, so it resumes in any process.
model = ScriptedModel([ToolCall("refund", {"order_id": "A-2001", "amount": 250}), "Refunded."])
agent = Agent(name="billing", model=model, instructions="You refund orders.", tools=[refund])


def app() -> dict[str, Any]:
    """What ``afk worker --app external_worker:app`` resumes runs with (store: AFK_STORE)."""
    runner = Runner(policy, config=RunnerConfig(interaction_mode="external"))
    return {"runner": runner, "agents": [agent]}


async def start() -> None:
    async with app()["runner"] as runner:
        result = await runner.run(agent, user_message="Refund order A-2001", requested_by="erin")
    print(f"run {result.run_id}: {result.state}")
    for request in result.pending_requests:
        print(f"waiting for request {request.request_id}: {request.reason}")
    print("next: afk approvals approve REQUEST, then afk worker --once --app external_worker:app")


def main(argv: list[str]) -> int:
    if argv == ["--paid"]:
        lines = PAID.read_text().splitlines() if PAID.exists() else []
        print(f"{len(lines)} refund(s) paid: {', '.join(lines) or '-'}")
        return 0
    if argv:
        print("usage: python external_worker.py [--paid]", file=sys.stderr)
        return 2
    asyncio.run(start())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
