"""The entry kinds a run writes as it goes: a request opened or expired, a tool call started
and finished, the policy's decision (with its shadow rules'). None is what a decision writes,
so they are built when a writer imports them (see :mod:`._kinds`, whose conventions they
follow)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# get_type_hints resolves the fields' annotations in this module: every name they use is here.
from afk.audit.entries._kinds import (
    EventType,
    LedgerEntry,
    PolicyAction,
    _DecisionEntry,
    _optional,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestOpened(LedgerEntry):
    """The run asked a human (approval or input) about one tool call."""

    kind: Literal["request_opened"] = "request_opened"
    tool: str | None
    args_digest: str
    rule: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestExpired(_DecisionEntry):
    """A request passed its deadline; ``decision`` is the fallback that applied."""

    kind: Literal["expired"] = "expired"


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
class ShadowRule:
    """What one shadow rule or engine would have decided (inside ``policy_decision``)."""

    rule: str | None
    action: PolicyAction
    would_change: bool


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


__all__ = [
    "ExecutionFinished",
    "ExecutionStarted",
    "PolicyDecided",
    "RequestExpired",
    "RequestOpened",
    "ShadowRule",
]
