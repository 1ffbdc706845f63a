"""Fixtures: the shop server over stdio (a subprocess) and over streamable HTTP (uvicorn on
127.0.0.1, on a port the OS picks), and the ledger of what the server really ran."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp_support import SCRIPT

from afk.mcp import MCPServer


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What the shop ran, one line per change (the HTTP server reads it from os.environ)."""
    path = tmp_path / "ledger.txt"
    monkeypatch.setenv("SHOP_LEDGER", str(path))
    return path


@pytest.fixture
def stdio_shop(ledger: Path) -> Callable[..., MCPServer]:
    """A factory of afk MCPServers for the shop as a subprocess (options go to MCPServer)."""

    def make(**options: Any) -> MCPServer:
        env = {"SHOP_LEDGER": str(ledger)}
        return MCPServer.stdio(sys.executable, [str(SCRIPT)], name="shop", env=env, **options)

    return make


@pytest.fixture
def http_url(ledger: Path) -> Iterator[str]:
    """The shop over streamable HTTP; yields its URL."""
    import uvicorn
    from shop_server import build

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        build().streamable_http_app(), log_level="warning", lifespan="on", ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the HTTP MCP server did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}/mcp"
    server.should_exit = True
    thread.join(10)
    sock.close()
