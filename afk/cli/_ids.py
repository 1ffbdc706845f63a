"""Ids as people read and type them: short in narrow tables, any unique prefix accepted back.

``afk approvals approve 3f2a`` names the one request whose id starts with ``3f2a`` or with
``req_3f2a``; an ambiguous prefix is refused naming the candidates, since deciding the wrong
request is worse than asking for two more characters. A full id that exists always wins,
even when it is also the prefix of another id.

The candidates come from the store's ``ids_with_prefix`` (afk.store._prefix): one range
query on the table's primary key (``id >= prefix AND id < next(prefix)``), an index range
scan that stops after a handful of rows, however many are stored.

This module sits on the fast path of ``afk approvals approve``: it imports the store (and
anything else that takes time) inside the functions that use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from afk.errors import ConfigurationError

if TYPE_CHECKING:
    from afk.store import RunStore

MIN_PREFIX = 4
SHORT = 8
_SHOWN = 5  # candidates an ambiguity error names


class AmbiguousIdError(ConfigurationError):
    """An id prefix that more than one record's id starts with."""


@dataclass(frozen=True, slots=True, kw_only=True)
class IdKind:
    """Where one kind of id lives, and the prefix afk gives the ids it makes."""

    what: Literal["run", "request", "grant"]  # the store's kind, and for messages
    table: str
    column: str
    prefix: str  # "req_": typed prefixes may leave it out, short ids do


REQUEST = IdKind(what="request", table="requests", column="request_id", prefix="req_")
RUN = IdKind(what="run", table="runs", column="run_id", prefix="run_")
GRANT = IdKind(what="grant", table="grants", column="grant_id", prefix="grant_")


# -- reading ---------------------------------------------------------------------------------
def short_ids(ids: Sequence[str], kind: IdKind) -> dict[str, str]:
    """Each id as a narrow table shows it: without afk's own prefix, its first ``SHORT``
    characters, longer where two ids on the same table would otherwise look alike."""
    stems = {i: i.removeprefix(kind.prefix) for i in ids}
    shown: dict[str, str] = {}
    for i, stem in stems.items():
        n = SHORT
        while n < len(stem) and any(
            o != i and other.startswith(stem[:n]) for o, other in stems.items()
        ):
            n += 1
        shown[i] = stem[:n]
    return shown


def shown_id(record_id: str, kind: IdKind, *, wide: bool) -> str:
    return record_id if wide else short_ids([record_id], kind)[record_id]


# -- typing ----------------------------------------------------------------------------------
async def resolve(store: RunStore, kind: IdKind, typed: str) -> str | None:
    """The full id ``typed`` names: itself when it exists, else the one id that starts with
    it (or with ``kind.prefix`` and it); None when nothing does, and for prefixes shorter
    than MIN_PREFIX characters (after ``kind.prefix``). Raises AmbiguousIdError for a prefix
    several ids start with."""
    if await _exists(store, kind, typed):
        return typed
    if len(typed.removeprefix(kind.prefix)) < MIN_PREFIX:
        return None  # too short to stand for anything but itself
    found = await ids_with_prefix(store, kind, typed)
    if not typed.startswith(kind.prefix):
        found = sorted({*found, *await ids_with_prefix(store, kind, kind.prefix + typed)})
    if len(found) > 1:
        from afk.approvals.display import escape

        names = ", ".join(escape(f) for f in found[:_SHOWN])
        more = " and more" if len(found) > _SHOWN else ""
        raise AmbiguousIdError(
            f"{kind.what} id prefix {escape(repr(typed))} is ambiguous: it starts {names}"
            f"{more}; give more characters"
        )
    return found[0] if found else None


async def _exists(store: RunStore, kind: IdKind, record_id: str) -> bool:
    if kind is REQUEST:
        return await store.get_request(record_id) is not None
    if kind is RUN:
        return await store.load_run(record_id) is not None
    return record_id in await ids_with_prefix(store, kind, record_id)


async def ids_with_prefix(store: RunStore, kind: IdKind, prefix: str) -> list[str]:
    """Up to ``_SHOWN + 1`` ids of ``kind`` starting with ``prefix``, in id order."""
    return await store.ids_with_prefix(kind.what, prefix, limit=_SHOWN + 1)


def prefix_query(
    kind: IdKind, prefix: str, limit: int, *, byte_order: bool = True
) -> tuple[str, list[Any]]:
    """The range query the store runs for ``kind`` (see afk.store._prefix.prefix_sql)."""
    from afk.store._prefix import prefix_sql

    return prefix_sql(kind.table, kind.column, prefix, limit, byte_order=byte_order)


def next_prefix(prefix: str) -> str | None:
    """The least string greater than every string starting with ``prefix`` (code-point
    order), or None when there is none (see afk.store._prefix.next_prefix)."""
    from afk.store._prefix import next_prefix as bound

    return bound(prefix)
