"""An agent on an OpenAI-compatible server, whose refunds you approve at the terminal.

Works with OpenAI itself and with any server speaking the Chat Completions protocol (vLLM,
llama.cpp's server, LM Studio, Ollama's /v1, ...). From a checkout (``pip install -e .``):

    export OPENAI_API_KEY=sk-...                     # any non-empty text for a local server
    export OPENAI_BASE_URL=http://127.0.0.1:8000/v1  # leave unset for api.openai.com
    export OPENAI_MODEL=gpt-4o-mini                  # the server's model name (this default)
    python examples/openai_compatible.py "Order A-3001 arrived broken, please refund it"

The model may look orders up freely; a refund waits for you at the terminal (``y`` runs it,
anything else denies it, and the model is told why). Nothing else needs configuring: the
model name ``openai:NAME`` goes to the OpenAI adapter, which reads those variables.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from afk.agents import Agent, PolicyEngine, PolicyRule
from afk.cli.console_provider import ConsoleInteractionProvider
from afk.core import Runner, RunnerConfig
from afk.tools import tool

ORDERS = {"A-3001": {"item": "kettle", "amount": 40, "status": "delivered"}}


@tool
def lookup_order(order_id: str) -> dict[str, Any]:
    """Look an order up.

    Args:
        order_id: The order's id, such as A-3001.
    """
    order = ORDERS.get(order_id)
    if order is None:
        raise ValueError(f"no order {order_id!r}")
    return {"order_id": order_id, **order}


@tool
def refund(order_id: str, amount: int) -> str:
    """Refund an order.

    Args:
        order_id: The order to refund.
        amount: How much to refund, in dollars.
    """
    return f"refunded {amount} on {order_id}"


policy = PolicyEngine(
    [
        PolicyRule(
            "refunds-need-a-person",
            tool="refund",
            action="request_approval",
            reason="A person approves every refund.",
        )
    ]
)


def main(argv: list[str]) -> int:
    message = " ".join(argv) or "Order A-3001 arrived broken, please refund it"
    agent = Agent(
        name="support",
        model="openai:" + os.environ.get("OPENAI_MODEL", "gpt-4o-mini"),
        instructions="You help customers. Look orders up before refunding them.",
        tools=[lookup_order, refund],
    )
    runner = Runner(
        policy,
        ConsoleInteractionProvider(),
        RunnerConfig(interaction_mode="interactive", approval_timeout_s=300.0),
    )
    result = runner.run_sync(agent, user_message=message)
    for call in result.tool_executions:
        outcome = call.output if call.executed else f"not run: {call.error}"
        print(f"{call.tool_name}({call.args}): {outcome}")
    print(f"state: {result.state}")
    print(f"model: {result.final_text or result.error}")
    return 0 if result.state == "completed" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
