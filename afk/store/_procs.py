"""The store's procedures, written once for both backends (sans-IO).

A procedure is a generator: it yields the statements of one transaction, one at a time, and
is sent each one's result; what it returns is the operation's result. It does no I/O, so a
backend only needs a small driver: SQLite runs the whole generator in one thread hop under
``BEGIN IMMEDIATE`` (afk.store.sqlite), Postgres awaits each statement in one transaction
(afk.store.postgres). Where the two databases differ, the statement says what it needs and
the driver supplies it:

- ``Q.lock``: the row lock a compare-and-set read needs on Postgres (``FOR UPDATE``);
  SQLite's write lock, taken by ``BEGIN IMMEDIATE`` before any read, already excludes every
  other writer, so its driver ignores it.
- ``LockLog``: appending to the chained log takes the log's lock (a Postgres advisory lock,
  so ids follow commit order); nothing on SQLite, for the same reason.
- ``Notify``: something a waiter may want was committed. Postgres: ``pg_notify`` in the
  transaction; SQLite: this store's waiters are signalled after the commit.
- ``Together`` and ``Last``: statements whose results the procedure reads sent as one batch,
  one wait for all of them on Postgres (``Last`` commits in it too); SQLite runs them in turn.

A refusal is raised from the generator: the driver rolls the transaction back. A row that
does not verify is *returned* as a :class:`TamperedRecordError`, so the tamper entry logged
beside it commits; the store raises it afterwards (``_common.raise_tampered``).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any, Literal, NamedTuple, TypeVar

from afk.audit.keys import Keyring
from afk.errors import StoreError, TamperedRecordError
from afk.store import _common as c
from afk.store import _event_batches as eb
from afk.store import _ready as r
from afk.store import _seal as s
from afk.store import _tool_schemas as ts
from afk.store.store import EventRow, ExecutionRecord, LogEntry, RequestRecord, RunRecord

T = TypeVar("T")
Fetch = Literal["none", "one", "all", "count"]
FOR_UPDATE = " FOR UPDATE"


# The ops are named tuples: a procedure yields one per statement, and the store's modules
# load with every afk command (a named tuple is built in a fifth of a frozen dataclass's
# time, and made in half).
class Q(NamedTuple):
    """One statement (``_common`` SQL conventions). ``many``: ``args`` is a list of
    parameter rows (executemany). ``fetch``: what is sent back: nothing, the first row (or
    None), every row, or the number of rows changed."""

    sql: str
    args: Sequence[Any] = ()
    fetch: Fetch = "none"
    many: bool = False
    lock: str = ""  # appended on Postgres only (see the module docstring)


class LockLog(NamedTuple):
    """Take the chained log's write lock until commit."""

    what: Literal["log"] = "log"  # a field, so that the op is not an empty (false) tuple


class Notify(NamedTuple):
    """Tell waiters, once committed, that ``payload`` (a request id, or ``run:<id>``)
    changed."""

    payload: str


class Last(NamedTuple):
    """The transaction's last statements, sent together, their results sent back as one
    list; the procedure returns next. Postgres commits in the same round trip instead of
    waiting for each result, then for the commit."""

    queries: tuple[Q, ...]


class Together(NamedTuple):
    """Statements (and the log's lock, in its place among them) sent together, their
    results sent back as one list (None where a statement reads nothing). Postgres waits
    once for all of them, where reading each result in turn would wait for each; the
    transaction goes on after it."""

    ops: tuple[Q | LockLog, ...]


Op = Q | LockLog | Notify | Last | Together
Proc = Generator[Op, Any, T]


def one(sql: str, args: Sequence[Any] = ()) -> Proc[tuple[Any, ...] | None]:
    row: tuple[Any, ...] | None = yield Q(sql, args, fetch="one")
    return row


def every(sql: str, args: Sequence[Any] = ()) -> Proc[list[tuple[Any, ...]]]:
    rows: list[tuple[Any, ...]] = yield Q(sql, args, fetch="all")
    return rows


def changes(sql: str, args: Sequence[Any] = ()) -> Proc[int]:
    count: int = yield Q(sql, args, fetch="count")
    return count


def last_changes(sql: str, args: Sequence[Any] = ()) -> Proc[int]:
    """``changes``, as a transaction's only statement (see Last)."""
    counts: list[int] = yield Last((Q(sql, args, fetch="count"),))
    return counts[0]


def last_one(sql: str, args: Sequence[Any] = ()) -> Proc[tuple[Any, ...] | None]:
    """``one``, as a transaction's only statement (see Last)."""
    rows: list[tuple[Any, ...] | None] = yield Last((Q(sql, args, fetch="one"),))
    return rows[0]


