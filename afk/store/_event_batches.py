"""Events stored as one row per checkpoint, shared by both backends (store schema 6).

A paused run's checkpoint appends about seven small events. One row each repeated the run
id in the row and again in the primary-key index, and the row and index overhead of both
databases outweighed the events themselves. So ``save_run`` stores the events it is given
as one ``event_batches`` row per run: keyed by ``(run_id, last_seq)``, the highest seq in
it, holding the events as a JSON array ``[[seq, type, ts, payload], ...]`` (payload as a
string, so it reads back byte for byte) compressed with raw deflate behind a format byte.
Compressed because that JSON repeats event and field names in every event: it is history,
read only through :meth:`~afk.store.RunStore.list_events`, never queried by its contents.
Deflate starts from a preset dictionary, afk's own event vocabulary (:data:`DICTIONARY`),
since a checkpoint's few events are too short to teach it much: a paused run's batch
takes about 250 bytes instead of 420 (1,020 uncompressed).

``list_events(run_id, after_seq=n)`` is one range scan of the primary key
(``last_seq > n``: every batch holding an event after ``n``), then the events up to ``n``
in the first batch are dropped. Appends must continue the run's seq: the insert is
conditional on no stored batch reaching its first seq (one probe of the primary key, in
the same statement), and a save whose events do not come after the stored ones, or are not
in increasing seq order, is refused as the duplicate it would be.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from typing import Any

from afk.errors import StoreError
from afk.store.store import EventRow

FORMAT_DEFLATE_JSON = 1  # the first byte of every batch: how the rest is encoded
_WBITS = -15  # raw deflate: no zlib header or checksum (the database keeps the bytes)
_LEVEL = 9  # small inputs: the best ratio costs microseconds

# The preset dictionary of format 1: a batch of every event type, values left empty, the
# events of a run's first gated step last (deflate reaches nearer strings more cheaply).
# FROZEN: stored batches decode only with these exact bytes (tests pin their digest); a
# better dictionary is a new format byte, with this one kept for reading.
_TEMPLATE = (
    ("run_failed", '{"error":"","error_type":""}'),
    ("warning", '{"message":"","source":""}'),
    ("run_cancelled", "{}"),
    ("vote_refused", '{"request_id":"req_","approver":"","authenticated_by":"","why":""}'),
    ("vote_recorded", '{"request_id":"req_","approver":"","authenticated_by":"","needed":1}'),
    ("approval_reminder", '{"request_id":"req_","kind":"escalate","approvers":[""]}'),
    ("grant_used", '{"step":1,"grant_id":"grant_","tool_name":"","tool_call_id":"call_"}'),
    ("user_input_requested", '{"request_id":"req_","step":1}'),
    ("user_input_resolved", '{"step":1,"request_id":"req_","decision":{"value":""}}'),
    ("text_delta", '{"step":1,"delta":""}'),
    ("run_completed", '{"state":"completed","final_text":"","expired_calls":[]}'),
    ("tool_completed", '{"step":1,"tool_name":"","tool_call_id":"call_","success":true}'),
    ("tool_started", '{"step":1,"tool_name":"","tool_call_id":"call_","args":{}}'),
    (
        "approval_resolved",
        '{"step":1,"request_id":"req_","decision":{"kind":"allow","approver":""},'
        '"approver":"","decided_by":"human"}',
    ),
    ("run_resumed", '{"step":1,"request_ids":["req_"]}'),
    ("llm_completed", '{"step":1,"text":"","usage":{"input_tokens":1,"output_tokens":1}}'),
    ("run_started", '{"agent_name":"","model":"","thread_id":"","user_message":""}'),
    ("step_started", '{"step":1}'),
    ("llm_called", '{"step":1,"model":"","message_count":2}'),
    ("llm_completed", '{"step":1,"tool_calls":[{"name":"","arguments":{},"id":"call_"}]}'),
    (
        "policy_decision",
        '{"step":1,"event_type":"tool_before_execute","tool_name":"","tool_call_id":"call_",'
        '"action":"request_approval","rule_id":"","matched_rules":[""],"reason":""}',
    ),
    ("approval_requested", '{"request_id":"req_","step":1}'),
    ("run_paused", '{"step":1,"request_ids":["req_"]}'),
)
DICTIONARY = json.dumps(
    [[n, type_, 0.0, payload] for n, (type_, payload) in enumerate(_TEMPLATE, 1)],
    separators=(",", ":"),
).encode()

DDL = """CREATE TABLE IF NOT EXISTS {t}event_batches (
    run_id TEXT NOT NULL, last_seq BIGINT NOT NULL, events {blob} NOT NULL,
    PRIMARY KEY (run_id, last_seq)){without_rowid}"""
# Any stored batch of the run reaching the new batch's first seq (one primary-key probe).
LATER = "SELECT 1 FROM {t}event_batches WHERE run_id = ? AND last_seq >= ?"
# One statement: a batch that does not come after every stored one inserts nothing.
APPEND = (
    "INSERT INTO {t}event_batches (run_id, last_seq, events) SELECT ?, ?, ? "
    f"WHERE NOT EXISTS ({LATER})"
)
INSERT = "INSERT INTO {t}event_batches (run_id, last_seq, events) VALUES (?, ?, ?)"
LIST = (
    "SELECT run_id, events FROM {t}event_batches WHERE run_id = ? AND last_seq > ? "
    "ORDER BY last_seq"
)
# v5 → v6: the rows of the old one-row-per-event table, a page at a time in key order.
OLD_EVENTS_PAGE = (
    "SELECT run_id, seq, type, payload, ts FROM {t}events WHERE (run_id, seq) > (?, ?) "
    "ORDER BY run_id, seq LIMIT ?"
)
DROP_OLD_EVENTS = "DROP TABLE IF EXISTS {t}events"


def encode(events: Sequence[EventRow]) -> bytes:
    """One batch's ``events`` column."""
    rows = [[e.seq, e.type, e.ts, e.payload] for e in events]
    text = json.dumps(rows, separators=(",", ":"), ensure_ascii=False)
    deflate = zlib.compressobj(_LEVEL, zlib.DEFLATED, _WBITS, zdict=DICTIONARY)
    return bytes([FORMAT_DEFLATE_JSON]) + deflate.compress(text.encode()) + deflate.flush()


