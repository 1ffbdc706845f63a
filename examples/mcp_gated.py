"""An agent using an MCP server's tools, gated by the tools' own annotations.

Run it from a checkout (MCP servers need the mcp extra):

    pip install -e ".[mcp]"
    python examples/mcp_gated.py

The script starts the shop server beside it (examples/mcp_shop/server.py) over stdio. A
scripted model calls its three tools at once: ``list_orders`` says it is read-only and runs
unasked; ``cancel_order`` says it is destructive and ``add_note`` says nothing (so the MCP
spec's default, destructive, applies): both wait for a human. The script plays the human:
it allows the note and refuses the cancellation. Nothing waits: the run finishes on its own.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from afk.agents import Agent, ApprovalDecision, PolicyEngine, PolicyRule
from afk.core import ApprovalRequested, InMemoryInteractiveProvider, Runner, RunnerConfig
from afk.llms import ScriptedModel, ToolCall
from afk.mcp import MCPServer

SERVER = Path(__file__).with_name("mcp_shop") / "server.py"

shop = MCPServer.stdio(sys.executable, [str(SERVER)], name="shop")  # tools: shop__<tool>
policy = PolicyEngine(
    [
        PolicyRule(
            "gate-destructive-mcp-tools",
            action="request_approval",
            annotations={"destructiveHint": True},  # also matches tools that declare nothing
            reason="This tool may destroy data: a human decides.",
        ),
        PolicyRule(
            "shop-cancellations-by-alice",
            action="request_approval",
            server="shop",  # the MCP server's name, whatever its tools are called
            tool="*__cancel_order",
            approvers=("alice",),
            priority=10,
            reason="Only alice cancels orders.",
        ),
    ]
)
model = ScriptedModel(
    [
        [
            ToolCall("shop__list_orders", {"customer": "ada"}),
            ToolCall("shop__cancel_order", {"order_id": "A-1001"}),
            ToolCall("shop__add_note", {"order_id": "A-1002", "text": "ship together"}),
        ],
        "Done: listed, noted, and left A-1001 alone.",
    ]
)
agent = Agent("shop-assistant", model, "You help with orders.", mcp_servers=[shop])
provider = InMemoryInteractiveProvider()
runner = Runner(
    policy,
    interaction_provider=provider,
    config=RunnerConfig(interaction_mode="interactive", approval_timeout_s=60),
)


async def main() -> None:
    async with shop:  # one session to the server for the whole run; closed on the way out
        handle = runner.run_stream(agent, user_message="Tidy up ada's orders")
        async for event in handle:
            if isinstance(event, ApprovalRequested):
                request = event.request
                print(f"approval needed: {request.tool_name} {request.tool_args}", end=" ")
                print(f"(rule {request.rule_id})")
                allow = request.tool_name != "shop__cancel_order"
                provider.resolve_approval(
                    request.request_id,
                    ApprovalDecision(
                        kind="allow" if allow else "deny",
                        approver="alice",
                        reason="fine" if allow else "the customer still wants it",
                    ),
                )
        result = await handle.result()
    for call in result.tool_executions:
        outcome = call.output if call.success else call.error
        print(f"{call.tool_name:20} {outcome}")
    print(result.state, result.final_text)


if __name__ == "__main__":
    asyncio.run(main())
