"""Runs stored by older afk versions keep resuming: each frozen fixture in ``fixtures/`` (written
once by ``fixtures/make_fixture.py``) is put into a fresh store on both backends, approved and
resumed. A snapshot this code cannot read fails loudly and stays in the store untouched. And
the writer keeps the newest fixture's form: a snapshot written now has its field names and
types, and leaves out the same defaults (else: a new schema version, with its fixture)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from billing_app import billing_agent, policy
from durable_support import lines, track
from snapshot_shape import shape, stored_defaults

from afk.agents import ApprovalDecision
from afk.approvals._rows import load_request
from afk.audit.keys import Keyring
from afk.core import Runner, RunnerConfig
from afk.core import _snapshot as snapshots
from afk.core._snapshot import SCHEMA_VERSION, SnapshotVersionError, load_snapshot
from afk.core.events import event_from_row, event_to_dict
from afk.errors import StoreError
from afk.store._seal import rekeyed_request
from afk.store.store import EventRow, RequestRecord, RunRecord

HERE = Path(__file__).parent / "fixtures"
FIXTURES = sorted(HERE.glob("v*_*.json"))
V1 = HERE / "v1_paused_refund.json"


def fixture(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def newest() -> dict[str, Any]:
    return max((fixture(p) for p in FIXTURES), key=lambda d: int(d["schema_version"]))


@pytest.fixture(autouse=True)
def fixture_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fixtures from v2 on are keyed with their published ``secret_key``: the store verifies
    their digests as it would after a key rotation, the fixture key being a previous one."""
    keys = [d["secret_key"] for d in map(fixture, FIXTURES) if "secret_key" in d]
    monkeypatch.setenv("AFK_SECRET_KEYS_PREVIOUS", ",".join(keys))


def _shifted(row: dict[str, Any], by: float, *fields: str) -> dict[str, Any]:
    return {k: v + by if k in fields and v is not None else v for k, v in row.items()}


def records(
    data: dict[str, Any], keys: Keyring
) -> tuple[RunRecord, list[RequestRecord], list[EventRow]]:
    """The fixture's rows as stored, with their clock moved to now: the run paused moments ago,
    so its request is still open (the frozen JSON payloads are left exactly as written). The
    unkeyed digests of fixtures before v2 are re-keyed with the store's key, as the v3 store
    migration does (a keyed digest is left as it is)."""
    by = time.time() - data["run"]["created_at"]
    run = RunRecord(**_shifted(data["run"], by, "created_at", "updated_at", "lease_expires_at"))
    requests = [
        RequestRecord(**_shifted(r, by, "created_at", "expires_at", "decided_at"))
        for r in data["requests"]
    ]
    requests = [rekeyed_request(keys, r) for r in requests]
    events = [EventRow(**_shifted(e, by, "ts")) for e in data["events"]]
    return run, requests, events


def external(store_url: str) -> Runner:
    config = RunnerConfig(interaction_mode="external")
    return track(Runner(policy, config=config, store=store_url))


async def stored(store_url: str, data: dict[str, Any], snapshot: str | None = None) -> Runner:
    """A runner over a fresh store holding the fixture's run (its snapshot optionally replaced),
    with the fixture's requests approved through the public API."""
    runner = external(store_url)
    assert runner.store is not None
    run, requests, events = records(data, runner.store.keys)
    if snapshot is not None:
        run = dataclasses.replace(run, snapshot=snapshot)
    await runner.store.setup()
    await runner.store.save_run(run, requests=requests, events=events)
    pending = await runner.pending_requests()
    assert [r.request_id for r in pending] == data["expected"]["request_ids"]
    for request in pending:
        await runner.resolve(request.request_id, ApprovalDecision(kind="allow", approver="ann"))
    return runner


def edited_snapshot(data: dict[str, Any], **changes: Any) -> str:
    snapshot: dict[str, Any] = json.loads(data["run"]["snapshot"])
    for key, value in changes.items():
        if value is None:
            del snapshot[key]
        else:
            snapshot[key] = value
    return json.dumps(snapshot)


def test_every_schema_version_has_a_frozen_fixture() -> None:
    versions = {fixture(path)["schema_version"] for path in FIXTURES}
    assert versions == set(range(1, SCHEMA_VERSION + 1)), (
        "add a fixture for the new schema version: python tests/durable/fixtures/make_fixture.py"
    )
    for path in FIXTURES:
        data = fixture(path)
        assert path.name.startswith(f"v{data['schema_version']}_")
        assert json.loads(data["run"]["snapshot"])["schema_version"] == data["schema_version"]


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
async def test_a_frozen_paused_run_resumes_and_refunds_exactly_once(
    path: Path, store_url: str, side_effects: Path
) -> None:
    data = fixture(path)
    expected = data["expected"]
    runner = await stored(store_url, data)
    done = await runner.resume(data["run"]["run_id"], billing_agent())
    assert done.state == "completed", done.error
    assert done.final_text == expected["final_text"]
    assert lines(side_effects) == [expected["side_effect"]]
    [execution] = done.tool_executions
    assert (execution.tool_name, execution.args) == (expected["tool_name"], expected["tool_args"])
    assert execution.success
    assert await runner.resume_ready([billing_agent()]) == []
    assert lines(side_effects) == [expected["side_effect"]]  # still exactly once
    assert runner.store is not None
    seqs = [e.seq for e in await runner.store.list_events(data["run"]["run_id"])]
    assert seqs == list(range(1, len(seqs) + 1))  # resumed events follow the frozen ones


