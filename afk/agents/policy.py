"""The policy engine: sees every tool call (and, when asked, every model call) first.

The rule, the event and the decision live in :mod:`afk.agents.rules`; they are re-exported
here so ``from afk.agents.policy import PolicyRule`` keeps working.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeAlias

from afk.agents._matchers import GlobIndex
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
    _RuleFieldError,
)
from afk.errors import ConfigurationError

if TYPE_CHECKING:
    from afk.agents._policy_explain import PolicyExplanation

# Shadow rules that matched (or raised) during one evaluation.
_Shadowed: TypeAlias = list[tuple[PolicyRule, Exception | None]]

__all__ = [
    "ACTIONS",
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

    A condition that raises makes the decision ``deny`` (fail closed). With no match, tool calls
    get ``default_action`` and model calls are allowed. A ``shadow`` engine decides nothing: it
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
                    return self._finish(_failed_closed(rule, exc, shadowed))
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
                return _failed_closed(rule, exc)
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

    async def aevaluate(self, event: PolicyEvent) -> PolicyDecision:
        """Evaluate, awaiting async conditions. This is what the runner calls."""
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
                        hit = await hit
                except Exception as exc:
                    return _failed_closed(rule, exc)
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
                        hit = await hit
                except Exception as exc:
                    if rule.shadow:
                        shadowed.append((rule, exc))
                        continue
                    return self._finish(_failed_closed(rule, exc, shadowed))
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

    async def aexplain(self, event: PolicyEvent) -> PolicyExplanation:
        """``explain`` for engines with async conditions."""
        from afk.agents._policy_explain import conditions_async, explain

        return explain(self, event, await conditions_async(self, event))

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
            return replace(default, shadow=_shadow_results(shadowed, None, default.action))
        if len(matched) == 1 and not shadowed:
            only = matched[0]
            cached = self._single.get(only.rule_id)
            if cached is None:
                cached = self._single[only.rule_id] = _decision_of(only, (only.rule_id,), ())
            return cached
        top = matched[0].priority
        winner = matched[0]
        for rule in matched[1:]:
            if rule.priority != top:
                break
            if _rank(rule) > _rank(winner):
                winner = rule
        shadow = _shadow_results(shadowed, winner, winner.action) if shadowed else ()
        return _decision_of(winner, tuple(r.rule_id for r in matched), shadow)


def _decision_of(
    winner: PolicyRule, matched: tuple[str, ...], shadow: tuple[ShadowResult, ...]
) -> PolicyDecision:
    return PolicyDecision(
        action=winner.action,
        reason=winner.reason or winner.description or None,
        rule_id=winner.rule_id,
        matched_rules=matched,
        stop_run=winner.stop_run,
        input_target_arg=winner.input_target_arg,
        shadow=shadow,
        approvers=winner.approvers,
        quorum=winner.quorum,
        allow_self_approval=winner.allow_self_approval,
        expires_after_s=winner.expires_after_s,
        remind_after_s=winner.remind_after_s,
        escalate_after_s=winner.escalate_after_s,
        escalate_to=winner.escalate_to,
        deny_decides=winner.deny_decides,
    )


def _rank(choice: PolicyRule | PolicyDecision) -> tuple[int, bool]:
    # A deny that stops the run is stricter than one that does not.
    return RESTRICTIVENESS[choice.action], choice.stop_run


def _failed_reason(rule: PolicyRule, exc: Exception) -> str:
    return f"policy rule {rule.rule_id!r} raised {type(exc).__name__}: {exc} (failing closed)"


def _shadow_results(
    shadowed: _Shadowed, winner: PolicyRule | None, enforced: str
) -> tuple[ShadowResult, ...]:
    results = []
    for rule, exc in shadowed:
        action: PolicyAction = "deny" if exc is not None else rule.action
        # Failing closed overrides every priority; otherwise the usual order and tie-break.
        wins = exc is not None or winner is None or rule.priority > winner.priority
        if not wins and winner is not None and rule.priority == winner.priority:
            wins = _rank(rule) > _rank(winner)
        reason = _failed_reason(rule, exc) if exc else rule.reason or rule.description or None
        results.append(
            ShadowResult(
                action=action,
                rule_id=rule.rule_id,
                reason=reason,
                would_change=wins and action != enforced,
            )
        )
    return tuple(results)


def _failed_closed(
    rule: PolicyRule, exc: Exception, shadowed: _Shadowed | None = None
) -> PolicyDecision:
    return PolicyDecision(
        action="deny",
        reason=_failed_reason(rule, exc),
        rule_id=rule.rule_id,
        matched_rules=(rule.rule_id,),
        # Nothing a shadow rule does could undo failing closed, hence no would_change.
        shadow=tuple(
            replace(r, would_change=False) for r in _shadow_results(shadowed or [], rule, "deny")
        ),
    )


def combine(first: PolicyDecision, second: PolicyDecision) -> PolicyDecision:
    """The more restrictive of two engines' decisions (the agent's and the runner's)."""
    more = _rank(second) > _rank(first)
    winner = second if more else first
    merged = tuple(dict.fromkeys(first.matched_rules + second.matched_rules))
    shadow = first.shadow + second.shadow
    if merged == winner.matched_rules and shadow == winner.shadow:
        return winner
    return replace(winner, matched_rules=merged, shadow=shadow)
