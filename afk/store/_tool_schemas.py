"""Each tool's JSON schema stored once, shared by both backends (store schema 6).

A request's JSON carries its tool's schema (so any process can validate an edited
decision), the same ~250 bytes in every request for that tool. The store keeps the schema's
exact text once in ``tool_schemas``, named by a keyed digest of that text, and the request
row keeps its JSON with ``null`` in the schema's place, the schema's id and the offset of
that ``null``. Reading a request puts the text back (a scalar subquery on the primary key
of ``tool_schemas``, in the same statement), so every record the store returns carries the
request exactly as it was written, and its row MAC (over the whole text) is checked exactly
as before: an edited request, a changed or missing schema row, or an offset that no longer
points at the ``null`` all read back as a request that does not verify.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from afk.audit.keys import Keyring
from afk.store import _packed as pk

DDL = "CREATE TABLE IF NOT EXISTS {t}tool_schemas (schema_id TEXT PRIMARY KEY, body TEXT NOT NULL)"
INSERT = "INSERT INTO {t}tool_schemas (schema_id, body) VALUES (?, ?) ON CONFLICT DO NOTHING"
COLUMNS = (("schema_id", "TEXT"), ("schema_at", "INTEGER"))  # added to requests
# What a request SELECT reads after the record's columns: the offset, and the schema.
READ = (
    "schema_at, (SELECT body FROM {t}tool_schemas s WHERE s.schema_id = requests.schema_id) "
    "AS schema_body"
)
PLACEHOLDER = "null"
MIN_SIZE = 64  # smaller schemas stay inline: the id and offset would cost about as much
# 64 bits of the keyed digest, among a deployment's few tool schemas: a collision only
# makes a request not verify (its MAC covers the whole text). 32 (128 bits) before store
# schema 8; those rows keep their ids, and a schema written since gets a second, shorter one.
_ID_HEX = 16
_KEY = "tool_schema"
_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()

# v5 → v6: requests whose schema is still inline, a page at a time by id.
INLINE_PAGE = (
    "SELECT request_id, request FROM {t}requests WHERE schema_id IS NULL AND request_id > ? "
    "ORDER BY request_id LIMIT ?"
)
MOVE = "UPDATE {t}requests SET request = ?, schema_id = ?, schema_at = ? WHERE request_id = ?"


def split(keys: Keyring, request: str) -> tuple[str, str | None, int | None, str | None]:
    """``request`` as stored: (the text with ``null`` in the schema's place, schema id,
    offset, schema text), or the text unchanged and three Nones when it carries no schema
    worth moving."""
    span = _value_span(request, _KEY)
    if span is None:
        return request, None, None, None
    start, end = span
    body = request[start:end]
    if len(body) < MIN_SIZE or not body.startswith("{"):
        return request, None, None, None
    schema_id = keys.mac("tool_schema", body).partition(":")[2][:_ID_HEX]
    return request[:start] + PLACEHOLDER + request[end:], schema_id, start, body


def joined(stored: str, at: int | None, body: str | None) -> str:
    """The request text a row holds: the schema put back at ``at``. Left as stored when
    there is nothing to put back or ``at`` is not where the placeholder is (an edited row:
    its MAC then fails, as any edit's does)."""
    if at is None or body is None or stored[at : at + len(PLACEHOLDER)] != PLACEHOLDER:
        return stored
    return stored[:at] + body + stored[at + len(PLACEHOLDER) :]


def _value_span(text: str, key: str) -> tuple[int, int] | None:
    """Where the value of top-level ``key`` is in the JSON object ``text`` (None when it is
    not an object holding ``key``). Keys and values are skipped with the JSON decoder's own
    scanner, so a key-like string inside another value is never taken for it."""
    try:
        i = _skip(text, 0)
        if text[i] != "{":
            return None
        i = _skip(text, i + 1)
        while text[i] != "}":
            name, i = _DECODER.raw_decode(text, i)
            i = _skip(text, i)
            if text[i] != ":":
                return None
            start = _skip(text, i + 1)
            _, end = _DECODER.raw_decode(text, start)
            if name == key:
                return start, end
            i = _skip(text, end)
            if text[i] == ",":
                i = _skip(text, i + 1)
    except (ValueError, IndexError):
        return None
    return None


def _skip(text: str, i: int) -> int:
    """Past the JSON whitespace at ``i``."""
    found = _WS.match(text, i)
    return found.end() if found else i


def moved(
    keys: Keyring, rows: Sequence[Sequence[Any]]
) -> tuple[list[tuple[Any, ...]], dict[str, str]]:
    """Migration: MOVE parameters for INLINE_PAGE ``rows`` whose schema moves, and the
    schemas to insert (id → text)."""
    updates: list[tuple[Any, ...]] = []
    schemas: dict[str, str] = {}
    for request_id, request in rows:
        # Text in the stores this reads (< 6); unpacked all the same, as every reader does.
        stored, schema_id, at, body = split(keys, pk.unpack("request", request))
        if schema_id is not None and body is not None:
            updates.append((stored, schema_id, at, request_id))
            schemas[schema_id] = body
    return updates, schemas
