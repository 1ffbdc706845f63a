"""The official ``mcp`` SDK, imported on first use so ``afk`` itself never needs it."""

from __future__ import annotations

import importlib
from types import ModuleType

from afk.mcp.errors import MCPNotInstalledError

INSTALL_HINT = "install afk-agents[mcp] to use afk.mcp.MCPServer (it needs the mcp SDK)"


def require() -> ModuleType:
    """The ``mcp`` package; raises MCPNotInstalledError with the install line when absent."""
    try:
        return importlib.import_module("mcp")
    except ImportError as exc:
        raise MCPNotInstalledError(INSTALL_HINT) from exc