async def test_a_snapshot_from_a_newer_afk_fails_clearly_and_stays_stored(
    store_url: str, side_effects: Path
) -> None:
    data = fixture(V1)
    newer = SCHEMA_VERSION + 1
    runner = await stored(store_url, data, edited_snapshot(data, schema_version=newer))
    run_id = data["run"]["run_id"]
    with pytest.raises(SnapshotVersionError) as failed:
        await runner.resume(run_id, billing_agent())
    assert isinstance(failed.value, StoreError)
    message = str(failed.value)
    assert f"schema_version {newer}" in message and f"({SCHEMA_VERSION})" in message
    assert "upgrade" in message
    assert lines(side_effects) == []
    assert runner.store is not None
    record = await runner.store.load_run(run_id)
    assert record is not None
    # Untouched, and free for a newer afk to resume: not failed, not left leased.
    assert (record.status, record.lease_owner) == ("paused", None)
    assert json.loads(record.snapshot)["schema_version"] == newer


async def test_a_snapshot_without_schema_version_fails_clearly(
    store_url: str, side_effects: Path
) -> None:
    data = fixture(V1)
    runner = await stored(store_url, data, edited_snapshot(data, schema_version=None))
    with pytest.raises(SnapshotVersionError, match="no integer schema_version"):
        await runner.resume(data["run"]["run_id"], billing_agent())
    assert lines(side_effects) == []


def joined(data: dict[str, Any]) -> dict[str, Any]:
    """What load_snapshot joins a fixture's snapshot with: its run row and request rows."""
    requests = [RequestRecord(**r) for r in data["requests"]]
    return {
        "record": RunRecord(**data["run"]),
        "requests": {r.request_id: load_request(r) for r in requests},
        "system": billing_agent().system_message,
    }


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_a_frozen_snapshot_loads_whole(path: Path) -> None:
    """Whatever a version left to the run row, the request rows and the agent comes back."""
    data = fixture(path)
    snapshot = load_snapshot(data["run"]["snapshot"], **joined(data))
    assert (snapshot.run_id, snapshot.agent_name) == (data["run"]["run_id"], "billing")
    assert snapshot.user_message == data["expected"]["order"]
    assert snapshot.messages[0] == billing_agent().system_message
    assert snapshot.pending_step is not None
    [call] = snapshot.pending_step.calls
    assert (call.call.name, call.call.arguments) == ("refund", data["expected"]["tool_args"])
    assert call.request is not None and call.request.tool_args == data["expected"]["tool_args"]
    assert snapshot.pending_step.paused_ids == tuple(data["expected"]["request_ids"])


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_frozen_events_read_back_whole(path: Path) -> None:
    """Stored events, slim (v2: no row columns, the request by id) or whole (v1), read back as
    the events the run emitted, the request joined from its row."""
    data = fixture(path)
    requests = joined(data)["requests"]
    events = [event_from_row(EventRow(**e), requests) for e in data["events"]]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert [e.type for e in events][-2:] == ["approval_requested", "run_paused"]
    asked = events[-2]
    assert asked.type == "approval_requested"
    assert asked.request == requests[data["expected"]["request_ids"][0]]
    assert all(e.run_id == data["run"]["run_id"] for e in events)
    for event, row in zip(events, data["events"], strict=True):
        assert event.ts == row["ts"]
        assert set(json.loads(row["payload"])) - {"request_id"} <= set(event_to_dict(event))


async def test_the_writer_keeps_the_form_of_the_newest_fixture(
    tmp_path: Path, side_effects: Path
) -> None:
    """A snapshot written now has the newest fixture's field names and JSON types, and what
    it leaves out at their defaults is the same: a change is a new SCHEMA_VERSION, a
    migration in afk/core/_snapshot.py, and its fixture (fixtures/make_fixture.py)."""
    spec = importlib.util.spec_from_file_location("make_fixture", HERE / "make_fixture.py")
    assert spec is not None and spec.loader is not None
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    fresh = await maker.paused_run(str(tmp_path / "runs.db"))
    frozen = newest()
    hint = "the stored snapshot changed form: bump SCHEMA_VERSION, migrate, add a fixture"
    written, kept = json.loads(fresh["run"]["snapshot"]), json.loads(frozen["run"]["snapshot"])
    assert shape(written) == shape(kept), hint
    assert stored_defaults() == frozen["stored_defaults"], hint
    assert written["schema_version"] == frozen["schema_version"] == SCHEMA_VERSION


