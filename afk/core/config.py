"""Runner configuration, validated when it is written."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from afk.approvals.requests import FALLBACKS, Fallback
from afk.errors import ConfigurationError

InteractionMode = Literal["headless", "interactive", "external"]
MODES: tuple[str, ...] = ("headless", "interactive", "external")

# How long a request waits for a human when the config does not say. Someone at the terminal
# (interactive) answers within minutes or not at all; a durable run (external) waits for a
# person who may be away for a weekend: three days, after which the fallback (deny by
# default) applies and the run reports the request as expired.
DEFAULT_TIMEOUT_S: dict[str, float] = {
    "headless": 300.0,
    "interactive": 300.0,
    "external": 3 * 24 * 3600.0,
}


def _positive(name: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigurationError(f"RunnerConfig.{name} must be a number > 0, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunnerConfig:
    """How a runner deals with humans and limits.

    ``approval_fallback`` / ``input_fallback`` answer requests in headless mode and on timeout;
    ``"allow"`` is an explicit operator choice, the default is ``"deny"``.
    ``approval_timeout_s`` / ``input_timeout_s`` default by mode: 300 s (five minutes) when
    someone answers at the terminal, three days in ``external`` mode (see
    ``DEFAULT_TIMEOUT_S``); a rule's ``expires_after_s`` overrides them. ``max_run_time_s``
    counts active time only: time spent waiting for a human never counts.
    """

    interaction_mode: InteractionMode = "headless"
    # Requests one run may have open at once; a call that would open one more is denied, so
    # a runaway model cannot flood approvers (or the store) with requests.
    max_open_requests: int = 50
    approval_fallback: Fallback = "deny"
    input_fallback: Fallback = "deny"
    # None: the mode's default (DEFAULT_TIMEOUT_S), filled in at construction.
    approval_timeout_s: float | None = None
    input_timeout_s: float | None = None
    max_run_time_s: float | None = None
    # Async policy conditions of one evaluation, in all; past it the call is denied.
    policy_timeout_s: float = 5.0

    @property
    def approval_expiry_s(self) -> float:
        """Seconds an approval request waits: ``approval_timeout_s`` or the mode's default."""
        return self.approval_timeout_s or DEFAULT_TIMEOUT_S[self.interaction_mode]

    @property
    def input_expiry_s(self) -> float:
        """Seconds an input request waits: ``input_timeout_s`` or the mode's default."""
        return self.input_timeout_s or DEFAULT_TIMEOUT_S[self.interaction_mode]

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
        for name in ("approval_timeout_s", "input_timeout_s"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, DEFAULT_TIMEOUT_S[self.interaction_mode])
        _positive("approval_timeout_s", self.approval_timeout_s)
        _positive("input_timeout_s", self.input_timeout_s)
        _positive("max_run_time_s", self.max_run_time_s, optional=True)
        _positive("policy_timeout_s", self.policy_timeout_s)


__all__ = [
    "DEFAULT_TIMEOUT_S",
    "MODES",
    "InteractionMode",
    "RunnerConfig",
]
