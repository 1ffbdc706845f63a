"""How a request a policy rule opens is decided: who may decide it, how many must agree,
how long it waits, who is reminded and escalated to, and what a reviewer may do.

One value, checked once, carried from the rule (:class:`afk.agents.PolicyRule` takes its
fields as keyword arguments) through the policy decision to the request the run opens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from afk.approvals.requests import DECISION_OPTIONS
from afk.errors import ConfigurationError


class ApprovalSettingsError(ConfigurationError, ValueError):
    """An approval setting that cannot work; ``field`` names it."""

    def __init__(self, fld: str, detail: str) -> None:
        self.field, self.detail = fld, detail
        super().__init__(f"{fld}: {detail}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalSettings:
    """Who decides a request, and how.

    ``approvers``: names or ``group:NAME`` (empty: anyone may decide); ``quorum``: how many
    distinct approvers must allow; ``allow_self_approval``: whether the run's requester may
    be one of them; ``expires_after_s``: how long the request waits (default: the runner's
    timeout for its mode); ``remind_after_s`` / ``escalate_after_s`` + ``escalate_to``:
    reminders, and approvers added later; ``deny_decides``: one deny decides (False: denies
    need the quorum too); ``allowed_decisions``: any of allow, deny, edit (allow with changed
    arguments), grant (allow with a standing grant).
    """

    approvers: tuple[str, ...] = ()
    quorum: int = 1
    allow_self_approval: bool = False
    expires_after_s: float | None = None
    remind_after_s: float | None = None
    escalate_after_s: float | None = None
    escalate_to: tuple[str, ...] = ()
    deny_decides: bool = True
    allowed_decisions: tuple[str, ...] = DECISION_OPTIONS

    def __post_init__(self) -> None:
        # Lists (from a policy file) become tuples; allowed_decisions keeps the canonical
        # order, since the same choices in another order make the same rule.
        object.__setattr__(self, "approvers", _names("approvers", self.approvers))
        object.__setattr__(self, "escalate_to", _names("escalate_to", self.escalate_to))
        object.__setattr__(self, "allowed_decisions", _options(self.allowed_decisions))
        _check(self)

    @property
    def is_default(self) -> bool:
        """Whether every setting is at its default (what any rule but an approval has)."""
        return self == DEFAULT


def settings_fields() -> tuple[str, ...]:
    """The names of the settings, in declaration order."""
    return tuple(f.name for f in fields(ApprovalSettings))


def _names(name: str, value: object) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ApprovalSettingsError(name, f"must be a list of names or 'group:NAME', got {value!r}")
    for item in items:
        if not isinstance(item, str) or not item.strip() or item == "group:":
            raise ApprovalSettingsError(
                name, f"entries must be names or 'group:NAME', got {item!r}"
            )
    return tuple(items)


def _options(value: object) -> tuple[str, ...]:
    options = ", ".join(DECISION_OPTIONS)
    if not isinstance(value, list | tuple) or not value:
        raise ApprovalSettingsError(
            "allowed_decisions", f"must be a non-empty list of {options}, got {value!r}"
        )
    for item in value:
        if item not in DECISION_OPTIONS:
            raise ApprovalSettingsError(
                "allowed_decisions", f"entries must be among {options}, got {item!r}"
            )
    return tuple(option for option in DECISION_OPTIONS if option in value)


def _check(s: ApprovalSettings) -> None:
    quorum: Any = s.quorum
    if not isinstance(quorum, int) or isinstance(quorum, bool) or quorum < 1:
        raise ApprovalSettingsError("quorum", f"must be an integer >= 1, got {quorum!r}")
    for name in ("expires_after_s", "remind_after_s", "escalate_after_s"):
        value = getattr(s, name)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if value is not None and not (number and math.isfinite(value) and value > 0):
            raise ApprovalSettingsError(
                name, f"must be a positive number of seconds, got {value!r}"
            )
    for name in ("allow_self_approval", "deny_decides"):
        if not isinstance(getattr(s, name), bool):
            raise ApprovalSettingsError(name, f"must be true or false, got {getattr(s, name)!r}")
    people = [a for a in s.approvers if not a.startswith("group:")]
    # With only named people, a larger quorum could never be reached; groups may grow.
    if s.approvers and len(people) == len(s.approvers) and quorum > len(people):
        raise ApprovalSettingsError("quorum", f"{quorum} exceeds the {len(people)} approvers named")
    if (s.escalate_after_s is None) != (not s.escalate_to):
        raise ApprovalSettingsError("escalate_to", "escalate_to and escalate_after_s go together")
    expires = s.expires_after_s
    for name in ("remind_after_s", "escalate_after_s"):
        value = getattr(s, name)
        if value is not None and expires is not None and value >= expires:
            raise ApprovalSettingsError(name, f"must be less than expires_after_s ({expires})")


DEFAULT = ApprovalSettings()

__all__ = ["ApprovalSettings", "ApprovalSettingsError"]
