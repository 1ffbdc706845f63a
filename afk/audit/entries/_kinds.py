"""The ledger's entry kinds: one frozen class per ``kind``, with the payload's fields typed.

Each class carries the entry's columns (``run_id``, ``request_id``, ``actor``, ``at``) and
its payload's fields, named as the payload names them; the one exception is a decision's
``kind`` (allow / deny), which is ``decision`` here because ``kind`` names the entry.

A field with a default is one some writer leaves out of the payload: afk's own writers when
it is None (a vote nobody vouched for has no ``operator``), or afk's older writers (a
``decided`` entry from before the ledger named principals has none; the first
``execution_started`` entries had an empty payload). Reading such an entry gives the
default; writing it back leaves the field out again, so a payload round-trips byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypedDict

if TYPE_CHECKING:
    from afk.approvals.principal import Principal

# The payload values' vocabularies. Copies of afk.agents.rules / afk.approvals.requests (the
# ledger sits below them); tests/audit/test_entries.py fails when they drift apart.
DecisionKind = Literal["allow", "deny"]
DecidedBy = Literal["human", "timeout", "fallback", "error"]
PolicyAction = Literal["allow", "deny", "request_approval", "request_user_input"]
EventType = Literal["tool_before_execute", "llm_before_execute"]

KEY = "afk.ledger.key"  # field metadata: the payload's name for it, when not the field's
WITH = "afk.ledger.with"  # field metadata: written only while this field is set


def _optional(default: Any = None, *, key: str | None = None, with_: str | None = None) -> Any:
    """A field left out of the payload while it (or ``with_``) is None or empty."""
    meta: dict[str, str] = {WITH: with_ or ""}
    if key is not None:
        meta[KEY] = key
    return field(default=default, metadata=meta)


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerEntry:
    """What every entry has besides its payload: the run, the request (or execution key) it
    is about, who acted, and when (epoch seconds; 0: the store stamps it)."""

    run_id: str
    request_id: str | None = None
    actor: str | None = None
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ShadowRule:
    """What one shadow rule or engine would have decided (inside ``policy_decision``)."""

    rule: str | None
    action: PolicyAction
    would_change: bool


class Who(TypedDict, total=False):
    """How the ledger names who voted; spread into a voter entry (``**who(principal)``)."""

    principal: str | None
    authenticated_by: str
    operator: str


def who(principal: Principal | None) -> Who:
    """The voter fields for ``principal``: its id, how afk knows it, and who vouched for it
    when someone else did. None is the anonymous voter (``principal`` written as null)."""
    if principal is None:
        return {"principal": None, "authenticated_by": "anonymous"}
    named: Who = {"principal": principal.id, "authenticated_by": principal.authenticated_by}
    if principal.operator:
        named["operator"] = principal.operator
    return named


@dataclass(frozen=True, slots=True, kw_only=True)
class _VoterEntry(LedgerEntry):
    # ``principal`` is null for an anonymous voter, so its presence follows authenticated_by.
    principal: str | None = _optional(with_="authenticated_by")
    authenticated_by: str | None = _optional()
    operator: str | None = _optional()


@dataclass(frozen=True, slots=True, kw_only=True)
class _DecisionEntry(_VoterEntry):
    decision: DecisionKind = field(metadata={KEY: "kind"})
    decided_by: DecidedBy
    reason: str | None
    args_digest: str  # of the arguments this decision approves


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestOpened(LedgerEntry):
    """The run asked a human (approval or input) about one tool call."""

    kind: Literal["request_opened"] = "request_opened"
    tool: str | None
    args_digest: str
    rule: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestDecided(_DecisionEntry):
    """A request was decided (by a human, or by a fallback before its deadline)."""

    kind: Literal["decided"] = "decided"


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestExpired(_DecisionEntry):
    """A request passed its deadline; ``decision`` is the fallback that applied."""

    kind: Literal["expired"] = "expired"


@dataclass(frozen=True, slots=True, kw_only=True)
class VoteCast(_DecisionEntry):
    """One approver's vote on a request that needs a quorum."""

    kind: Literal["vote"] = "vote"


@dataclass(frozen=True, slots=True, kw_only=True)
class DecisionRefused(_VoterEntry):
    """A decision afk refused to record: ``why`` is the error's class, ``detail`` its text."""

    kind: Literal["refused"] = "refused"
    decision: DecisionKind = field(metadata={KEY: "kind"})
    why: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class _TimerEntry(LedgerEntry):
    approvers: tuple[str, ...]  # who may decide now


