"""The one policy evaluation core behind ``evaluate``, ``aevaluate``, ``explain`` and
``aexplain``.

A walk over the rules has two halves. Asking each candidate rule's condition is the driver's
part, sync or async: it appends an *outcome* per rule asked (the rule when its condition held,
``(rule, exc)`` when it raised) and stops when :func:`failed` says so. Everything else is here,
once: which rules are candidates, what a raise means (an enforced rule fails closed and the walk
stops; a shadow rule is reported and the walk goes on), which match decides (priority, then
restrictiveness), the default when nothing matched, and the shadow reports.

The drivers are plain loops rather than a generator they resume per rule: with many cheap
conditions the generator's per-rule resume costs more than the condition itself
(benchmarks/bench_core.py, policy overhead row).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NoReturn, TypeAlias, TypeVar

from afk.agents._matchers import GlobIndex
from afk.agents.rules import (
    Condition,
    PolicyAction,
    PolicyDecision,
    PolicyEvent,
    PolicyRule,
    ShadowResult,
    _BadReason,
    _ConditionTimeout,
    _decision_of,
    _failed_closed,
    _rank,
    _shadow_results,
    _Shadowed,
)
from afk.errors import AsyncConditionError, ConfigurationError

if TYPE_CHECKING:
    from afk.agents.policy import PolicyEngine

T = TypeVar("T")

# One per rule asked: the rule when its condition held (or it has none), or the rule and what
# its condition raised. Drivers ask in rule order and stop after the first enforced rule that
# raised (see `failed`), so a failure that decides is always the last outcome.
Outcome: TypeAlias = "PolicyRule | tuple[PolicyRule, Exception]"
# A candidate rule and its condition.
Ask: TypeAlias = "tuple[PolicyRule, Condition | None]"


@dataclass(frozen=True, slots=True, kw_only=True)
class Scope:
    """The enabled rules for one event type, highest priority first (stable on definition
    order: this order breaks every tie), and what is known of them before any event."""

    rules: tuple[PolicyRule, ...]
    index: GlobIndex
    # (rule, condition) of each rule: the drivers' loops read a tuple faster than an attribute.
    asks: tuple[Ask, ...]
    every: tuple[Ask, ...] | None  # `asks` when no rule has a matcher: every rule is a candidate
    shadows: bool  # a shadow rule, or a shadow engine: outcomes need sorting out
    default: PolicyDecision  # when no enforced rule matched
    no_match: PolicyDecision  # when no rule matched at all (a shadow engine's report included)


def scope_of(
    ordered: Sequence[PolicyRule], event_type: str, default_action: PolicyAction, shadow: bool
) -> Scope:
    rules = tuple(r for r in ordered if r.enabled and event_type in r.event_types)
    tools: list[Any] = [r.tool for r in rules]
    # Model calls are allowed unless a rule says otherwise; tool calls get the default action.
    action: PolicyAction = default_action if event_type == "tool_before_execute" else "allow"
    reason = None if action == "allow" else f"default action of the policy: {action}"
    default = PolicyDecision(action=action, reason=reason)
    asks = tuple((r, r.condition) for r in rules)
    return Scope(
        rules=rules,
        index=GlobIndex(tools),
        asks=asks,
        every=asks if all(r._matcher is None for r in rules) else None,
        shadows=shadow or any(r.shadow for r in rules),
        default=default,
        no_match=_finish(default) if shadow else default,
    )


def candidates(scope: Scope, event: PolicyEvent) -> list[Ask]:
    """The rules of a scope with matchers whose matchers hold for ``event``, in order, with
    their conditions: what a walk asks. (In a scope without matchers: ``scope.every``.)"""
    asks = scope.asks
    found: list[Ask] = []
    for position in scope.index.lookup(event.tool_name):
        ask = asks[position]
        matcher = ask[0]._matcher
        if matcher is None or matcher.matches(event):
            found.append(ask)
    return found


def failed(rule: PolicyRule, exc: Exception, outcomes: list[Outcome]) -> bool:
    """Record that ``rule``'s condition raised. True: the walk stops here, because an enforced
    rule that raised fails the call closed whatever the other rules say."""
    outcomes.append((rule, exc))
    return not rule.shadow


def refuse_async(rule: PolicyRule, pending: object, use: str) -> NoReturn:
    """A sync walk met an awaitable: it cannot be awaited here, so it is closed (never warned
    about as never awaited) and the caller is told which rule and what to call instead."""
    if inspect.iscoroutine(pending):
        pending.close()
    raise AsyncConditionError(
        f"PolicyRule {rule.rule_id!r} has an async condition: use `await engine.{use}(event)`"
    )


def conclude(
    engine: PolicyEngine, scope: Scope, event: PolicyEvent, outcomes: list[Outcome]
) -> PolicyDecision:
    """The decision a walk's outcomes make: an enforced rule that raised fails closed (with
    what the shadow rules before it did); else the top match decides, or the default. A shadow
    engine then turns the decision into a report and allows."""
    if not outcomes:
        return scope.no_match
    last = outcomes[-1]
    if not scope.shadows:  # every outcome is an enforced match, but a failure (then the last)
        if isinstance(last, tuple):
            return _failed_closed(last[0], last[1], event)
        if len(outcomes) == 1:  # the common case, one call less
            cached = engine._single.get(last.rule_id)
            if cached is not None:
                return cached
        return _decide(engine, scope, event, outcomes, ())  # type: ignore[arg-type]  # no cast(): hot
    failure = last if isinstance(last, tuple) and not last[0].shadow else None
    matched: list[PolicyRule] = []
    shadowed: _Shadowed = []
    for outcome in outcomes if failure is None else outcomes[:-1]:
        if isinstance(outcome, tuple):
            shadowed.append(outcome)  # only shadow rules' failures come before the last
        elif outcome.shadow:
            shadowed.append((outcome, None))
        else:
            matched.append(outcome)
    if failure is not None:
        decision = _failed_closed(failure[0], failure[1], event, shadowed)
    else:
        decision = _decide(engine, scope, event, matched, shadowed)
    return _finish(decision) if engine.shadow else decision


def _decide(
    engine: PolicyEngine,
    scope: Scope,
    event: PolicyEvent,
    matched: list[PolicyRule],
    shadowed: _Shadowed | tuple[()],
) -> PolicyDecision:
    if not matched:
        default = scope.default
        if not shadowed:
            return default
        return replace(default, shadow=_shadow_results(shadowed, None, default.action, event))
    if len(matched) == 1 and not shadowed and not callable(matched[0].reason):
        only = matched[0]
        cached = engine._single.get(only.rule_id)
        if cached is None:
            cached = _decision_of(only, (only.rule_id,), (), event)
            engine._single[only.rule_id] = cached
        return cached
    top = matched[0].priority
    winner = matched[0]
    for rule in matched[1:]:
        if rule.priority != top:
            break
        if _rank(rule) > _rank(winner):  # a tie goes to the most restrictive
            winner = rule
    try:
        shadow = _shadow_results(shadowed, winner, winner.action, event) if shadowed else ()
        return _decision_of(winner, tuple(r.rule_id for r in matched), shadow, event)
    except _BadReason as exc:
        # The text a human would read cannot be produced: nothing runs on that.
        return _failed_closed(winner, exc, event, list(shadowed))


def _finish(decision: PolicyDecision) -> PolicyDecision:
    """A shadow engine's decision: allow, reporting what it would have decided."""
    would = ShadowResult(
        action=decision.action,
        rule_id=decision.rule_id,
        reason=decision.reason,
        source="engine",
        would_change=decision.action != "allow",
    )
    return PolicyDecision(action="allow", shadow=(would, *decision.shadow))


def deadline(timeout_s: float | None, at: float | None) -> float | None:
    """When (``loop.time()``) async conditions must be done, or None for no limit."""
    if timeout_s is None and at is None:
        return None
    for name, value in (("timeout_s", timeout_s), ("deadline", at)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ConfigurationError(
                f"PolicyEngine.aevaluate {name} must be a number, got {value!r}"
            )
    if timeout_s is not None and not timeout_s > 0:
        raise ConfigurationError(f"PolicyEngine.aevaluate timeout_s must be > 0, got {timeout_s!r}")
    if at is not None or timeout_s is None:
        return at
    return asyncio.get_running_loop().time() + timeout_s


async def settle(pending: Awaitable[T], at: float | None, timeout_s: float | None) -> T:
    """Await a condition's result, by ``at`` when there is a deadline."""
    if at is None:
        return await pending
    try:
        async with asyncio.timeout_at(at) as budget:
            return await pending
    except TimeoutError:
        if budget.expired():  # not a TimeoutError the condition raised itself
            raise _ConditionTimeout(timeout_s) from None
        raise
