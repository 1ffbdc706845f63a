"""Exporting the decision ledger as JSON Lines, for a SIEM or an offline copy."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from afk.store.store import LogEntry, RunStore

PAGE = 1000


def entry_json(entry: LogEntry) -> dict[str, Any]:
    """One entry as a JSON object: every stored field, ``payload`` exactly as hashed, plus
    ``time`` (ISO 8601, UTC) and ``details``: the payload's fields as its kind's class reads
    them (:func:`afk.audit.entries.from_log`); for an entry no class fits (another writer's
    kind, an edited payload), the payload parsed as it is, when it is JSON."""
    data: dict[str, Any] = {
        "id": entry.id,
        "time": datetime.fromtimestamp(entry.at, tz=UTC).isoformat(timespec="microseconds"),
        "kind": entry.kind,
        "run_id": entry.run_id,
        "request_id": entry.request_id,
        "actor": entry.actor,
        "payload": entry.payload,
        "at": entry.at,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }
    from afk.audit.entries import LedgerEntryError, entry_payload, from_log  # see afk.audit

    try:
        data["details"] = entry_payload(from_log(entry))
    except LedgerEntryError:
        # Exported all the same: a SIEM copy is of what is stored; judging it is verify's job.
        with contextlib.suppress(json.JSONDecodeError):
            data["details"] = json.loads(entry.payload)
    return data


async def export_jsonl(store: RunStore, out: TextIO, *, after_id: int = 0, page: int = PAGE) -> int:
    """Write the entries after ``after_id`` to ``out``, one JSON object per line, in id order,
    reading ``page`` entries at a time. Returns how many were written."""
    written = 0
    while batch := await store.list_log(after_id=after_id, limit=page):
        out.write("".join(_line(entry) for entry in batch))
        written += len(batch)
        after_id = batch[-1].id
    return written


def _line(entry: LogEntry) -> str:
    return json.dumps(entry_json(entry), ensure_ascii=False, separators=(",", ":")) + "\n"


__all__ = [
    "PAGE",
    "entry_json",
    "export_jsonl",
]
