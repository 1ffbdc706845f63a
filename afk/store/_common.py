"""What both store backends share: the schema, the SQL where the dialects agree, row mapping
and the rules of ``decide``.

SQL here is written once with ``{t}`` for the table prefix (a quoted schema on Postgres,
nothing on SQLite) and ``?`` placeholders; :func:`render` adapts it to a backend.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import time
from collections.abc import Sequence
from typing import Any, TypeVar

from afk.audit.chain import GENESIS, Checkpoint, entry_hash
from afk.audit.keys import Keyring
from afk.errors import (
    AlreadyDecidedError,
    RequestExpiredError,
    StoreError,
    TamperedRecordError,
    UnknownRequestError,
)
from afk.store import _event_batches as eb
from afk.store import _packed as pk
from afk.store import _seal as s
from afk.store import _tool_schemas as ts
from afk.store.store import ExecutionRecord, LogEntry, RequestRecord, RunRecord

# 2: the log is hash-chained (prev_hash, hash) and signed checkpoints are kept (afk.audit).
# 3: rows carry a MAC under the deployment key, digests and the ledger chain are keyed.
# 4: runs.wake_at, the ready index (afk.store._ready).
# 5: three indexes dropped that were prefixes of the paging indexes (afk.store._paging):
#    every write paid for them, every paused run kept their pages.
# 6: smaller paused runs: events as one compressed row per checkpoint
#    (afk.store._event_batches), tool schemas stored once (afk.store._tool_schemas).
# 7: API tokens and the HTTP API's idempotent answers (afk.store._tokens, afk.console);
#    conversation threads (afk.store._threads).
# 8: smaller paused runs: snapshots, requests and ledger payloads deflated from preset
#    dictionaries, the keyed digests of runs, requests and the ledger as bytes
#    (afk.store._packed); requests_page_run dropped (afk.store._paging).
# 9: the pending list by expiry and by tool, rule and agent: requests.rule_id and
#    requests.agent_name (from the request's JSON) and four partial indexes
#    (afk.store._listing).
# 10: smaller paused runs: SQLite's runs and requests WITHOUT ROWID (afk.store._migrate),
#     Postgres's time-ordered indexes packed full ({filled} below); ids made since are 26
#     base32 characters after their prefix instead of 32 hex (afk._ids).
STORE_SCHEMA_VERSION = 10
DECISIONS_CHANNEL = "afk_decisions"  # + "_<schema>": see decisions_channel


RUN_COLS = (
    "run_id",
    "agent_name",
    "status",
    "snapshot",
    "schema_version",
    "created_at",
    "updated_at",
    "thread_id",
    "requested_by",
    "lease_owner",
    "lease_expires_at",
    "mac",
)
REQUEST_COLS = (
    "request_id",
    "run_id",
    "kind",
    "request",
    "args_digest",
    "status",
    "created_at",
    "expires_at",
    "tool_name",
    "decision",
    "decided_by",
    "approver",
    "decided_at",
    "bound_digest",
    "mac",
)
EXECUTION_COLS = (
    "key",
    "run_id",
    "tool_call_id",
    "args_digest",
    "status",
    "started_at",
    "result",
    "finished_at",
    "mac",
)
LOG_COLS = ("id", "kind", "run_id", "request_id", "actor", "payload", "at", "prev_hash", "hash")
CHECKPOINT_COLS = ("id", "head_id", "head_hash", "entries", "at", "mac")

# Dialect differences are confined to the three column types below.
DDL = (
    "CREATE TABLE IF NOT EXISTS {t}meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS {t}runs (
        run_id TEXT PRIMARY KEY, agent_name TEXT NOT NULL, status TEXT NOT NULL,
        snapshot {blob} NOT NULL, schema_version INTEGER NOT NULL,
        created_at {real} NOT NULL, updated_at {real} NOT NULL,
        thread_id TEXT, requested_by TEXT, lease_owner TEXT, lease_expires_at {real},
        mac {blob}, wake_at {real}){without_rowid}""",
    """CREATE TABLE IF NOT EXISTS {t}requests (
        request_id TEXT PRIMARY KEY, run_id TEXT NOT NULL, kind TEXT NOT NULL,
        request {blob} NOT NULL, args_digest {blob} NOT NULL, status TEXT NOT NULL,
        created_at {real} NOT NULL, expires_at {real} NOT NULL, tool_name TEXT,
        decision TEXT, decided_by TEXT, approver TEXT, decided_at {real}, bound_digest {blob},
        mac {blob}, schema_id TEXT, schema_at INTEGER, rule_id TEXT, agent_name TEXT)
        {without_rowid}""",
    ts.DDL,
    """CREATE TABLE IF NOT EXISTS {t}executions (
        key TEXT PRIMARY KEY, run_id TEXT NOT NULL, tool_call_id TEXT NOT NULL,
        args_digest TEXT NOT NULL, status TEXT NOT NULL, started_at {real} NOT NULL,
        result TEXT, finished_at {real}, mac TEXT)""",
    eb.DDL,
    """CREATE TABLE IF NOT EXISTS {t}log (
        id {serial}, kind TEXT NOT NULL, run_id TEXT NOT NULL, request_id TEXT, actor TEXT,
        payload {blob} NOT NULL, at {real} NOT NULL, prev_hash {blob}, hash {blob})""",
    """CREATE TABLE IF NOT EXISTS {t}ledger_checkpoints (
        id {serial}, head_id BIGINT NOT NULL, head_hash TEXT NOT NULL, entries BIGINT NOT NULL,
        at {real} NOT NULL, mac TEXT NOT NULL)""",
)

