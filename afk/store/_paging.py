"""Keyset paging for the store's listings, shared by both backends.

A listing is ordered by a key that is unique per row (``(created_at, request_id)`` for
requests, oldest first; ``(updated_at, run_id)`` for runs, newest first), and each filter
combination has an index whose columns are the equality filters followed by that key. A page
is then one index range scan that stops after ``limit + 1`` rows (an unfiltered listing: one
such scan per status, merged), so it costs O(page) however many rows are stored, with no
OFFSET, no count and no sort of the table. The plan cannot depend on table statistics: each
scan has one index that matches all its equalities and its ORDER BY.

A cursor is the last row's sort key, with the listing and filters it belongs to, as
URL-safe base64 of JSON. It is a position, not a credential: a forged cursor can only start
a listing elsewhere, which a caller can ask for anyway. It is checked strictly all the same,
so a cursor from another listing or a damaged one is refused instead of silently skipping.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, get_args

from afk.errors import ConfigurationError
from afk.store import _common as c
from afk.store.store import RequestStatus, RunStatus

if TYPE_CHECKING:
    from afk.store.store import RequestRecord, RunRecord, RunStore

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
_CURSOR_VERSION = 1
_CURSOR_TEXT = re.compile(r"[A-Za-z0-9_-]{1,2048}")
_REQUEST_COLS = c.REQUEST_READ  # with the tool schema put back (afk.store._tool_schemas)
_RUN_COLS = ", ".join(c.RUN_COLS)

# Each starts with a listing's equality filters and ends in its sort key; there is
# deliberately none on the sort key alone (see _query). They replaced the older
# (status, created_at) / (run_id) / (status, updated_at) indexes (store schema 5).
INDEXES = (
    "CREATE INDEX IF NOT EXISTS requests_page_status "
    "ON {t}requests (status, created_at, request_id){filled}",
    "CREATE INDEX IF NOT EXISTS requests_page_run_status "
    "ON {t}requests (run_id, status, created_at, request_id){filled}",
    "CREATE INDEX IF NOT EXISTS runs_page_status ON {t}runs (status, updated_at, run_id){filled}",
)


class Page(list[T]):
    """One page of a listing: its records, in listing order, and ``next_cursor``, to pass
    as ``cursor=`` for the next page (None when this page is the last).

    A list, so code that iterates, indexes or compares a listing keeps working; the cursor
    rides along and takes no part in equality."""

    __slots__ = ("next_cursor",)

    def __init__(self, records: Iterable[T] = (), *, next_cursor: str | None = None) -> None:
        super().__init__(records)
        self.next_cursor = next_cursor

    def __repr__(self) -> str:
        return f"Page({list.__repr__(self)}, next_cursor={self.next_cursor!r})"


def check_limit(limit: object) -> int:
    """``limit`` as a page size, or a ConfigurationError naming the accepted values."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ConfigurationError(
            f"limit must be a whole number from 1 to {MAX_LIMIT}, got {limit!r}"
        )
    return limit


def bounds(
    limit: int | None, cursor: str | None, listing: str, filters: Sequence[str | None]
) -> tuple[int, tuple[float, str] | None]:
    """A keyed listing's page size (``limit``, default 50) and the position its ``cursor``
    names (None: from the start); a ConfigurationError for either when malformed."""
    size = check_limit(DEFAULT_LIMIT if limit is None else limit)
    return size, decode_cursor(cursor, listing, filters) if cursor is not None else None


def keyed_page(
    records: Sequence[T],
    key: Callable[[T], tuple[float, str]],
    listing: str,
    filters: Sequence[str | None],
    limit: int,
) -> Page[T]:
    """The first ``limit`` of ``records`` (read as ``limit + 1`` in ``key`` order, past the
    cursor), with the cursor of the next page when there was one more."""
    page = list(records[:limit])
    more = len(records) > limit
    return Page(page, next_cursor=encode_cursor(listing, filters, key(page[-1])) if more else None)


def page_of(
    records: Iterable[T],
    key: Callable[[T], tuple[float, str]],
    listing: str,
    filters: Sequence[str | None],
    *,
    limit: int | None,
    cursor: str | None,
) -> Page[T]:
    """A page of records held in memory, as a store's listing pages its rows."""
    size, after = bounds(limit, cursor, listing, filters)
    ordered = sorted(records, key=key)
    if after is not None:
        ordered = [r for r in ordered if key(r) > after]
    return keyed_page(ordered[: size + 1], key, listing, filters, size)


# -- cursors -------------------------------------------------------------------------------
def encode_cursor(listing: str, filters: Sequence[str | None], key: tuple[float, str]) -> str:
    payload = [_CURSOR_VERSION, listing, *filters, float(key[0]), key[1]]
    text = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: object, listing: str, filters: Sequence[str | None]) -> tuple[float, str]:
    """The sort key ``cursor`` holds, when it is a cursor of this listing with these filters."""
    payload = _cursor_payload(cursor)
    expected = [_CURSOR_VERSION, listing, *filters]
    head, key = payload[: len(expected)], payload[len(expected) :]
    if head != expected:
        raise _bad_cursor(cursor, "it belongs to another listing or other filters")
    if len(key) != 2 or not isinstance(key[1], str):
        raise _bad_cursor(cursor, "it holds no position")
    at = key[0]
    if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
        raise _bad_cursor(cursor, "it holds no position")
    return float(at), key[1]


def _cursor_payload(cursor: object) -> list[Any]:
    if not isinstance(cursor, str) or not _CURSOR_TEXT.fullmatch(cursor):
        raise _bad_cursor(cursor, "it is not URL-safe base64 text")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw.decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _bad_cursor(cursor, "it does not decode") from None
    if not isinstance(payload, list):
        raise _bad_cursor(cursor, "it does not decode")
    return payload


