"""One typed entry of every ledger kind, and the payload bytes afk wrote for the same values
before entries were classes (captured from that code, with ``KEYS`` for the digests)."""

from __future__ import annotations

from afk.audit.entries import (
    DecisionRefused,
    Entry,
    ExecutionFinished,
    ExecutionStarted,
    GrantCreated,
    GrantRevoked,
    GrantUsed,
    PolicyDecided,
    ReminderSent,
    RequestDecided,
    RequestEscalated,
    RequestExpired,
    RequestOpened,
    ShadowRule,
    TamperDetected,
    VoteCast,
)
from afk.audit.keys import Keyring, SecretKey

KEYS = Keyring(SecretKey(secret=b"ledger-entries-test-key-0123456789"))
KINDS = (
    "request_opened", "decided", "expired", "vote", "refused", "reminded", "escalated",
    "execution_started", "execution_finished", "policy_decision", "tamper_detected",
    "grant_created", "grant_revoked", "grant_used",
)  # fmt: skip

# Digests under KEYS: of {"table": "événements", "n": 3}, {"table": "t"} and {}.
REQ_DIGEST = "94da6ad48614:51b885f65c7871937875f746a7dff51e9122738ebc944d5b2def8f2d88546a3d"
TOOL_DIGEST = "94da6ad48614:8102c70aa2f860f62deb445f180a7a97047081d03a4ecf45c2c839bcff86c7d7"
EMPTY_DIGEST = "94da6ad48614:5d8970ff97e0f04fbc783ada9beaf1331766f0b9ff9651cc23d1036c898d2898"
D, E = "d" * 64, "e" * 64
LONG_ERROR = "ValueError: " + "x" * 988  # what outcome_log keeps of a longer one

# name -> the payload today's writers store (before: the same dicts built by hand).
FROZEN = {
    "request_opened": '{"args_digest":"' + REQ_DIGEST + '","rule":"r-drop","tool":"drop_table"}',
    "decided": (
        '{"args_digest":"' + REQ_DIGEST + '","decided_by":"human","kind":"allow","reason":"ok"}'
    ),
    "decided_principal": (
        '{"args_digest":"' + REQ_DIGEST + '","authenticated_by":"os:uid=1000",'
        '"decided_by":"human","kind":"deny","operator":"root","principal":"alice","reason":"no"}'
    ),
    "decided_anonymous": (
        '{"args_digest":"' + E + '","authenticated_by":"anonymous","decided_by":"human",'
        '"kind":"allow","principal":null,"reason":null}'
    ),
    "expired": (
        '{"args_digest":"' + REQ_DIGEST + '","decided_by":"timeout","kind":"deny",'
        '"reason":"timeout fallback"}'
    ),
    "vote": (
        '{"args_digest":"' + E + '","authenticated_by":"os:uid=1000","decided_by":"human",'
        '"kind":"allow","operator":"root","principal":"alice","reason":"fine"}'
    ),
    "refused": (
        '{"authenticated_by":"os:uid=1000","detail":"request req_1 was already decided",'
        '"kind":"deny","operator":"root","principal":"alice","why":"AlreadyDecidedError"}'
    ),
    "refused_anonymous": (
        '{"authenticated_by":"anonymous","detail":"bad","kind":"allow","principal":null,'
        '"why":"ValueError"}'
    ),
    "reminded": '{"approvers":["alice","bob"]}',
    "escalated": '{"approvers":["alice","bob","carol"]}',
    "execution_started": '{"args_digest":"' + D + '","tool_call_id":"call_1"}',
    "execution_finished": (
        '{"args_digest":"' + D + '","error":null,"success":true,"tool_call_id":"call_1"}'
    ),
    "execution_failed": (
        '{"args_digest":"' + D + '","error":"' + LONG_ERROR + '","success":false,'
        '"tool_call_id":"call_1"}'
    ),
    "policy_decision": (
        '{"action":"request_approval","args_digest":"' + TOOL_DIGEST + '",'
        '"event":"tool_before_execute","matched":["r-drop","r-log"],"reason":"risky",'
        '"rule":"r-drop","shadow":[{"action":"deny","rule":"s1","would_change":true},'
        '{"action":"allow","rule":null,"would_change":false}],"step":3,"tool":"drop_table",'
        '"tool_call_id":"call_1"}'
    ),
    "policy_model_call": (
        '{"action":"allow","args_digest":"' + EMPTY_DIGEST + '","event":"llm_before_execute",'
        '"matched":[],"reason":null,"rule":null,"step":1,"tool":null,"tool_call_id":null}'
    ),
    "tamper_run": '{"id":"run-1","refused":"resume the run","table":"runs"}',
    "tamper_execution": (
        '{"id":"key-1","refused":"trust or repeat an execution","table":"executions"}'
    ),
    "grant_created": '{"grant_id":"grant_1","tool":"drop_table","until":4000000000.0}',
    "grant_revoked": '{"grant_id":"grant_1","tool":"drop_table"}',
    "grant_used": '{"grant_id":"grant_1","tool":"drop_table","tool_call_id":"call_9"}',
}

