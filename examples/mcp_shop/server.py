"""The MCP server examples/mcp_gated.py starts: a shop with three tools, built with the mcp
SDK. It speaks MCP over stdin/stdout: ``python examples/mcp_shop/server.py``."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

shop: MCPServer = MCPServer("shop")


@shop.tool(annotations=ToolAnnotations(readOnlyHint=True))
def list_orders(customer: str) -> str:
    """List a customer's open orders."""
    return f"{customer}: A-1001, A-1002"


@shop.tool(annotations=ToolAnnotations(destructiveHint=True))
def cancel_order(order_id: str) -> str:
    """Cancel an order; it cannot be restored."""
    return f"cancelled {order_id}"


@shop.tool()  # no annotations: afk takes the MCP spec's defaults, so it counts as destructive
def add_note(order_id: str, text: str) -> str:
    """Add a note to an order."""
    return f"noted on {order_id}: {text}"


if __name__ == "__main__":
    shop.run()
