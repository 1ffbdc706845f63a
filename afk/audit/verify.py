"""Verifying the decision ledger, and signing checkpoints of a verified one.

:func:`verify` re-computes the keyed chain from genesis and names the first entry that was
altered, removed or reordered; it also checks the latest signed checkpoint in the store, and
an anchor kept outside the database (``expect``), which is what catches the newest entries
being cut off (a shorter chain is still a valid chain). :func:`checkpoint` signs the head of
a chain that verifies.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from afk.audit.chain import GENESIS, Checkpoint, entry_body
from afk.errors import AfkError, ConfigurationError

if TYPE_CHECKING:
    from afk.audit.keys import Keyring
    from afk.store.store import LogEntry, RunStore

PAGE = 5000
Problem = Literal["altered", "broken link", "id gap", "truncated", "bad checkpoint"]


@runtime_checkable
class CheckpointStore(Protocol):
    """What a store needs, besides :class:`~afk.store.RunStore`, to keep signed checkpoints
    (both built-in stores have it)."""

    async def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Keep a signed checkpoint of the ledger's head."""

    async def latest_checkpoint(self) -> Checkpoint | None:
        """The newest saved checkpoint, or None before the first."""


@dataclass(frozen=True, slots=True)
class BadEntry:
    """The first entry that does not verify. ``problem``: ``altered`` (its stored hash is not
    the MAC of its contents), ``id gap`` / ``broken link`` (its prev_hash is not the previous
    entry's hash: an entry before it was removed, or entries were reordered), ``truncated``
    (the chain lost entries a signed checkpoint or anchor covers), ``bad checkpoint`` (the
    checkpoint's or anchor's signature does not verify with the key)."""

    id: int
    problem: Problem
    detail: str

    @property
    def reason(self) -> str:
        """The problem as the command line names it."""
        return "removed or reordered" if self.problem in ("id gap", "broken link") else self.problem


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyReport:
    """What :func:`verify` found: how many entries verified up to which head, the first bad entry if
    any, and the checkpoint and anchor it checked."""

    entries: int  # entries that verified (every entry, when ok)
    head_id: int  # the last verified entry (0 for an empty ledger)
    head_hash: str
    first_bad: BadEntry | None = None
    checkpoint: Checkpoint | None = None  # the store's latest signed checkpoint, checked
    anchor: Checkpoint | None = None  # the outside anchor checked, when one was given

    @property
    def ok(self) -> bool:
        """True when every entry, the checkpoint and the anchor verified."""
        return self.first_bad is None

    def summary(self) -> str:
        """One line for people: ``ok: N entries, head ...``, or the first bad entry and why."""
        bad = self.first_bad
        if bad is None:
            return f"ok: {self.entries} entries, head {_short(self.head_hash)}"
        return f"first bad entry: id {bad.id} ({bad.reason}): {bad.detail}"


class LedgerError(AfkError):
    """The ledger does not verify, so :func:`checkpoint` refuses to sign it."""

    def __init__(self, report: VerifyReport) -> None:
        self.report = report
        super().__init__(f"the ledger does not verify, not signing it: {report.summary()}")


