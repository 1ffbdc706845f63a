"""The decisions nobody made: the configured fallback for a request nobody answered in
time, and the plain denial a request gets when what answered it cannot be trusted."""

from __future__ import annotations

from afk.approvals.requests import (
    ApprovalDecision,
    ApprovalRequest,
    Decision,
    Request,
    UserInputDecision,
)
from afk.core.config import RunnerConfig


def fallback_decision(config: RunnerConfig, request: Request, why: str) -> Decision:
    """``approval_fallback`` / ``input_fallback`` for ``request`` (deny unless an operator
    configured allow), with ``why`` in its reason."""
    if isinstance(request, ApprovalRequest):
        kind = config.approval_fallback
        return ApprovalDecision(kind=kind, reason=f"{why}: approval_fallback={kind}")
    if config.input_fallback == "allow":
        # Fallback "allow" for input means: run with the original arguments, no text.
        return UserInputDecision(kind="allow", value="", reason=f"{why}: input_fallback=allow")
    return UserInputDecision(kind="deny", reason=f"{why}: input_fallback=deny")


def denial(request: Request, reason: str) -> Decision:
    """A deny of the decision type ``request`` takes."""
    if isinstance(request, ApprovalRequest):
        return ApprovalDecision(kind="deny", reason=reason)
    return UserInputDecision(kind="deny", reason=reason)
