"""An MCP server's tools as the agent offers them: names, schemas, annotations."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from afk.agents import Agent
from afk.errors import ConfigurationError
from afk.mcp import SPEC_DEFAULTS, MCPConnectionError, MCPError, MCPServer


async def test_default_annotations_trust_and_include(
    stdio_shop: Callable[..., MCPServer],
) -> None:
    options: dict[str, Any] = {
        "default_annotations": {"destructiveHint": False, "openWorldHint": False},
        "trust_annotations": False,
        "include": ["list_orders", "add_note"],
    }
    async with stdio_shop(**options) as shop:
        tools = {t.remote_name: t for t in shop.tools}
        assert sorted(tools) == ["add_note", "list_orders"]
        # Untrusted: the server's readOnlyHint is ignored; the defaults decide.
        expected = {**SPEC_DEFAULTS, "destructiveHint": False, "openWorldHint": False}
        assert dict(tools["list_orders"].annotations) == expected
        assert dict(tools["add_note"].annotations) == expected


async def test_include_naming_a_tool_the_server_lacks_fails_the_connect(
    stdio_shop: Callable[..., MCPServer],
) -> None:
    shop = stdio_shop(include=["list_orders", "refund"])
    with pytest.raises(MCPError, match="has no tool 'refund'"):
        await shop.connect()
    assert not shop.connected


def test_bad_configuration_names_the_field() -> None:
    with pytest.raises(ConfigurationError, match="name 'git__hub' is invalid"):
        MCPServer.stdio("srv", name="git__hub")
    with pytest.raises(ConfigurationError, match=r"'dangerHint'.*keys: readOnlyHint"):
        MCPServer.stdio("srv", name="s", default_annotations={"dangerHint": True})
    with pytest.raises(ConfigurationError, match="timeout_s must be a positive number"):
        MCPServer.http("http://127.0.0.1:1/mcp", name="s", timeout_s=0)
    with pytest.raises(ConfigurationError, match="url must be an http"):
        MCPServer.http("ftp://x", name="s")
    server = MCPServer.stdio("srv", name="s")
    with pytest.raises(ConfigurationError, match="two MCP servers are named 's'"):
        Agent("a", "m", mcp_servers=[server, MCPServer.stdio("other", name="s")])
    with pytest.raises(ConfigurationError, match=r"mcp_servers must be afk\.mcp\.MCPServer"):
        Agent("a", "m", mcp_servers=["s"])  # type: ignore[list-item]


async def test_a_server_that_cannot_start_fails_the_connect_clearly(tmp_path: Any) -> None:
    missing = MCPServer.stdio(str(tmp_path / "no-such-server"), name="ghost")
    with pytest.raises(MCPConnectionError, match="MCP server 'ghost'"):
        await missing.connect()
    unreachable = MCPServer.http("http://127.0.0.1:9/mcp", name="nowhere", connect_timeout_s=5)
    with pytest.raises(MCPConnectionError, match="MCP server 'nowhere'"):
        await unreachable.connect()


async def test_a_server_that_never_answers_fails_the_connect_in_connect_timeout_s() -> None:
    # It reads its stdin to the end and says nothing: connecting must give up, not hang.
    mute = MCPServer.stdio(
        sys.executable, ["-c", "import sys; sys.stdin.read()"], name="mute", connect_timeout_s=0.5
    )
    started = time.monotonic()
    with pytest.raises(MCPConnectionError, match=r"did not finish connecting within 0\.5s"):
        await mute.connect()
    assert time.monotonic() - started < 5
    assert not mute.connected
