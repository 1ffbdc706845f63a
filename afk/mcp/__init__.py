"""Tools from MCP servers, gated by policy like any other tool (the ``mcp`` extra).

``MCPServer.stdio(...)`` / ``MCPServer.http(...)`` describe a server; ``Agent(...,
mcp_servers=[server])`` offers its tools (named ``server__tool``); ``async with server:`` holds
its one session. Rules match the tools' annotations and their server::

    PolicyRule("gate-destructive", action="request_approval",
               annotations={"destructiveHint": True})
    PolicyRule("github-writes", action="request_approval", server="github",
               annotations={"readOnlyHint": False})

A server that asks its client for input during a call (elicitation, form mode) asks the
run's human: the call's ``ToolContext.request_input`` with the server's message as the prompt
and its ``requestedSchema`` as the input schema. Without a store the run's provider answers
inline (headless: the fallback, which the server hears as ``cancel``); with one it is a
durable request: the call's ``tools/call`` is cancelled, the run pauses, and once the human
answered the tool is entered again, so afk calls the server again from the start and hands
the recorded answer to the same elicitation. The server's work before its elicitation
therefore runs once per entry (the re-entry contract of :mod:`afk.core._tool_asks`): a
server should act only after its elicitations, or make that work idempotent. A denied
answer reaches the server as ``decline``, a fitting one as ``accept`` with its content.

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