def _migration(from_version: int) -> Any:
    """A made-up migration from ``from_version``: the first one adds a field (runs carry a
    tenant in their context); each one notes itself, so their order shows."""

    def migrate(data: dict[str, Any]) -> dict[str, Any]:
        assert data["schema_version"] == from_version  # load_snapshot bumps it after each step
        context = dict(data.get("context", {}))  # left out when empty
        if from_version == SCHEMA_VERSION:
            context["tenant"] = "default"
        context["migrated_from"] = [*context.get("migrated_from", []), from_version]
        return {**data, "context": context}

    return migrate


def test_load_snapshot_applies_registered_migrations_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The frozen v1 snapshot goes through the real migrations, then two made-up ones."""
    data = fixture(V1)
    stored_v1 = data["run"]["snapshot"]
    active = json.loads(stored_v1)["active_s"]
    future = SCHEMA_VERSION + 2
    monkeypatch.setattr(snapshots, "SCHEMA_VERSION", future)
    monkeypatch.setitem(snapshots.MIGRATIONS, SCHEMA_VERSION, _migration(SCHEMA_VERSION))
    with pytest.raises(
        SnapshotVersionError, match=re.escape(f"from schema_version {future - 1} to {future}")
    ):
        load_snapshot(stored_v1, **joined(data))
    monkeypatch.setitem(snapshots.MIGRATIONS, future - 1, _migration(future - 1))
    snapshot = load_snapshot(stored_v1, **joined(data))
    assert snapshot.schema_version == future
    assert snapshot.context == {"tenant": "default", "migrated_from": [future - 2, future - 1]}
    assert snapshot.active_s == active
    assert snapshot.pending_step is not None
    assert [c.call.name for c in snapshot.pending_step.calls] == ["refund"]


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
async def test_a_stored_run_resumes_through_a_migration(
    path: Path, store_url: str, side_effects: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = fixture(path)
    monkeypatch.setattr(snapshots, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setitem(snapshots.MIGRATIONS, SCHEMA_VERSION, _migration(SCHEMA_VERSION))
    runner = await stored(store_url, data)
    done = await runner.resume(data["run"]["run_id"], billing_agent())
    assert done.state == "completed", done.error
    assert lines(side_effects) == [data["expected"]["side_effect"]]
    assert runner.store is not None
    record = await runner.store.load_run(data["run"]["run_id"])
    assert record is not None and record.status == "completed"
    context = json.loads(record.snapshot)["context"]
    assert context == {"tenant": "default", "migrated_from": [SCHEMA_VERSION]}  # on resume


def test_a_v2_policy_decision_s_flat_approval_settings_become_one_value() -> None:
    """v2 kept approval settings flat on each stored policy decision; v3 nests them."""
    data = fixture(HERE / "v2_paused_refund.json")
    stored = json.loads(data["run"]["snapshot"])
    flat = {"approvers": ["alice", "bob"], "quorum": 2, "expires_after_s": 60.0}
    [call] = stored["pending_step"]["calls"]
    call["policy"].update(flat)
    stored["executions"] = [
        {
            "tool_name": "lookup",
            "tool_call_id": "call_earlier",
            "args": {},
            "success": True,
            "policy": {"action": "request_approval", "deny_decides": False},
        }
    ]
    snapshot = load_snapshot(json.dumps(stored), **joined(data))
    assert snapshot.pending_step is not None
    [loaded] = snapshot.pending_step.calls
    assert loaded.policy.approval.approvers == ("alice", "bob")
    assert (loaded.policy.quorum, loaded.policy.expires_after_s) == (2, 60.0)
    [execution] = snapshot.executions
    assert execution.policy is not None and execution.policy.approval.deny_decides is False


def test_a_v2_settled_call_keeps_its_record_and_its_message_derives_from_it() -> None:
    from afk.core._call import tool_message
    from afk.core.result import ToolExecution

    data = fixture(HERE / "v2_paused_refund.json")
    stored = json.loads(data["run"]["snapshot"])
    execution = {"tool_name": "lookup", "tool_call_id": "call_l", "args": {"q": "x"},
                 "success": True, "output": {"found": 1}, "executed": True,
                 "policy": {"action": "allow"}}  # fmt: skip
    message = {"role": "tool", "tool_call_id": "call_l", "tool_name": "lookup",
               "content": '{"found": 1}'}  # fmt: skip
    call = {"name": "lookup", "arguments": {"q": "x"}, "id": "call_l"}
    stored["pending_step"]["calls"].append(
        {
            "call": call,
            "policy": {"action": "allow"},
            "settled": {"message": message, "execution": execution},
        }
    )
    snapshot = load_snapshot(json.dumps(stored), **joined(data))
    assert snapshot.pending_step is not None
    settled = snapshot.pending_step.calls[1].settled
    assert isinstance(settled, ToolExecution) and settled.output == {"found": 1}
    derived = tool_message(settled, None)
    assert (derived.content, derived.tool_call_id, derived.is_error) == (
        '{"found": 1}',
        "call_l",
        False,
    )
