"""The policy engine: sees every tool call (and, when asked, every model call) first."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

from afk.errors import ConfigurationError

PolicyAction = Literal["allow", "deny", "request_approval", "request_user_input"]
EventType = Literal["tool_before_execute", "llm_before_execute"]

ACTIONS: tuple[str, ...] = ("allow", "deny", "request_approval", "request_user_input")
EVENT_TYPES: tuple[str, ...] = ("tool_before_execute", "llm_before_execute")
# Ties between rules of equal priority go to the most restrictive action.
RESTRICTIVENESS: dict[str, int] = {
    "allow": 0,
    "request_user_input": 1,
    "request_approval": 2,
    "deny": 3,
}

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyEvent:
    """What a rule's condition sees. ``tool_args`` is a copy and ``context`` is read-only,
    so a condition can never change what executes."""

    event_type: EventType = "tool_before_execute"
    run_id: str = ""
    thread_id: str | None = None
    step: int = 0
    agent_name: str = ""
    tool_name: str | None = None
    tool_args: Mapping[str, Any] = field(default_factory=dict)
    tool_call_id: str | None = None
    context: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    def __post_init__(self) -> None:
        if self.event_type not in EVENT_TYPES:
            raise ConfigurationError(
                f"PolicyEvent.event_type must be one of {EVENT_TYPES}, got {self.event_type!r}"
            )
        if not isinstance(self.context, MappingProxyType):
            object.__setattr__(self, "context", MappingProxyType(dict(self.context)))


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyDecision:
    action: PolicyAction
    reason: str | None = None
    rule_id: str | None = None
    matched_rules: tuple[str, ...] = ()
    stop_run: bool = False
    input_target_arg: str | None = None


Condition: TypeAlias = Callable[[PolicyEvent], "bool | Awaitable[bool]"]


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """One rule: when ``condition`` holds for an event in ``event_types``, take ``action``.

    ``condition=None`` matches every event in scope. ``stop_run`` (only with ``deny``) ends the
    run. ``input_target_arg`` (only with ``request_user_input``) puts the human's text into that
    tool argument and runs the tool.
    """

    rule_id: str
    _: KW_ONLY
    action: PolicyAction
    description: str = ""
    condition: Condition | None = None
    reason: str | None = None
    priority: int = 0
    enabled: bool = True
    event_types: tuple[EventType, ...] = ("tool_before_execute",)
    stop_run: bool = False
    input_target_arg: str | None = None

    def __post_init__(self) -> None:
        where = f"PolicyRule {self.rule_id!r}"
        if not isinstance(self.rule_id, str) or not self.rule_id:
            raise ConfigurationError("PolicyRule.rule_id must be a non-empty string")
        if self.action not in ACTIONS:
            raise ConfigurationError(
                f"{where}: action must be one of {ACTIONS}, got {self.action!r}"
            )
        if self.condition is not None and not callable(self.condition):
            raise ConfigurationError(
                f"{where}: condition must be a callable taking a PolicyEvent, "
                f"got {type(self.condition).__name__}"
            )
        given: Any = self.event_types  # a single string is accepted for one event type
        object.__setattr__(
            self, "event_types", (given,) if isinstance(given, str) else tuple(given)
        )
        for et in self.event_types:
            if et not in EVENT_TYPES:
                raise ConfigurationError(
                    f"{where}: event_types entries must be among {EVENT_TYPES}, got {et!r}"
                )
        if not self.event_types:
            raise ConfigurationError(f"{where}: event_types must name at least one event type")
        if not isinstance(self.priority, int) or isinstance(self.priority, bool):
            raise ConfigurationError(f"{where}: priority must be an int, got {self.priority!r}")
        if self.stop_run and self.action != "deny":
            raise ConfigurationError(f"{where}: stop_run=True goes only with action='deny'")
        if self.input_target_arg is not None and self.action != "request_user_input":
            raise ConfigurationError(
                f"{where}: input_target_arg goes only with action='request_user_input'"
            )


class PolicyEngine:
    """Evaluates rules; the highest-priority match decides, ties go to the most restrictive.

    A condition that raises makes the decision ``deny`` (fail closed). With no match, tool calls
    get ``default_action`` and model calls are allowed.
    """

    def __init__(
        self, rules: Iterable[PolicyRule] = (), *, default_action: PolicyAction = "allow"
    ) -> None:
        if default_action not in ACTIONS:
            raise ConfigurationError(
                f"PolicyEngine.default_action must be one of {ACTIONS}, got {default_action!r}"
            )
        self.default_action: PolicyAction = default_action
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
        # Pre-sorted per event type (highest priority first) so evaluation is one tight loop.
        self._by_type: dict[str, tuple[PolicyRule, ...]] = {}
        self._async: set[str] = set()
        for et in EVENT_TYPES:
            in_scope = [r for r in self.rules if r.enabled and et in r.event_types]
            in_scope.sort(key=lambda r: -r.priority)
            self._by_type[et] = tuple(in_scope)
        for rule in self.rules:
            if rule.condition is not None and inspect.iscoroutinefunction(rule.condition):
                self._async.add(rule.rule_id)

    def covers(self, event_type: str) -> bool:
        """Whether any enabled rule looks at this event type."""
        return bool(self._by_type.get(event_type))

    def evaluate(self, event: PolicyEvent) -> PolicyDecision:
        """Evaluate synchronously. An async condition raises TypeError naming its rule."""
        matched: list[PolicyRule] = []
        for rule in self._by_type.get(event.event_type, ()):
            cond = rule.condition
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
        return self._decide(event, matched)

    async def aevaluate(self, event: PolicyEvent) -> PolicyDecision:
        """Evaluate, awaiting async conditions. This is what the runner calls."""
        matched: list[PolicyRule] = []
        for rule in self._by_type.get(event.event_type, ()):
            cond = rule.condition
            if cond is None:
                matched.append(rule)
                continue
            try:
                hit = cond(event)
                if hit is not True and hit is not False and inspect.isawaitable(hit):
                    hit = await hit
            except Exception as exc:
                return _failed_closed(rule, exc)
            if hit:
                matched.append(rule)
        return self._decide(event, matched)

    def _decide(self, event: PolicyEvent, matched: list[PolicyRule]) -> PolicyDecision:
        if not matched:
            action: PolicyAction = (
                self.default_action if event.event_type == "tool_before_execute" else "allow"
            )
            reason = None if action == "allow" else f"default action of the policy: {action}"
            return PolicyDecision(action=action, reason=reason)
        top = matched[0].priority
        winner = matched[0]
        for rule in matched[1:]:
            if rule.priority != top:
                break
            if RESTRICTIVENESS[rule.action] > RESTRICTIVENESS[winner.action]:
                winner = rule
        return PolicyDecision(
            action=winner.action,
            reason=winner.reason or winner.description or None,
            rule_id=winner.rule_id,
            matched_rules=tuple(r.rule_id for r in matched),
            stop_run=winner.stop_run,
            input_target_arg=winner.input_target_arg,
        )


def _failed_closed(rule: PolicyRule, exc: Exception) -> PolicyDecision:
    return PolicyDecision(
        action="deny",
        reason=f"policy rule {rule.rule_id!r} raised {type(exc).__name__}: {exc} (failing closed)",
        rule_id=rule.rule_id,
        matched_rules=(rule.rule_id,),
    )


def combine(first: PolicyDecision, second: PolicyDecision) -> PolicyDecision:
    """The more restrictive of two engines' decisions (the agent's and the runner's)."""
    more = RESTRICTIVENESS[second.action] > RESTRICTIVENESS[first.action]
    winner = second if more else first
    merged = tuple(dict.fromkeys(first.matched_rules + second.matched_rules))
    if merged == winner.matched_rules:
        return winner
    return PolicyDecision(
        action=winner.action,
        reason=winner.reason,
        rule_id=winner.rule_id,
        matched_rules=merged,
        stop_run=winner.stop_run,
        input_target_arg=winner.input_target_arg,
    )
