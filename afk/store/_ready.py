"""The ready index, shared by both backends: when a paused run can be resumed, kept in
``runs.wake_at`` and changed in the same transaction as whatever changes it.

``wake_at`` is when a paused run becomes ready, NULL for any other status:

- no pending request left: the moment it became so (the saved run's ``updated_at``, or the
  ``now`` of the decision that removed the last one), so runs resume oldest-ready first;
- otherwise: the latest ``expires_at`` of its pending requests, after which the run resumes
  to apply the fallbacks.

A run is then ready at ``now`` when ``wake_at <= now`` and no pending request is still in
time (``expires_at >= now``: a request can still be decided exactly at its deadline), which
one partial index on ``(wake_at, run_id) WHERE status = 'paused'`` answers as a range scan
with one probe of the run's requests per candidate. Like the lease columns,
``wake_at`` is not covered by the row MAC: a forged value can only make a claim come early
or late, and claiming re-checks the run's requests before resuming anything.

SQL follows ``_common``'s conventions (``{t}`` prefix, ``?`` placeholders, ``{real}``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from afk.errors import ConfigurationError
from afk.store import _common as c

# Created after the v4 migration has added the column (so not among the tables' DDL).
INDEXES = (
    "CREATE INDEX IF NOT EXISTS runs_ready ON {t}runs (wake_at, run_id){filled} "
    "WHERE status = 'paused'",
    # Only leased rows: the index stays as small as the number of runs being worked on.
    "CREATE INDEX IF NOT EXISTS runs_leased ON {t}runs (lease_expires_at, run_id){filled} "
    "WHERE lease_expires_at IS NOT NULL",
)
ADD_COLUMN = "ALTER TABLE {t}runs ADD COLUMN wake_at {real}"

_RUN_COLS = ", ".join(c.RUN_COLS)
# Every readiness query starts with these terms, in this order: the partial index's
# predicate, then its key, the lease filter, and the same check the claimer makes (no
# pending request still in time, one probe of requests_page_run_status per candidate): a
# wake_at that is wrong (written by an older afk, or by hand) then costs a skipped row, never
# a run claimed, found waiting, released and claimed again in a loop. Parameters: now, now,
# now.
_READY_WHERE = (
    "status = 'paused' AND wake_at <= ? AND (lease_owner IS NULL OR lease_expires_at < ?) "
    "AND NOT EXISTS (SELECT 1 FROM {t}requests q WHERE q.run_id = runs.run_id "
    "AND q.status = 'pending' AND q.expires_at >= ?)"
)
_READY_ORDER = "ORDER BY wake_at, run_id"
_BY_READY = "{by:runs_ready}"  # see _common.render

# The latest deadline of a run's pending requests (NULL: none pending), answered by the
# requests_page_run_status index.
PENDING_HORIZON = (
    "SELECT max(expires_at) FROM {t}requests{by:requests_page_run_status} "
    "WHERE run_id = ? AND status = 'pending'"
)
PAUSED_RUN = "SELECT 1 FROM {t}runs WHERE run_id = ? AND status = 'paused'"
# A request's run, whatever its status: a decision locks it in its first round trip, with
# the request's row and before the log's lock, so that SET_WAKE never waits for it while
# the log's lock is held (a run that became paused after the lock was taken would be).
RUN_OF_REQUEST = (
    "SELECT 1 FROM {t}runs WHERE run_id = (SELECT run_id FROM {t}requests WHERE request_id = ?)"
)
# wake_at after a decision (wake_at above, in SQL): the horizon, or the decision's now.
SET_WAKE = (
    "UPDATE {t}runs SET wake_at = coalesce((SELECT max(q.expires_at) FROM {t}requests q"
    "{by:requests_page_run_status} WHERE q.run_id = ? AND q.status = 'pending'), ?) "
    "WHERE run_id = ? AND status = 'paused'"
)
_FROM_READY = "FROM {t}runs" + _BY_READY
READY_RUNS = f"SELECT {_RUN_COLS} {_FROM_READY} WHERE {_READY_WHERE} {_READY_ORDER} LIMIT ?"
# Ordered even where any ready run would do (SQLite's probe): with LIMIT and no ORDER BY,
# statistics saying many rows match make Postgres prefer a sequential scan that stops at
# the first match, which reads the whole table when none does.
CANDIDATE = f"SELECT run_id {_FROM_READY} WHERE {_READY_WHERE} {{agents}} {_READY_ORDER} LIMIT 1"
TAKE_LEASE_OF = "UPDATE {t}runs SET lease_owner = ?, lease_expires_at = ? WHERE run_id ="
TAKE_LEASE = f"{TAKE_LEASE_OF} ? AND {_READY_WHERE}"
NEXT_WAKE = (
    "SELECT wake_at FROM {t}runs{by:runs_ready} WHERE status = 'paused' AND wake_at IS NOT NULL "
    f"{_READY_ORDER} LIMIT 1"
)
HELD_LEASES = (
    f"SELECT {_RUN_COLS} FROM {{t}}runs{{by:runs_leased}} WHERE lease_expires_at IS NOT NULL "
    "AND lease_expires_at >= ? ORDER BY lease_expires_at, run_id LIMIT ?"
)
TAKE_OVER = (
    "UPDATE {t}runs SET lease_owner = ?, lease_expires_at = ? WHERE run_id = ? "
    "AND lease_owner = ? AND lease_expires_at IS NOT NULL"
)
# v3 → v4: every paused run's wake_at, from its requests.
PAUSED_HORIZONS = (
    "SELECT r.run_id, r.updated_at, (SELECT max(q.expires_at) FROM {t}requests q "
    "WHERE q.run_id = r.run_id AND q.status = 'pending') FROM {t}runs r "
    "WHERE r.status = 'paused'"
)
FILL_WAKE = "UPDATE {t}runs SET wake_at = ? WHERE run_id = ?"


def claim_sql(agents: str, lock: str = "") -> str:
    """Take the lease of the first ready run in one statement: CANDIDATE (with the agents
    clause, and ``lock`` appended: ``FOR UPDATE SKIP LOCKED`` on Postgres) as a subquery.
    Parameters: owner, lease expiry, then CANDIDATE's (now three times, the agents')."""
    candidate = CANDIDATE.replace("{agents}", agents)
    return f"{TAKE_LEASE_OF} ({candidate}{lock}) RETURNING {_RUN_COLS}"


def wake_at(status: str, horizon: float | None, ready_since: float) -> float | None:
    """The run's ``wake_at``: ``horizon`` is the PENDING_HORIZON of its requests,
    ``ready_since`` when it became ready if none is pending."""
    if status != "paused":
        return None
    return float(ready_since) if horizon is None else float(horizon)


def upsert_params(
    run_params: Sequence[Any], status: str, horizon_row: Sequence[Any] | None, now: float
) -> tuple[Any, ...]:
    """``_common.UPSERT_RUN_WAKE`` parameters: ``run_params`` (``_common.run_params``), then the
    wake_at from the run's PENDING_HORIZON row, read after inserting its new requests."""
    return (*run_params, wake_at(status, _first(horizon_row), now))


