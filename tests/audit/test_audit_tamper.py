"""A 10,000-entry ledger on each backend, tampered with directly in the database: the verifier
names the first edited, deleted or swapped entry, and with a signed checkpoint a cut-off tail.
The chain is keyed: without the store's key an edited entry cannot be re-hashed to fit."""

from __future__ import annotations

import dataclasses
import time

import pytest
from audit_support import KEY, Where, fill

from afk.audit import GENESIS, Keyring, LedgerError, SecretKey, checkpoint, entry_hash, verify
from afk.canonical import sha256_hex
from afk.store.store import RunStore

N = 10_000


async def test_a_10k_ledger_verifies_quickly(store: RunStore, where: Where) -> None:
    await fill(store, N)
    started = time.perf_counter()
    report = await verify(store)
    elapsed = time.perf_counter() - started
    assert report.ok, report.summary()
    assert (report.entries, report.head_id, report.first_bad) == (N, N, None)
    [last] = await store.list_log(after_id=N - 1)
    assert report.head_hash == last.hash
    assert last.hash.startswith(store.keys.key_id + ":")
    assert report.summary() == f"ok: {N} entries, head {last.hash.partition(':')[2][:12]}"
    assert elapsed < 2.0, f"verifying {N} entries on {where.name} took {elapsed:.2f}s"


async def test_each_entry_hashes_its_contents_and_the_previous_hash(store: RunStore) -> None:
    await fill(store, 3)
    entries = await store.list_log()
    assert [e.id for e in entries] == [1, 2, 3]
    prev = GENESIS
    for e in entries:
        assert e.prev_hash == prev
        fields = (e.id, e.kind, e.run_id, e.request_id, e.actor, e.payload, e.at, e.prev_hash)
        assert e.hash == entry_hash(store.keys, *fields)
        prev = e.hash


@pytest.mark.parametrize(
    ("column", "value"),
    [("payload", """'{"kind":"deny"}'"""), ("actor", "'mallory'"), ("at", "1.5")],
)
async def test_an_edited_entry_is_named(
    store: RunStore, where: Where, column: str, value: str
) -> None:
    await fill(store, N)
    await where.execute(f"UPDATE {where.table('log')} SET {column} = {value} WHERE id = 5000")
    report = await verify(store)
    assert report.first_bad is not None and not report.ok
    assert (report.first_bad.id, report.first_bad.problem) == (5000, "altered")
    assert report.entries == 4999
    assert report.summary().startswith("first bad entry: id 5000 (altered): ")


async def test_an_edit_rehashed_without_the_key_is_still_altered(
    store: RunStore, where: Where
) -> None:
    await fill(store, 100)
    [old] = await store.list_log(after_id=49, limit=1)
    body = {
        "id": old.id, "kind": old.kind, "run_id": old.run_id, "request_id": old.request_id,
        "actor": "mallory", "payload": old.payload, "at": old.at, "prev_hash": old.prev_hash,
    }  # fmt: skip
    for forged in (sha256_hex(body), f"{store.keys.key_id}:{sha256_hex(body)}"):
        log = where.table("log")
        await where.execute(f"UPDATE {log} SET actor = 'mallory', hash = '{forged}' WHERE id = 50")
        bad = (await verify(store)).first_bad
        assert bad is not None and (bad.id, bad.problem) == (50, "altered")


async def test_an_edit_with_a_recomputed_hash_breaks_the_next_link(
    store: RunStore, where: Where
) -> None:
    await fill(store, N)
    [old] = await store.list_log(after_id=4999, limit=1)
    forged = dataclasses.replace(old, actor="mallory")
    fields = (forged.id, forged.kind, forged.run_id, forged.request_id, forged.actor)
    # Someone holding the key can rewrite one entry, but not without breaking the next link.
    digest = entry_hash(store.keys, *fields, forged.payload, forged.at, forged.prev_hash)
    log = where.table("log")
    await where.execute(f"UPDATE {log} SET actor = 'mallory', hash = '{digest}' WHERE id = 5000")
    report = await verify(store)
    assert report.first_bad is not None
    assert (report.first_bad.id, report.first_bad.reason) == (5001, "removed or reordered")


