"""A server that crashes mid-call, a server over streamable HTTP, and afk without the extra."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from mcp_support import ran

from afk.agents import Agent, PolicyEngine, PolicyRule
from afk.core import Runner
from afk.llms import ScriptedModel, ToolCall
from afk.mcp import MCPServer


async def test_a_server_that_crashes_mid_call_fails_the_call_and_the_run_goes_on(
    stdio_shop: Callable[..., MCPServer], ledger: Path
) -> None:
    turns = [
        ToolCall("shop__crash", {}),
        ToolCall("shop__delete_order", {"order": "o-1"}),
        "Done.",
    ]
    started = time.monotonic()
    async with stdio_shop() as shop:
        agent = Agent("clerk", ScriptedModel(turns), mcp_servers=[shop])
        result = await asyncio.wait_for(Runner().run(agent, user_message="x"), 15)
        assert not shop.connected
    assert time.monotonic() - started < 15
    assert result.state == "completed", result.error
    crashed, after = result.tool_executions
    assert crashed.executed and not crashed.success
    assert crashed.error == (
        "MCPConnectionError: MCP server 'shop', tool 'crash': the server closed the connection "
        "(it exited or crashed)"
    )
    # The next call fails at once: the session is gone and is not silently reopened.
    assert after.error is not None and "MCPConnectionError: MCP server 'shop' is not connected" in (
        after.error
    )
    assert ran(ledger) == []
    assert result.final_text == "Done."


async def test_a_server_over_streamable_http_is_gated_the_same_way(
    http_url: str, ledger: Path
) -> None:
    server = MCPServer.http(http_url, name="shop", headers={"X-Tenant": "acme"})
    rule = PolicyRule("gate", action="deny", server="shop", annotations={"readOnlyHint": False})
    turns = [
        [
            ToolCall("shop__list_orders", {"customer": "ada"}),
            ToolCall("shop__delete_order", {"order": "o-1"}),
            ToolCall("shop__whoami", {}),
        ],
        "Done.",
    ]
    async with server:
        assert {t.name for t in server.tools} >= {"shop__list_orders", "shop__delete_order"}
        agent = Agent("clerk", ScriptedModel(turns), mcp_servers=[server])
        result = await asyncio.wait_for(
            Runner(PolicyEngine([rule])).run(agent, user_message="x"), 15
        )
    listed, deleted, whoami = result.tool_executions
    assert listed.output == {"result": "orders of ada: o-1, o-2"}
    assert whoami.output == {"result": "acme"}  # every request carried the headers
    assert deleted.denied and not deleted.executed
    assert ran(ledger) == []
    assert not server.connected


def test_without_the_extra_building_a_server_names_the_install_line() -> None:
    code = (
        "import sys; sys.modules['mcp'] = None\n"
        "from afk.mcp import MCPServer, MCPNotInstalledError\n"
        "try:\n"
        "    MCPServer.stdio('srv', name='s')\n"
        "except MCPNotInstalledError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (
        "install afk-agents[mcp] to use afk.mcp.MCPServer (it needs the mcp SDK)"
    )
