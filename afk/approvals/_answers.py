"""What a tool sees of the approval its call ran under (``ToolContext.approval``) and the
answers to the questions it asks from inside its body, and a decision with who made it.
Exported from :mod:`afk.approvals.requests`, their home; built on first use, since an
approver's decision uses none of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

# At run time, not only for type checkers: pydantic resolves these classes' annotations in
# this module's namespace.
from afk.approvals.requests import DecidedBy, Decision


@dataclass(frozen=True, slots=True, kw_only=True)
class CallApproval:
    """Why a gated tool call is running, as the tool sees it (``ToolContext.approval``).

    ``decided_by`` is ``human`` for a person's decision (``approver``: the authenticated id
    the store recorded, ``reason``: theirs, ``edited``: they changed the arguments),
    ``grant`` for a standing grant (``grant_id``), and ``timeout`` / ``fallback`` when an
    operator's fallback allowed it without anyone deciding.
    """

    decided_by: DecidedBy | Literal["grant"]
    request_id: str | None = None
    approver: str | None = None
    reason: str | None = None
    edited: bool = False
    grant_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolAnswer:
    """The answer to a question a tool asked from inside its body
    (``ToolContext.request_approval`` / ``request_input``).

    ``approved``: the human allowed it (for input: answered); ``value``: the input (the JSON
    it holds when the request had a non-string ``input_schema``); ``decided_by`` as for any
    request: ``human``, or ``timeout`` / ``fallback`` / ``error`` when nobody decided."""

    request_id: str
    approved: bool
    value: Any = None
    approver: str | None = None
    reason: str | None = None
    decided_by: DecidedBy = "human"


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolvedDecision:
    """A decision together with who or what produced it."""

    decision: Decision
    decided_by: DecidedBy = "human"
    decided_at: float = 0.0
