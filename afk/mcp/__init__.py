"""Tools from MCP servers, gated by policy like any other tool (the ``mcp`` extra).

``MCPServer.stdio(...)`` / ``MCPServer.http(...)`` describe a server; ``Agent(...,
mcp_servers=[server])`` offers its tools (named ``server__tool``); ``async with server:`` holds
its one session. Rules match the tools' annotations and their server::

    PolicyRule("gate-destructive", action="request_approval",
               annotations={"destructiveHint": True})
    PolicyRule("github-writes", action="request_approval", server="github",
               annotations={"readOnlyHint": False})

Importing this package needs nothing; building an ``MCPServer`` without the extra raises
:class:`MCPNotInstalledError` with the install line.
"""

from afk.mcp.errors import MCPConnectionError, MCPError, MCPNotInstalledError, MCPToolError
from afk.mcp.server import HttpTarget, MCPServer, StdioTarget
from afk.mcp.tool import HINTS, SEPARATOR, SPEC_DEFAULTS, MCPTool

__all__ = [
    "HINTS",
    "SEPARATOR",
    "SPEC_DEFAULTS",
    "HttpTarget",
    "MCPConnectionError",
    "MCPError",
    "MCPNotInstalledError",
    "MCPServer",
    "MCPTool",
    "MCPToolError",
    "StdioTarget",
]
