"""Records that prove themselves: someone who can write the database, but does not hold the
deployment key, edits it directly (as each test's raw SQL does) and nothing gated runs. Each
refusal is in the ledger as ``tamper_detected``, naming the table and the row. Both backends.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from audit_support import Where

from afk.agents import Agent, ApprovalDecision, GrantSpec, PolicyEngine, PolicyRule
from afk.audit import GENESIS, Checkpoint, checkpoint, entry_body, verify
from afk.audit.entries import entry_payload, from_log
from afk.canonical import sha256_hex
from afk.core import Runner, RunnerConfig, RunResult
from afk.errors import TamperedRecordError
from afk.llms import FunctionModel, ModelResponse, ToolCall, ToolMessage, UserMessage
from afk.store import _packed as pk
from afk.store import record_ok
from afk.store._common import STORE_SCHEMA_VERSION
from afk.store._migrate import SEALED_TABLES
from afk.store.store import RunStore
from afk.tools import tool

EXTERNAL = RunnerConfig(interaction_mode="external")
ran: list[tuple[str, dict[str, Any]]] = []


@tool
def pay(to: str, amount: int) -> str:
    """Pay someone.

    Args:
        to: Who.
        amount: How much.
    """
    ran.append(("pay", {"to": to, "amount": amount}))
    return f"paid {amount} to {to}"


@tool
def wipe(table: str) -> str:
    """Drop a table.

    Args:
        table: Which one.
    """
    ran.append(("wipe", {"table": table}))
    return f"dropped {table}"


POLICY = PolicyEngine(
    [
        PolicyRule("pay-needs-approval", tool="pay", action="request_approval", reason="Money."),
        PolicyRule("never-wipe", tool="wipe", action="deny", reason="Never drop tables."),
    ]
)


def _model(messages: list[Any], tools: list[Any]) -> Any:
    amount = int(next(m.content for m in messages if isinstance(m, UserMessage)))
    results = [m for m in messages if isinstance(m, ToolMessage)]
    if not results:
        return ToolCall("pay", {"to": "bob", "amount": amount})
    return ModelResponse(text=results[-1].content)


def agent() -> Agent:
    return Agent("payer", FunctionModel(_model, name="payer"), "You pay.", tools=[pay, wipe])


@pytest.fixture(autouse=True)
def _clean() -> None:
    ran.clear()


@asynccontextmanager
async def runner(where: Where) -> AsyncIterator[Runner]:
    async with Runner(POLICY, config=EXTERNAL, store=where.url) as opened:
        yield opened


def store_of(runner: Runner) -> RunStore:
    assert runner.store is not None
    return runner.store


async def paused(where: Where, amount: int = 500) -> RunResult:
    async with runner(where) as r:
        result = await r.run(agent(), user_message=str(amount), requested_by="alice")
    assert result.state == "paused", result
    return result


async def decided(where: Where, decision: ApprovalDecision, amount: int = 500) -> RunResult:
    result = await paused(where, amount)
    async with runner(where) as r:
        [request] = result.pending_requests
        assert await r.resolve(request.request_id, decision) == "decided"
    return result


async def tampers(where: Where) -> list[dict[str, Any]]:
    """The ``tamper_detected`` entries in the ledger (their payloads)."""
    async with runner(where) as r:
        await r.grants()  # readies the store
        log = await store_of(r).list_log()
        report = await verify(store_of(r))
    assert report.ok, report.summary()  # the refusals themselves are sound ledger entries
    return [entry_payload(from_log(e)) for e in log if e.kind == "tamper_detected"]


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


async def edit_request(where: Where, request_id: str, change: Callable[[Any], Any]) -> None:
    [(text,)] = await where.rows(
        f"SELECT request FROM {where.table('requests')} WHERE request_id = {literal(request_id)}"
    )
    data = change(json.loads(pk.unpack("request", text)))
    args = data["tool_args"]
    # What an attacker can compute: the unkeyed SHA-256 digests of the new arguments.
    forged = where.packed("request", json.dumps(data))
    await where.execute(
        f"UPDATE {where.table('requests')} SET request = {forged}, "
        f"args_digest = '{sha256_hex(args)}', bound_digest = '{sha256_hex(args)}' "
        f"WHERE request_id = {literal(request_id)}"
    )


# -- attack 1: a stored deny flipped to allow -----------------------------------------------
async def test_a_deny_flipped_to_allow_does_not_run(where: Where) -> None:
    first = await decided(where, ApprovalDecision(kind="deny", approver="ann", reason="no"))
    request_id = first.pending_requests[0].request_id
    await where.execute(
        f"UPDATE {where.table('requests')} SET decision = replace(decision, "
        f"'\"deny\"', '\"allow\"') WHERE request_id = {literal(request_id)}"
    )
    async with runner(where) as r:
        done = await r.resume(first.run_id, agent())
    assert ran == []
    [execution] = done.tool_executions
    assert not execution.executed and not execution.success
    assert f"the stored record of request {request_id} does not verify" in (execution.error or "")
    assert {"table": "requests", "id": request_id, "refused": "take its decision"} in (
        await tampers(where)
    )


# -- attack 2: new arguments with recomputed (unkeyed) digests ------------------------------
async def test_edited_arguments_with_recomputed_digests_do_not_run(where: Where) -> None:
    first = await decided(where, ApprovalDecision(kind="allow", approver="ann"))
    request_id = first.pending_requests[0].request_id

    def steal(data: Any) -> Any:
        data["tool_args"] = {"to": "mallory", "amount": 99_999}
        return data

    await edit_request(where, request_id, steal)
    async with runner(where) as r:
        done = await r.resume(first.run_id, agent())
    assert ran == []
    [execution] = done.tool_executions
    assert not execution.executed and "does not verify" in (execution.error or "")
    assert any(t["table"] == "requests" and t["id"] == request_id for t in await tampers(where))


async def test_a_request_with_a_forged_mac_is_not_decided(where: Where) -> None:
    """Deciding re-signs a request row: it must not launder one changed before the decision."""
    first = await paused(where)
    request_id = first.pending_requests[0].request_id
    await edit_request(where, request_id, lambda data: {**data, "tool_args": {"amount": 1}})
    async with runner(where) as r:
        with pytest.raises(TamperedRecordError) as refused:
            await store_of(r).decide(
                request_id, decision='{"kind":"allow"}', decided_by="human", approver="ann",
                bound_digest="x", now=time.time(),
            )  # fmt: skip
    assert (refused.value.table, refused.value.record_id) == ("requests", request_id)
    assert {"table": "requests", "id": request_id, "refused": "decide"} in await tampers(where)


# -- attack 3: a tool call added to the paused step's snapshot ------------------------------
def add_call(snapshot: str, name: str, arguments: dict[str, Any]) -> str:
    """The snapshot with one more call in its paused step, marked allowed by the policy."""
    data = json.loads(snapshot)
    calls = data["pending_step"]["calls"]
    extra = json.loads(json.dumps(calls[0]))
    turn = data["messages"][-1]["tool_calls"][0]  # a stored call that is its turn's names none
    extra["call"] = {**turn, "id": "call_forged", "name": name, "arguments": arguments}
    extra["policy"] = {**extra["policy"], "action": "allow", "rule_id": None}
    extra.pop("request_id")  # the stored step names its requests by id
    calls.append(extra)
    return json.dumps(data)


async def test_a_call_added_to_the_snapshot_is_not_resumed(where: Where) -> None:
    first = await decided(where, ApprovalDecision(kind="allow", approver="ann"))
    runs = where.table("runs")
    [(snapshot,)] = await where.rows(f"SELECT snapshot FROM {runs}")
    forged = add_call(pk.unpack("snapshot", snapshot), "pay", {"to": "mallory", "amount": 99_999})
    await where.execute(f"UPDATE {runs} SET snapshot = {where.packed('snapshot', forged)}")
    async with runner(where) as r:
        with pytest.raises(TamperedRecordError, match="does not verify"):
            await r.resume(first.run_id, agent())
        record = await store_of(r).load_run(first.run_id)
    assert ran == []
    assert record is not None and (record.status, record.lease_owner) == ("paused", None)
    assert {"table": "runs", "id": first.run_id, "refused": "resume the run"} in (
        await tampers(where)
    )


@pytest.mark.parametrize(
    ("name", "arguments", "reason"),
    [
        ("pay", {"to": "mallory", "amount": 7}, "the policy now gates this call"),
        ("wipe", {"table": "users"}, "Never drop tables."),
    ],
)
async def test_a_resumed_call_without_a_request_is_put_to_the_policy_again(
    where: Where, name: str, arguments: dict[str, Any], reason: str
) -> None:
    """Even a snapshot that verifies (signed with the key) does not make a call allowed."""
    first = await decided(where, ApprovalDecision(kind="allow", approver="ann"))
    async with runner(where) as r:
        await r.grants()  # readies the store
        store = store_of(r)
        record = await store.load_run(first.run_id)
        assert record is not None
        resigned = dataclasses.replace(record, snapshot=add_call(record.snapshot, name, arguments))
        await store.save_run(resigned)
        done = await r.resume(first.run_id, agent())
    assert done.state == "completed", done.error
    assert ran == [("pay", {"to": "bob", "amount": 500})]  # the approved call, only
    approved, forged = done.tool_executions
    assert approved.executed and approved.success
    assert forged.denied and not forged.executed and reason in (forged.error or "")


# -- attack 5: grants inserted, edited or un-revoked ----------------------------------------
def with_grant(**when: Any) -> ApprovalDecision:
    spec = GrantSpec(scope="agent", until=time.time() + 3600, when=dict(when))
    return ApprovalDecision(kind="allow", approver="ann", grant=spec)


async def asked_again(where: Where, amount: int) -> None:
    """A later call the grant (no longer) covers: it is asked about, not run."""
    again = await paused(where, amount)
    assert again.pending_requests and ran == []


async def test_a_forged_grant_covers_nothing(where: Where) -> None:
    await paused(where)  # creates the store
    await where.execute(
        f"INSERT INTO {where.table('grants')} (grant_id, tool_name, scope, scope_value, "
        "when_json, until, created_by, created_at, uses) "
        "VALUES ('grant_forged', 'pay', 'agent', 'payer', '{}', 4e9, 'mallory', 1.0, 0)"
    )
    await asked_again(where, 300)
    assert any(t["table"] == "grants" and t["id"] == "grant_forged" for t in await tampers(where))


async def test_an_edited_or_unrevoked_grant_covers_nothing(where: Where) -> None:
    first = await decided(where, with_grant(amount={"lte": 100}))
    async with runner(where) as r:
        done = await r.resume(first.run_id, agent())
        [grant] = await r.grants()
    assert done.state == "completed" and len(ran) == 1
    ran.clear()
    grants = where.table("grants")
    await where.execute(f"UPDATE {grants} SET when_json = '{{}}'")  # now it would cover 500
    await asked_again(where, 500)
    assert any(t["table"] == "grants" and t["id"] == grant.grant_id for t in await tampers(where))

    await where.execute(f"UPDATE {grants} SET when_json = {literal(grant.when)}")
    async with runner(where) as r:
        assert [g.grant_id for g in await r.grants()] == [grant.grant_id]
        covered = await r.run(agent(), user_message="50")  # restored: it verifies again
        assert covered.state == "completed" and len(ran) == 1
        await r.revoke_grant(grant.grant_id, by="ann")
    ran.clear()
    await where.execute(f"UPDATE {grants} SET revoked_at = NULL, revoked_by = NULL")
    await asked_again(where, 50)


async def test_a_grant_decided_then_resumed_is_logged_once(where: Where) -> None:
    first = await decided(where, with_grant(amount={"lte": 100}))
    async with runner(where) as r:
        await r.resume(first.run_id, agent())
        log = await store_of(r).list_log()
    assert [e.kind for e in log].count("grant_created") == 1


# -- executions -----------------------------------------------------------------------------
async def test_a_forged_done_execution_is_outcome_unknown_and_not_rerun(where: Where) -> None:
    first = await decided(where, ApprovalDecision(kind="allow", approver="ann"))
    request_id = first.pending_requests[0].request_id
    await where.execute(
        f"INSERT INTO {where.table('executions')} (key, run_id, tool_call_id, args_digest, "
        f"status, started_at, result, finished_at) VALUES ({literal(request_id)}, "
        f"{literal(first.run_id)}, 'c', 'd', 'done', 1.0, "
        """'{"output":"paid 0 to nobody","error":null}', 2.0)"""
    )
    async with runner(where) as r:
        done = await r.resume(first.run_id, agent())
    assert ran == []
    [execution] = done.tool_executions
    assert not execution.success and "outcome unknown" in (execution.error or "")
    assert "paid 0" not in str(execution.output)
    assert any(t["table"] == "executions" for t in await tampers(where))


# -- attack 4: the ledger's tail cut together with its checkpoints --------------------------
async def test_an_anchor_catches_a_tail_cut_with_its_checkpoints(where: Where) -> None:
    await decided(where, ApprovalDecision(kind="allow", approver="ann"))
    async with runner(where) as r:
        await r.grants()
        store = store_of(r)
        anchor = await checkpoint(store)  # kept outside the database by the operator
        held = Checkpoint(**{**dataclasses.asdict(anchor), "id": 0})
        log, points = where.table("log"), where.table("ledger_checkpoints")
        await where.execute(f"DELETE FROM {log} WHERE id > 2", f"DELETE FROM {points}")
        assert (await verify(store)).ok  # the database alone cannot tell
        report = await verify(store, expect=held)
        forged = await verify(store, expect=dataclasses.replace(held, entries=2))
    assert report.first_bad is not None and report.first_bad.problem == "truncated"
    assert f"covers {anchor.entries} entries" in report.first_bad.detail
    assert forged.first_bad is not None and forged.first_bad.problem == "bad checkpoint"


# -- upgrading a v2 store (unkeyed digests and chain, no MACs) ------------------------------
async def make_v2(where: Where, runner: Runner) -> None:
    """Turn the store into what afk wrote at store schema v2: no mac columns, SHA-256 digests,
    an unkeyed SHA-256 chain and a checkpoint signed some other way."""
    store = store_of(runner)
    requests = await store.list_requests(status=None)
    log = await store.list_log()
    t = where.table
    statements = [f"ALTER TABLE {t(name)} DROP COLUMN mac" for name in SEALED_TABLES]
    for q in requests:
        tool_args = json.loads(q.request)["tool_args"]
        statements.append(
            f"UPDATE {t('requests')} SET args_digest = '{sha256_hex(tool_args)}', "
            f"bound_digest = '{sha256_hex(tool_args)}' WHERE request_id = {literal(q.request_id)}"
        )
    prev = GENESIS
    for e in log:
        digest = sha256_hex(entry_body(e.id, e.kind, e.run_id, e.request_id, e.actor, e.payload,
                                       e.at, prev))  # fmt: skip
        statements.append(
            f"UPDATE {t('log')} SET prev_hash = '{prev}', hash = '{digest}' WHERE id = {e.id}"
        )
        prev = digest
    statements += [
        f"INSERT INTO {t('ledger_checkpoints')} (head_id, head_hash, entries, at, mac) "
        f"VALUES ({log[-1].id}, '{prev}', {len(log)}, 1.0, '{'ab' * 32}')",
        f"UPDATE {t('meta')} SET value = '2' WHERE key = 'store_schema_version'",
    ]
    await where.execute(*statements)


async def test_a_v2_store_is_sealed_rechained_and_resumes(where: Where) -> None:
    first = await decided(where, ApprovalDecision(kind="allow", approver="ann"))
    async with runner(where) as r:
        await r.grants()
        await make_v2(where, r)
    async with runner(where) as r:
        await r.grants()  # setup() migrates
        store = store_of(r)
        meta = where.table("meta")
        [version] = await where.rows(f"SELECT value FROM {meta} WHERE key = 'store_schema_version'")
        assert version == (str(STORE_SCHEMA_VERSION),)
        [run] = await store.list_runs()
        [request] = await store.list_requests(status=None)
        assert record_ok(store.keys, run) and record_ok(store.keys, request)
        tool_args = json.loads(request.request)["tool_args"]
        assert store.keys.verify("args", tool_args, request.args_digest)
        assert store.keys.verify("args", tool_args, request.bound_digest)
        report = await verify(store)
        assert report.ok, report.summary()
        assert report.checkpoint is not None and report.checkpoint.entries == report.entries
        done = await r.resume(first.run_id, agent())
    assert done.state == "completed", done.error
    assert ran == [("pay", {"to": "bob", "amount": 500})]


async def test_a_reminder_for_a_forged_request_goes_to_no_one(where: Where) -> None:
    reminding = PolicyEngine(
        [PolicyRule("pay", tool="pay", action="request_approval", remind_after_s=3600)]
    )
    got: list[Any] = []
    async with Runner(reminding, config=EXTERNAL, store=where.url, notifier=got.append) as r:
        first = await r.run(agent(), user_message="500", requested_by="alice")
        request_id = first.pending_requests[0].request_id
        await where.execute(f"UPDATE {where.table('timers')} SET due_at = 0")
        await edit_request(where, request_id, lambda data: {**data, "approvers": ["mallory"]})
        assert await r.fire_due_timers() == []
    assert got == []
    refused = {"table": "requests", "id": request_id, "refused": "send a remind timer"}
    assert refused in await tampers(where)
