"""One class per ledger entry kind, through one serializer: every kind round-trips, writes the
bytes afk wrote before entries were classes, and a row no class fits is refused by name."""

from __future__ import annotations

import ast
import dataclasses
import typing
from pathlib import Path

import pytest
from entries_support import FROZEN, KINDS, OLDER, SAMPLES

import afk
from afk.audit.entries import (
    ENTRY_CLASSES,
    ENTRY_KINDS,
    DecisionRefused,
    ExecutionStarted,
    LedgerEntryError,
    RequestDecided,
    TamperDetected,
    entry_payload,
    from_log,
    to_log,
    who,
)
from afk.audit.entries import _kinds as kinds
from afk.store.store import LogEntry

AFK = Path(afk.__file__).parent
# Where a LogEntry may be built: the serializer, and the store reading its own rows.
ROW_BUILDERS = {AFK / "audit/entries/_codec.py", AFK / "store/_common.py"}


def row(kind: str, payload: str, entry_id: int = 7) -> LogEntry:
    return LogEntry(id=entry_id, kind=kind, run_id="run-1", request_id="req_1", payload=payload)


def test_every_kind_is_one_class() -> None:
    assert sorted(ENTRY_KINDS) == sorted(KINDS)
    assert len(ENTRY_CLASSES) == len(KINDS) == len(set(ENTRY_CLASSES))
    for kind, cls in ENTRY_KINDS.items():
        [field] = [f for f in dataclasses.fields(cls) if f.name == "kind"]
        assert typing.get_args(typing.get_type_hints(cls)["kind"]) == (kind,)
        assert field.default == kind
    assert set(typing.get_args(kinds.Entry)) == set(ENTRY_CLASSES)
    assert {s.kind for s in SAMPLES.values()} == set(KINDS)  # a sample of every kind


def _log_entry_calls(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", getattr(node.func, "attr", None)) == "LogEntry"
    ]


def test_only_the_serializer_builds_ledger_rows() -> None:
    """Every entry afk writes goes through to_log, so every kind it can write is a class."""
    builders = {p: lines for p in AFK.rglob("*.py") if (lines := _log_entry_calls(p))}
    assert set(builders) == ROW_BUILDERS, builders
    # ...and nothing rewrites a row's kind afterwards (as ``replace(entry, kind="vote")`` did).
    rewrites = [
        (path.name, node.lineno)
        for path in AFK.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and getattr(node.func, "attr", getattr(node.func, "id", "")) == "replace"
        and any(k.arg == "kind" for k in node.keywords)
    ]
    assert rewrites == []


def test_the_vocabularies_match_the_runtime_ones() -> None:
    from afk.agents.rules import EventType, PolicyAction
    from afk.approvals.requests import DecidedBy

    assert typing.get_args(kinds.PolicyAction) == typing.get_args(PolicyAction)
    assert typing.get_args(kinds.EventType) == typing.get_args(EventType)
    assert typing.get_args(kinds.DecidedBy) == typing.get_args(DecidedBy)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_round_trip(name: str) -> None:
    entry = SAMPLES[name]
    stored = to_log(entry)
    assert (stored.kind, stored.run_id, stored.request_id, stored.actor, stored.at) == (
        entry.kind, entry.run_id, entry.request_id, entry.actor, entry.at,
    )  # fmt: skip
    assert from_log(stored) == entry
    assert to_log(from_log(stored)) == stored


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_the_payload_bytes_are_the_ones_afk_wrote(name: str) -> None:
    assert to_log(SAMPLES[name]).payload == FROZEN[name]
    assert from_log(row(SAMPLES[name].kind, FROZEN[name])).kind == SAMPLES[name].kind


@pytest.mark.parametrize(("kind", "payload"), OLDER)
def test_older_writers_entries_load_and_write_back_unchanged(kind: str, payload: str) -> None:
    entry = from_log(row(kind, payload))
    assert type(entry) is ENTRY_KINDS[kind]
    assert to_log(entry).payload == payload


def test_older_entries_read_as_the_fields_they_lack() -> None:
    started = from_log(row("execution_started", "{}"))
    assert started == ExecutionStarted(run_id="run-1", request_id="req_1", at=0.0)
    tamper = from_log(row("tamper_detected", '{"expected":"abc"}'))
    assert isinstance(tamper, TamperDetected)
    assert (tamper.expected, tamper.table, tamper.row_id) == ("abc", None, None)
    refused = from_log(row("refused", '{"detail":"d","kind":"deny","why":"X"}'))
    assert isinstance(refused, DecisionRefused)
    assert (refused.principal, refused.authenticated_by, refused.operator) == (None, None, None)