class ChainChecker:
    """Re-computes the keyed chain from entries fed in id order; stops at the first bad one.

    Independent of any store, so an export can be checked the same way (with the key).
    ``watch`` names the entries whose hashes a checkpoint or anchor vouches for (0: the
    empty chain).
    """

    def __init__(self, keys: Keyring, watch: tuple[int, ...] = ()) -> None:
        self.keys = keys
        self.entries = 0
        self.head_id = 0
        self.head_hash = GENESIS
        self.bad: BadEntry | None = None
        self.watched: dict[int, str | None] = {i: GENESIS if i == 0 else None for i in watch}

    def feed(self, entry: LogEntry) -> bool:
        """Check one entry; False (and ``bad`` set) when it does not verify."""
        if not entry.hash:
            detail = "it has no hash: written outside the chain, or its hash was erased"
            self.bad = BadEntry(entry.id, "altered", detail)
        elif entry.prev_hash != self.head_hash:
            self.bad = self._broken(entry)
        else:
            fields = (entry.id, entry.kind, entry.run_id, entry.request_id, entry.actor)
            body = entry_body(*fields, entry.payload, entry.at, entry.prev_hash)
            if not self.keys.verify("ledger", body, entry.hash):
                detail = (
                    f"its stored hash {_short(entry.hash)} is not the MAC of its contents under "
                    "this keyring: the entry was edited after it was written (or another key "
                    "wrote it)"
                )
                self.bad = BadEntry(entry.id, "altered", detail)
        if self.bad is not None:
            return False
        self.entries += 1
        self.head_id, self.head_hash = entry.id, entry.hash
        if entry.id in self.watched:
            self.watched[entry.id] = entry.hash
        return True

    def _broken(self, entry: LogEntry) -> BadEntry:
        before = f"entry {self.head_id}" if self.head_id else "the chain's start"
        link = (
            f"its prev_hash {_short(entry.prev_hash) or '(none)'} is not the hash of {before} "
            f"({_short(self.head_hash)})"
        )
        first, last = self.head_id + 1, entry.id - 1
        if last >= first:
            missing = f"entry {first} is" if first == last else f"entries {first}..{last} are"
            return BadEntry(entry.id, "id gap", f"{missing} missing; {link}")
        return BadEntry(entry.id, "broken link", f"{link}: an entry was removed or reordered")

    def against(
        self, checkpoint: Checkpoint, keys: Keyring, what: str = "the checkpoint"
    ) -> BadEntry | None:
        """After the whole chain verified: does it still hold what ``checkpoint`` signed?"""
        signed = f"{what} signed {_iso(checkpoint.at)}"
        if not checkpoint.signature_ok(keys):
            detail = f"{signed} does not verify with this key (a wrong key, or a forged one)"
            return BadEntry(checkpoint.head_id, "bad checkpoint", detail)
        watched = self.watched.get(checkpoint.head_id)
        if watched is None or self.entries < checkpoint.entries:
            detail = (
                f"{signed} covers {checkpoint.entries} entries up to id {checkpoint.head_id} "
                f"({_short(checkpoint.head_hash)}); the ledger now has {self.entries}, ending "
                f"at id {self.head_id}: entry {checkpoint.head_id} or those before it are missing"
            )
            return BadEntry(self.head_id + 1, "truncated", detail)
        if watched != checkpoint.head_hash:
            detail = (
                f"entry {checkpoint.head_id} is not the one {signed} vouches for "
                f"({_short(checkpoint.head_hash)}): the ledger was cut and rewritten from there"
            )
            return BadEntry(checkpoint.head_id, "truncated", detail)
        return None

    def report(
        self, checkpoint: Checkpoint | None = None, anchor: Checkpoint | None = None
    ) -> VerifyReport:
        """The report of the entries checked so far, with the checkpoint and anchor that were
        checked against them."""
        return VerifyReport(
            entries=self.entries,
            head_id=self.head_id,
            head_hash=self.head_hash,
            first_bad=self.bad,
            checkpoint=checkpoint,
            anchor=anchor,
        )


async def verify(
    store: RunStore,
    *,
    keys: Keyring | None = None,
    checkpoint_keys: Keyring | None = None,
    expect: Checkpoint | None = None,
    page: int = PAGE,
) -> VerifyReport:
    """Re-compute the store's ledger from genesis with ``keys`` (default: the store's), then
    check it against the latest signed checkpoint in the store (none yet is fine:
    ``report.checkpoint`` is then None) and against ``expect``, a signed head kept outside
    the database. ``checkpoint_keys`` (default: ``keys``) verify both signatures."""
    keys = keys if keys is not None else store.keys
    signer = checkpoint_keys if checkpoint_keys is not None else keys
    found = await checkpoint_store(store).latest_checkpoint()
    # The checkpoint is read before the chain, so entries appended meanwhile only extend it.
    watch = tuple(c.head_id for c in (found, expect) if c is not None)
    checker = ChainChecker(keys, watch=watch)
    after = 0
    while batch := await store.list_log(after_id=after, limit=page):
        for entry in batch:
            if not checker.feed(entry):
                return checker.report(found, expect)
        after = batch[-1].id
    if found is not None:
        checker.bad = checker.against(found, signer)
    if checker.bad is None and expect is not None:
        checker.bad = checker.against(expect, signer, "the anchored head")
    return checker.report(found, expect)


async def checkpoint(store: RunStore, keys: Keyring | None = None) -> Checkpoint:
    """Verify the ledger (against the previous checkpoint too), then store a checkpoint of
    its head signed with ``keys`` (default: the store's keyring)."""
    signer = keys if keys is not None else store.keys
    target = checkpoint_store(store)
    report = await verify(store, checkpoint_keys=signer)
    if not report.ok:
        raise LedgerError(report)
    signed = Checkpoint(
        head_id=report.head_id, head_hash=report.head_hash, entries=report.entries, at=time.time()
    ).signed(signer)
    await target.save_checkpoint(signed)
    return signed


def checkpoint_store(store: object) -> CheckpointStore:
    """``store`` as a :class:`CheckpointStore`; raises ConfigurationError when it keeps no signed
    checkpoints."""
    if not isinstance(store, CheckpointStore):
        raise ConfigurationError(f"{store!r} keeps no signed ledger checkpoints")
    return store


def _short(tag: str) -> str:
    """A hash as shown to people: its first 12 hex digits (after the key id, if any)."""
    return tag.rpartition(":")[2][:12]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds")


__all__ = [
    "PAGE",
    "BadEntry",
    "ChainChecker",
    "CheckpointStore",
    "LedgerError",
    "Problem",
    "VerifyReport",
    "checkpoint",
    "checkpoint_store",
    "verify",
]
