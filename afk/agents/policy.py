"""The policy engine: sees every tool call (and, when asked, every model call) first.

The rule, the event and the decision live in :mod:`afk.agents.rules`; they are re-exported
here so ``from afk.agents.policy import PolicyRule`` keeps working.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from afk.agents._matchers import GlobIndex
from afk.agents.rules import (
    ACTIONS,
    EVENT_TYPES,
    RESTRICTIVENESS,
    Condition,
    ConditionTimeout,
    EventType,
    PolicyAction,
    PolicyDecision,
    PolicyEvent,
    PolicyRule,
    ShadowResult,
    _BadReason,
    _decision_of,
    _failed_closed,
    _rank,
    _RuleFieldError,
    _shadow_results,
    _Shadowed,
)
from afk.approvals.requests import DECISION_OPTIONS
from afk.errors import ConfigurationError

if TYPE_CHECKING:
    from afk.agents._policy_explain import PolicyExplanation

T = TypeVar("T")

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
    "_RuleFieldError",
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
        # Highest priority first, stable on definition order: this order breaks every tie.
        self._ordered = tuple(sorted(self.rules, key=lambda r: -r.priority))
        self._scopes: dict[str, tuple[tuple[PolicyRule, ...], GlobIndex]] = {}
        for et in EVENT_TYPES:
            in_scope = tuple(r for r in self._ordered if r.enabled and et in r.event_types)
            tools: list[Any] = [r.tool for r in in_scope]
            self._scopes[et] = (in_scope, GlobIndex(tools))
        # Decisions are immutable, so the common outcomes are built once, not per call.
        self._defaults: dict[str, PolicyDecision] = {}
        for et in EVENT_TYPES:
            action: PolicyAction = default_action if et == "tool_before_execute" else "allow"
            reason = None if action == "allow" else f"default action of the policy: {action}"
            self._defaults[et] = PolicyDecision(action=action, reason=reason)
        self._single: dict[str, PolicyDecision] = {}
        # Scopes of plain callable rules (no matchers, no shadow) take a tighter loop: with
        # many cheap conditions the per-rule bookkeeping is most of the cost.
        self._plain: dict[str, tuple[tuple[PolicyRule, Any], ...]] = {}
        for et, (in_scope, _index) in self._scopes.items():
            if not self.shadow and all(r._matcher is None and not r.shadow for r in in_scope):
                self._plain[et] = tuple((r, r.condition) for r in in_scope)
        if len(self._plain) == len(EVENT_TYPES):
            # Only plain callables: `engine.evaluate` is the tight loop itself, without the
            # dispatch call, which is most of the cost with a few cheap conditions.
            self.evaluate = self._evaluate_plain  # type: ignore[method-assign]

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
        return bool(scope and scope[0])

    def evaluate(self, event: PolicyEvent) -> PolicyDecision:
        """Evaluate synchronously. An async condition raises TypeError naming its rule."""
        if event.event_type in self._plain:
            return self._evaluate_plain(event)
        rules, index = self._scopes[event.event_type]
        matched: list[PolicyRule] = []
        shadowed: _Shadowed = []
        for position in index.lookup(event.tool_name):
            rule = rules[position]
            matcher = rule._matcher
            if matcher is not None and not matcher.matches(event):
                continue
            cond = rule.condition
            if cond is not None:
                try:
                    hit: object = cond(event)
                except Exception as exc:
                    if rule.shadow:
                        shadowed.append((rule, exc))
                        continue
                    return self._finish(_failed_closed(rule, exc, event, shadowed))
                if hit is not True:
                    if hit is False or hit is None:
                        continue
                    if inspect.isawaitable(hit):
                        if inspect.iscoroutine(hit):
                            hit.close()
                        raise TypeError(
                            f"PolicyRule {rule.rule_id!r} has an async condition: "
                            "use `await engine.aevaluate(event)`"
                        )
                    if not hit:
                        continue
            if rule.shadow:
                shadowed.append((rule, None))
            else:
                matched.append(rule)
        return self._finish(self._decide(event, matched, shadowed))

    def _evaluate_plain(self, event: PolicyEvent) -> PolicyDecision:
        matched: list[PolicyRule] = []
        for rule, cond in self._plain[event.event_type]:
            if cond is None:
                matched.append(rule)
                continue
            try:
                hit: object = cond(event)
            except Exception as exc:
                return _failed_closed(rule, exc, event)
            if hit is True:
                matched.append(rule)
            elif hit is False or hit is None:
                continue
            elif inspect.isawaitable(hit):
                if inspect.iscoroutine(hit):
                    hit.close()
                raise TypeError(
                    f"PolicyRule {rule.rule_id!r} has an async condition: "
                    "use `await engine.aevaluate(event)`"
                )
            elif hit:
                matched.append(rule)
        if not matched:
            return self._defaults[event.event_type]
        return self._decide(event, matched, [])

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
        plain = self._plain.get(event.event_type)
        if plain is not None:
            hits: list[PolicyRule] = []
            for rule, cond in plain:
                if cond is None:
                    hits.append(rule)
                    continue
                try:
                    hit = cond(event)
                    if hit is not True and hit is not False and inspect.isawaitable(hit):
                        hit = await _settle(hit, at, timeout_s)
                except Exception as exc:
                    return _failed_closed(rule, exc, event)
                if hit:
                    hits.append(rule)
            return self._decide(event, hits, []) if hits else self._defaults[event.event_type]
        rules, index = self._scopes[event.event_type]
        matched: list[PolicyRule] = []
        shadowed: _Shadowed = []
        for position in index.lookup(event.tool_name):
            rule = rules[position]
            matcher = rule._matcher
            if matcher is not None and not matcher.matches(event):
                continue
            cond = rule.condition
            if cond is not None:
                try:
                    hit = cond(event)
                    if hit is not True and hit is not False and inspect.isawaitable(hit):
                        hit = await _settle(hit, at, timeout_s)
                except Exception as exc:
                    if rule.shadow:
                        shadowed.append((rule, exc))
                        continue
                    return self._finish(_failed_closed(rule, exc, event, shadowed))
                if not hit:
                    continue
            if rule.shadow:
                shadowed.append((rule, None))
            else:
                matched.append(rule)
        return self._finish(self._decide(event, matched, shadowed))

    def explain(self, event: PolicyEvent) -> PolicyExplanation:
        """Why each rule did or did not match, and the decision ``evaluate`` would return.

        Unlike ``evaluate`` this runs every in-scope condition, even past one that raised.
        """
        from afk.agents._policy_explain import explain

        return explain(self, event, None)

    async def aexplain(
        self, event: PolicyEvent, *, timeout_s: float | None = None
    ) -> PolicyExplanation:
        """``explain`` for engines with async conditions, bounded like ``aevaluate``."""
        from afk.agents._policy_explain import conditions_async, explain

        at = _deadline(timeout_s, None)
        return explain(self, event, await conditions_async(self, event, at, timeout_s))

    def _finish(self, decision: PolicyDecision) -> PolicyDecision:
        if not self.shadow:
            return decision
        would = ShadowResult(
            action=decision.action,
            rule_id=decision.rule_id,
            reason=decision.reason,
            source="engine",
            would_change=decision.action != "allow",
        )
        return PolicyDecision(action="allow", shadow=(would, *decision.shadow))

    def _decide(
        self, event: PolicyEvent, matched: list[PolicyRule], shadowed: _Shadowed
    ) -> PolicyDecision:
        if not matched:
            default = self._defaults[event.event_type]
            if not shadowed:
                return default
            return replace(default, shadow=_shadow_results(shadowed, None, default.action, event))
        if len(matched) == 1 and not shadowed and not callable(matched[0].reason):
            only = matched[0]
            cached = self._single.get(only.rule_id)
            if cached is None:
                cached = _decision_of(only, (only.rule_id,), (), event)
                self._single[only.rule_id] = cached
            return cached
        top = matched[0].priority
        winner = matched[0]
        for rule in matched[1:]:
            if rule.priority != top:
                break
            if _rank(rule) > _rank(winner):
                winner = rule
        try:
            shadow = _shadow_results(shadowed, winner, winner.action, event) if shadowed else ()
            return _decision_of(winner, tuple(r.rule_id for r in matched), shadow, event)
        except _BadReason as exc:
            # The text a human would read cannot be produced: nothing runs on that.
            return _failed_closed(winner, exc, event, shadowed)


def _deadline(timeout_s: float | None, deadline: float | None) -> float | None:
    """When (``loop.time()``) async conditions must be done, or None for no limit."""
    if timeout_s is None and deadline is None:
        return None
    for name, value in (("timeout_s", timeout_s), ("deadline", deadline)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ConfigurationError(
                f"PolicyEngine.aevaluate {name} must be a number, got {value!r}"
            )
    if timeout_s is not None and not timeout_s > 0:
        raise ConfigurationError(f"PolicyEngine.aevaluate timeout_s must be > 0, got {timeout_s!r}")
    if deadline is not None or timeout_s is None:
        return deadline
    return asyncio.get_running_loop().time() + timeout_s


async def _settle(pending: Awaitable[T], at: float | None, timeout_s: float | None) -> T:
    """Await a condition's result, by ``at`` when there is a deadline."""
    if at is None:
        return await pending
    try:
        async with asyncio.timeout_at(at) as budget:
            return await pending
    except TimeoutError:
        if budget.expired():  # not a TimeoutError the condition raised itself
            raise ConditionTimeout(timeout_s) from None
        raise


def combine(first: PolicyDecision, second: PolicyDecision) -> PolicyDecision:
    """The more restrictive of two engines' decisions (the agent's and the runner's)."""
    more = _rank(second) > _rank(first)
    winner = second if more else first
    merged = tuple(dict.fromkeys(first.matched_rules + second.matched_rules))
    shadow = first.shadow + second.shadow
    if merged == winner.matched_rules and shadow == winner.shadow:
        return winner
    return replace(winner, matched_rules=merged, shadow=shadow)
