"""A database agent whose drops wait for a human, paused in a store; a recording notifier;
API tokens; and a tiny HTTP server on 127.0.0.1 run in a thread."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from dba_support import add_token, agent, drop_table, executed  # noqa: F401

from afk.agents import PolicyEngine, PolicyRule
from afk.approvals.notify import NotificationEvent
from afk.core import Runner, RunnerConfig
from afk.store import RunStore


def runner(store_url: str, *, timeout_s: float | None = None, **rule: Any) -> Runner:
    policy = PolicyEngine(
        [
            PolicyRule(
                "gate-drops",
                tool="drop_*",
                action="request_approval",
                reason="Dropping a table needs a human.",
                **rule,
            )
        ]
    )
    config = RunnerConfig(interaction_mode="external", approval_timeout_s=timeout_s)
    return Runner(policy, config=config, store=store_url)


async def paused(run: Runner, table: str = "old_logs") -> str:
    """A paused run's one request id."""
    result = await run.run(agent(), user_message=table)
    assert result.state == "paused", result
    return result.pending_requests[0].request_id


async def mint(store: RunStore, who: str) -> str:
    """An API token's secret for ``who``."""
    secret, _ = await add_token(store, who)
    return secret


class Recorder:
    """A notifier that keeps what it is told; ``fail`` > 0 makes the next ones raise."""

    def __init__(self, name: str = "recorder", *, fail: int = 0) -> None:
        self.name = name
        self.fail = fail
        self.events: list[NotificationEvent] = []
        self.tries = 0

    async def notify(self, event: NotificationEvent) -> None:
        self.tries += 1
        if self.fail > 0:
            self.fail -= 1
            raise RuntimeError("channel down")
        self.events.append(event)

    @property
    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


Handler = Callable[[str, str, dict[str, str], bytes], tuple[int, bytes]]


@contextmanager
def http_server(handle: Handler) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 (a thread) answering every request with ``handle(method,
    path, headers, body) -> (status, body)``; yields its base URL."""

    class _Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            size = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(size) if size else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, out = handle(self.command, self.path, headers, body)
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