def _first(row: Sequence[Any] | None) -> float | None:
    return None if row is None or row[0] is None else float(row[0])


def rewake_params(run_id: str, now: float) -> tuple[Any, ...]:
    """SET_WAKE parameters after a decision at ``now`` on one of ``run_id``'s requests."""
    return (run_id, float(now), run_id)


def fill_params(rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """FILL_WAKE parameters for the PAUSED_HORIZONS rows (migration to store schema v4)."""
    fills = []
    for run_id, updated_at, horizon in rows:
        value = None if horizon is None else float(horizon)
        fills.append((wake_at("paused", value, float(updated_at)), run_id))
    return fills


def needs_wake_migration(found: str | None) -> bool:
    """A store made before the ready index (store schema < 4)."""
    return found is not None and int(found) < 4


def check_agents(agents: Sequence[str] | None) -> list[str] | None:
    """``agents`` of ``claim_ready`` as a list of names (None: any agent)."""
    if agents is None:
        return None
    names = [] if isinstance(agents, str) else list(agents)
    if isinstance(agents, str) or not all(isinstance(a, str) for a in names):
        raise ConfigurationError(
            f"agents must be a sequence of agent names (str) or None, got {agents!r}"
        )
    return names


def check_ttl(ttl_s: object) -> float:
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int | float) or not ttl_s > 0:
        raise ConfigurationError(f"ttl_s must be a number of seconds above 0, got {ttl_s!r}")
    return float(ttl_s)