def _bad_cursor(cursor: object, why: str) -> ConfigurationError:
    shown = cursor[:60] + "..." if isinstance(cursor, str) and len(cursor) > 60 else cursor
    return ConfigurationError(
        f"invalid cursor {shown!r}: {why}; pass the next_cursor of a page of the same "
        "listing (same status and run filters), or no cursor for the first page"
    )


# -- queries -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class _Listing:
    """One table's listing: its columns, sort key, direction and the closed set of values
    its ``status`` column takes."""

    name: str
    table: str
    columns: str
    key: tuple[str, str]
    descending: bool
    statuses: tuple[str, ...]

    def branch(self, equalities: Sequence[tuple[str, str]], after: bool) -> str:
        """One index range scan: the equality filters, then the key past the cursor."""
        where = [f"{column} = ?" for column, _ in equalities]
        if after:
            where.append(f"({', '.join(self.key)}) {'<' if self.descending else '>'} (?, ?)")
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        return f"SELECT {self.columns} FROM {{t}}{self.table}{clause} ORDER BY {self.order}"

    @property
    def order(self) -> str:
        return ", ".join(f"{k} DESC" if self.descending else k for k in self.key) + " LIMIT ?"


_REQUESTS = _Listing(
    name="requests",
    table="requests",
    columns=_REQUEST_COLS,
    key=("created_at", "request_id"),
    descending=False,
    statuses=get_args(RequestStatus),
)
_RUNS = _Listing(
    name="runs",
    table="runs",
    columns=_RUN_COLS,
    key=("updated_at", "run_id"),
    descending=True,
    statuses=get_args(RunStatus),
)


def _query(
    listing: _Listing,
    equalities: Sequence[tuple[str, str | None]],
    limit: int,
    cursor: str | None,
) -> tuple[str, list[Any]]:
    """SQL (``_common`` conventions) and parameters of one page, asking for one row more than
    ``limit``: that row only tells whether a next page exists.

    With no filter at all, the page is the union of one range scan per status, each on the
    status index, merged and cut to the page: an index on the key alone would also serve
    the status-filtered listing, and Postgres, trusting its statistics, may then walk it and
    filter, which costs O(rows skipped) when they are stale or the pending rows are the
    newest. Without it every query has exactly one index that fits.

    All of one run's requests (no status) are read from requests_page_run_status on its
    ``run_id`` prefix and sorted: O(requests of that run), and a run holds few. Store schema 8
    dropped the index that served it without the sort (requests_page_run), whose pages every
    paused run paid for; no other index starts with ``run_id``, so no plan can do worse."""
    limit = check_limit(limit)
    filters = [value for _, value in equalities]
    key = decode_cursor(cursor, listing.name, filters) if cursor is not None else None
    after = list(key) if key is not None else []
    on = [(column, value) for column, value in equalities if value is not None]
    if on:
        return listing.branch(on, key is not None), [*(v for _, v in on), *after, limit + 1]
    branches, args = [], []
    for n, status in enumerate(listing.statuses):
        branches.append(
            f"SELECT * FROM ({listing.branch([('status', status)], key is not None)}) AS s{n}"
        )
        args += [status, *after, limit + 1]
    sql = " UNION ALL ".join(branches) + " ORDER BY " + listing.order
    return sql, [*args, limit + 1]


def requests_query(
    *, run_id: str | None, status: RequestStatus | None, limit: int, cursor: str | None
) -> tuple[str, list[Any]]:
    """One page of requests, oldest first (see :func:`_query`)."""
    return _query(_REQUESTS, [("run_id", run_id), ("status", status)], limit, cursor)


def runs_query(
    *, status: RunStatus | None, limit: int, cursor: str | None
) -> tuple[str, list[Any]]:
    """One page of runs, most recently updated first (see :func:`_query`)."""
    return _query(_RUNS, [("status", status)], limit, cursor)


def request_page(
    records: Sequence[RequestRecord], *, run_id: str | None, status: str | None, limit: int
) -> Page[RequestRecord]:
    more = len(records) > limit
    shown = records[:limit]
    cursor = None
    if more:
        last = shown[-1]
        cursor = encode_cursor("requests", (run_id, status), (last.created_at, last.request_id))
    return Page(shown, next_cursor=cursor)


def run_page(records: Sequence[RunRecord], *, status: str | None, limit: int) -> Page[RunRecord]:
    more = len(records) > limit
    shown = records[:limit]
    cursor = None
    if more:
        last = shown[-1]
        cursor = encode_cursor("runs", (status,), (last.updated_at, last.run_id))
    return Page(shown, next_cursor=cursor)


# -- walking every page --------------------------------------------------------------------
async def request_pages(
    store: RunStore, *, run_id: str | None = None, status: RequestStatus | None = "pending"
) -> AsyncIterator[Page[RequestRecord]]:
    """Every page of a request listing, MAX_LIMIT rows at a time."""
    cursor: str | None = None
    while True:
        page = await store.list_requests(
            run_id=run_id, status=status, limit=MAX_LIMIT, cursor=cursor
        )
        yield page
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


async def every_request(
    store: RunStore, *, run_id: str, status: RequestStatus | None = "pending"
) -> list[RequestRecord]:
    """All of one run's requests (a run holds few): listings are paged, this one must be
    complete, since callers decide from it whether a run still waits."""
    return [r async for page in request_pages(store, run_id=run_id, status=status) for r in page]
