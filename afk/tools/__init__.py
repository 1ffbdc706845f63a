"""Typed tools for agents."""

from afk.tools.tool import Tool, ToolArgumentsInvalid, ToolContext, tool

__all__ = ["Tool", "ToolArgumentsInvalid", "ToolContext", "tool"]
