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
    peer: tuple[str, int] | None = None  # the client's address: one per TCP connection


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
        recorded = Recorded("POST", self.path, headers, body, peer=self.client_address[:2])
        reply = self.server.owner._take(recorded)
        if reply.delay_s:
            time.sleep(reply.delay_s)
        # The client may have given up (timeout tests); then there is nobody left to tell.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._send(reply)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        chunked = self.server.owner.keep_alive and reply.chunks is not None
        if reply.chunks is None:
            self.send_header("Content-Length", str(len(reply.body)))
        elif chunked:
            self.send_header("Transfer-Encoding", "chunked")  # the stream's end, without closing
        if not self.server.owner.keep_alive:
            self.send_header("Connection", "close")
        self.end_headers()
        for chunk in reply.chunks if reply.chunks is not None else [reply.body]:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            self.wfile.flush()
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean


class _KeepAliveHandler(_Handler):
    protocol_version = "HTTP/1.1"  # keeps the connection open between requests
    timeout = 2.0  # an idle kept-alive connection must not hold up the server's shutdown
    # Headers and body go out as two writes: with Nagle on, the second waits for the client's
    # delayed ACK, 40 ms a reply.
    disable_nagle_algorithm = True

    def handle(self) -> None:
        # A client that closes its idle connection (a client per call does) is not an error.
        with contextlib.suppress(ConnectionResetError):
            super().handle()


class _Server(ThreadingHTTPServer):
    owner: FakeServer
    daemon_threads = False  # so server_close() waits for replies still being written


class FakeServer:
    """``with FakeServer() as server: server.queue(...); ...; server.requests``.

    ``keep_alive=True`` answers over HTTP/1.1 without closing the connection (streams chunked),
    so a pooled client can reuse it (each request's ``peer`` tells connections apart).
    """

    def __init__(self, *, keep_alive: bool = False) -> None:
        self.keep_alive = keep_alive
        self.requests: list[Recorded] = []
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        handler = _KeepAliveHandler if keep_alive else _Handler
        self._httpd = _Server(("127.0.0.1", 0), handler)
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


def openai_completion(message: dict[str, Any]) -> dict[str, Any]:
    """A Chat Completions body whose one choice is the assistant ``message``."""
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def anthropic_message(content: list[dict[str, Any]]) -> dict[str, Any]:
    """A Messages API body with these content blocks."""
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": content,
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }
