"""One live session to one MCP server, owned by a task of its own.

The SDK's client lives in anyio task groups, which must be entered and left by the same task.
Owning the client in a dedicated task lets any task (the one that opened the server, a tool
call, a run's parallel calls) use it and close it. Every wait here is bounded: connecting by
``connect_timeout_s``, each call by ``timeout_s``, closing by the SDK's own shutdown bounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import math
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from typing import Any

from afk.mcp._elicit import CURRENT
from afk.mcp._sdk import require
from afk.mcp.errors import MCPConnectionError, MCPError, MCPToolError

# Opens the SDK client on the stack (whose exit closes it) and returns it, connected.
Enter = Callable[[AsyncExitStack], Awaitable[Any]]
_MAX_PAGES = 100  # a server whose tools/list never ends cannot hang the connect
_CLOSE_WAIT_S = 10.0  # the SDK's shutdown is bounded itself; this only backs it up


class Session:
    """Connect with :meth:`start`, call tools with :meth:`call`, end with :meth:`close`.
    ``gone`` says why the session ended (None while it is up)."""

    def __init__(self, *, server: str, enter: Enter, connect_timeout_s: float) -> None:
        self._server, self._enter = server, enter
        self._connect_timeout_s = connect_timeout_s
        self._client: Any = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._serving = False  # connected and waiting for close(): it ends on its own then
        self.gone: str | None = None

    async def start(self) -> list[Any]:
        """Connect and list the server's tools (every page); raises MCPConnectionError."""
        ready: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        # A fresh context: what the connecting task had set (a tool call's, say) stays there.
        self._task = asyncio.create_task(
            self._own(ready), name=f"afk-mcp:{self._server}", context=contextvars.Context()
        )
        try:
            return await asyncio.wait_for(ready, self._connect_timeout_s)
        except TimeoutError:
            await self.close()
            raise MCPConnectionError(
                f"MCP server {self._server!r} did not finish connecting within "
                f"{self._connect_timeout_s}s",
                server=self._server,
            ) from None
        except BaseException:
            await self.close()
            raise

    async def _own(self, ready: asyncio.Future[list[Any]]) -> None:
        try:
            async with AsyncExitStack() as stack:
                client = await self._enter(stack)
                listing = await _list_tools(client, self._server)
                if ready.done():  # start() gave up waiting
                    return
                self._client = client
                ready.set_result(listing)
                self._serving = True
                await self._stop.wait()
        except Exception as exc:
            error = _connection_error(self._server, "the connection failed", exc)
            if not ready.done():
                ready.set_exception(error)
            self.gone = self.gone or str(error)
        finally:
            self._client = None
            self.gone = self.gone or "closed"

    async def call(self, remote: str, arguments: dict[str, Any], *, timeout_s: float) -> Any:
        """``tools/call``; the SDK's result. Raises MCPConnectionError (gone, crashed, no
        answer within ``timeout_s``) or MCPToolError (the server refused the call)."""
        client, sdk = self._client, require()
        if client is None:
            raise MCPConnectionError(
                f"MCP server {self._server!r} is not connected ({self.gone or 'not started'})",
                server=self._server,
            )
        closed, timed_out = sdk.types.CONNECTION_CLOSED, sdk.types.REQUEST_TIMEOUT
        where = f"MCP server {self._server!r}, tool {remote!r}"
        try:
            async with asyncio.timeout(timeout_s) as limit:
                pending = CURRENT.get()
                if pending is not None:  # an elicitation holds it while the human answers
                    pending.timeout = limit
                # Our timeout, not the SDK's per-request one, bounds the call: ours is held while
                # a human answers the server's elicitation (afk.mcp._elicit), the SDK's is not.
                return await client.call_tool(remote, arguments, read_timeout_seconds=math.inf)
        except TimeoutError:
            raise _timeout(where, timeout_s, self._server) from None
        except sdk.MCPError as exc:
            if exc.code == timed_out:
                raise _timeout(where, timeout_s, self._server) from None
            if exc.code == closed:
                self._lost("the server closed the connection (it exited or crashed)")
                raise MCPConnectionError(f"{where}: {self.gone}", server=self._server) from None
            raise MCPToolError(
                f"{where}: the server refused the call: {exc.message} (error {exc.code})",
                server=self._server,
                tool=remote,
            ) from None
        except (RuntimeError, ValueError) as exc:
            # The SDK's checks of the result (its outputSchema; pydantic's ValidationError is a
            # ValueError): this answer is unusable, the session is not.
            raise MCPToolError(
                f"{where}: the server's result is unusable: {_describe(exc)}",
                server=self._server,
                tool=remote,
            ) from None
        except Exception as exc:  # a broken pipe, an HTTP failure: the SDK raises them as is
            self._lost(f"the connection failed: {_describe(exc)}")
            raise MCPConnectionError(f"{where}: {self.gone}", server=self._server) from None

    def _lost(self, why: str) -> None:
        """The session cannot serve calls any more: end it (its task reaps the process)."""
        self.gone = self.gone or why
        self._client = None
        self._stop.set()

    async def close(self) -> None:
        """End the session and wait (bounded) until its transport is closed."""
        self._stop.set()
        task = self._task
        if task is None or task.done():
            return
        # Still connecting (a server that never answers): only cancelling stops that. The
        # SDK's transport still shuts down, shielded and bounded, as it unwinds.
        if self._serving:
            await asyncio.wait({task}, timeout=_CLOSE_WAIT_S)
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _list_tools(client: Any, server: str) -> list[Any]:
    tools: list[Any] = []
    cursor: str | None = None
    for _ in range(_MAX_PAGES):
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if cursor is None:
            return tools
    raise MCPError(
        f"MCP server {server!r} listed more than {_MAX_PAGES} pages of tools", server=server
    )


def _timeout(where: str, timeout_s: float, server: str) -> MCPConnectionError:
    return MCPConnectionError(f"{where}: no answer within {timeout_s}s (timeout_s)", server=server)


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


def _describe(exc: BaseException) -> str:
    """The leaf exceptions of what the SDK raised (task groups nest them), one line."""
    shown = dict.fromkeys(f"{type(e).__name__}: {e}".rstrip(": ") for e in _leaves(exc))
    return "; ".join(shown)


def _connection_error(server: str, what: str, exc: BaseException) -> MCPError:
    if isinstance(exc, MCPError):
        return exc
    return MCPConnectionError(f"MCP server {server!r}: {what}: {_describe(exc)}", server=server)
