"""The store's records that deciding does not use (votes, grants, timers, threads, tokens,
idempotent answers, claims; a channel's cursor and its emailed links), built on first use:
``afk approvals approve`` in a fresh process builds only the records of its one decision
(each frozen dataclass costs about half a millisecond to create on Python 3.11). Their homes
are :mod:`afk.store.store` and, for the channel's two, :mod:`afk.store._links`, which
export them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from afk.store.store import RequestRecord, RunRecord


@dataclass(frozen=True, slots=True, kw_only=True)
class VoteRecord:
    """One approver's vote on a request that needs a quorum."""

    request_id: str
    approver: str
    kind: Literal["allow", "deny"]
    decision: str  # JSON of the ApprovalDecision
    bound_digest: str  # the arguments this vote approves
    at: float
    mac: str = ""  # set by the store (afk.store._seal); what a caller passes is ignored


@dataclass(frozen=True, slots=True, kw_only=True)
class GrantRecord:
    """A standing answer: allow (or, ``effect="deny"``, refuse with ``reason``)
    ``tool_name`` calls whose arguments match ``when`` within one thread / agent / user until
    ``until``."""

    grant_id: str
    tool_name: str
    scope: str  # thread | agent | user
    scope_value: str
    when: str  # JSON of the argument predicates
    until: float
    created_by: str | None
    created_at: float
    source_request_id: str | None = None
    revoked_at: float | None = None
    revoked_by: str | None = None
    uses: int = 0  # the one field the MAC leaves out: counting a use re-signs nothing
    mac: str = ""  # set by the store (afk.store._seal); what a caller passes is ignored
    effect: Literal["allow", "deny"] = "allow"  # store schema 7; older rows are allow
    reason: str | None = None  # a deny grant's message, given to the model


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerRecord:
    """A durable reminder or escalation due for a pending request."""

    request_id: str
    kind: Literal["remind", "escalate"]
    due_at: float
    fired_at: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadTurnRecord:
    """One finished run's part of a conversation thread: its messages (JSON, after the
    thread's earlier turns), in turn order. Sealed by ``mac``."""

    thread_id: str
    turn: int  # 1, 2, ...: assigned by the store when the turn is added
    run_id: str
    messages: str  # JSON list of the run's messages (afk.core.sessions)
    at: float
    mac: str = ""  # set by the store (afk.store._seal); what a caller passes is ignored


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadHolder:
    """The run holding a thread another run asked for; ``status`` is its stored run's
    status (None: no run row yet, or any more)."""

    run_id: str
    owner: str
    taken_at: float
    status: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenRecord:
    """An API token (``afk tokens create``): who it authenticates, until when, and the
    SHA-256 of its secret, never the secret itself. Sealed by ``mac``, so a row inserted or
    edited outside afk (another principal, a revocation undone) authenticates nobody."""

    token_id: str  # tok_...
    principal_id: str
    secret_hash: str  # hex SHA-256 of the whole secret (afk.store._tokens)
    created_at: float
    expires_at: float | None = None  # None: never
    created_by: str | None = None
    revoked_at: float | None = None
    revoked_by: str | None = None
    mac: str = ""  # set by the store (afk.store._seal); what a caller passes is ignored


@dataclass(frozen=True, slots=True, kw_only=True)
class IdempotentAnswer:
    """The answer an HTTP decision gave, kept under the caller's ``Idempotency-Key`` so a
    retried POST gets it again (afk.console). Sealed by ``mac``: a forged answer must not
    tell a client its decision was recorded."""

    principal_id: str
    key: str
    request_id: str
    status: int  # the HTTP status answered
    body: str  # JSON of the body answered
    at: float
    mac: str = ""  # set by the store (afk.store._seal); what a caller passes is ignored


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimedRun:
    """What :meth:`RunStore.claim_run` found: the run (None: no such run), whether the
    lease is now the caller's, and, when it is, the run's requests (the first page, oldest
    first; ``next_cursor`` set when the run holds more)."""

    run: RunRecord | None
    leased: bool
    requests: Sequence[RequestRecord] = ()
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Cursor:
    """A channel's place in the ledger, as its lease holder took it."""

    channel: str
    after_id: int
    attempts: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EmailLink:
    """One emailed link: the request it decides, who it was sent to, until when; ``used_at``
    and ``used_by`` once someone decided through it."""

    link_id: str
    request_id: str
    recipient: str
    created_at: float
    expires_at: float
    used_at: float | None = None
    used_by: str | None = None
