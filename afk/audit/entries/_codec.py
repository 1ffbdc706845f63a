"""The one serializer of ledger entries: a typed entry to the store's ``LogEntry`` row and
back.

``to_log`` writes the payload as canonical JSON of the entry's payload fields, the bytes afk
has always written for the same values (so stored chains and their MACs stay valid);
``from_log`` reads a row back into its class, refusing (``LedgerEntryError``) a kind afk does
not write and a payload that does not fit the kind: a missing or unknown key, a value of the
wrong type, a repeated key. Whatever ``from_log`` accepts, ``to_log`` writes back unchanged.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from afk.audit.entries._shape import Problem, decode, payload
from afk.canonical import canonical_json
from afk.errors import StoreError
from afk.store.store import LogEntry

if TYPE_CHECKING:
    from afk.audit.entries._registry import Entry

    ENTRY_KINDS: dict[str, type[Entry]]  # built on first use: see __getattr__


class LedgerEntryError(StoreError):
    """A ledger entry that is none of afk's kinds, or whose payload does not fit its kind
    (``field``: the payload key at fault), or a typed entry that cannot be written as is."""

    def __init__(self, message: str, *, kind: str, entry_id: int = 0, field: str | None = None):
        self.kind = kind
        self.entry_id = entry_id
        self.field = field
        super().__init__(message)


# -- the serializer -------------------------------------------------------------------------
def entry_payload(entry: Entry) -> dict[str, Any]:
    """The payload of ``entry`` as JSON data (what ``to_log`` writes, before canonical JSON)."""
    try:
        return payload(entry)
    except Problem as exc:
        raise LedgerEntryError(str(exc), kind=entry.kind, field=exc.key) from None


def to_log(entry: Entry) -> LogEntry:
    """The store's row for ``entry``: its columns, and its payload as canonical JSON."""
    return LogEntry(
        kind=entry.kind,
        run_id=entry.run_id,
        request_id=entry.request_id,
        actor=entry.actor,
        payload=canonical_json(entry_payload(entry)),
        at=entry.at,
    )


def _kind_of(cls: type[Entry]) -> str:
    return str(next(f.default for f in dataclasses.fields(cls) if f.name == "kind"))


_KINDS: dict[str, type[Entry]] = {}


def _entry_kinds() -> dict[str, type[Entry]]:
    """Each kind's class, what ``from_log`` reads rows against: built on first use, since
    it builds every kind, and writing a decision needs only its own (see ._kinds)."""
    if not _KINDS:
        from afk.audit.entries._registry import ENTRY_CLASSES

        _KINDS.update({_kind_of(cls): cls for cls in ENTRY_CLASSES})
    return _KINDS


def __getattr__(name: str) -> Any:
    if name == "ENTRY_KINDS":
        return _entry_kinds()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def from_log(entry: LogEntry) -> Entry:
    """The typed entry a stored row holds. Raises :class:`LedgerEntryError` naming the entry
    and its kind when the kind is not afk's or the payload does not fit it."""
    kinds = _entry_kinds()
    cls = kinds.get(entry.kind)
    where = f"ledger entry {entry.id} ({entry.kind!r})"
    if cls is None:
        raise LedgerEntryError(
            f"{where}: not a kind afk writes; the kinds are {', '.join(sorted(kinds))}",
            kind=entry.kind,
            entry_id=entry.id,
        )
    try:
        data = _loads(entry.payload)
        if not isinstance(data, dict):
            raise Problem("", f"its payload is {type(data).__name__} JSON, not an object")
        values = decode(cls, data)
    except Problem as exc:
        raise LedgerEntryError(
            f"{where}: {exc}", kind=entry.kind, entry_id=entry.id, field=exc.key
        ) from None
    return cls(
        run_id=entry.run_id, request_id=entry.request_id, actor=entry.actor, at=entry.at, **values
    )


def _loads(text: str) -> Any:
    """JSON text, refusing a repeated key (two parsers would read different entries) and the
    non-numbers NaN and Infinity; cheaper than afk.canonical.strict_loads, which marks paths
    for model output."""
    try:
        return json.loads(text, object_pairs_hook=_unique, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise Problem("", f"its payload is not valid JSON ({exc.msg})") from None
    except (ValueError, RecursionError) as exc:  # a number too long to read; too deep
        raise Problem("", f"its payload cannot be read ({type(exc).__name__})") from None


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        repeated = sorted({k for k, _ in pairs if [p for p, _ in pairs].count(k) > 1})
        raise Problem(repeated[0], f"its payload repeats {', '.join(map(repr, repeated))}")
    return found


def _no_constant(name: str) -> Any:
    raise Problem("", f"its payload holds {name}, which is not a JSON number")


__all__ = ["ENTRY_KINDS", "LedgerEntryError", "entry_payload", "from_log", "to_log"]
