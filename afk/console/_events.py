"""``GET /api/v1/events``: Server-Sent Events of requests opened and decided.

Read from the store's ledger (``list_log(after_id=...)``), polled: every decision path
already writes it in the deciding transaction, in commit order, so no notifier has to be
wired into every writer, and a client that reconnects with ``Last-Event-ID`` (the ledger id)
misses nothing. Each poll is one range scan of the ledger's primary key past the last id
sent. Only reads: the stream changes nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from afk.errors import ConfigurationError
from afk.store.store import LogEntry, RunStore

POLL_S = 0.5
PAGE = 200
# Ledger kinds sent, and the event name each is sent as.
EVENTS = {
    "request_opened": "request_opened",
    "decided": "request_decided",
    "expired": "request_expired",
    "vote": "vote_counted",
}
KEEPALIVE_S = 15.0


def start_after(request: Request, head: int) -> int:
    """The ledger id to stream after: ``Last-Event-ID`` (a reconnect), else ``?after=``,
    else the ledger's head (only what happens from now on)."""
    text = request.headers.get("last-event-id") or request.query_params.get("after")
    if text is None:
        return head
    if not text.isdigit():
        raise ConfigurationError(f"Last-Event-ID / after must be a ledger id, got {text!r}")
    return int(text)


def frame(entry: LogEntry) -> str:
    """One SSE message: the ledger id, the event name, and what an inbox needs."""
    data = {
        "request_id": entry.request_id,
        "run_id": entry.run_id,
        "actor": entry.actor,
        "at": entry.at,
        "details": json.loads(entry.payload),
    }
    return f"id: {entry.id}\nevent: {EVENTS[entry.kind]}\ndata: {json.dumps(data)}\n\n"


async def events_endpoint(store: RunStore, request: Request) -> Response:
    """The stream (a HEAD gets its headers and no stream: there is no end to wait for)."""
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    after = start_after(request, await store.last_log_id())
    if request.method == "HEAD":
        return Response(media_type="text/event-stream", headers=headers)
    return StreamingResponse(
        _stream(store, request, after), media_type="text/event-stream", headers=headers
    )


async def _stream(store: RunStore, request: Request, after: int) -> AsyncIterator[str]:
    yield ": afk events\n\n"  # the headers go out at once; the client knows it is connected
    idle = 0.0
    while not await request.is_disconnected():
        entries = await store.list_log(after_id=after, limit=PAGE)
        for entry in entries:
            after = entry.id
            if entry.kind in EVENTS:
                yield frame(entry)
        if len(entries) == PAGE:
            continue  # more waiting: no pause
        await asyncio.sleep(POLL_S)
        idle += POLL_S
        if idle >= KEEPALIVE_S:
            idle = 0.0
            yield ": keepalive\n\n"
