"""The request/decision codec (afk.approvals._codec) gives exactly what pydantic's adapter of
the same dataclass gives, over every shape afk stores: written by the codec or by pydantic,
read back by either, equal values with equal types (tuples where the dataclass has tuples,
floats where it has floats). And it reads strictly: an unknown key, a missing field, a wrong
type or a decision breaking its own rules is a StoreError naming the field."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from approvals_support import finance_agent, finance_policy
from pydantic import TypeAdapter

from afk.agents import Agent, PolicyEngine, PolicyRule
from afk.approvals import _codec as codec
from afk.approvals._rows import load_decision, load_request, request_json
from afk.approvals.requests import (
    ApprovalDecision,
    ApprovalRequest,
    GrantSpec,
    UserInputDecision,
    UserInputRequest,
)
from afk.core import Runner, RunnerConfig
from afk.core import _snapshot as snapshot
from afk.errors import StoreError
from afk.llms import ScriptedModel, ToolCall
from afk.store import RequestRecord
from afk.store import _packed as pk
from afk.tools import tool

FIXTURES = Path(__file__).resolve().parents[1] / "durable" / "fixtures"
SCHEMA = {
    "type": "object",
    "properties": {"order": {"type": "string"}, "amount": {"type": "integer"}},
    "required": ["order", "amount"],
}
_COMMON: dict[str, Any] = {
    "request_id": "req_1",
    "run_id": "run_1",
    "step": 3,
    "agent_name": "billing",
    "tool_name": "refund",
    "tool_args": {"order": "o-1", "amount": 250, "lines": [{"sku": "a", "qty": 2}]},
    "tool_call_id": "call_1",
    "rule_id": "big-refunds",
    "reason": "Refunds over 100 need finance sign-off.",
    "created_at": 1795568732.6460524,
    "expires_at": 1795569032.6460524,
}

REQUESTS = [
    ApprovalRequest(**_COMMON),
    # A gated model call: no tool, no call id, no rule.
    ApprovalRequest(**{**_COMMON, "tool_name": None, "tool_call_id": None, "rule_id": None}),
    ApprovalRequest(
        **_COMMON,
        thread_id="t-1",
        tool_schema=SCHEMA,
        approvers=("alice", "bob", "carol"),
        quorum=2,
        allow_self_approval=True,
        requested_by="dana",
        remind_at=1795568792.5,
        escalate_at=1795568852.25,
        escalate_to=("dana",),
        deny_decides=False,
        allowed_decisions=("allow", "deny"),
    ),
    # Whole-second times, as a caller's ints: stored and read back as floats.
    ApprovalRequest(**{**_COMMON, "created_at": 1795568732.0, "expires_at": 1795569032.0}),
    UserInputRequest(**_COMMON, prompt="Why is this refund needed?"),
    UserInputRequest(
        **_COMMON,
        prompt="Note for the customer?",
        input_target_arg="note",
        thread_id="t-1",
        tool_schema=SCHEMA,
        requested_by="dana",
    ),
]
DECISIONS = [
    ApprovalDecision(kind="allow"),
    ApprovalDecision(kind="allow", approver="bob", reason="fine by me"),
    ApprovalDecision(kind="deny", reason="too much", approver="carol", stop_run=True),
    ApprovalDecision(
        kind="allow",
        approver="bob",
        updated_tool_args={"order": "o-1", "amount": 90, "lines": [], "note": "é ✓ \u2028"},
    ),
    ApprovalDecision(
        kind="allow",
        approver="bob",
        grant=GrantSpec(scope="thread", until=1795572332.5, when={"amount": {"lte": 500}}),
    ),
    ApprovalDecision(kind="allow", grant=GrantSpec(scope="user", until=1795572332.0)),
    UserInputDecision(kind="allow", value="customer asked twice", approver="alice"),
    UserInputDecision(kind="deny", reason="no", stop_run=True),
]


def same(left: Any, right: Any) -> None:
    """Equal, and of the same types field by field (5 == 5.0 and [1] != (1,) otherwise
    hide or show a difference that equality alone gets wrong)."""
    assert left == right
    assert type(left) is type(right)
    if dataclasses.is_dataclass(left):
        for f in dataclasses.fields(left):
            same(getattr(left, f.name), getattr(right, f.name))


@pytest.mark.parametrize("value", REQUESTS + DECISIONS, ids=repr)
def test_writes_what_pydantic_writes(value: Any) -> None:
    adapter = TypeAdapter(type(value))
    assert codec.encode(value) == adapter.dump_python(value, mode="json")
    assert codec.dumps(value) == adapter.dump_json(value).decode()  # byte for byte
    assert snapshot.to_json(value, type(value)) == codec.dumps(value)  # the one writer
    assert snapshot.to_jsonable(value) == codec.encode(value)


@pytest.mark.parametrize("value", REQUESTS + DECISIONS, ids=repr)
def test_reads_what_pydantic_reads(value: Any) -> None:
    kind = type(value)
    adapter = TypeAdapter(kind)
    for text in (adapter.dump_json(value).decode(), codec.dumps(value)):
        same(codec.loads(text, kind), adapter.validate_json(text))
        same(codec.loads(text, kind), value)
        data = json.loads(text)
        same(codec.decode(data, kind), adapter.validate_python(data))
        same(snapshot.validate(data, kind), codec.decode(data, kind))
        same(snapshot.from_json(text, kind), codec.loads(text, kind))


def test_what_json_cannot_hold_is_converted_as_pydantic_does() -> None:
    import datetime

    odd = ApprovalRequest(
        **{**_COMMON, "tool_args": {"day": datetime.date(2026, 1, 2), "ids": (1, 2), "x": 1e300}}
    )
    adapter = TypeAdapter(ApprovalRequest)
    assert codec.encode(odd) == adapter.dump_python(odd, mode="json")
    assert json.loads(codec.dumps(odd)) == json.loads(adapter.dump_json(odd))


def test_a_missing_defaulted_field_reads_as_its_default() -> None:
    # Rows written by hand (and by older afk) leave out what is at its default.
    same(codec.loads('{"kind":"allow"}', ApprovalDecision), ApprovalDecision(kind="allow"))


def _old_load_request(record: RequestRecord) -> Any:
    """What load_request did before the codec: the row's columns over its JSON, through
    pydantic."""
    kind = ApprovalRequest if record.kind == "approval" else UserInputRequest
    data = json.loads(record.request)
    columns = ("request_id", "run_id", "kind", "created_at", "expires_at", "tool_name")
    data.update({name: getattr(record, name) for name in columns})
    return TypeAdapter(kind).validate_python(data)


def _old_load_decision(record: RequestRecord) -> Any:
    assert record.decision is not None
    kind = ApprovalDecision if record.kind == "approval" else UserInputDecision
    return TypeAdapter(kind).validate_json(record.decision)


def _row(request: Any, **decided: Any) -> RequestRecord:
    return RequestRecord(
        request_id=request.request_id,
        run_id=request.run_id,
        kind=request.kind,
        request=request_json(request),
        args_digest="d",
        status="decided" if decided else "pending",
        created_at=request.created_at,
        expires_at=request.expires_at,
        tool_name=request.tool_name,
        **decided,
    )


@pytest.mark.parametrize("request_", REQUESTS, ids=repr)
def test_request_rows_load_as_before(request_: Any) -> None:
    record = _row(request_)
    same(load_request(record), _old_load_request(record))
    same(load_request(record), request_)


@pytest.mark.parametrize("decision", DECISIONS, ids=repr)
def test_decisions_load_as_before(decision: Any) -> None:
    request = REQUESTS[0] if isinstance(decision, ApprovalDecision) else REQUESTS[4]
    record = _row(request, decision=codec.dumps(decision), decided_by="human")
    same(load_decision(record), _old_load_decision(record))
    same(load_decision(record), decision)


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("v*_*.json")), ids=lambda p: p.name)
def test_the_frozen_fixtures_rows_load_as_before(path: Path) -> None:
    rows = json.loads(path.read_text())["requests"]
    assert rows
    for row in rows:
        row.pop("mac", None)
        record = RequestRecord(**row)
        same(load_request(record), _old_load_request(record))
        if record.decision is not None:
            same(load_decision(record), _old_load_decision(record))


# -- rows the real writers leave in a store ------------------------------------------------
@tool
def refund(amount: int, note: str = "") -> str:
    """Refund a customer."""
    return f"refunded {amount}"


def _input_agent(amount: int) -> Agent:
    return Agent("billing", ScriptedModel([ToolCall("refund", {"amount": amount}), "Done."]),
                 "You refund.", tools=[refund])  # fmt: skip


_INPUT_POLICY = PolicyEngine(
    [
        PolicyRule("ask-note", tool="refund", when={"amount": {"lte": 10}},
                   action="request_user_input", reason="Note?", input_target_arg="note"),
        PolicyRule("ask-why", tool="refund", when={"amount": {"gt": 10}},
                   action="request_user_input", reason="Why?"),
    ]
)  # fmt: skip


async def _stored_rows(url: str) -> None:
    """Requests and decisions of every kind, written by the Runner and Runner.resolve."""
    external = RunnerConfig(interaction_mode="external")
    escalating = finance_policy(
        remind_after_s=60, escalate_after_s=120, escalate_to=("group:cfo",),
        deny_decides=False, allowed_decisions=("allow", "deny", "edit"),
    )  # fmt: skip
    for policy, quorum_votes in ((escalating, ["bob", "carol"]), (finance_policy(quorum=1), [])):
        async with Runner(policy, config=external, store=url) as runner:
            for amount in (250, 300, 400):
                # One thread per run: a thread holds one run at a time, and these stay paused.
                thread = f"t-{amount}-{len(quorum_votes)}"
                run = await runner.run(finance_agent(), user_message=str(amount),
                                       requested_by="alice", thread_id=thread)  # fmt: skip
                rid = run.pending_requests[0].request_id
                decision = {
                    250: ApprovalDecision(kind="allow", reason="ok"),
                    300: ApprovalDecision(
                        kind="allow",
                        updated_tool_args={"order": "o-300", "amount": 150},
                    ),
                    400: ApprovalDecision(kind="deny", reason="no", stop_run=True),
                }[amount]
                for who in quorum_votes or ["bob"]:
                    await runner.resolve(rid, dataclasses.replace(decision, approver=who))
            if not quorum_votes:
                run = await runner.run(finance_agent(), user_message="500",
                                       requested_by="alice", thread_id="t-500")  # fmt: skip
                grant = GrantSpec(scope="thread", until=1e10, when={"amount": {"lte": 900}})
                decision = ApprovalDecision(kind="allow", approver="bob", grant=grant)
                await runner.resolve(run.pending_requests[0].request_id, decision)
    async with Runner(_INPUT_POLICY, config=external, store=url) as runner:
        for amount, answer in ((5, "thanks"), (50, None)):
            run = await runner.run(_input_agent(amount), user_message="refund")
            rid = run.pending_requests[0].request_id
            decision = (
                UserInputDecision(kind="allow", value=answer, approver="bob")
                if answer
                else UserInputDecision(kind="deny", reason="no", approver="bob")
            )
            await runner.resolve(rid, decision)


def _text(column: str, value: Any) -> Any:
    """A raw column as text: the request is stored deflated since store schema 8."""
    return pk.unpack("request", value) if column == "request" else value


async def test_every_row_the_writers_store_loads_as_before(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    await _stored_rows(f"sqlite:///{db}")
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        names = {f.name for f in dataclasses.fields(RequestRecord)}
        rows = [
            RequestRecord(**{k: _text(k, v) for k, v in dict(r).items() if k in names})
            for r in conn.execute("SELECT * FROM requests")
        ]
        votes = [r["decision"] for r in conn.execute("SELECT decision FROM votes")]
    kinds = {(r.kind, r.decision is not None) for r in rows}
    assert kinds == {("approval", True), ("user_input", True)}
    assert len(rows) == 9 and len(votes) == 6
    for record in rows:
        same(load_request(record), _old_load_request(record))
        assert record.decision is not None
        same(load_decision(record), _old_load_decision(record))
    for text in votes:
        same(codec.loads(text, ApprovalDecision), TypeAdapter(ApprovalDecision).validate_json(text))
    loaded = [load_request(r) for r in rows]
    assert any(isinstance(r, ApprovalRequest) and r.escalate_to for r in loaded)
    assert any(isinstance(r, UserInputRequest) and r.input_target_arg for r in loaded)
    decisions = [load_decision(r) for r in rows]
    assert any(isinstance(d, ApprovalDecision) and d.grant is not None for d in decisions)
    assert any(isinstance(d, ApprovalDecision) and d.updated_tool_args for d in decisions)


# -- refusals --------------------------------------------------------------------------------
_GOOD = json.loads(codec.dumps(REQUESTS[2]))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"surprise": 1}, "ApprovalRequest: unknown field 'surprise'"),
        ({"quorum": "2"}, "ApprovalRequest.quorum: expected an integer, got str"),
        ({"quorum": True}, "ApprovalRequest.quorum: expected an integer, got bool"),
        ({"step": 1.5}, "ApprovalRequest.step: expected an integer, got float"),
        ({"tool_name": 5}, "ApprovalRequest.tool_name: expected a string, got int"),
        ({"tool_args": []}, "ApprovalRequest.tool_args: expected an object, got list"),
        ({"approvers": "alice"}, "ApprovalRequest.approvers: expected a list of strings"),
        ({"approvers": ["alice", 7]}, "ApprovalRequest.approvers: expected a list of strings"),
        ({"created_at": "now"}, "ApprovalRequest.created_at: expected a number, got str"),
        ({"deny_decides": 0}, "ApprovalRequest.deny_decides: expected true or false, got int"),
        ({"kind": "user_input"}, "ApprovalRequest.kind: expected one of 'approval'"),
        ({"remind_at": [1]}, "ApprovalRequest.remind_at: expected a number, got list"),
    ],
)
def test_a_request_that_does_not_fit_is_refused_naming_the_field(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(StoreError, match=_pattern(message)):
        codec.decode({**_GOOD, **change}, ApprovalRequest)


def test_a_missing_field_is_refused() -> None:
    data = {k: v for k, v in _GOOD.items() if k != "agent_name"}
    with pytest.raises(StoreError, match="ApprovalRequest: missing field 'agent_name'"):
        codec.decode(data, ApprovalRequest)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"kind":"maybe"}', "ApprovalDecision.kind: expected one of 'allow', 'deny'"),
        (
            '{"kind":"allow","grant":{"scope":"galaxy","until":1}}',
            "ApprovalDecision.grant.scope: expected one of 'thread', 'agent', 'user'",
        ),
        ('{"kind":"allow","grant":{"scope":"user","until":1,"extra":1}}', "unknown field 'extra'"),
        ('{"kind":"allow","grant":{"scope":"user"}}', "missing field 'until'"),
        (
            '{"kind":"deny","stop_run":true,"grant":{"scope":"user","until":1}}',
            "not a valid ApprovalDecision",
        ),
        ('{"kind":"allow","stop_run":true}', "not a valid ApprovalDecision"),
        ('{"kind":"allow","updated_tool_args":"x"}', "updated_tool_args: expected an object"),
        ('["allow"]', "ApprovalDecision: expected an object, got list"),
        ('{"kind":', "ApprovalDecision is not JSON"),
    ],
)
def test_a_decision_that_does_not_fit_is_refused(text: str, message: str) -> None:
    with pytest.raises(StoreError, match=_pattern(message)):
        codec.loads(text, ApprovalDecision)


def test_load_request_and_load_decision_name_the_row() -> None:
    record = _row(REQUESTS[0])
    bad = dataclasses.replace(record, request=json.dumps({**json.loads(record.request), "x": 1}))
    with pytest.raises(StoreError, match="request req_1: stored ApprovalRequest: unknown field"):
        load_request(bad)
    with pytest.raises(StoreError, match="request req_1: its JSON is not an object"):
        load_request(dataclasses.replace(record, request="[]"))
    decided = dataclasses.replace(record, decision='{"kind":"allow","value":"x"}')
    with pytest.raises(StoreError, match=r"decision of request req_1: .*unknown field 'value'"):
        load_decision(decided)


def test_every_field_type_of_the_dataclasses_is_one_the_codec_knows() -> None:
    # A field added with a new type fails here, not on the first row someone stores.
    for kind in codec.KINDS:
        value = codec.decode(json.loads(codec.dumps(_sample(kind))), kind)
        assert type(value) is kind


def _sample(kind: type) -> Any:
    return next(v for v in [*REQUESTS, *DECISIONS, DECISIONS[4].grant] if type(v) is kind)


def _pattern(message: str) -> str:
    import re

    return re.escape(message)
