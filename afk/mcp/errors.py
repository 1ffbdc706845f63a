"""What can go wrong talking to an MCP server (drawn in ``afk/errors.py``'s tree).

A tool call that fails with one of these becomes the call's error, which the model reads
(``MCPConnectionError: ...``); the run goes on.
"""

from __future__ import annotations

from afk.errors import AfkError, ConfigurationError


class MCPNotInstalledError(ConfigurationError):
    """``afk.mcp`` was used without the ``mcp`` extra; the message is the install line."""


class MCPError(AfkError):
    """An MCP server could not be used: e.g. it lists a tool afk refuses (a name no model
    provider accepts, a schema that is not JSON Schema). ``server`` is the server's name."""

    def __init__(self, message: str, *, server: str) -> None:
        self.server = server
        super().__init__(message)


class MCPConnectionError(MCPError):
    """The server could not be started or reached, went away (crashed, closed the
    connection) or did not answer in time."""


class MCPToolError(MCPError):
    """The server failed or refused a tool call: a result with ``isError``, a protocol error
    (unknown arguments, say), or a result the SDK finds unusable (not matching the tool's
    ``outputSchema``). The session stays up. ``tool`` is the tool's name on the server."""

    def __init__(self, message: str, *, server: str, tool: str) -> None:
        self.tool = tool
        super().__init__(message, server=server)


__all__ = ["MCPConnectionError", "MCPError", "MCPNotInstalledError", "MCPToolError"]