@dataclass(frozen=True, slots=True, kw_only=True)
class ReminderSent(_TimerEntry):
    """A pending request's reminder came due."""

    kind: Literal["reminded"] = "reminded"


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestEscalated(_TimerEntry):
    """A pending request was escalated; ``approvers`` is the widened set."""

    kind: Literal["escalated"] = "escalated"


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionStarted(LedgerEntry):
    """A tool call is about to run (``request_id`` is its execution key). The first durable
    writers logged it with an empty payload."""

    kind: Literal["execution_started"] = "execution_started"
    tool_call_id: str | None = _optional()
    args_digest: str | None = _optional()


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionFinished(LedgerEntry):
    """A tool call ended: ``success``, or ``error`` (its first 1000 characters)."""

    kind: Literal["execution_finished"] = "execution_finished"
    tool_call_id: str | None = _optional()
    args_digest: str | None = _optional()
    success: bool | None = _optional()
    error: str | None = _optional(with_="success")  # null when it succeeded


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyDecided(LedgerEntry):
    """The policy's decision on one tool or model call, with the shadow rules' opinions."""

    kind: Literal["policy_decision"] = "policy_decision"
    event: EventType
    step: int
    tool: str | None
    tool_call_id: str | None
    args_digest: str
    action: PolicyAction
    rule: str | None
    matched: tuple[str, ...]
    reason: str | None
    shadow: tuple[ShadowRule, ...] = _optional(())


@dataclass(frozen=True, slots=True, kw_only=True)
class TamperDetected(LedgerEntry):
    """A stored row did not verify under the store's key, so afk refused to use it.

    ``row_id`` is the payload's ``id`` (the row's primary key). The first writers recorded
    only ``expected``, the digest a decision had bound."""

    kind: Literal["tamper_detected"] = "tamper_detected"
    table: str | None = _optional()
    row_id: str | None = _optional(key="id")
    refused: str | None = _optional()  # what afk refused to do with the row
    expected: str | None = _optional()


@dataclass(frozen=True, slots=True, kw_only=True)
class _GrantEntry(LedgerEntry):
    grant_id: str
    tool: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GrantCreated(_GrantEntry):
    """An approver's "allow, and keep allowing this" (or "deny, and keep denying this":
    ``effect``) became a standing grant."""

    kind: Literal["grant_created"] = "grant_created"
    until: float
    effect: Literal["deny"] | None = _optional()  # written for a standing deny only


@dataclass(frozen=True, slots=True, kw_only=True)
class GrantRevoked(_GrantEntry):
    """Someone stopped a standing grant from allowing further calls."""

    kind: Literal["grant_revoked"] = "grant_revoked"


@dataclass(frozen=True, slots=True, kw_only=True)
class GrantUsed(_GrantEntry):
    """A standing grant let a call run without asking."""

    kind: Literal["grant_used"] = "grant_used"
    tool_call_id: str


Entry = (
    RequestOpened
    | RequestDecided
    | RequestExpired
    | VoteCast
    | DecisionRefused
    | ReminderSent
    | RequestEscalated
    | ExecutionStarted
    | ExecutionFinished
    | PolicyDecided
    | TamperDetected
    | GrantCreated
    | GrantRevoked
    | GrantUsed
)

ENTRY_CLASSES: tuple[type[Entry], ...] = (
    RequestOpened,
    RequestDecided,
    RequestExpired,
    VoteCast,
    DecisionRefused,
    ReminderSent,
    RequestEscalated,
    ExecutionStarted,
    ExecutionFinished,
    PolicyDecided,
    TamperDetected,
    GrantCreated,
    GrantRevoked,
    GrantUsed,
)


__all__ = [
    "ENTRY_CLASSES",
    "KEY",
    "WITH",
    "DecidedBy",
    "DecisionKind",
    "DecisionRefused",
    "Entry",
    "EventType",
    "ExecutionFinished",
    "ExecutionStarted",
    "GrantCreated",
    "GrantRevoked",
    "GrantUsed",
    "LedgerEntry",
    "PolicyAction",
    "PolicyDecided",
    "ReminderSent",
    "RequestDecided",
    "RequestEscalated",
    "RequestExpired",
    "RequestOpened",
    "ShadowRule",
    "TamperDetected",
    "VoteCast",
    "Who",
    "who",
]