def insert_log(keys: Keyring, log: Sequence[LogEntry]) -> Proc[None]:
    """Append ``log`` to the chain. Under the log's lock the head read here stays the head
    until commit, so ids (head id + 1, ...) follow commit order and each hash links to the
    entry before it."""
    if not log:
        return
    yield LockLog()
    head = yield Q(c.LOG_HEAD, fetch="one")
    yield Q(c.INSERT_LOG, c.chained_log_rows(keys, log, head), many=True)


def log_head(log: Sequence[LogEntry]) -> tuple[LockLog | Q, ...]:
    """The log's lock and its head read, to go in a ``Together`` with a procedure's first
    reads when it has ``log`` to append (then :func:`insert_log_after` with what it read).
    The lock is still the transaction's last: it follows the row locks sent before it."""
    return (LockLog(), Q(c.LOG_HEAD, fetch="one")) if log else ()


def insert_log_after(keys: Keyring, log: Sequence[LogEntry], read: Sequence[Any]) -> Proc[None]:
    """Append ``log`` after the head ``read`` (what :func:`log_head` read back in this
    transaction: its last item); with none read, as :func:`insert_log` (the lock and head
    taken now: a procedure's log it did not expect, a tamper entry)."""
    if not read:
        yield from insert_log(keys, log)
    elif log:
        yield Q(c.INSERT_LOG, c.chained_log_rows(keys, log, read[-1]), many=True)


# -- runs ----------------------------------------------------------------------------------
def save_run(
    keys: Keyring,
    run: RunRecord,
    requests: Sequence[RequestRecord],
    events: Sequence[EventRow],
    log: Sequence[LogEntry],
    now: float,
    *,
    release: str | None = None,
) -> Proc[None]:
    # One wait for the reads: the row lock and created_at, the new requests and then the
    # run's pending horizon (which counts them), the event batches (appended under that row
    # lock, so two saves of one run take turns and the second sees the first's batch). The
    # upsert comes before the log's lock: a first save inserts the row, and a row lock
    # waited for while holding the log's would deadlock with a save holding that row.
    batches = eb.batches(events)
    reads: list[Q | LockLog] = [
        Q(c.SELECT_RUN_CREATED, (run.run_id,), fetch="one", lock=FOR_UPDATE),
        *request_inserts(keys, requests),
    ]
    horizon_at = len(reads) if run.status == "paused" else None  # after the insert: they count
    if horizon_at is not None:
        reads.append(Q(r.PENDING_HORIZON, (run.run_id,), fetch="one"))
    batches_at = len(reads)
    reads += [Q(eb.APPEND, eb.append_params(i, b), fetch="count") for i, b in batches.items()]
    found = yield Together(tuple(reads))
    for (run_id, batch), count in zip(batches.items(), found[batches_at:], strict=True):
        if count != 1:
            raise eb.duplicate(run_id, batch[0].seq)
    horizon = found[horizon_at] if horizon_at is not None else None
    row = r.upsert_params(c.run_params(keys, run, found[0]), run.status, horizon, run.updated_at)
    yield Q(c.UPSERT_RUN_WAKE, row)
    if release is not None:  # nothing read back: no round trip of its own on Postgres
        yield Q(c.RELEASE_LEASE, (run.run_id, release))
    if row[-1] is not None and row[-1] <= now:  # ready now: wake the workers
        yield Notify("run:" + run.run_id)
    yield from insert_log(keys, log)


def request_inserts(keys: Keyring, requests: Sequence[RequestRecord]) -> list[Q]:
    """The statements inserting new requests (sealed), each tool schema once
    (afk.store._tool_schemas); none for no requests."""
    rows, schemas = [], {}
    for record in requests:
        row, schema = c.request_params(keys, record)
        rows.append(row)
        if schema is not None:
            schemas[schema[0]] = schema[1]
    queries = [Q(ts.INSERT, list(schemas.items()), many=True)] if schemas else []
    return [*queries, Q(c.INSERT_STORED_REQUEST, rows, many=True)] if rows else queries


def rewake(run_id: str, now: float) -> Proc[None]:
    """Recompute ``run_id``'s wake_at after a decision at ``now``, in the deciding
    transaction. The run row is locked first, so two decisions on one run's requests take
    turns and the second counts the first (SET_WAKE, a statement of its own, sees what
    committed before it started, in READ COMMITTED): otherwise each could count the other's
    request as still pending and leave a wake_at in the future. Nothing is read back: the
    server runs the statements in order, so the lock is held before SET_WAKE starts, and
    SET_WAKE changes only a paused run (a pipelined Postgres transaction waits for no
    result here)."""
    yield Q(r.PAUSED_RUN, (run_id,), lock=FOR_UPDATE)
    yield Q(r.SET_WAKE, r.rewake_params(run_id, now))


