"""A ledger written before entries were classes (rows with the payload bytes afk stored then,
and the shapes its earlier writers stored) still verifies, loads as typed entries, writes
back byte for byte and exports through them: on both backends."""

from __future__ import annotations

import io
import json

from entries_support import FROZEN, OLDER, SAMPLES

from afk.audit import export_jsonl, verify
from afk.audit.entries import entry_payload, from_log, to_log
from afk.store.store import LogEntry, RunStore


def stored_before(name: str) -> LogEntry:
    """The row afk wrote for SAMPLES[name] (built as the old writers did: by hand)."""
    entry = SAMPLES[name]
    return LogEntry(
        kind=entry.kind, run_id=entry.run_id, request_id=entry.request_id, actor=entry.actor,
        payload=FROZEN[name], at=entry.at,
    )  # fmt: skip


async def test_an_existing_ledger_verifies_and_loads(store: RunStore) -> None:
    for name in SAMPLES:
        await store.log_refusal(stored_before(name))
    for kind, payload in OLDER:
        await store.log_refusal(LogEntry(kind=kind, run_id="run-0", payload=payload, at=50.0))
    assert (await verify(store)).ok

    log = await store.list_log()
    typed = [from_log(e) for e in log]
    assert typed[: len(SAMPLES)] == list(SAMPLES.values())
    assert [type(t).__name__ for t in typed[len(SAMPLES) :]] == [
        "ExecutionStarted", "ExecutionFinished", "TamperDetected", "RequestDecided",
        "DecisionRefused", "VoteCast",
    ]  # fmt: skip
    rewritten = [to_log(t) for t in typed]
    assert [(e.kind, e.payload) for e in rewritten] == [(e.kind, e.payload) for e in log]


async def test_the_export_reads_entries_through_their_classes(store: RunStore) -> None:
    for name in ("decided_principal", "policy_decision", "grant_created"):
        await store.log_refusal(stored_before(name))
    # An entry no class fits (another writer's kind) is exported as it is stored.
    await store.log_refusal(LogEntry(kind="custom_note", run_id="run-1", payload='{"a":[1]}'))
    await store.log_refusal(LogEntry(kind="decided", run_id="run-1", payload="not json"))
    out = io.StringIO()
    assert await export_jsonl(store, out) == 5
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    names = ("decided_principal", "policy_decision", "grant_created")
    assert [line["details"] for line in lines[:3]] == [entry_payload(SAMPLES[n]) for n in names]
    assert lines[2]["details"]["until"] == 4e9
    assert lines[3]["details"] == {"a": [1]}
    assert "details" not in lines[4]
    assert [line["payload"] for line in lines[:3]] == [FROZEN[n] for n in names]
