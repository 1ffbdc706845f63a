"""How an :class:`~afk.agents.Agent` takes its MCP servers' tools (no SDK import here)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from afk.errors import ConfigurationError
from afk.mcp.server import MCPServer
from afk.tools.tool import Tool


def check_servers(agent: str, servers: Iterable[Any]) -> tuple[MCPServer, ...]:
    """``servers`` as a tuple; raises ConfigurationError for anything but distinctly named
    MCPServers."""
    if isinstance(servers, MCPServer):
        servers = [servers]
    found = tuple(servers)
    names: set[str] = set()
    for server in found:
        if not isinstance(server, MCPServer):
            raise ConfigurationError(
                f"Agent {agent!r}: mcp_servers must be afk.mcp.MCPServer objects, "
                f"got {type(server).__name__}"
            )
        if server.name in names:
            raise ConfigurationError(f"Agent {agent!r}: two MCP servers are named {server.name!r}")
        names.add(server.name)
    return found


def merged_tools(
    agent: str, own: Mapping[str, Tool], servers: Iterable[MCPServer]
) -> dict[str, Tool]:
    """The agent's own tools, then each server's as it listed them when it connected. Raises
    MCPConnectionError for a server that is not open, ConfigurationError for a name clash."""
    tools = dict(own)
    for server in servers:
        for listed in server.tools:
            if listed.name in tools:
                raise ConfigurationError(
                    f"Agent {agent!r}: two tools are named {listed.name!r} "
                    f"(one from MCP server {server.name!r})"
                )
            tools[listed.name] = listed
    return tools
