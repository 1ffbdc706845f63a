"""``PolicyEngine.explain``: which rules matched, which did not and why, and what decided.

Kept apart from the evaluation hot path: explain looks at every rule, runs every in-scope
condition (even past one that raised) and keeps each rule's reason, where ``evaluate`` asks
only the candidates, stops early and keeps nothing. What the answers mean is the same code as
``evaluate``'s (:mod:`afk.agents._policy_core`): this walk is a generator driven by a sync and
an async loop that ask the conditions it yields.
"""

from __future__ import annotations

import inspect
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from afk.agents._policy_core import Outcome, conclude, failed, refuse_async, settle
from afk.agents.rules import (
    PolicyAction,
    PolicyDecision,
    PolicyEvent,
    PolicyRule,
    _ConditionTimeout,
)

if TYPE_CHECKING:
    from afk.agents.policy import PolicyEngine

# What asking one condition gave: its value, or what it raised.
_Asked: TypeAlias = tuple[object, Exception | None]
_Walk: TypeAlias = Generator[PolicyRule, _Asked, "PolicyExplanation"]


def explain(engine: PolicyEngine, event: PolicyEvent) -> PolicyExplanation:
    walk = _walk(engine, event)
    try:
        rule = next(walk)
        while True:
            assert rule.condition is not None
            try:
                hit = rule.condition(event)
            except Exception as exc:
                rule = walk.send((None, exc))
                continue
            if inspect.isawaitable(hit):
                refuse_async(rule, hit, "aexplain")
            rule = walk.send((hit, None))
    except StopIteration as done:
        explanation: PolicyExplanation = done.value
        return explanation


async def aexplain(
    engine: PolicyEngine, event: PolicyEvent, at: float | None, timeout_s: float | None
) -> PolicyExplanation:
    walk = _walk(engine, event)
    try:
        rule = next(walk)
        while True:
            assert rule.condition is not None
            try:
                hit = rule.condition(event)
                if inspect.isawaitable(hit):
                    hit = await settle(hit, at, timeout_s)
            except Exception as exc:
                rule = walk.send((None, exc))
                continue
            rule = walk.send((hit, None))
    except StopIteration as done:
        explanation: PolicyExplanation = done.value
        return explanation


def _walk(engine: PolicyEngine, event: PolicyEvent) -> _Walk:
    """Every rule in priority order, yielding each in-scope condition to be asked."""
    outcomes: list[Outcome] = []  # what evaluate would see: up to the first enforced failure
    deciding = True
    whys: list[str | None] = []
    for rule in engine._ordered:
        why = _why_out(rule, event)
        if why is None and rule.condition is None:
            if deciding:
                outcomes.append(rule)
        elif why is None:
            hit, exc = yield rule
            if exc is not None:
                why = _raised(exc)
                if deciding and failed(rule, exc, outcomes):
                    deciding = False  # evaluate would stop here; explain goes on for the whys
            elif hit:
                if deciding:
                    outcomes.append(rule)
            else:
                why = f"condition returned {hit!r}"
        whys.append(why)
    decision = conclude(engine, engine._scopes[event.event_type], event, outcomes)
    rows = tuple(
        RuleExplanation(
            rule_id=rule.rule_id,
            action=rule.action,
            priority=rule.priority,
            matched=why is None,
            why_not=why,
            shadow=rule.shadow,
            decided=not engine.shadow and rule.rule_id == decision.rule_id,
        )
        for rule, why in zip(engine._ordered, whys, strict=True)
    )
    return PolicyExplanation(
        event=event,
        decision=decision,
        rules=rows,
        # No enforced rule matched or failed: the default decided.
        default_applied=all((o[0] if isinstance(o, tuple) else o).shadow for o in outcomes),
        engine_shadow=engine.shadow,
    )


def _raised(exc: Exception) -> str:
    if isinstance(exc, _ConditionTimeout):
        return f"condition {exc}"
    return f"condition raised {type(exc).__name__}: {exc}"


def _why_out(rule: PolicyRule, event: PolicyEvent) -> str | None:
    if not rule.enabled:
        return "disabled"
    if event.event_type not in rule.event_types:
        return f"event type {event.event_type} not in rule's event_types"
    return None if rule._matcher is None else rule._matcher.why_not(event)


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleExplanation:
    """One rule's part in a decision; ``why_not`` is None when it matched."""

    rule_id: str
    action: PolicyAction
    priority: int
    matched: bool
    why_not: str | None = None
    shadow: bool = False
    decided: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyExplanation:
    """What ``PolicyEngine.explain`` returns; ``str()`` renders it as a table."""

    event: PolicyEvent
    decision: PolicyDecision
    rules: tuple[RuleExplanation, ...]
    default_applied: bool = False
    engine_shadow: bool = False

    def __str__(self) -> str:
        ev, d = self.event, self.decision
        table = [("RULE", "PRIORITY", "ACTION", "MODE", "RESULT")]
        for r in self.rules:
            result = "matched" if r.matched else f"no: {r.why_not}"
            if r.decided:
                result = "DECIDED" if r.matched else f"DECIDED, failing closed: {r.why_not}"
            mode = "shadow" if r.shadow else ""
            table.append((r.rule_id, str(r.priority), r.action, mode, result))
        widths = [max(len(row[i]) for row in table) for i in range(4)]
        lines = [f"{ev.event_type}: tool={ev.tool_name!r} agent={ev.agent_name!r}"]
        for row in table if self.rules else [("(no rules)", "", "", "", "")]:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            lines.append(("  " + "  ".join([*cells, row[4]])).rstrip())
        if self.engine_shadow:
            lines.append("decision: allow (the engine is in shadow mode: nothing is enforced)")
        elif self.default_applied:
            lines.append(f"decision: {d.action} (no rule matched: default for {ev.event_type})")
        else:
            lines.append(f"decision: {d.action} by rule {d.rule_id!r}: {d.reason or '-'}")
        for s in d.shadow:
            who = "engine" if s.source == "engine" else f"rule {s.rule_id!r}"
            change = " (would change the outcome)" if s.would_change else ""
            lines.append(f"  shadow {who} would decide {s.action}{change}: {s.reason or '-'}")
        return "\n".join(lines)
