"""Runner configuration, validated when it is written."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from afk.approvals.requests import FALLBACKS, Fallback
from afk.errors import ConfigurationError

InteractionMode = Literal["headless", "interactive", "external"]
MODES: tuple[str, ...] = ("headless", "interactive", "external")


def _positive(name: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigurationError(f"RunnerConfig.{name} must be a number > 0, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunnerConfig:
    """How a runner deals with humans and limits.

    ``approval_fallback`` / ``input_fallback`` answer requests in headless mode and on timeout;
    ``"allow"`` is an explicit operator choice, the default is ``"deny"``. ``max_run_time_s``
    counts active time only: time spent waiting for a human never counts.
    """

    interaction_mode: InteractionMode = "headless"
    # Requests one run may have open at once; a call that would open one more is denied, so
    # a runaway model cannot flood approvers (or the store) with requests.
    max_open_requests: int = 50
    approval_fallback: Fallback = "deny"
    input_fallback: Fallback = "deny"
    approval_timeout_s: float = 300.0
    input_timeout_s: float = 300.0
    max_run_time_s: float | None = None
    # Async policy conditions of one evaluation, in all; past it the call is denied.
    policy_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if self.interaction_mode not in MODES:
            raise ConfigurationError(
                f"RunnerConfig.interaction_mode must be one of {MODES}, "
                f"got {self.interaction_mode!r}"
            )
        cap = self.max_open_requests
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise ConfigurationError(
                f"RunnerConfig.max_open_requests must be an int >= 1, got {cap!r}"
            )
        for name in ("approval_fallback", "input_fallback"):
            value = getattr(self, name)
            if value not in FALLBACKS:
                raise ConfigurationError(
                    f"RunnerConfig.{name} must be one of {FALLBACKS}, got {value!r}"
                )
        _positive("approval_timeout_s", self.approval_timeout_s)
        _positive("input_timeout_s", self.input_timeout_s)
        _positive("max_run_time_s", self.max_run_time_s, optional=True)
        _positive("policy_timeout_s", self.policy_timeout_s)
