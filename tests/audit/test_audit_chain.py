"""The chain's definition, independent of any store: keyed entry hashes, signed checkpoints,
and checking a chain fed by hand (as an export would be)."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json

from afk.audit import GENESIS, ChainChecker, Checkpoint, Keyring, SecretKey, entry_hash
from afk.store.store import LogEntry

KEYS = Keyring(SecretKey(secret=bytes(range(32))))


def test_entry_hash_is_the_documented_hmac_of_canonical_json() -> None:
    body = {
        "id": 7, "kind": "decided", "run_id": "run-1", "request_id": None, "actor": "zoë",
        "payload": '{"b": 1, "a": "é"}', "at": 1700000000.25, "prev_hash": GENESIS,
    }  # fmt: skip
    text = json.dumps(["ledger", body], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    mac = hmac.new(bytes(range(32)), text.encode("utf-8"), hashlib.sha256).hexdigest()
    expected = f"{KEYS.key_id}:{mac}"
    fields = ("decided", "run-1", None, "zoë")
    assert entry_hash(KEYS, 7, *fields, str(body["payload"]), 1700000000.25, GENESIS) == expected
    # The payload is hashed as the stored text: re-spacing it is an alteration.
    assert entry_hash(KEYS, 7, *fields, '{"b":1,"a":"é"}', 1700000000.25, GENESIS) != expected
    # An integral time hashes like the float the database hands back.
    assert entry_hash(KEYS, 1, "k", "r", None, None, "{}", 5, GENESIS) == entry_hash(
        KEYS, 1, "k", "r", None, None, "{}", 5.0, GENESIS
    )
    # Without the key there is no way to the same hash: another key gives another one.
    other = Keyring(SecretKey(secret=bytes(32)))
    assert entry_hash(other, 7, *fields, str(body["payload"]), 1700000000.25, GENESIS) != expected


def test_a_signed_checkpoint_detects_any_change() -> None:
    signed = Checkpoint(head_id=10, head_hash="a" * 64, entries=10, at=1.5).signed(KEYS)
    other = Keyring(SecretKey(secret=bytes(32)))
    assert signed.signature_ok(KEYS) and not signed.signature_ok(other)
    for change in ({"head_id": 9}, {"head_hash": "b" * 64}, {"entries": 11}, {"at": 2.0}):
        assert not dataclasses.replace(signed, **change).signature_ok(KEYS)  # type: ignore[arg-type]


def chain(n: int) -> list[LogEntry]:
    entries, prev = [], GENESIS
    for i in range(1, n + 1):
        e = LogEntry(id=i, kind="decided", run_id="run-1", request_id=f"q{i}", at=float(i))
        fields = (e.id, e.kind, e.run_id, e.request_id, e.actor, e.payload, e.at, prev)
        digest = entry_hash(KEYS, *fields)
        entries.append(dataclasses.replace(e, prev_hash=prev, hash=digest))
        prev = digest
    return entries


def check(entries: list[LogEntry]) -> ChainChecker:
    checker = ChainChecker(KEYS)
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
