"""Verifying the decision ledger, and signing checkpoints of a verified one.

:func:`verify` re-computes the hash chain from genesis and names the first entry that was
altered, removed or reordered; with a key it also checks the latest signed checkpoint, which
is what catches the newest entries being cut off (a shorter chain is still a valid chain).
:func:`checkpoint` signs the head of a chain that verifies.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from afk.audit.chain import GENESIS, KEY_ENV, Checkpoint, entry_hash, key_from_env
from afk.errors import AfkError, ConfigurationError

if TYPE_CHECKING:
    from afk.store.store import LogEntry, RunStore

PAGE = 5000
Problem = Literal["altered", "broken link", "id gap", "truncated", "bad checkpoint"]


@runtime_checkable
class CheckpointStore(Protocol):
    """What a store needs, besides :class:`~afk.store.RunStore`, to keep signed checkpoints
    (both built-in stores have it)."""

    async def save_checkpoint(self, checkpoint: Checkpoint) -> None: ...

    async def latest_checkpoint(self) -> Checkpoint | None: ...


@dataclass(frozen=True, slots=True)
class BadEntry:
    """The first entry that does not verify. ``problem``: ``altered`` (its stored hash is not
    the hash of its contents), ``id gap`` / ``broken link`` (its prev_hash is not the previous
    entry's hash: an entry before it was removed, or entries were reordered), ``truncated``
    (the chain lost entries a signed checkpoint covers), ``bad checkpoint`` (the checkpoint's
    signature does not verify with the key)."""

    id: int
    problem: Problem
    detail: str

    @property
    def reason(self) -> str:
        """The problem as the command line names it."""
        return "removed or reordered" if self.problem in ("id gap", "broken link") else self.problem


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyReport:
    entries: int  # entries that verified (every entry, when ok)
    head_id: int  # the last verified entry (0 for an empty ledger)
    head_hash: str
    first_bad: BadEntry | None = None
    checkpoint: Checkpoint | None = None  # the signed checkpoint checked, with a key

    @property
    def ok(self) -> bool:
        return self.first_bad is None

    def summary(self) -> str:
        bad = self.first_bad
        if bad is None:
            return f"ok: {self.entries} entries, head {self.head_hash[:12]}"
        return f"first bad entry: id {bad.id} ({bad.reason}): {bad.detail}"


class LedgerError(AfkError):
    """The ledger does not verify, so :func:`checkpoint` refuses to sign it."""

    def __init__(self, report: VerifyReport) -> None:
        self.report = report
        super().__init__(f"the ledger does not verify, not signing it: {report.summary()}")


class ChainChecker:
    """Re-computes the chain from entries fed in id order; stops at the first bad one.

    Independent of any store, so an export can be checked the same way. ``watch`` names the
    entry whose hash a checkpoint vouches for (0: the empty chain).
    """

    def __init__(self, watch: int | None = None) -> None:
        self.entries = 0
        self.head_id = 0
        self.head_hash = GENESIS
        self.bad: BadEntry | None = None
        self.watch = watch
        self.watched: str | None = GENESIS if watch == 0 else None

    def feed(self, entry: LogEntry) -> bool:
        """Check one entry; False (and ``bad`` set) when it does not verify."""
        if not entry.hash:
            detail = "it has no hash: written outside the chain, or its hash was erased"
            self.bad = BadEntry(entry.id, "altered", detail)
        elif entry.prev_hash != self.head_hash:
            self.bad = self._broken(entry)
        else:
            fields = (entry.id, entry.kind, entry.run_id, entry.request_id, entry.actor)
            recomputed = entry_hash(*fields, entry.payload, entry.at, entry.prev_hash)
            if recomputed != entry.hash:
                detail = (
                    f"its contents hash to {recomputed[:12]}, not to the stored "
                    f"{entry.hash[:12]}: the entry was edited after it was written"
                )
                self.bad = BadEntry(entry.id, "altered", detail)
        if self.bad is not None:
            return False
        self.entries += 1
        self.head_id, self.head_hash = entry.id, entry.hash
        if entry.id == self.watch:
            self.watched = entry.hash
        return True

    def _broken(self, entry: LogEntry) -> BadEntry:
        before = f"entry {self.head_id}" if self.head_id else "the chain's start"
        link = (
            f"its prev_hash {entry.prev_hash[:12] or '(none)'} is not the hash of {before} "
            f"({self.head_hash[:12]})"
        )
        first, last = self.head_id + 1, entry.id - 1
        if last >= first:
            missing = f"entry {first} is" if first == last else f"entries {first}..{last} are"
            return BadEntry(entry.id, "id gap", f"{missing} missing; {link}")
        return BadEntry(entry.id, "broken link", f"{link}: an entry was removed or reordered")

    def against(self, checkpoint: Checkpoint, key: bytes) -> BadEntry | None:
        """After the whole chain verified: does it still hold what ``checkpoint`` signed?"""
        signed = f"the checkpoint signed {_iso(checkpoint.at)}"
        if not checkpoint.signature_ok(key):
            detail = f"{signed} does not verify with this key (a wrong key, or a forged checkpoint)"
            return BadEntry(checkpoint.head_id, "bad checkpoint", detail)
        if self.watched is None or self.entries < checkpoint.entries:
            detail = (
                f"{signed} covers {checkpoint.entries} entries up to id {checkpoint.head_id}; "
                f"the ledger now has {self.entries}, ending at id {self.head_id}"
            )
            return BadEntry(self.head_id + 1, "truncated", detail)
        if self.watched != checkpoint.head_hash:
            detail = (
                f"entry {checkpoint.head_id} is not the one {signed} vouches for "
                f"({checkpoint.head_hash[:12]}): the ledger was cut and rewritten from there"
            )
            return BadEntry(checkpoint.head_id, "truncated", detail)
        return None

    def report(self, checkpoint: Checkpoint | None = None) -> VerifyReport:
        return VerifyReport(
            entries=self.entries,
            head_id=self.head_id,
            head_hash=self.head_hash,
            first_bad=self.bad,
            checkpoint=checkpoint,
        )


async def verify(store: RunStore, *, key: bytes | None = None, page: int = PAGE) -> VerifyReport:
    """Re-compute the store's ledger from genesis; with ``key``, also check it against the
    latest signed checkpoint (none yet is fine: ``report.checkpoint`` is then None)."""
    found = await checkpoint_store(store).latest_checkpoint() if key is not None else None
    # The checkpoint is read before the chain, so entries appended meanwhile only extend it.
    checker = ChainChecker(watch=found.head_id if found else None)
    after = 0
    while batch := await store.list_log(after_id=after, limit=page):
        for entry in batch:
            if not checker.feed(entry):
                return checker.report(found)
        after = batch[-1].id
    if found is not None and key is not None:
        checker.bad = checker.against(found, key)
    return checker.report(found)


async def checkpoint(store: RunStore, key: bytes | None = None) -> Checkpoint:
    """Verify the ledger (against the previous checkpoint too), then store a signed
    checkpoint of its head. The key: ``key``, else ``$AFK_AUDIT_KEY`` (hex or text)."""
    key = key if key is not None else key_from_env()
    if not key:
        raise ConfigurationError(f"no checkpoint key: set {KEY_ENV} (hex or text) or pass key=")
    target = checkpoint_store(store)
    report = await verify(store, key=key)
    if not report.ok:
        raise LedgerError(report)
    signed = Checkpoint(
        head_id=report.head_id, head_hash=report.head_hash, entries=report.entries, at=time.time()
    ).signed(key)
    await target.save_checkpoint(signed)
    return signed


def checkpoint_store(store: object) -> CheckpointStore:
    if not isinstance(store, CheckpointStore):
        raise ConfigurationError(f"{store!r} keeps no signed ledger checkpoints")
    return store


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds")
