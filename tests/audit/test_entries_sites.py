"""Every place afk writes a ledger entry stores, for the same inputs, the payload bytes it
wrote before entries were classes (``entries_support.FROZEN``), and the row reads back as its
typed entry. Store-backed writers run against a SQLite store keyed with ``KEYS``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from entries_support import FROZEN, KEYS, LONG_ERROR, SAMPLES

from afk.agents import PolicyDecision, PolicyEvent, ShadowResult
from afk.approvals.decide import Vote
from afk.approvals.grants import Grants, add_grant
from afk.approvals.principal import Principal
from afk.approvals.requests import ApprovalDecision, ApprovalRequest, GrantSpec
from afk.audit import verify
from afk.audit.entries import RequestDecided, VoteCast, from_log
from afk.core import _durable_api, _records
from afk.core._durable import Durable
from afk.errors import AlreadyDecidedError
from afk.store import SQLiteStore
from afk.store._seal import tamper_log
from afk.store.store import ExecutionRecord, LogEntry, RunRecord

REQUEST = ApprovalRequest(
    request_id="req_1", run_id="run-1", step=2, agent_name="dba", tool_name="drop_table",
    tool_args={"table": "événements", "n": 3}, tool_call_id="call_1", rule_id="r-drop",
    reason="risky", created_at=100.0, expires_at=4e9, thread_id="t1",
)  # fmt: skip
ALICE = Principal(id="alice", authenticated_by="os:uid=1000", operator="root")


def same(written: LogEntry, name: str, *, at: bool = False) -> None:
    """``written`` is what afk wrote for SAMPLES[name]: its payload bytes, its columns."""
    expected = SAMPLES[name]
    assert written.payload == FROZEN[name]
    assert (written.kind, written.run_id, written.request_id, written.actor) == (
        expected.kind, expected.run_id, expected.request_id, expected.actor,
    )  # fmt: skip
    typed = from_log(written)
    assert typed == (expected if at else type(expected)(**{**_fields(expected), "at": typed.at}))


def _fields(entry: Any) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in entry.__dataclass_fields__}


def test_a_request_and_its_decisions() -> None:
    same(_records.opened_log(REQUEST, 200.25, KEYS), "request_opened", at=True)
    allow = ApprovalDecision(kind="allow", approver="bob", reason="ok")
    same(_records.decision_log(REQUEST, allow, "human", KEYS), "decided")
    deny = ApprovalDecision(kind="deny", reason="no")
    same(_records.decision_log(REQUEST, deny, "human", KEYS, ALICE), "decided_principal")
    fallback = ApprovalDecision(kind="deny", reason="timeout fallback")
    same(_records.decision_log(REQUEST, fallback, "timeout", KEYS), "expired")


def test_votes() -> None:
    vote = Vote(principal=ALICE, decision=ApprovalDecision(kind="allow", reason="fine"), at=200.25)
    same(_durable_api._vote_log(REQUEST, vote, "e" * 64, VoteCast), "vote", at=True)
    anonymous = Vote(principal=None, decision=ApprovalDecision(kind="allow"), at=200.25)
    written = _durable_api._vote_log(REQUEST, anonymous, "e" * 64, RequestDecided)
    same(written, "decided_anonymous", at=True)


def test_tool_outcomes() -> None:
    same(_records.outcome_log("run-1", "key-1", "call_1", "d" * 64, None), "execution_finished")
    error = LONG_ERROR + "y" * 500  # cut to its first 1000 characters
    same(_records.outcome_log("run-1", "key-1", "call_1", "d" * 64, error), "execution_failed")


def test_tamper_entries() -> None:
    run = RunRecord(
        run_id="run-1", agent_name="dba", status="paused", snapshot="{}", schema_version=1,
        created_at=1.0, updated_at=1.0,
    )  # fmt: skip
    same(tamper_log(run, "resume the run"), "tamper_run")
    execution = ExecutionRecord(
        key="key-1", run_id="run-1", tool_call_id="c", args_digest="d", status="executing",
        started_at=1.0,
    )  # fmt: skip
    same(tamper_log(execution, "trust or repeat an execution"), "tamper_execution")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore(str(tmp_path / "sites.db"), keys=KEYS)
    await opened.setup()
    try:
        yield opened
    finally:
        await opened.close()


async def test_refusals(store: SQLiteStore) -> None:
    vote = Vote(principal=ALICE, decision=ApprovalDecision(kind="deny", reason="x"), at=1.0)
    already = AlreadyDecidedError(
        "request req_1 was already decided", request_id="req_1", first_decision=None
    )
    await _durable_api._refused(store, "run-1", "req_1", vote, already)
    anonymous = Vote(principal=None, decision=ApprovalDecision(kind="allow"), at=1.0)
    await _durable_api._refused(store, "run-1", "req_1", anonymous, ValueError("bad"))
    first, second = await store.list_log()
    same(first, "refused")
    same(second, "refused_anonymous")
    assert (await verify(store)).ok


async def test_policy_decisions_and_execution_starts(store: SQLiteStore) -> None:
    facts, emitter = SimpleNamespace(run_id="run-1"), SimpleNamespace(seq=0)
    durable = Durable(
        cast(Any, facts), store, emitter=cast(Any, emitter), owner="test", lease_ttl_s=30.0
    )
    event = PolicyEvent(
        run_id="run-1", step=3, tool_name="drop_table", tool_args={"table": "t"},
        tool_call_id="call_1",
    )  # fmt: skip
    shadow = (
        ShadowResult(action="deny", rule_id="s1", would_change=True),
        ShadowResult(action="allow", rule_id=None, source="engine"),
    )
    decision = PolicyDecision(
        action="request_approval", reason="risky", rule_id="r-drop",
        matched_rules=("r-drop", "r-log"), shadow=shadow,
    )  # fmt: skip
    await durable.log_policy(event, decision)
    model_call = PolicyEvent(event_type="llm_before_execute", run_id="run-1", step=1)
    await durable.log_policy(model_call, PolicyDecision(action="allow"))
    outcome = await durable.execute_once(
        "key-1", "call_1", {"n": 1}, idempotent=False, invoke=_returns_one
    )
    assert outcome.output == 1
    policy, model, started, finished = await store.list_log()
    same(policy, "policy_decision")
    same(model, "policy_model_call")
    digest = KEYS.digest({"n": 1})
    assert started.payload == FROZEN["execution_started"].replace("d" * 64, digest)
    assert finished.payload == FROZEN["execution_finished"].replace("d" * 64, digest)
    assert [from_log(e).kind for e in (started, finished)] == [
        "execution_started",
        "execution_finished",
    ]


async def _returns_one() -> int:
    return 1


async def test_grants(store: SQLiteStore) -> None:
    spec = GrantSpec(scope="thread", until=4e9)
    decision = ApprovalDecision(kind="allow", approver="alice", grant=spec)
    await add_grant(store, REQUEST, decision)
    grants = Grants(store)
    values = {"thread": "t1", "agent": "dba", "user": None}
    used = await grants.use("drop_table", {}, values, run_id="run-1", call_id="call_9")
    assert used is not None and used.grant_id == "grant_1"
    await grants.revoke("grant_1", by="carol")
    created, use, revoked = await store.list_log()
    same(created, "grant_created")
    same(use, "grant_used")
    same(revoked, "grant_revoked")
    assert (await verify(store)).ok