def decode(run_id: str, data: bytes | memoryview) -> list[EventRow]:
    """The events of one batch of ``run_id`` (StoreError when it is not a batch afk wrote)."""
    raw = bytes(data)
    try:
        if not raw or raw[0] != FORMAT_DEFLATE_JSON:
            raise ValueError(f"unknown batch format {raw[:1]!r}")
        inflate = zlib.decompressobj(_WBITS, zdict=DICTIONARY)
        rows = json.loads((inflate.decompress(raw[1:]) + inflate.flush()).decode())
        return [_event(run_id, row) for row in rows]
    except (ValueError, TypeError, zlib.error) as exc:
        raise StoreError(f"an event batch of run {run_id!r} does not decode: {exc}") from exc


def _event(run_id: str, row: Any) -> EventRow:
    seq, type_, ts, payload = row
    if not (isinstance(seq, int) and isinstance(type_, str) and isinstance(payload, str)):
        raise ValueError(f"malformed event {row!r}")
    return EventRow(run_id=run_id, seq=seq, type=type_, payload=payload, ts=float(ts))


def after(events: list[EventRow], after_seq: int) -> list[EventRow]:
    return [e for e in events if e.seq > after_seq]


def batches(events: Sequence[EventRow]) -> dict[str, list[EventRow]]:
    """``events`` by run, each run's in the order given, which must be increasing seq."""
    found: dict[str, list[EventRow]] = {}
    for event in events:
        run = found.setdefault(event.run_id, [])
        if run and event.seq <= run[-1].seq:
            raise duplicate(event.run_id, event.seq)
        run.append(event)
    return found


def duplicate(run_id: str, seq: int) -> StoreError:
    return StoreError(
        f"event {seq} of run {run_id!r} is already stored or out of order: events are "
        "appended in increasing seq, each seq once"
    )


def insert_params(run_id: str, events: Sequence[EventRow]) -> tuple[Any, ...]:
    """INSERT parameters of one batch."""
    return (run_id, events[-1].seq, encode(events))


def append_params(run_id: str, events: Sequence[EventRow]) -> tuple[Any, ...]:
    """APPEND parameters of one batch."""
    return (*insert_params(run_id, events), run_id, events[0].seq)


def migrated_rows(rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """INSERT parameters for one OLD_EVENTS_PAGE (a run cut by the page end gets two
    batches: a batch is any run of consecutive events)."""
    grouped: dict[str, list[EventRow]] = {}
    for run_id, seq, type_, payload, ts in rows:
        event = EventRow(run_id=run_id, seq=int(seq), type=type_, payload=payload, ts=float(ts))
        grouped.setdefault(run_id, []).append(event)
    return [insert_params(run_id, events) for run_id, events in grouped.items()]
