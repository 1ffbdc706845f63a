"""``PolicyEngine.explain``: which rules matched, which did not and why, and what decided.

Kept apart from the evaluation hot path: explain runs every in-scope condition and keeps each
rule's reason, where ``evaluate`` stops early and keeps nothing.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TypeAlias

from afk.agents.policy import PolicyAction, PolicyDecision, PolicyEngine, PolicyEvent, _settle
from afk.agents.rules import ConditionTimeout, PolicyRule, _failed_closed, _Shadowed

_Outcome: TypeAlias = tuple[str | None, Exception | None]


def _raised(exc: Exception) -> str:
    if isinstance(exc, ConditionTimeout):
        return f"condition {exc}"
    return f"condition raised {type(exc).__name__}: {exc}"


def _why_out(rule: PolicyRule, event: PolicyEvent) -> str | None:
    if not rule.enabled:
        return "disabled"
    if event.event_type not in rule.event_types:
        return f"event type {event.event_type} not in rule's event_types"
    return None if rule._matcher is None else rule._matcher.why_not(event)


def explain(
    engine: PolicyEngine, event: PolicyEvent, outcomes: dict[str, _Outcome] | None
) -> PolicyExplanation:
    # Mirrors PolicyEngine.evaluate over every rule, keeping each rule's reason.
    matched: list[PolicyRule] = []
    shadowed: _Shadowed = []
    failed: PolicyDecision | None = None
    whys: list[str | None] = []
    for rule in engine._ordered:
        why, exc = _why_out(rule, event), None
        if why is None and rule.condition is not None:
            why, exc = _condition(rule, event) if outcomes is None else outcomes[rule.rule_id]
        whys.append(why)
        if failed is not None:  # evaluate stops at the first enforced rule that raised
            continue
        if exc is not None and not rule.shadow:
            failed = _failed_closed(rule, exc, event, shadowed)
        elif rule.shadow and (exc is not None or why is None):
            shadowed.append((rule, exc))
        elif why is None:
            matched.append(rule)
    decision = engine._finish(failed or engine._decide(event, matched, shadowed))
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
        default_applied=failed is None and not matched,
        engine_shadow=engine.shadow,
    )


async def conditions_async(
    engine: PolicyEngine, event: PolicyEvent, at: float | None, timeout_s: float | None
) -> dict[str, _Outcome]:
    outcomes: dict[str, _Outcome] = {}
    for rule in engine._ordered:
        if rule.condition is not None and _why_out(rule, event) is None:
            try:
                hit = rule.condition(event)
                if inspect.isawaitable(hit):
                    hit = await _settle(hit, at, timeout_s)
            except Exception as exc:
                outcomes[rule.rule_id] = (_raised(exc), exc)
                continue
            outcomes[rule.rule_id] = (None if hit else f"condition returned {hit!r}", None)
    return outcomes


def _condition(rule: PolicyRule, event: PolicyEvent) -> _Outcome:
    assert rule.condition is not None
    try:
        hit = rule.condition(event)
    except Exception as exc:
        return _raised(exc), exc
    if inspect.isawaitable(hit):
        if inspect.iscoroutine(hit):
            hit.close()
        raise TypeError(
            f"PolicyRule {rule.rule_id!r} has an async condition: "
            "use `await engine.aexplain(event)`"
        )
    return (None if hit else f"condition returned {hit!r}"), None


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
