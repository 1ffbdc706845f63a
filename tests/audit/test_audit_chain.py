"""The chain's definition, independent of any store: entry hashes, keys, signed checkpoints,
and checking a chain fed by hand (as an export would be)."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from afk.audit import GENESIS, ChainChecker, Checkpoint, entry_hash, key_from_env, parse_key
from afk.store.store import LogEntry


def test_entry_hash_is_the_documented_sha256_of_canonical_json() -> None:
    body = {
        "id": 7, "kind": "decided", "run_id": "run-1", "request_id": None, "actor": "zoë",
        "payload": '{"b": 1, "a": "é"}', "at": 1700000000.25, "prev_hash": GENESIS,
    }  # fmt: skip
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    expected = hashlib.sha256(text.encode("utf-8")).hexdigest()
    fields = ("decided", "run-1", None, "zoë")
    assert entry_hash(7, *fields, str(body["payload"]), 1700000000.25, GENESIS) == expected
    # The payload is hashed as the stored text: re-spacing it is an alteration.
    assert entry_hash(7, *fields, '{"b":1,"a":"é"}', 1700000000.25, GENESIS) != expected
    # An integral time hashes like the float the database hands back.
    assert entry_hash(1, "k", "r", None, None, "{}", 5, GENESIS) == entry_hash(
        1, "k", "r", None, None, "{}", 5.0, GENESIS
    )


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("00" * 16, bytes(16)),
        ("  " + "AB" * 32 + "\n", bytes.fromhex("ab" * 32)),
        ("abcd", b"abcd"),  # too short to be read as hex
        ("0" * 33, b"0" * 33),  # odd number of digits
        ("correct horse battery staple", b"correct horse battery staple"),
    ],
)
def test_parse_key(text: str, key: bytes) -> None:
    assert parse_key(text) == key


def test_key_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AFK_AUDIT_KEY", raising=False)
    assert key_from_env() is None
    monkeypatch.setenv("AFK_AUDIT_KEY", "  ")
    assert key_from_env() is None
    monkeypatch.setenv("MY_KEY", "s3cret")
    assert key_from_env("MY_KEY") == b"s3cret"


def test_a_signed_checkpoint_detects_any_change() -> None:
    signed = Checkpoint(head_id=10, head_hash="a" * 64, entries=10, at=1.5).signed(b"k")
    assert signed.signature_ok(b"k") and not signed.signature_ok(b"other")
    for change in ({"head_id": 9}, {"head_hash": "b" * 64}, {"entries": 11}, {"at": 2.0}):
        assert not dataclasses.replace(signed, **change).signature_ok(b"k")  # type: ignore[arg-type]


def chain(n: int) -> list[LogEntry]:
    entries, prev = [], GENESIS
    for i in range(1, n + 1):
        e = LogEntry(id=i, kind="decided", run_id="run-1", request_id=f"q{i}", at=float(i))
        digest = entry_hash(e.id, e.kind, e.run_id, e.request_id, e.actor, e.payload, e.at, prev)
        entries.append(dataclasses.replace(e, prev_hash=prev, hash=digest))
        prev = digest
    return entries


def check(entries: list[LogEntry]) -> ChainChecker:
    checker = ChainChecker()
    for e in entries:
        if not checker.feed(e):
            break
    return checker


def test_the_checker_names_the_first_bad_entry() -> None:
    good = chain(6)
    assert check(good).bad is None and check(good).entries == 6
    assert check([*good[:3], *good[4:]]).bad.problem == "id gap"  # type: ignore[union-attr]
    # Entries 3 and 4 trade places, ids kept in order (as swapping rows in the table does).
    swapped = [*good[:2], dataclasses.replace(good[3], id=3), dataclasses.replace(good[2], id=4)]
    bad = check(swapped).bad
    assert bad is not None
    assert (bad.id, bad.problem, bad.reason) == (3, "broken link", "removed or reordered")
    # Out of id order (a shuffled export): the entry after 2 is not 3.
    bad = check([*good[:2], good[3], good[2]]).bad
    assert bad is not None and (bad.id, bad.reason) == (4, "removed or reordered")
    edited = [*good[:4], dataclasses.replace(good[4], kind="refused"), good[5]]
    bad = check(edited).bad
    assert bad is not None and (bad.id, bad.problem, bad.reason) == (5, "altered", "altered")
    unhashed = [dataclasses.replace(good[0], hash="")]
    assert check(unhashed).bad is not None
