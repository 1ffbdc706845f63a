"""The entry kinds standing grants and a pending request's timers write: built when
:mod:`afk.approvals.grants` or a due timer needs them, not by every decision (see
:mod:`._kinds`, whose conventions they follow)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# get_type_hints resolves the fields' annotations in this module: every name they use is here.
from afk.audit.entries._kinds import LedgerEntry, _optional


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


__all__ = ["GrantCreated", "GrantRevoked", "GrantUsed", "ReminderSent", "RequestEscalated"]
