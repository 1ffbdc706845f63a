"""The pending list an approver works from (store schema 9): by deadline, soonest first, and
filtered by tool, rule or agent, a page at a time by index.

``rule_id`` and ``agent_name`` live in the request's JSON; the requests table repeats them in
two columns so an index can find them. Those columns are not covered by the row MAC (a v8
row's MAC could not cover them without resealing every row) and are trusted for nothing:
they only choose which rows a page reads. Every row read is checked against its own JSON
(MAC-covered), and one whose columns disagree with it is left out of the page; callers
verify the MAC of what is listed, as for every listing. ``tool_name`` is MAC-covered.

Every index here is partial, ``WHERE status = 'pending'``: a decided request leaves them, so
they hold what an approver can still act on, and each query names the status as a literal
so that both planners match the index's predicate without statistics. A filtered listing
scans the index of its first filter (rule, then tool, then agent) in expiry order; a second
filter is checked on the rows that scan reads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from afk.errors import ConfigurationError
from afk.store import _common as c
from afk.store import _packed as pk
from afk.store import _paging as p
from afk.store._procs import Proc, Q
from afk.store.store import RequestRecord

COLUMNS = (("rule_id", "TEXT"), ("agent_name", "TEXT"))
LISTING = "requests_by_expiry"
_PENDING = "WHERE status = 'pending'"
INDEXES = (
    f"CREATE INDEX IF NOT EXISTS requests_pending_expires "
    f"ON {{t}}requests (expires_at, request_id){{filled}} {_PENDING}",
    f"CREATE INDEX IF NOT EXISTS requests_pending_rule "
    f"ON {{t}}requests (rule_id, expires_at, request_id){{filled}} {_PENDING}",
    f"CREATE INDEX IF NOT EXISTS requests_pending_tool "
    f"ON {{t}}requests (tool_name, expires_at, request_id){{filled}} {_PENDING}",
    f"CREATE INDEX IF NOT EXISTS requests_pending_agent "
    f"ON {{t}}requests (agent_name, expires_at, request_id){{filled}} {_PENDING}",
)
# The filter whose index a page scans, in this order of preference.
_BY = (("rule", "rule_id"), ("tool", "tool_name"), ("agent", "agent_name"))
_ORDERS = ("created", "expires")


def listed_columns(request_text: str) -> tuple[str | None, str | None]:
    """The ``rule_id`` and ``agent_name`` a request's JSON holds (None where it holds none)."""
    try:
        data = json.loads(request_text)
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    rule, agent = data.get("rule_id"), data.get("agent_name")
    return (rule if isinstance(rule, str) else None, agent if isinstance(agent, str) else None)


def check_order(order: object) -> str:
    """``order`` as a listing order, or a ConfigurationError naming the accepted values."""
    if order not in _ORDERS:
        raise ConfigurationError(f"order must be one of {', '.join(_ORDERS)}, got {order!r}")
    return str(order)


def is_plain(order: str, tool: str | None, rule: str | None, agent: str | None) -> bool:
    """A listing the older paging (afk.store._paging, created order) answers."""
    return order == "created" and tool is None and rule is None and agent is None


def _check(
    *, run_id: str | None, status: str | None, order: str, filters: dict[str, str | None]
) -> None:
    for name, value in filters.items():
        if value is not None and (not isinstance(value, str) or not value):
            raise ConfigurationError(f"{name} must be a non-empty string, got {value!r}")
    named = [name for name, value in filters.items() if value is not None]
    if named and run_id is not None:
        raise ConfigurationError(
            f"{named[0]} cannot be combined with run_id: list the run's requests and filter "
            "them (a run holds few)"
        )
    if named and order != "expires":
        raise ConfigurationError(f"{named[0]} filters the expiry listing: pass order='expires'")
    if run_id is None and status != "pending":
        raise ConfigurationError(
            f"order='expires' lists pending requests (or one run's): status must be 'pending', "
            f"got {status!r}"
        )


