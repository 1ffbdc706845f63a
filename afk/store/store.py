"""The run store: what a durable run keeps, and the one interface both backends implement.

Everything here is plain data. Payloads (``snapshot``, ``request``, ``decision``, ``result``,
event ``payload``) are JSON text produced by afk's one serializer; the store never parses
them except where a method says so. Every method that changes state does so in ONE
transaction, together with the decision-log entries it is given, and commits durably
(SQLite ``synchronous=FULL``) before returning: what a method acknowledged is on disk.

Each row of runs, requests, votes, grants and executions carries a ``mac`` the store
computes with its ``keys`` (see :mod:`afk.store._seal`), recomputed by every update of a
covered column in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from afk._lazy import lazy_exports

if TYPE_CHECKING:
    from afk.audit.keys import Keyring
    from afk.store._other_records import (
        ClaimedRun,
        GrantRecord,
        IdempotentAnswer,
        ThreadHolder,
        ThreadTurnRecord,
        TimerRecord,
        TokenRecord,
        VoteRecord,
    )
    from afk.store._paging import Page

RunStatus = Literal["running", "paused", "completed", "stopped", "failed", "cancelled"]
RequestStatus = Literal["pending", "decided", "expired"]
ExecutionStatus = Literal["executing", "done"]
# How list_requests orders a page: by creation (oldest first) or by deadline (soonest first).
RequestOrder = Literal["created", "expires"]
TERMINAL_RUN_STATES: frozenset[str] = frozenset({"completed", "stopped", "failed", "cancelled"})


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    """A stored run: its status, its lease and its snapshot (the JSON a resume starts
    from). Sealed by ``mac``: a row changed outside afk does not verify."""

    run_id: str
    agent_name: str
    status: RunStatus
    snapshot: str  # JSON; carries its own schema_version
    schema_version: int
    created_at: float
    updated_at: float
    thread_id: str | None = None
    requested_by: str | None = None
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    mac: str = ""  # set by the store (afk.store._seal); what a caller passes is ignored


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestRecord:
    """A stored approval or input request: its status and deadline, its decision once
    decided, and the keyed digests that bind it to arguments. Sealed by ``mac``."""

    request_id: str
    run_id: str
    kind: Literal["approval", "user_input"]
    request: str  # JSON of the ApprovalRequest / UserInputRequest
    args_digest: str  # store.keys.digest(the request's tool_args): keyed, see afk.audit.keys
    status: RequestStatus
    created_at: float
    expires_at: float
    tool_name: str | None = None
    decision: str | None = None  # JSON of the decision, once decided (or expired with fallback)
    decided_by: str | None = None  # human | timeout | fallback | error
    approver: str | None = None
    decided_at: float | None = None
    bound_digest: str | None = None  # keyed digest of the arguments the decision approved
    mac: str = ""  # set by the store (afk.store._seal); what a caller passes is ignored


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionRecord:
    """A tool execution claimed under its idempotency key before the body runs, so an
    approved call runs at most once, and finished with its result. Sealed by ``mac``."""

    key: str  # idempotency key: the request id, or "<run_id>:<tool_call_id>"
    run_id: str
    tool_call_id: str
    args_digest: str  # store.keys.digest(the arguments that ran)
    status: ExecutionStatus
    started_at: float
    result: str | None = None  # JSON, once done
    finished_at: float | None = None
    mac: str = ""  # set by the store (afk.store._seal); what a caller passes is ignored


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRow:
    """One stored event of a run; ``payload`` is slim (afk.core.events.stored_payload)."""

    run_id: str
    seq: int
    type: str
    payload: str  # JSON of the event
    ts: float


@dataclass(frozen=True, slots=True, kw_only=True)
class LogEntry:
    """One decision-log entry. Appended in the same transaction as the change it records.
    ``id`` and ``at`` are assigned by the store when 0. The store also links each entry to the
    one before: ``hash`` is a MAC under the store's key over the entry and ``prev_hash`` (see
    :mod:`afk.audit.chain`); both are set by the store, and what a caller passes is ignored."""

    kind: str  # request_opened | decided | refused | expired | execution_started | ...
    run_id: str
    request_id: str | None = None
    actor: str | None = None
    payload: str = "{}"  # JSON details
    at: float = 0.0
    id: int = 0
    prev_hash: str = ""
    hash: str = ""


# Whether these votes (verified, the new one included) decide their request.
VoteRule = Callable[[Sequence["VoteRecord"]], bool]


@runtime_checkable
class RunStore(Protocol):
    """Both backends implement exactly this; the contract tests run against each."""

    url: str

    @property
    def keys(self) -> Keyring:
        """The deployment secret: every row MAC, keyed digest and ledger hash uses it."""

    async def setup(self) -> None:
        """Create or migrate the schema (idempotent, safe to call from many processes)."""

    async def close(self) -> None:
        """Release the store's connections; the store is unusable afterwards."""

    # -- runs ------------------------------------------------------------------------------
    async def save_run(
        self,
        run: RunRecord,
        *,
        requests: Sequence[RequestRecord] = (),
        events: Sequence[EventRow] = (),
        log: Sequence[LogEntry] = (),
        release: str | None = None,
    ) -> None:
        """Upsert the run; insert new requests (existing ids are left untouched); append
        events and log entries. One transaction. Events are appended in increasing seq
        after the run's last stored one: one that is not (a duplicate seq) is a StoreError
        and nothing is saved. ``release``: an owner whose lease on the run the same
        transaction hands back, as ``release_lease`` would (a run's last save)."""

    async def load_run(self, run_id: str) -> RunRecord | None:
        """The run ``run_id``, or None when the store holds no such run."""

    async def list_runs(
        self, *, status: RunStatus | None = None, limit: int = 100, cursor: str | None = None
    ) -> Page[RunRecord]:
        """One page of at most ``limit`` (1 to 1000) runs, newest first (by updated_at, then
        run_id); ``cursor``: an earlier page's ``next_cursor``, for the page after it."""

    async def ids_with_prefix(
        self, kind: Literal["run", "request", "grant"], prefix: str, *, limit: int = 10
    ) -> list[str]:
        """Up to ``limit`` (1 to 1000) ids of ``kind`` (runs, requests or grants) that start
        with ``prefix``, in code-point order: one range scan of that table's primary key,
        which stops after ``limit`` rows (how people type ids: afk.cli._ids)."""

    # -- requests --------------------------------------------------------------------------
    async def get_request(self, request_id: str) -> RequestRecord | None:
        """The request ``request_id``, or None when the store holds no such request."""

    async def list_requests(
        self,
        *,
        run_id: str | None = None,
        status: RequestStatus | None = "pending",
        limit: int = 50,
        cursor: str | None = None,
        order: RequestOrder = "created",
        tool: str | None = None,
        rule: str | None = None,
        agent: str | None = None,
    ) -> Page[RequestRecord]:
        """One page of at most ``limit`` (1 to 1000) requests, oldest first (by created_at,
        then request_id). ``status=None`` lists all. ``cursor``: an earlier page's
        ``next_cursor`` (a ConfigurationError when it is not one of this listing's).

        ``order="expires"``: soonest deadline first (by expires_at, then request_id), of the
        pending requests (``status="pending"``) or of one run's (``run_id``). ``tool``,
        ``rule``, ``agent``: only the pending requests of that tool, policy rule or agent, in
        expiry order (not with ``run_id``). A ConfigurationError names the field otherwise."""

    async def decide(
        self,
        request_id: str,
        *,
        decision: str,
        decided_by: str,
        approver: str | None,
        bound_digest: str,
        now: float,
        honour_expiry: bool = True,
        log: Sequence[LogEntry] = (),
    ) -> RequestRecord:
        """Compare-and-set pending → decided, in one transaction with ``log``.

        Raises (from ``afk.errors``): UnknownRequestError; AlreadyDecidedError (with
        ``first_decision`` = the stored decision JSON) when decided; RequestExpiredError when
        status is expired, or when ``honour_expiry`` and ``now > expires_at`` (the row is then
        left pending: the run applies its fallback itself with ``honour_expiry=False``).
        Refusals write nothing. Returns the updated record.

        ``decided_by="timeout"`` (the run applying its fallback after the deadline, called
        with ``honour_expiry=False``) stores the decision with status ``expired``; a second
        such call then raises RequestExpiredError and the caller reads the stored record.
        """

    async def log_refusal(self, entry: LogEntry) -> None:
        """Record a refused decision (unauthorized, invalid, too late) in the decision log."""

    # -- executions (exactly once) ---------------------------------------------------------
    async def begin_execution(
        self, record: ExecutionRecord, *, log: Sequence[LogEntry] = ()
    ) -> tuple[bool, ExecutionRecord]:
        """Insert ``record`` (status executing) unless ``key`` exists. Returns (created, the
        stored record). Committed durably before the tool runs."""

    async def finish_execution(
        self, key: str, *, result: str, now: float, log: Sequence[LogEntry] = ()
    ) -> None:
        """executing → done with ``result``."""

    async def get_execution(self, key: str) -> ExecutionRecord | None:
        """The execution claimed under ``key``, or None."""

    # -- events and log --------------------------------------------------------------------
    async def list_events(self, run_id: str, *, after_seq: int = 0) -> list[EventRow]:
        """The run's events after ``after_seq``, in seq order."""

    async def list_log(self, *, after_id: int = 0, limit: int = 10_000) -> list[LogEntry]:
        """Up to ``limit`` ledger entries after ``after_id``, oldest first."""

    async def last_log_id(self) -> int:
        """The id of the newest ledger entry (0 when there is none): where a reader that
        wants only what comes next starts its ``list_log(after_id=...)``."""

    # -- leases and readiness --------------------------------------------------------------
    async def acquire_lease(self, run_id: str, *, owner: str, ttl_s: float, now: float) -> bool:
        """Take or renew the run's lease when it is free, expired, or already ``owner``'s."""

    async def claim_run(self, run_id: str, *, owner: str, ttl_s: float, now: float) -> ClaimedRun:
        """Take the run's lease as :meth:`acquire_lease` does, then read the run and its
        requests: what resuming it starts from, in one call. The lease comes first, so the
        rows read are the lease holder's to act on."""

    async def release_lease(self, run_id: str, *, owner: str) -> None:
        """Give up ``owner``'s lease on the run (nothing when another owner holds it)."""

    async def ready_runs(self, *, now: float, limit: int = 100) -> list[RunRecord]:
        """Paused runs with no pending request left, or whose pending requests all passed
        ``expires_at`` before ``now`` (they resume to apply the fallback), and no live lease.
        Oldest ready first (by the ready index's ``wake_at``, see :meth:`claim_ready`); one
        index range scan."""

    async def claim_ready(
        self,
        *,
        owner: str,
        ttl_s: float,
        now: float,
        agents: Sequence[str] | None = None,
    ) -> RunRecord | None:
        """Take the lease of the oldest ready run (``wake_at <= now``, paused, lease free or
        expired, ``agent_name`` in ``agents`` when given) in ONE conditional statement and
        return it with the lease set (to ``owner`` until ``now + ttl_s``); None when nothing
        is ready. Two workers never get the same run, and a run leased by ``owner`` itself
        is not taken again.

        ``wake_at`` is kept by the store in the transaction that changes it: when a paused
        run is saved, and when a decision (``decide``, or ``add_vote`` when it decides) is
        committed. It is the moment the run's last pending request was decided, or just
        after the latest ``expires_at`` of the ones still pending. Readiness is a hint: the
        claimer re-checks the run's requests before resuming anything."""

    async def next_wake_at(self) -> float | None:
        """The smallest ``wake_at`` of a paused run (O(log n)); None when no run is paused.
        It may be in the past while the ready runs are leased (being resumed)."""

    async def wait_for_work(self, *, timeout_s: float) -> None:
        """Return soon after something may have become ready (a decision committed, a
        paused run saved) or after ``timeout_s``. Nothing committed between the first
        ``claim_ready`` / ``next_wake_at`` / ``ready_runs`` through this store since the
        last wait and this call is missed. Spurious returns are allowed: the caller claims
        again.

        Postgres: LISTEN on the decisions channel (a dropped listener reconnects; the wait
        then returns, since notifications may have been missed). SQLite: within ~25 ms of a
        commit by any connection (``PRAGMA data_version``), at once for commits through
        this store object."""

    async def held_leases(self, *, now: float, limit: int = 100) -> list[RunRecord]:
        """Runs whose lease is live at ``now`` (``lease_expires_at >= now``), soonest to
        expire first, at most ``limit`` (1 to 1000): for taking over a dead owner's runs."""

    async def take_over_lease(
        self, run_id: str, *, from_owner: str, owner: str, ttl_s: float, now: float
    ) -> bool:
        """Move the run's lease from ``from_owner`` (a process known dead) to ``owner``
        until ``now + ttl_s``, only if ``from_owner`` still holds it (live or expired);
        whether it moved."""

    async def wait_for_decisions(self, request_ids: Sequence[str], *, timeout_s: float) -> None:
        """Return soon after any of these requests leaves ``pending`` (or after
        ``timeout_s``). Postgres: LISTEN/NOTIFY; SQLite: re-checked within ~25 ms of any
        commit (``PRAGMA data_version``, as in :meth:`wait_for_work`)."""

    # -- approver votes --------------------------------------------------------------------
    async def add_vote(
        self,
        vote: VoteRecord,
        *,
        decides: VoteRule,
        now: float,
        log: Sequence[LogEntry] = (),
    ) -> tuple[RequestRecord, int]:
        """One transaction with the request row locked: refuse as ``decide`` does when the
        request is not pending or past ``expires_at``; DuplicateVoteError when this approver
        already voted; store the vote; call ``decides`` with the request's votes whose MACs
        verify (this one included) and, when it says so, decide the request with this vote's
        decision. The store counts nothing itself: ``decides`` is the decision rule
        (:func:`afk.approvals.decide.decide`). Returns the request record and the number of
        verified votes."""

    async def list_votes(self, request_id: str) -> list[VoteRecord]:
        """The votes counted on the request, in the order they were cast."""

    # -- standing grants -------------------------------------------------------------------
    async def add_grant(self, grant: GrantRecord, *, log: Sequence[LogEntry] = ()) -> None:
        """Insert once (a second grant with the same id is ignored)."""

    async def list_grants(
        self,
        *,
        active_at: float | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[GrantRecord]:
        """Grants oldest first (by created_at, then grant_id): all, or with ``active_at``
        those not revoked and not past ``until`` then. ``limit`` (1 to 1000) or ``cursor``
        (an earlier page's ``next_cursor``): one page of at most ``limit`` (default 50),
        ``next_cursor`` set when there are more; neither: every grant, in one read."""

    async def get_grant(self, grant_id: str) -> GrantRecord | None:
        """The grant ``grant_id``, or None."""

    async def active_grants(
        self, tool_name: str, *, scope_values: Sequence[str], now: float
    ) -> list[GrantRecord]:
        """The grants of ``tool_name`` whose scope value is one of ``scope_values``, not
        revoked and not past ``until`` at ``now``, oldest first: those that may cover a call
        (found by index, whatever else the store holds)."""

    async def revoke_grant(
        self, grant_id: str, *, by: str | None, now: float, log: Sequence[LogEntry] = ()
    ) -> GrantRecord:
        """Revoke (idempotent: the first revocation stands). GrantNotFoundError if unknown."""

    async def use_grant(self, grant_id: str, *, now: float, log: Sequence[LogEntry] = ()) -> bool:
        """Count one use if the grant is still active at ``now``; False when it is not."""

    # -- durable timers --------------------------------------------------------------------
    async def add_timers(self, timers: Sequence[TimerRecord]) -> None:
        """Store reminder and escalation timers, for ``claim_due_timers`` to hand out."""

    async def claim_due_timers(self, *, now: float, limit: int = 100) -> list[TimerRecord]:
        """Timers due at ``now``, not fired, whose request is still pending: marked fired in
        the same transaction, so each fires once across all workers."""

    async def take_thread(
        self, thread_id: str, *, run_id: str, owner: str, now: float, take_from: str | None = None
    ) -> ThreadHolder | None:
        """Hold ``thread_id`` for ``run_id`` (None), or say who holds it. A holder whose run
        ended, or ``take_from``, does not count."""

    async def release_thread(self, thread_id: str, *, run_id: str) -> None:
        """Free ``thread_id`` if ``run_id`` holds it (its run ended without a turn)."""

    async def add_thread_turn(self, turn: ThreadTurnRecord) -> ThreadTurnRecord:
        """Append ``turn`` to its thread and free the thread, once per run; raises
        ThreadBusyError when its run does not hold the thread."""

    async def thread_turns(self, thread_id: str) -> list[ThreadTurnRecord]:
        """Every turn of ``thread_id``, oldest first (the whole conversation is the history a
        new run starts from)."""

    # -- API tokens and idempotent answers (afk.console) -----------------------------------
    async def add_token(self, token: TokenRecord) -> None:
        """Insert a new API token (sealed); a second token with the same id is a StoreError."""

    async def get_token(self, token_id: str) -> TokenRecord | None:
        """The token ``token_id`` (revoked and expired ones too), or None."""

    async def list_tokens(self, *, limit: int = 100) -> list[TokenRecord]:
        """At most ``limit`` (1 to 1000) tokens, newest first (by created_at, then id)."""

    async def revoke_token(self, token_id: str, *, by: str | None, now: float) -> TokenRecord:
        """Revoke (idempotent: the first revocation stands). TokenNotFoundError if unknown."""

    async def save_answer(self, answer: IdempotentAnswer) -> IdempotentAnswer:
        """Keep ``answer`` (sealed) unless one is kept under its (principal_id, key) already;
        the one kept (the first) is returned."""

    async def get_answer(self, principal_id: str, key: str) -> IdempotentAnswer | None:
        """The answer kept under (``principal_id``, ``key``), or None."""


# Exported from here, built on first use (see afk.store._other_records).
_OTHER_RECORDS = dict.fromkeys(
    (
        "ClaimedRun",
        "GrantRecord",
        "IdempotentAnswer",
        "ThreadHolder",
        "ThreadTurnRecord",
        "TimerRecord",
        "TokenRecord",
        "VoteRecord",
    ),
    "afk.store._other_records",
)
__getattr__, __dir__ = lazy_exports(__name__, _OTHER_RECORDS, globals())

__all__ = [
    "TERMINAL_RUN_STATES",
    "ClaimedRun",
    "EventRow",
    "ExecutionRecord",
    "ExecutionStatus",
    "GrantRecord",
    "IdempotentAnswer",
    "LogEntry",
    "RequestOrder",
    "RequestRecord",
    "RequestStatus",
    "RunRecord",
    "RunStatus",
    "RunStore",
    "ThreadHolder",
    "ThreadTurnRecord",
    "TimerRecord",
    "TokenRecord",
    "VoteRecord",
    "VoteRule",
]
