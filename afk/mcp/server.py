"""An MCP server an agent takes tools from: how to reach it, one session, its tools.

::

    github = MCPServer.stdio("npx", ["-y", "@modelcontextprotocol/server-github"], name="github")
    agent = Agent("triage", model, tools=[...], mcp_servers=[github])
    async with github:  # connects and lists the tools; closes the session on the way out
        await runner.run(agent, user_message="...")

The agent offers each tool as ``github__create_issue`` (server name, ``__``, tool name); its
annotations and the server's name reach every policy rule (``annotations:``, ``server:``).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from afk.errors import ConfigurationError
from afk.mcp._elicit import Pending, call_or_stop, on_elicit
from afk.mcp._results import output_of
from afk.mcp._sdk import require
from afk.mcp._session import Session
from afk.mcp.errors import MCPConnectionError, MCPError
from afk.mcp.tool import MCPTool, check_hints, effective_annotations
from afk.tools.tool import ToolContext

# Letters, digits, '-' and single '_' (a '__' would make the tool names ambiguous).
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9\-]*(?:_[A-Za-z0-9\-]+)*", re.ASCII)
_NAME_TEXT = "letters, digits, '-' and single '_', starting with a letter, 1 to 32 characters"
# The SDK's protocol negotiation: the 2026 protocol where the server speaks it, else the
# legacy handshake. (Tests pin "legacy" to reach the back channel of a pre-2026 server.)
_CLIENT_MODE = "auto"


@dataclass(frozen=True, slots=True, kw_only=True)
class StdioTarget:
    """A server started as a subprocess, spoken to over its stdin and stdout."""

    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] | None = None
    cwd: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpTarget:
    """A server reached over streamable HTTP at ``url``."""

    url: str
    headers: Mapping[str, str] | None = None


class MCPServer:
    """One MCP server; build it with :meth:`stdio` or :meth:`http` and open it with
    ``async with server:`` (or :meth:`connect` / :meth:`aclose`) around the runs that use it.

    One session per server, opened by ``connect`` and shared by every call until ``aclose``.
    A server that crashes or stops answering fails the call with :class:`MCPConnectionError`
    (each call waits at most ``timeout_s``); its later calls fail at once until it is
    connected again.

    Annotations: a hint the tool leaves out takes ``default_annotations`` if given, else the
    MCP spec's default (``destructiveHint`` true, ``readOnlyHint`` false, ``openWorldHint`` true,
    ``idempotentHint`` false): an unannotated tool counts as destructive. Annotations come from
    the server; with ``trust_annotations=False`` its own hints are ignored and every tool gets
    the defaults. ``include`` offers only the named tools (names on the server).
    """

    def __init__(
        self,
        target: StdioTarget | HttpTarget,
        *,
        name: str,
        default_annotations: Mapping[str, bool] | None = None,
        trust_annotations: bool = True,
        include: Iterable[str] | None = None,
        timeout_s: float = 60.0,
        connect_timeout_s: float = 30.0,
    ) -> None:
        require()  # fails here, with the install line, rather than at the first run
        if not isinstance(target, StdioTarget | HttpTarget):
            raise ConfigurationError(
                "MCPServer(target) must be a StdioTarget or HttpTarget: "
                "use MCPServer.stdio(...) or MCPServer.http(...)"
            )
        if not isinstance(name, str) or len(name) > 32 or _NAME.fullmatch(name) is None:
            raise ConfigurationError(f"MCPServer name {name!r} is invalid: use {_NAME_TEXT}")
        for label, value in (("timeout_s", timeout_s), ("connect_timeout_s", connect_timeout_s)):
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not (math.isfinite(value) and value > 0)
            ):
                raise ConfigurationError(
                    f"MCPServer {name!r}: {label} must be a positive number of seconds, "
                    f"got {value!r}"
                )
        if not isinstance(trust_annotations, bool):
            raise ConfigurationError(
                f"MCPServer {name!r}: trust_annotations must be true or false, "
                f"got {trust_annotations!r}"
            )
        self.name = name
        self.target = target
        self.default_annotations: Mapping[str, bool] = MappingProxyType(
            check_hints(default_annotations, f"MCPServer {name!r}: default_annotations")
        )
        self.trust_annotations = trust_annotations
        self.include: frozenset[str] | None = _names(include, name)
        self.timeout_s = float(timeout_s)
        self.connect_timeout_s = float(connect_timeout_s)
        self._session: Session | None = None
        self._tools: tuple[MCPTool, ...] | None = None
        self._calls: list[Pending] = []  # in flight: whose a back-channel elicitation is

    @classmethod
    def stdio(
        cls,
        command: str,
        args: Sequence[str] = (),
        *,
        name: str,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        **options: Any,
    ) -> MCPServer:
        """A server run as ``command *args`` (``env`` merged over a minimal environment: the
        SDK passes on only PATH, HOME and the like, never your secrets, unless you add them).
        ``options`` are :class:`MCPServer`'s (``default_annotations``, ``timeout_s``, ...)."""
        if not isinstance(command, str) or not command:
            raise ConfigurationError("MCPServer.stdio: command must be a non-empty string")
        if isinstance(args, str) or not all(isinstance(a, str) for a in args):
            raise ConfigurationError("MCPServer.stdio: args must be a list of strings")
        target = StdioTarget(command=command, args=tuple(args), env=_strings(env, "env"), cwd=cwd)
        return cls(target, name=name, **options)

    @classmethod
    def http(
        cls,
        url: str,
        *,
        name: str,
        headers: Mapping[str, str] | None = None,
        **options: Any,
    ) -> MCPServer:
        """A server at ``url`` over streamable HTTP, every request carrying ``headers`` (e.g.
        an ``Authorization``). ``options`` as for :meth:`stdio`."""
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"MCPServer.http: url must be an http(s) URL, got {url!r}")
        return cls(HttpTarget(url=url, headers=_strings(headers, "headers")), name=name, **options)

    # -- the session ---------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """Whether the session is up (connected, and not lost since)."""
        return self._session is not None and self._session.gone is None

    async def connect(self) -> None:
        """Start (or reach) the server, open the session and list its tools. Raises
        :class:`MCPConnectionError` when it cannot, :class:`MCPError` when afk refuses a tool."""
        if self.connected:
            raise MCPError(f"MCP server {self.name!r} is already connected", server=self.name)
        await self.aclose()  # a session lost earlier: its leftovers go first
        session = Session(
            server=self.name,
            enter=self._open_client,
            connect_timeout_s=self.connect_timeout_s,
        )
        listing = await session.start()
        try:
            tools = self._tools_of(listing)
        except BaseException:
            await session.close()
            raise
        self._session, self._tools = session, tools

    async def aclose(self) -> None:
        """Close the session (stopping a stdio server); the tools are gone until
        :meth:`connect` again. Closing a closed server does nothing."""
        session, self._session, self._tools = self._session, None, None
        if session is not None:
            await session.close()

    async def __aenter__(self) -> MCPServer:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def tools(self) -> tuple[MCPTool, ...]:
        """The server's tools as listed when it connected (``include`` applied). Raises
        :class:`MCPConnectionError` when the server is not open."""
        if self._tools is None:
            raise MCPConnectionError(
                f"MCP server {self.name!r} is not connected: open it with "
                "`async with server:` around the runs that use its tools",
                server=self.name,
            )
        return self._tools

    async def _open_client(self, stack: AsyncExitStack) -> Any:
        sdk = require()
        target = self.target
        transport: Any
        if isinstance(target, StdioTarget):
            transport = sdk.StdioServerParameters(
                command=target.command,
                args=list(target.args),
                env=dict(target.env) if target.env is not None else None,
                cwd=target.cwd,
            )
        else:
            import httpx2  # the SDK's HTTP client, installed with it
            from mcp.client.streamable_http import streamable_http_client

            # The SDK's own defaults (a long read for its event stream), with our connect bound.
            timeout = httpx2.Timeout(self.connect_timeout_s, read=max(300.0, self.timeout_s))
            http = httpx2.AsyncClient(headers=dict(target.headers or {}), timeout=timeout)
            await stack.enter_async_context(http)
            transport = streamable_http_client(target.url, http_client=http)
        client = sdk.Client(
            transport,
            read_timeout_seconds=self.timeout_s,
            cache=None,
            mode=_CLIENT_MODE,
            elicitation_callback=functools.partial(on_elicit, calls=self._calls),
        )
        return await stack.enter_async_context(client)

    def _tools_of(self, listing: list[Any]) -> tuple[MCPTool, ...]:
        remote = {t.name for t in listing}
        missing = sorted((self.include or frozenset()) - remote)
        if missing:
            raise MCPError(
                f"MCP server {self.name!r} has no tool {', '.join(map(repr, missing))} "
                f"(include=); it lists {', '.join(sorted(remote)) or 'none'}",
                server=self.name,
            )
        tools: dict[str, MCPTool] = {}
        for listed in listing:
            if self.include is not None and listed.name not in self.include:
                continue
            made = self._tool(listed)
            if made.name in tools:
                raise MCPError(
                    f"MCP server {self.name!r} lists two tools named {listed.name!r}",
                    server=self.name,
                )
            tools[made.name] = made
        return tuple(tools.values())

    def _tool(self, listed: Any) -> MCPTool:
        declared: dict[str, Any] = {}
        if listed.annotations is not None:
            declared = listed.annotations.model_dump(by_alias=True, exclude_none=True)
        return MCPTool(
            server=self.name,
            remote_name=listed.name,
            description=listed.description or listed.title or "",
            input_schema=listed.input_schema,
            annotations=effective_annotations(
                declared, self.default_annotations, trust=self.trust_annotations
            ),
            declared_annotations=declared,
            call=self._call_tool,
        )

    async def _call_tool(self, remote: str, arguments: dict[str, Any], ctx: ToolContext) -> Any:
        session = self._session
        if session is None:
            raise MCPConnectionError(
                f"MCP server {self.name!r} is not connected (tool {remote!r})", server=self.name
            )
        # An elicitation the server sends during the call is the call's request_input.
        pending = Pending(ctx=ctx, timeout_s=self.timeout_s)
        call = session.call(remote, arguments, timeout_s=self.timeout_s)
        result = await call_or_stop(pending, call, calls=self._calls)
        return output_of(result, server=self.name, tool=remote)

    def __repr__(self) -> str:
        return f"MCPServer(name={self.name!r}, target={self.target!r})"


def _names(include: Iterable[str] | None, server: str) -> frozenset[str] | None:
    if include is None:
        return None
    names = [include] if isinstance(include, str) else list(include)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ConfigurationError(
            f"MCPServer {server!r}: include must be a non-empty list of tool names, got {include!r}"
        )
    return frozenset(names)


def _strings(value: Mapping[str, str] | None, what: str) -> Mapping[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigurationError(f"MCPServer: {what} must be a mapping of strings to strings")
    return MappingProxyType(dict(value))


__all__ = ["HttpTarget", "MCPServer", "StdioTarget"]