def test_an_unknown_kind_is_refused_by_name() -> None:
    with pytest.raises(LedgerEntryError) as caught:
        from_log(row("shred_everything", "{}", entry_id=42))
    message = str(caught.value)
    assert "ledger entry 42 ('shred_everything')" in message
    assert "request_opened" in message and "grant_used" in message  # the accepted kinds
    assert (caught.value.kind, caught.value.entry_id) == ("shred_everything", 42)


MISFITS = [
    # (kind, payload, the field named, in the message)
    ("decided", "not json", "", "its payload is not valid JSON (Expecting value)"),
    ("decided", "[1, 2]", "", "list JSON, not an object"),
    ("request_opened", '{"args_digest":"a","tool":"t"}', "rule", "lacks 'rule'"),
    ("request_opened", '{"args_digest":"a","rule":null,"tool":"t","x":1}', "x", "has x"),
    ("policy_decision", FROZEN["policy_model_call"].replace('"step":1', '"step":true'), "step",
     "'step' must be an integer, not True"),
    ("decided", FROZEN["decided"].replace('"allow"', '"maybe"'), "kind",
     "'kind' must be one of 'allow', 'deny', not 'maybe'"),
    ("grant_used", '{"grant_id":"g","tool":"t","tool_call_id":5}', "tool_call_id",
     "'tool_call_id' must be a string"),
    ("reminded", '{"approvers":"alice"}', "approvers", "must be a list of a string"),
    ("policy_decision", FROZEN["policy_decision"].replace('"would_change":true', '"x":1'),
     "shadow", "'shadow' must be a list of an object with rule, action, would_change"),
    ("decided", FROZEN["decided"][:-1] + ',"principal":"mallory"}', "principal",
     "'principal' is written only when 'authenticated_by' is set"),
    ("refused", FROZEN["refused_anonymous"][:-1] + ',"operator":null}', "operator",
     "'operator' is written only when 'operator' is set"),
    ("policy_decision", FROZEN["policy_model_call"][:-1] + ',"shadow":[]}', "shadow",
     "only when 'shadow' is set"),
    ("decided", '{"kind":"allow","kind":"deny"}', "kind", "its payload repeats 'kind'"),
    ("grant_created", '{"grant_id":"g","tool":"t","until":NaN}', "", "holds NaN"),
    ("grant_created", '{"grant_id":"g","tool":"t","until":1e999}', "until", "must be a number"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "payload", "field", "fragment"), MISFITS)
def test_a_payload_that_does_not_fit_is_refused(
    kind: str, payload: str, field: str | None, fragment: str
) -> None:
    with pytest.raises(LedgerEntryError) as caught:
        from_log(row(kind, payload))
    assert str(caught.value).startswith(f"ledger entry 7 ({kind!r}): ")
    assert fragment in str(caught.value)
    assert (caught.value.kind, caught.value.field) == (kind, field)


def test_a_voter_field_without_its_authentication_is_not_written() -> None:
    entry = dataclasses.replace(SAMPLES["decided"], principal="mallory")
    with pytest.raises(LedgerEntryError, match="principal is written only with authenticated_by"):
        to_log(entry)


def test_who_names_the_voter_as_the_ledger_always_did() -> None:
    from afk.approvals.principal import Principal

    assert who(None) == {"principal": None, "authenticated_by": "anonymous"}
    assert who(Principal(id="bob", authenticated_by="app")) == {
        "principal": "bob",
        "authenticated_by": "app",
    }
    vouched = Principal(id="bob", authenticated_by="os:uid=0", operator="root")
    assert who(vouched)["operator"] == "root"
    entry = RequestDecided(
        run_id="r", decision="allow", decided_by="human", reason=None, args_digest="a", at=1.0,
        **who(vouched),
    )  # fmt: skip
    assert entry_payload(entry)["operator"] == "root"


def test_importing_afk_audit_does_not_load_the_store() -> None:
    import subprocess
    import sys

    code = (
        "import sys, afk.audit; print('afk.store' in sys.modules);"
        "afk.audit.RequestOpened; print('afk.store.store' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