AT = 200.25
_ALICE = {"principal": "alice", "authenticated_by": "os:uid=1000", "operator": "root"}
_DRAFT = {"run_id": "run-1", "request_id": "req_1", "at": AT}
_SHADOW = (
    ShadowRule(rule="s1", action="deny", would_change=True),
    ShadowRule(rule=None, action="allow", would_change=False),
)

# name -> the typed entry that FROZEN[name] is the payload of.
SAMPLES: dict[str, Entry] = {
    "request_opened": RequestOpened(
        **_DRAFT, tool="drop_table", args_digest=REQ_DIGEST, rule="r-drop"
    ),
    "decided": RequestDecided(
        **_DRAFT, actor="bob", decision="allow", decided_by="human", reason="ok",
        args_digest=REQ_DIGEST,
    ),
    "decided_principal": RequestDecided(
        **_DRAFT, actor="human", decision="deny", decided_by="human", reason="no",
        args_digest=REQ_DIGEST, **_ALICE,
    ),
    "decided_anonymous": RequestDecided(
        **_DRAFT, actor="anonymous", decision="allow", decided_by="human", reason=None,
        args_digest=E, principal=None, authenticated_by="anonymous",
    ),
    "expired": RequestExpired(
        **_DRAFT, actor="timeout", decision="deny", decided_by="timeout",
        reason="timeout fallback", args_digest=REQ_DIGEST,
    ),
    "vote": VoteCast(
        **_DRAFT, actor="alice", decision="allow", decided_by="human", reason="fine",
        args_digest=E, **_ALICE,
    ),
    "refused": DecisionRefused(
        **_DRAFT, actor="alice", decision="deny", why="AlreadyDecidedError",
        detail="request req_1 was already decided", **_ALICE,
    ),
    "refused_anonymous": DecisionRefused(
        **_DRAFT, actor="anonymous", decision="allow", why="ValueError", detail="bad",
        principal=None, authenticated_by="anonymous",
    ),
    "reminded": ReminderSent(**_DRAFT, approvers=("alice", "bob")),
    "escalated": RequestEscalated(**_DRAFT, approvers=("alice", "bob", "carol")),
    "execution_started": ExecutionStarted(
        run_id="run-1", request_id="key-1", tool_call_id="call_1", args_digest=D, at=AT
    ),
    "execution_finished": ExecutionFinished(
        run_id="run-1", request_id="key-1", tool_call_id="call_1", args_digest=D,
        success=True, error=None, at=AT,
    ),
    "execution_failed": ExecutionFinished(
        run_id="run-1", request_id="key-1", tool_call_id="call_1", args_digest=D,
        success=False, error=LONG_ERROR, at=AT,
    ),
    "policy_decision": PolicyDecided(
        run_id="run-1", actor="policy", event="tool_before_execute", step=3, tool="drop_table",
        tool_call_id="call_1", args_digest=TOOL_DIGEST, action="request_approval",
        rule="r-drop", matched=("r-drop", "r-log"), reason="risky", shadow=_SHADOW, at=AT,
    ),
    "policy_model_call": PolicyDecided(
        run_id="run-1", actor="policy", event="llm_before_execute", step=1, tool=None,
        tool_call_id=None, args_digest=EMPTY_DIGEST, action="allow", rule=None, matched=(),
        reason=None, at=AT,
    ),
    "tamper_run": TamperDetected(
        run_id="run-1", actor="afk", table="runs", row_id="run-1", refused="resume the run",
        at=AT,
    ),
    "tamper_execution": TamperDetected(
        run_id="run-1", request_id="key-1", actor="afk", table="executions", row_id="key-1",
        refused="trust or repeat an execution", at=AT,
    ),
    "grant_created": GrantCreated(
        **_DRAFT, actor="alice", grant_id="grant_1", tool="drop_table", until=4e9
    ),
    "grant_revoked": GrantRevoked(
        run_id="req_1", request_id="req_1", actor="carol", grant_id="grant_1",
        tool="drop_table", at=AT,
    ),
    "grant_used": GrantUsed(
        **_DRAFT, grant_id="grant_1", tool="drop_table", tool_call_id="call_9"
    ),
}  # fmt: skip

# Payloads afk's earlier writers stored, which still load (kind, payload).
OLDER = [
    ("execution_started", "{}"),
    ("execution_finished", "{}"),
    ("tamper_detected", '{"expected":"' + D + '"}'),
    ("decided", '{"args_digest":"' + D + '","decided_by":"human","kind":"allow","reason":null}'),
    ("refused", '{"detail":"too late","kind":"deny","why":"RequestExpiredError"}'),
    ("vote", '{"args_digest":"' + D + '","decided_by":"human","kind":"deny","reason":"no"}'),
]