SELECT_VERSION = "SELECT value FROM {t}meta WHERE key = 'store_schema_version'"
# An upsert, so a migrated store records its new version (check_schema_version has already
# refused a store newer than this code).
INSERT_VERSION = (
    "INSERT INTO {t}meta (key, value) VALUES ('store_schema_version', ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)


def _cols(cols: Sequence[str]) -> str:
    return ", ".join(cols)


def _insert(table: str, cols: Sequence[str]) -> str:
    marks = ", ".join("?" for _ in cols)
    return f"INSERT INTO {{t}}{table} ({_cols(cols)}) VALUES ({marks})"


# Leases and created_at are deliberately not overwritten: leases belong to
# acquire_lease/release_lease, and a run is created once.
_RUN_FIXED = {"run_id", "created_at", "lease_owner", "lease_expires_at"}
_RUN_UPDATABLE = [col for col in RUN_COLS if col not in _RUN_FIXED]
UPSERT_RUN = (
    _insert("runs", RUN_COLS)
    + " ON CONFLICT (run_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _RUN_UPDATABLE)
)
# What save_run writes: the same, and the wake_at the store computes in the transaction
# (afk.store._ready; not part of RunRecord). UPSERT_RUN stays for bulk loaders (benchmarks).
UPSERT_RUN_WAKE = (
    _insert("runs", (*RUN_COLS, "wake_at"))
    + " ON CONFLICT (run_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in (*_RUN_UPDATABLE, "wake_at"))
)
# Inline requests (their schema in the text): what bulk loaders (benchmarks) write.
INSERT_REQUEST = _insert("requests", REQUEST_COLS) + " ON CONFLICT (request_id) DO NOTHING"
# What save_run writes: the request with its tool schema moved out (afk.store._tool_schemas),
# and the rule and agent its JSON names, for the listing's indexes (afk.store._listing).
INSERT_STORED_REQUEST = (
    _insert("requests", (*REQUEST_COLS, "schema_id", "schema_at", "rule_id", "agent_name"))
    + " ON CONFLICT (request_id) DO NOTHING"
)
INSERT_LOG = _insert("log", LOG_COLS)
INSERT_EXECUTION = _insert("executions", EXECUTION_COLS) + " ON CONFLICT (key) DO NOTHING"

SELECT_RUN = f"SELECT {_cols(RUN_COLS)} FROM {{t}}runs WHERE run_id = ?"
SELECT_RUN_CREATED = "SELECT created_at FROM {t}runs WHERE run_id = ?"
# Every read of request records: their columns, then what puts their schema back.
REQUEST_READ = f"{_cols(REQUEST_COLS)}, {ts.READ}"
SELECT_REQUEST = f"SELECT {REQUEST_READ} FROM {{t}}requests WHERE request_id = ?"
DECIDE = (
    "UPDATE {t}requests SET status = ?, decision = ?, decided_by = ?, approver = ?, "
    "decided_at = ?, bound_digest = ?, mac = ? WHERE request_id = ?"
)
SELECT_EXECUTION = f"SELECT {_cols(EXECUTION_COLS)} FROM {{t}}executions WHERE key = ?"
FINISH_EXECUTION = (
    "UPDATE {t}executions SET status = 'done', result = ?, finished_at = ?, mac = ? "
    "WHERE key = ? AND status = 'executing'"
)
LIST_LOG = f"SELECT {_cols(LOG_COLS)} FROM {{t}}log WHERE id > ? ORDER BY id LIMIT ?"
LOG_HEAD = "SELECT id, hash FROM {t}log ORDER BY id DESC LIMIT 1"
SET_LOG_HASH = "UPDATE {t}log SET prev_hash = ?, hash = ? WHERE id = ?"
INSERT_CHECKPOINT = _insert("ledger_checkpoints", CHECKPOINT_COLS[1:])
LATEST_CHECKPOINT = (
    f"SELECT {_cols(CHECKPOINT_COLS)} FROM {{t}}ledger_checkpoints ORDER BY id DESC LIMIT 1"
)
ACQUIRE_LEASE = (
    "UPDATE {t}runs SET lease_owner = ?, lease_expires_at = ? WHERE run_id = ? "
    "AND (lease_owner IS NULL OR lease_owner = ? OR lease_expires_at < ?)"
)
# The lease and the row it leased, in one statement (SQLite 3.35+, every Postgres).
ACQUIRE_LEASE_RETURNING = f"{ACQUIRE_LEASE} RETURNING {_cols(RUN_COLS)}"
RELEASE_LEASE = (
    "UPDATE {t}runs SET lease_owner = NULL, lease_expires_at = NULL "
    "WHERE run_id = ? AND lease_owner = ?"
)


def any_decided_sql(n: int) -> str:
    marks = ", ".join("?" for _ in range(n))
    return f"SELECT 1 FROM {{t}}requests WHERE status <> 'pending' AND request_id IN ({marks})"


def decisions_channel(schema: str) -> str:
    """The Postgres NOTIFY channel of one schema's store. One per schema, so a waiter is not
    woken by the traffic of every other store on the same server; a name too long for an
    identifier (63 bytes) is shortened to a digest of the schema."""
    name = f"{DECISIONS_CHANNEL}_{schema}"
    if len(name.encode()) > 63:
        name = f"{DECISIONS_CHANNEL}_{hashlib.sha256(schema.encode()).hexdigest()[:32]}"
    return name


_INDEX_HINT = re.compile(r"\{by:(\w+)\}")
FILLED = " WITH (fillfactor = 100)"  # see render


def render(
    template: str,
    *,
    prefix: str,
    postgres: bool,
    real: str = "",
    serial: str = "",
    blob: str = "",
) -> str:
    """Fill the table prefix (and DDL types); switch placeholders to psycopg's ``%s``.

    ``{by:INDEX}`` after a table name pins SQLite to that index (``INDEXED BY``): its planner,
    without statistics, prefers a sort over an ordered partial index. Postgres needs no
    hint there and gets none (tests/store/test_ready_plans.py checks both)."""
    sql = template.replace("{t}", prefix).replace("{real}", real).replace("{serial}", serial)
    sql = sql.replace("{blob}", blob)
    # SQLite: a table keyed by its primary key alone, without a rowid and a second b-tree.
    sql = sql.replace("{without_rowid}", "" if postgres else " WITHOUT ROWID")
    # Postgres: an index whose entries mostly arrive in key order (a time, then an id)
    # splits its last page where it is full, not at the default 90% (SQLite has no such
    # setting; store schema 10).
    sql = sql.replace("{filled}", FILLED if postgres else "")
    sql = _INDEX_HINT.sub("" if postgres else r" INDEXED BY \1", sql)
    return sql.replace("?", "%s") if postgres else sql


def check_schema_version(found: str | None, where: str) -> None:
    if found is not None and int(found) > STORE_SCHEMA_VERSION:
        raise StoreError(
            f"the store at {where} has store_schema_version {int(found)}, newer than the "
            f"{STORE_SCHEMA_VERSION} this afk understands; upgrade afk-agents"
        )


# -- rows ----------------------------------------------------------------------------------
def _record(kind: Any, cols: Sequence[str], row: Sequence[Any]) -> Any:
    data = dict(zip(cols, row, strict=True))
    data["mac"] = data["mac"] or ""  # a row never sealed reads as "": it does not verify
    return kind(**data)


def _digests(data: dict[str, Any]) -> dict[str, Any]:
    for name in DIGEST_COLS.intersection(data):
        data[name] = pk.unpack_digest(data[name])
    return data


def run_from_row(row: Sequence[Any]) -> RunRecord:
    data = _digests(dict(zip(RUN_COLS, row, strict=True)))
    data["snapshot"] = pk.unpack("snapshot", data["snapshot"])
    found: RunRecord = _record(RunRecord, RUN_COLS, [data[c] for c in RUN_COLS])
    return found


def request_from_row(row: Sequence[Any]) -> RequestRecord:
    """The record a REQUEST_READ row holds, its request text whole again."""
    *columns, at, body = row
    data = _digests(dict(zip(REQUEST_COLS, columns, strict=True)))
    data["request"] = ts.joined(pk.unpack("request", data["request"]), at, body)
    found: RequestRecord = _record(RequestRecord, REQUEST_COLS, [data[c] for c in REQUEST_COLS])
    return found


def request_params(
    keys: Keyring, record: RequestRecord
) -> tuple[tuple[Any, ...], tuple[str, str] | None]:
    """INSERT_STORED_REQUEST parameters of ``record``, sealed over its whole text, and the
    tool_schemas row it refers to (None when its schema stays inline)."""
    sealed = s.sealed(keys, record)
    stored, schema_id, at, body = ts.split(keys, sealed.request)
    listed = _listed_columns(record.request)
    row = (
        *params(dataclasses.replace(sealed, request=stored), REQUEST_COLS),
        schema_id,
        at,
        *listed,
    )
    return row, (schema_id, body) if schema_id is not None and body is not None else None


def _listed_columns(request_text: str) -> tuple[str | None, str | None]:
    from afk.store._listing import listed_columns  # it imports this module

    return listed_columns(request_text)


def execution_from_row(row: Sequence[Any]) -> ExecutionRecord:
    found: ExecutionRecord = _record(ExecutionRecord, EXECUTION_COLS, row)
    return found


def log_from_row(row: Sequence[Any]) -> LogEntry:
    data = _digests(dict(zip(LOG_COLS, row, strict=True)))
    # A row without a hash (never chained) reads as "": the verifier reports it as altered.
    data["prev_hash"], data["hash"] = data["prev_hash"] or "", data["hash"] or ""
    data["payload"] = pk.unpack("payload", data["payload"])
    return LogEntry(**data)


def params(record: Any, cols: Sequence[str]) -> tuple[Any, ...]:
    """``record``'s values for ``cols``, a run's and a request's JSON and digests packed
    (afk.store._packed: whoever writes rows, bulk loaders included, stores one form)."""
    values = tuple(getattr(record, c) for c in cols)
    if cols is RUN_COLS or cols is REQUEST_COLS:
        return tuple(_stored(c, v) for c, v in zip(cols, values, strict=True))
    return values


_PACKED: dict[str, pk.Column] = {"snapshot": "snapshot", "request": "request"}
# The digest columns stored packed (pk.pack_digest), in runs, requests and log.
DIGEST_COLS = frozenset({"mac", "args_digest", "bound_digest", "prev_hash", "hash"})


def _stored(column: str, value: Any) -> Any:
    if column in _PACKED:
        return pk.pack(_PACKED[column], value)
    return pk.pack_digest(value) if column in DIGEST_COLS else value


# -- sealed writes -------------------------------------------------------------------------
T = TypeVar("T")


def run_params(keys: Keyring, run: RunRecord, created: Sequence[Any] | None) -> tuple[Any, ...]:
    """UPSERT_RUN parameters, sealed over the ``created_at`` the row keeps (``created``, the
    SELECT_RUN_CREATED row read in the same transaction): the upsert never overwrites it."""
    if created is not None:
        run = dataclasses.replace(run, created_at=float(created[0]))
    return params(s.sealed(keys, run), RUN_COLS)


def finished(
    keys: Keyring, row: Sequence[Any] | None, key: str, *, result: str, now: float
) -> tuple[ExecutionRecord, list[LogEntry]]:
    """The done execution to store (its MAC; see :func:`afk.store._seal.resealed`), read
    from its executing row, and any tamper entry to log with it."""
    current = execution_from_row(row) if row else None
    if current is None or current.status != "executing":
        raise StoreError(f"execution {key!r} is unknown or already finished")
    done = dataclasses.replace(current, status="done", result=result, finished_at=now)
    return s.resealed(keys, current, done, "sign the outcome of a tampered execution")


def raise_tampered(outcome: T | TamperedRecordError) -> T:
    """A transaction that found a forged row commits its tamper entry, then this raises."""
    if isinstance(outcome, TamperedRecordError):
        raise outcome
    return outcome


# -- the keyed, chained log (afk.audit) ----------------------------------------------------
def chained_log_rows(
    keys: Keyring, log: Sequence[LogEntry], head: Sequence[Any] | None
) -> list[tuple[Any, ...]]:
    """INSERT_LOG rows for ``log``, continuing the chain from ``head`` (the LOG_HEAD row, read
    in the same transaction while holding the log's write lock).

    The store assigns ids (head id + 1, ...) so they are known before hashing and increase
    with commit order; ids, hashes and prev_hashes a caller passes are ignored, not trusted.
    """
    last_id, prev = (int(head[0]), pk.unpack_digest(head[1]) or GENESIS) if head else (0, GENESIS)
    rows = []
    for entry in log:
        last_id += 1
        at = float(entry.at or time.time())
        row = (last_id, entry.kind, entry.run_id, entry.request_id, entry.actor, entry.payload)
        digest = entry_hash(keys, *row, at, prev)  # over the text; the row keeps it packed
        packed = (pk.pack("payload", entry.payload), at, pk.pack_digest(prev))
        rows.append((*row[:5], *packed, pk.pack_digest(digest)))
        prev = digest
    return rows


def rehash(
    keys: Keyring, rows: Sequence[Sequence[Any]], head: tuple[int, str]
) -> tuple[list[tuple[str, str, int]], tuple[int, str]]:
    """Migration: SET_LOG_HASH parameters chaining LIST_LOG ``rows`` (in id order) after
    ``head`` (``(0, GENESIS)`` to start) with ``keys``, and the new head."""
    updates = []
    last_id, prev = head
    for row in rows:
        last_id = int(row[0])
        id_, kind, run_id, request_id, actor, stored, at = row[:7]
        payload = pk.unpack("payload", stored)
        digest = entry_hash(keys, id_, kind, run_id, request_id, actor, payload, at, prev)
        updates.append((prev, digest, last_id))
        prev = digest
    return updates, (last_id, prev)


def needs_seal_migration(found: str | None) -> bool:
    """A store made before rows were sealed and the chain keyed (store schema < 3)."""
    return found is not None and int(found) < 3


def checkpoint_from_row(row: Sequence[Any]) -> Checkpoint:
    return Checkpoint(**dict(zip(CHECKPOINT_COLS, row, strict=True)))


# -- decide --------------------------------------------------------------------------------
def decided_record(
    current: RequestRecord | None,
    request_id: str,
    *,
    decision: str,
    decided_by: str,
    approver: str | None,
    bound_digest: str,
    now: float,
    honour_expiry: bool,
) -> RequestRecord:
    """The record ``decide`` should store, or the refusal it must raise (writing nothing)."""
    if current is None:
        raise UnknownRequestError(f"no request {request_id!r}", request_id=request_id)
    if current.status == "decided":
        raise AlreadyDecidedError(
            f"request {request_id!r} was already decided",
            request_id=request_id,
            first_decision=current.decision,
        )
    if current.status == "expired":
        raise RequestExpiredError(f"request {request_id!r} has expired", request_id=request_id)
    if honour_expiry and now > current.expires_at:
        raise RequestExpiredError(
            f"request {request_id!r} expired at {current.expires_at}", request_id=request_id
        )
    return dataclasses.replace(
        current,
        status="expired" if decided_by == "timeout" else "decided",
        decision=decision,
        decided_by=decided_by,
        approver=approver,
        decided_at=now,
        bound_digest=bound_digest,
    )


def decide_params(new: RequestRecord) -> tuple[Any, ...]:
    return (
        new.status,
        new.decision,
        new.decided_by,
        new.approver,
        new.decided_at,
        pk.pack_digest(new.bound_digest),
        pk.pack_digest(new.mac),
        new.request_id,
    )
