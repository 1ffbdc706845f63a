"""The kinds the decision path writes only now and then: a quorum's vote, a decision afk
refused to record, a stored row that did not verify. Built on first use (see
:mod:`._kinds`), so that an approver's plain decision does not wait for them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from afk.audit.entries._kinds import (
    KEY,
    DecisionKind,
    LedgerEntry,
    _DecisionEntry,
    _optional,
    _VoterEntry,
)


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
class TamperDetected(LedgerEntry):
    """A stored row did not verify under the store's key, so afk refused to use it.

    ``row_id`` is the payload's ``id`` (the row's primary key). The first writers recorded
    only ``expected``, the digest a decision had bound."""

    kind: Literal["tamper_detected"] = "tamper_detected"
    table: str | None = _optional()
    row_id: str | None = _optional(key="id")
    refused: str | None = _optional()  # what afk refused to do with the row
    expected: str | None = _optional()


__all__ = ["DecisionRefused", "TamperDetected", "VoteCast"]