def query(
    *,
    order: str,
    run_id: str | None,
    status: str | None,
    limit: int,
    cursor: str | None,
    tool: str | None,
    rule: str | None,
    agent: str | None,
) -> tuple[str, list[Any]]:
    """SQL and parameters of one page of the expiry listing, one row more than ``limit``."""
    limit = p.check_limit(limit)
    filters = {"tool": tool, "rule": rule, "agent": agent}
    _check(run_id=run_id, status=status, order=order, filters=filters)
    key = (
        p.decode_cursor(cursor, LISTING, (run_id, status, tool, rule, agent))
        if cursor is not None
        else None
    )
    where: list[str] = []
    args: list[Any] = []
    if run_id is not None:
        # All of one run's requests from its index prefix, sorted: a run holds few.
        hint = "{by:requests_page_run_status}"
        where.append("run_id = ?")
        args.append(run_id)
        if status is not None:
            where.append("status = ?")
            args.append(status)
    else:
        given = [(name, column) for name, column in _BY if filters[name] is not None]
        index = f"requests_pending_{given[0][0]}" if given else "requests_pending_expires"
        hint = f"{{by:{index}}}"
        where.append("status = 'pending'")  # a literal: it matches the partial index
        for name, column in given:
            where.append(f"{column} = ?")
            args.append(filters[name])
    if key is not None:
        where.append("(expires_at, request_id) > (?, ?)")
        args += list(key)
    sql = (
        f"SELECT {c.REQUEST_READ} FROM {{t}}requests{hint} WHERE {' AND '.join(where)} "
        "ORDER BY expires_at, request_id LIMIT ?"
    )
    return sql, [*args, limit + 1]


def page(
    rows: Sequence[Sequence[Any]],
    *,
    run_id: str | None,
    status: str | None,
    limit: int,
    tool: str | None,
    rule: str | None,
    agent: str | None,
) -> p.Page[RequestRecord]:
    """The page ``rows`` (a :func:`query` result) hold: the cursor after the last row read,
    and only the records whose own JSON has the rule and agent asked for."""
    records = [c.request_from_row(row) for row in rows]
    shown, cursor = records[:limit], None
    if len(records) > limit:
        last = shown[-1]
        filters = (run_id, status, tool, rule, agent)
        cursor = p.encode_cursor(LISTING, filters, (last.expires_at, last.request_id))
    kept = [r for r in shown if _matches(r, rule, agent)]
    return p.Page(kept, next_cursor=cursor)


def _matches(record: RequestRecord, rule: str | None, agent: str | None) -> bool:
    if rule is None and agent is None:
        return True
    found_rule, found_agent = listed_columns(record.request)
    return (rule is None or found_rule == rule) and (agent is None or found_agent == agent)


# -- store schema 9 ------------------------------------------------------------------------
def needs_listing_migration(found: str | None) -> bool:
    """A store made before requests had their rule and agent columns (< 9)."""
    return found is not None and int(found) < 9


MIGRATION_PAGE = 1000
_FILL_PAGE = (
    "SELECT request_id, request FROM {t}requests WHERE request_id > ? ORDER BY request_id LIMIT ?"
)
_FILL = "UPDATE {t}requests SET rule_id = ?, agent_name = ? WHERE request_id = ?"


def fill_columns() -> Proc[None]:
    """v8 → v9, in setup's transaction, after every older migration: each request's rule and
    agent columns from its JSON, a page at a time in key order. MACs are untouched."""
    after = ""
    while rows := (yield Q(_FILL_PAGE, (after, MIGRATION_PAGE), fetch="all")):
        updates = []
        for request_id, stored in rows:
            value = bytes(stored) if isinstance(stored, memoryview) else stored
            rule, agent = listed_columns(pk.unpack("request", value))
            if rule is not None or agent is not None:
                updates.append((rule, agent, request_id))
        if updates:
            yield Q(_FILL, updates, many=True)
        after = rows[-1][0]