async def test_a_deleted_entry_is_named(store: RunStore, where: Where) -> None:
    await fill(store, N)
    await where.execute(f"DELETE FROM {where.table('log')} WHERE id = 7000")
    report = await verify(store)
    bad = report.first_bad
    assert bad is not None
    assert (bad.id, bad.problem, bad.reason) == (7001, "id gap", "removed or reordered")
    assert "entry 7000 is missing" in bad.detail
    assert report.summary().startswith("first bad entry: id 7001 (removed or reordered): ")


async def test_deleting_the_first_entries_is_caught(store: RunStore, where: Where) -> None:
    await fill(store, 50)
    await where.execute(f"DELETE FROM {where.table('log')} WHERE id <= 3")
    bad = (await verify(store)).first_bad
    assert bad is not None
    assert (bad.id, bad.problem) == (4, "id gap")
    assert "entries 1..3 are missing" in bad.detail


async def test_swapped_entries_are_named(store: RunStore, where: Where) -> None:
    await fill(store, N)
    log = where.table("log")
    await where.execute(
        f"UPDATE {log} SET id = -1 WHERE id = 3000",
        f"UPDATE {log} SET id = 3000 WHERE id = 3001",
        f"UPDATE {log} SET id = 3001 WHERE id = -1",
    )
    report = await verify(store)
    bad = report.first_bad
    assert bad is not None
    assert (bad.id, bad.problem, bad.reason) == (3000, "broken link", "removed or reordered")
    assert "removed or reordered" in report.summary()


async def test_a_cut_off_tail_is_caught_by_the_signed_checkpoint(
    store: RunStore, where: Where
) -> None:
    await fill(store, N)
    signed = await checkpoint(store)  # with the store's own keyring
    assert (signed.head_id, signed.entries) == (N, N) and signed.signature_ok(store.keys)
    assert (await verify(store)).ok
    await where.execute(f"DELETE FROM {where.table('log')} WHERE id > {N - 10}")

    report = await verify(store)
    bad = report.first_bad
    assert bad is not None
    assert (bad.id, bad.problem, bad.reason) == (N - 9, "truncated", "truncated")
    assert f"covers {N} entries up to id {N}" in bad.detail
    assert report.summary().startswith(f"first bad entry: id {N - 9} (truncated): ")
    with pytest.raises(LedgerError):
        await checkpoint(store)  # a cut ledger is not signed over

    await fill(store, 20, start=N)  # cut, then written on: entry N is now a different one
    again = await verify(store)
    assert again.first_bad is not None
    assert (again.first_bad.id, again.first_bad.problem) == (N, "truncated")
    assert "rewritten" in again.first_bad.detail


async def test_a_checkpoint_signed_with_a_separate_key_needs_that_key(store: RunStore) -> None:
    await fill(store, 10)
    signed = await checkpoint(store, KEY)  # $AFK_AUDIT_KEY's role
    assert signed.mac.startswith(KEY.key_id + ":") and signed.signature_ok(KEY)
    assert (await verify(store, checkpoint_keys=KEY)).ok
    other = Keyring(SecretKey(secret=b"some other key, long enough to use"))
    for wrong in (other, None):  # None: the store's own keyring
        report = await verify(store, checkpoint_keys=wrong)
        assert report.first_bad is not None and report.first_bad.problem == "bad checkpoint"


async def test_checkpoints_follow_the_growing_ledger(store: RunStore) -> None:
    empty = await verify(store, checkpoint_keys=KEY)
    assert (empty.ok, empty.entries, empty.head_hash, empty.checkpoint) == (True, 0, GENESIS, None)
    first = await checkpoint(store, KEY)
    assert (first.head_id, first.entries, first.head_hash) == (0, 0, GENESIS)
    await fill(store, 30)
    assert (await verify(store, checkpoint_keys=KEY)).ok
    second = await checkpoint(store, KEY)
    await fill(store, 5, start=30)
    report = await verify(store, checkpoint_keys=KEY)
    assert report.ok and report.entries == 35
    assert report.checkpoint is not None
    assert (report.checkpoint.head_id, report.checkpoint.mac) == (30, second.mac)


async def test_a_tampered_ledger_is_not_signed(store: RunStore, where: Where) -> None:
    await fill(store, 20)
    await where.execute(f"UPDATE {where.table('log')} SET kind = 'x' WHERE id = 4")
    with pytest.raises(LedgerError, match=r"id 4 \(altered\)") as info:
        await checkpoint(store, KEY)
    assert info.value.report.first_bad is not None
    assert await store.latest_checkpoint() is None  # type: ignore[attr-defined]
