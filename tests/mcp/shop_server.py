"""A small MCP server for the tests, built with the SDK's own server API.

Run as a script it serves stdio (``python shop_server.py``); ``build()`` gives the app for
streamable HTTP. Every tool that changes something appends a line to ``$SHOP_LEDGER``, so a
test can count what really ran on the server.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

from mcp.server.mcpserver import Context, Elicit, ElicitationResult, MCPServer, Resolve
from mcp.types import ToolAnnotations
from pydantic import BaseModel


class Reason(BaseModel):
    """What the server asks the human for before it cancels."""

    reason: str


def ask_reason(order: str) -> Elicit[Reason]:
    return Elicit(f"Why cancel {order}?", Reason)


def _record(line: str) -> None:
    ledger = os.environ.get("SHOP_LEDGER")
    if ledger:
        with Path(ledger).open("a", encoding="utf-8") as out:
            out.write(line + "\n")


def build() -> MCPServer:
    """The shop: a read-only tool, a destructive one, an unannotated one, and misbehaviours."""
    app: MCPServer = MCPServer("shop")

    @app.tool(annotations=ToolAnnotations(readOnlyHint=True))
    def list_orders(customer: str) -> str:
        """List a customer's orders."""
        return f"orders of {customer}: o-1, o-2"

    @app.tool(annotations=ToolAnnotations(readOnlyHint=True))
    def whoami(ctx: Context) -> str:
        """The tenant the request came for (the X-Tenant header over HTTP; none over stdio)."""
        return (ctx.headers or {}).get("x-tenant", "no tenant")

    @app.tool(annotations=ToolAnnotations(destructiveHint=True, idempotentHint=True))
    def delete_order(order: str) -> str:
        """Delete an order for good."""
        _record(f"delete {order}")
        return f"deleted {order}"

    @app.tool()
    def add_note(order: str, text: str) -> dict[str, str]:
        """Add a note to an order (no annotations: the spec's defaults apply)."""
        _record(f"note {order} {text}")
        return {"order": order, "note": text}

    @app.tool(annotations=ToolAnnotations(readOnlyHint=True))
    def crash() -> str:
        """Exit the server process in the middle of the call."""
        os._exit(3)

    @app.tool(annotations=ToolAnnotations(readOnlyHint=True))
    def broken() -> str:
        """Fail inside the tool."""
        raise RuntimeError("the order database is down")

    @app.tool(annotations=ToolAnnotations(readOnlyHint=True))
    async def stall() -> str:
        """Never answer (for timeouts)."""
        await asyncio.sleep(3600)
        return "late"

    @app.tool(annotations=ToolAnnotations(destructiveHint=True))
    def cancel_order(
        order: str, why: Annotated[ElicitationResult[Reason], Resolve(ask_reason)]
    ) -> str:
        """Cancel an order; the server asks the human why first (elicitation)."""
        if why.action != "accept":
            return f"kept {order}: the human did not say why ({why.action})"
        _record(f"cancel {order} {why.data.reason}")
        return f"cancelled {order}: {why.data.reason}"

    return app


if __name__ == "__main__":
    build().run()
