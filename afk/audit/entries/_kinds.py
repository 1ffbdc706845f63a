"""The ledger's entry kinds: one frozen class per ``kind``, with the payload's fields typed.

Each class carries the entry's columns (``run_id``, ``request_id``, ``actor``, ``at``) and
its payload's fields, named as the payload names them; the one exception is a decision's
``kind`` (allow / deny), which is ``decision`` here because ``kind`` names the entry.

A field with a default is one some writer leaves out of the payload: afk's own writers when
it is None (a vote nobody vouched for has no ``operator``), or afk's older writers (a
``decided`` entry from before the ledger named principals has none; the first
``execution_started`` entries had an empty payload). Reading such an entry gives the
default; writing it back leaves the field out again, so a payload round-trips byte for byte.

Only the kind a decision writes (``decided``) is built here, when the module loads: building
a slotted dataclass is most of what importing the ledger costs (about 0.7 ms each), and an
approver's command waits for it. The others are built in the modules their writers import
(:mod:`._rarer_kinds`: a quorum's vote, a refused decision, a row that did not verify;
:mod:`._run_kinds`: a run's own entries; :mod:`._other_kinds`: grants' and timers'); their
names here, the ``Entry`` union and ``ENTRY_CLASSES`` load on first use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from afk._lazy import lazy_exports

if TYPE_CHECKING:
    from afk.approvals.principal import Principal
    from afk.audit.entries._other_kinds import (
        GrantCreated,
        GrantRevoked,
        GrantUsed,
        ReminderSent,
        RequestEscalated,
    )
    from afk.audit.entries._rarer_kinds import DecisionRefused, TamperDetected, VoteCast
    from afk.audit.entries._registry import ENTRY_CLASSES, Entry
    from afk.audit.entries._run_kinds import (
        ExecutionFinished,
        ExecutionStarted,
        PolicyDecided,
        RequestExpired,
        RequestOpened,
        ShadowRule,
    )

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
class RequestDecided(_DecisionEntry):
    """A request was decided (by a human, or by a fallback before its deadline)."""

    kind: Literal["decided"] = "decided"


# The kinds other writers use, the union of every kind and the registry: loaded on first use,
# from the modules that build them.
_RUN = "afk.audit.entries._run_kinds"
_OTHER = "afk.audit.entries._other_kinds"
_RARER = "afk.audit.entries._rarer_kinds"
_ELSEWHERE: dict[str, str] = {
    "VoteCast": _RARER,
    "DecisionRefused": _RARER,
    "TamperDetected": _RARER,
    "RequestOpened": _RUN,
    "RequestExpired": _RUN,
    "ExecutionStarted": _RUN,
    "ExecutionFinished": _RUN,
    "ShadowRule": _RUN,
    "PolicyDecided": _RUN,
    "ReminderSent": _OTHER,
    "RequestEscalated": _OTHER,
    "GrantCreated": _OTHER,
    "GrantRevoked": _OTHER,
    "GrantUsed": _OTHER,
    "Entry": "afk.audit.entries._registry",
    "ENTRY_CLASSES": "afk.audit.entries._registry",
}

__getattr__, __dir__ = lazy_exports(__name__, _ELSEWHERE, globals())


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
