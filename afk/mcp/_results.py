"""A ``tools/call`` result as afk's tool output (or a tool error)."""

from __future__ import annotations

from typing import Any

from afk.mcp.errors import MCPToolError


def output_of(result: Any, *, server: str, tool: str) -> Any:
    """``structuredContent`` when the server sent it, else the text content joined by newlines;
    raises MCPToolError, carrying the server's text, when the result is ``isError``."""
    if result.is_error:
        text = content_text(result.content) or "no message"
        raise MCPToolError(
            f"MCP server {server!r}: tool {tool!r} failed: {text}", server=server, tool=tool
        )
    if result.structured_content is not None:
        return result.structured_content
    return content_text(result.content)


def content_text(blocks: Any) -> str:
    """Each content block as text: text as it is, an embedded text resource's text, and a
    one-line stand-in for what has no text (images, audio, blobs, links)."""
    parts: list[str] = []
    for block in blocks or ():
        kind = getattr(block, "type", "?")
        if kind == "text":
            parts.append(block.text)
        elif kind == "resource" and isinstance(getattr(block.resource, "text", None), str):
            parts.append(block.resource.text)
        elif kind == "resource_link":
            parts.append(f"[resource link: {block.uri}]")
        else:
            mime = getattr(block, "mime_type", None) or getattr(
                getattr(block, "resource", None), "mime_type", None
            )
            parts.append(f"[{kind} content{f' ({mime})' if mime else ''} not shown]")
    return "\n".join(parts)
