"""A real HTTP server on 127.0.0.1 that plays scripted replies and records every request.

Enough of the OpenAI Chat Completions and Anthropic Messages protocols to exercise the
adapters over real sockets: JSON replies, SSE streams, error statuses, slow replies.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Streamed replies are written (and flushed) one chunk at a time.
    chunks: list[bytes] | None = None
    delay_s: float = 0.0


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


def json_reply(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(
        status=status,
        body=json.dumps(obj).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def error_reply(status: int, message: str = "nope", headers: dict[str, str] | None = None) -> Reply:
    return json_reply({"error": {"message": message, "type": "test_error"}}, status, headers)


def openai_sse_reply(chunks: list[dict[str, Any]], *, done: bool = True) -> Reply:
    lines = [f"data: {json.dumps(c)}\n\n".encode() for c in chunks]
    if done:
        lines.append(b"data: [DONE]\n\n")
    return Reply(headers={"Content-Type": "text/event-stream"}, chunks=lines)


def anthropic_sse_reply(events: list[dict[str, Any]]) -> Reply:
    """Each event's ``type`` is also sent as the SSE ``event:`` field, as Anthropic does."""
    lines = [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]
    return Reply(headers={"Content-Type": "text/event-stream"}, chunks=lines)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = self.server.owner._take(Recorded("POST", self.path, headers, body))
        if reply.delay_s:
            time.sleep(reply.delay_s)
        # The client may have given up (timeout tests); then there is nobody left to tell.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._send(reply)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.chunks is None:
            self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        for chunk in reply.chunks if reply.chunks is not None else [reply.body]:
            self.wfile.write(chunk)
            self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean


class _Server(ThreadingHTTPServer):
    owner: FakeServer
    daemon_threads = False  # so server_close() waits for replies still being written


class FakeServer:
    """``with FakeServer() as server: server.queue(...); ...; server.requests``."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def queue(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    def _take(self, recorded: Recorded) -> Reply:
        with self._lock:
            self.requests.append(recorded)
            if self._replies:
                return self._replies.popleft()
        return error_reply(418, "fake server: no scripted reply left")

    @property
    def bodies(self) -> list[Any]:
        return [r.body for r in self.requests]

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()  # joins handler threads, so no reply outlives the test
        self._thread.join()


def unused_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