# -- requests ------------------------------------------------------------------------------
def decide(
    keys: Keyring,
    request_id: str,
    *,
    decision: str,
    decided_by: str,
    approver: str | None,
    bound_digest: str,
    now: float,
    honour_expiry: bool,
    log: Sequence[LogEntry],
) -> Proc[RequestRecord | TamperedRecordError]:
    # One wait for the reads: the request's row, its run's row (locked before SET_WAKE
    # counts the run's pending requests, see rewake; and before the log's lock, see
    # RUN_OF_REQUEST), the log's lock and head. Every lock in that order: the log's last.
    row, _, *head = yield Together(
        (
            Q(c.SELECT_REQUEST, (request_id,), fetch="one", lock=FOR_UPDATE),
            Q(r.RUN_OF_REQUEST, (request_id,), lock=FOR_UPDATE),
            *log_head(log),
        )
    )
    current = c.request_from_row(row) if row else None
    if current is not None and not s.record_ok(keys, current):
        yield from insert_log_after(keys, [s.tamper_log(current, "decide")], head)
        return s.tampered(current, "decide")
    new = c.decided_record(
        current,
        request_id,
        decision=decision,
        decided_by=decided_by,
        approver=approver,
        bound_digest=bound_digest,
        now=now,
        honour_expiry=honour_expiry,
    )
    new = s.sealed(keys, new)
    yield Q(c.DECIDE, c.decide_params(new))
    yield Q(r.SET_WAKE, r.rewake_params(new.run_id, now))
    yield Notify(request_id)
    yield from insert_log_after(keys, log, head)
    return new


# -- executions ----------------------------------------------------------------------------
def begin_execution(
    keys: Keyring, record: ExecutionRecord, log: Sequence[LogEntry]
) -> Proc[tuple[bool, ExecutionRecord]]:
    # On Postgres a concurrent insert of the same key blocks here until the other
    # transaction ends; then this one inserts nothing and reads the committed row. The
    # log's lock and head come in the same wait (unused when nothing was inserted).
    inserted, *head = yield Together(
        (Q(c.INSERT_EXECUTION, c.params(record, c.EXECUTION_COLS), fetch="count"), *log_head(log))
    )
    if inserted == 1:
        yield from insert_log_after(keys, log, head)
        return True, record
    row = yield Q(c.SELECT_EXECUTION, (record.key,), fetch="one")
    if row is None:  # pragma: no cover - a committed key cannot vanish
        raise StoreError(f"execution {record.key!r} vanished")
    return False, c.execution_from_row(row)


def finish_execution(
    keys: Keyring, key: str, result: str, now: float, log: Sequence[LogEntry]
) -> Proc[None]:
    row, *head = yield Together(
        (Q(c.SELECT_EXECUTION, (key,), fetch="one", lock=FOR_UPDATE), *log_head(log))
    )
    done, extra = c.finished(keys, row, key, result=result, now=now)
    yield Q(c.FINISH_EXECUTION, (result, now, done.mac, key))
    yield from insert_log_after(keys, [*extra, *log], head)


# -- leases --------------------------------------------------------------------------------
def claim_run(
    run_id: str,
    lease: tuple[str, float, float],
    requests: tuple[str, Sequence[Any]],
    *,
    returning: bool,
) -> Proc[tuple[bool, tuple[Any, ...] | None, list[tuple[Any, ...]]]]:
    """The run's lease (``lease``: owner, expires_at, now), then the run row and its first
    page of requests (``requests``: the page's SQL and arguments). ``returning``: the
    database has UPDATE ... RETURNING, so the lease hands back the row it leased, and the
    requests are read in the same round trip (a run not leased reads back no row: the
    caller reads it when it needs to say why)."""
    owner, expires_at, now = lease
    args = (owner, expires_at, run_id, owner, now)
    if returning:
        run, rows = yield Last(
            (
                Q(c.ACQUIRE_LEASE_RETURNING, args, fetch="one"),
                Q(requests[0], requests[1], fetch="all"),
            )
        )
        return run is not None, run, rows if run is not None else []
    taken = yield Q(c.ACQUIRE_LEASE, args, fetch="count")
    found = yield Q(c.SELECT_RUN, (run_id,), fetch="one")
    if taken != 1 or found is None:
        return False, found, []
    page = yield Q(requests[0], requests[1], fetch="all")
    return True, found, page
