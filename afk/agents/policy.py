"""The policy engine: sees every tool call (and, when asked, every model call) first.

The rule, the event and the decision live in :mod:`afk.agents.rules`; they are re-exported
here so ``from afk.agents.policy import PolicyRule`` keeps working.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from afk.agents._policy_core import (
    Outcome,
    candidates,
    conclude,
    failed,
    refuse_async,
    scope_of,
    settle,
)
from afk.agents._policy_core import deadline as _deadline
from afk.agents.rules import (
    ACTIONS,
    EVENT_TYPES,
    RESTRICTIVENESS,
    Condition,
    EventType,
    PolicyAction,
    PolicyDecision,
    PolicyEvent,
    PolicyRule,
    ShadowResult,
    _rank,
)
from afk.approvals.requests import DECISION_OPTIONS
from afk.errors import ConfigurationError

if TYPE_CHECKING:
    from afk.agents._policy_explain import PolicyExplanation

__all__ = [
    "ACTIONS",
    "DECISION_OPTIONS",
    "EVENT_TYPES",
    "RESTRICTIVENESS",
    "Condition",
    "EventType",
    "PolicyAction",
    "PolicyDecision",
    "PolicyEngine",
    "PolicyEvent",
    "PolicyRule",
    "ShadowResult",
    "combine",
]


class PolicyEngine:
    """Evaluates rules; the highest-priority match decides, ties go to the most restrictive.

    A condition that raises (or, under ``aevaluate(timeout_s=...)``, an async one that takes
    too long) makes the decision ``deny`` (fail closed). With no match, tool calls get
    ``default_action`` and model calls are allowed. A ``shadow`` engine decides nothing: it
    always allows and reports what it would have decided in ``PolicyDecision.shadow``.
    """

    def __init__(
        self,
        rules: Iterable[PolicyRule] = (),
        *,
        default_action: PolicyAction = "allow",
        shadow: bool = False,
        groups: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        if default_action not in ACTIONS:
            raise ConfigurationError(
                f"PolicyEngine.default_action must be one of {ACTIONS}, got {default_action!r}"
            )
        if not isinstance(shadow, bool):
            raise ConfigurationError(f"PolicyEngine.shadow must be a bool, got {shadow!r}")
        self.default_action: PolicyAction = default_action
        self.shadow = shadow
        # Approver groups for the default (static) directory: {"finance": ["alice", "bob"]}.
        self.groups: dict[str, tuple[str, ...]] = {}
        for name, members in (groups or {}).items():
            if isinstance(members, str) or not all(isinstance(m, str) for m in members):
                raise ConfigurationError(
                    f"PolicyEngine.groups[{name!r}] must be a list of member names"
                )
            self.groups[name] = tuple(members)
        self.rules: tuple[PolicyRule, ...] = tuple(rules)
        seen: set[str] = set()
        for rule in self.rules:
            if not isinstance(rule, PolicyRule):
                raise ConfigurationError(
                    f"PolicyEngine rules must be PolicyRule objects, got {type(rule).__name__}"
                )
            if rule.rule_id in seen:
                raise ConfigurationError(f"PolicyEngine: duplicate rule_id {rule.rule_id!r}")
            seen.add(rule.rule_id)
        ordered = tuple(sorted(self.rules, key=lambda r: -r.priority))  # stable: ties keep order
        self._ordered = ordered
        self._scopes = {et: scope_of(ordered, et, default_action, shadow) for et in EVENT_TYPES}
        # Decisions are immutable, so the one a single matching rule makes is built once.
        self._single: dict[str, PolicyDecision] = {}

    @classmethod
    def from_dict(cls, data: object, source: str = "<dict>") -> PolicyEngine:
        """Build an engine from a parsed policy document (see ``from_file`` for the format)."""
        from afk.agents._policy_file import engine_from_dict

        return engine_from_dict(data, source)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> PolicyEngine:
        """Load a YAML (``.yaml``/``.yml``, needs PyYAML) or JSON policy file.

        Any error raises ConfigurationError naming the file, the rule and the field.
        """
        from afk.agents._policy_file import engine_from_file

        return engine_from_file(path)

    def covers(self, event_type: str) -> bool:
        """Whether any enabled rule (shadow rules included) looks at this event type."""
        scope = self._scopes.get(event_type)
        return bool(scope and scope.rules)

    # The drivers below only ask conditions; what their answers mean is in _policy_core.
    def evaluate(self, event: PolicyEvent) -> PolicyDecision:
        """Evaluate synchronously. An async condition raises AsyncConditionError (a
        TypeError) naming its rule."""
        scope = self._scopes[event.event_type]
        outcomes: list[Outcome] = []
        for rule, cond in scope.every if scope.every is not None else candidates(scope, event):
            if cond is None:
                outcomes.append(rule)
                continue
            try:
                hit: object = cond(event)
            except Exception as exc:
                if failed(rule, exc, outcomes):
                    break
                continue
            if hit is True:
                outcomes.append(rule)
            elif hit is False or hit is None:
                continue
            elif inspect.isawaitable(hit):
                refuse_async(rule, hit, "aevaluate")
            elif hit:
                outcomes.append(rule)
        return conclude(self, scope, event, outcomes) if outcomes else scope.no_match

    async def aevaluate(
        self,
        event: PolicyEvent,
        *,
        timeout_s: float | None = None,
        deadline: float | None = None,
    ) -> PolicyDecision:
        """Evaluate, awaiting async conditions. This is what the runner calls.

        With ``timeout_s`` the async conditions must be done within that many seconds in all,
        or by ``deadline`` (a ``loop.time()``) when given: the runner shares one deadline
        between its engine and the agent's. One that is not is failed closed like one that
        raises: deny, naming the rule. Sync conditions cannot be interrupted.
        """
        at = _deadline(timeout_s, deadline)
        scope = self._scopes[event.event_type]
        outcomes: list[Outcome] = []
        for rule, cond in scope.every if scope.every is not None else candidates(scope, event):
            if cond is None:
                outcomes.append(rule)
                continue
            try:
                hit = cond(event)
                if hit is not True and hit is not False and inspect.isawaitable(hit):
                    hit = await settle(hit, at, timeout_s)
            except Exception as exc:
                if failed(rule, exc, outcomes):
                    break
                continue
            if hit:
                outcomes.append(rule)
        return conclude(self, scope, event, outcomes) if outcomes else scope.no_match

    def explain(self, event: PolicyEvent) -> PolicyExplanation:
        """Why each rule did or did not match, and the decision ``evaluate`` would return.

        Unlike ``evaluate`` this runs every in-scope condition, even past one that raised.
        """
        from afk.agents._policy_explain import explain

        return explain(self, event)

    async def aexplain(
        self, event: PolicyEvent, *, timeout_s: float | None = None
    ) -> PolicyExplanation:
        """``explain`` for engines with async conditions, bounded like ``aevaluate``."""
        from afk.agents._policy_explain import aexplain

        return await aexplain(self, event, _deadline(timeout_s, None), timeout_s)


def combine(first: PolicyDecision, second: PolicyDecision) -> PolicyDecision:
    """The more restrictive of two engines' decisions (the agent's and the runner's)."""
    more = _rank(second) > _rank(first)
    winner = second if more else first
    merged = tuple(dict.fromkeys(first.matched_rules + second.matched_rules))
    shadow = first.shadow + second.shadow
    if merged == winner.matched_rules and shadow == winner.shadow:
        return winner
    return replace(winner, matched_rules=merged, shadow=shadow)
