"""The policy engine: sees every tool call (and, when asked, every model call) first."""

from __future__ import annotations

import inspect
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from afk.agents._matchers import (
    APPROVAL_DEFAULTS,
    GlobIndex,
    Globs,
    RuleMatcher,
    SpecError,
    check_approval,
    compile_predicates,
    parse_globs,
)
from afk.errors import ConfigurationError

if TYPE_CHECKING:
    from afk.agents._policy_explain import PolicyExplanation

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
class ShadowResult:
    """What a shadow rule (``source="rule"``) or a whole shadow engine (``"engine"``) would have
    decided. ``would_change`` says whether enforcing it would have changed its engine's action."""

    action: PolicyAction
    rule_id: str | None
    reason: str | None = None
    source: Literal["rule", "engine"] = "rule"
    would_change: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyDecision:
    """The enforced decision. The approval fields come from the deciding rule so the runner can
    put them on the request; ``shadow`` lists what shadow rules and engines would have done."""

    action: PolicyAction
    reason: str | None = None
    rule_id: str | None = None
    matched_rules: tuple[str, ...] = ()
    stop_run: bool = False
    input_target_arg: str | None = None
    shadow: tuple[ShadowResult, ...] = ()
    approvers: tuple[str, ...] = ()
    quorum: int = 1
    allow_self_approval: bool = False
    expires_after_s: float | None = None
    remind_after_s: float | None = None
    escalate_after_s: float | None = None
    escalate_to: tuple[str, ...] = ()


Condition: TypeAlias = Callable[[PolicyEvent], "bool | Awaitable[bool]"]


class _RuleFieldError(ConfigurationError):
    """Names the rule and the field, so a policy file can report its own location."""

    def __init__(self, rule_id: object, fld: str, detail: str, message: str = "") -> None:
        self.rule_id, self.field, self.detail = rule_id, fld, detail
        super().__init__(message or f"PolicyRule {rule_id!r}: {fld}: {detail}")


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """One rule: when it matches an event in ``event_types``, take ``action``.

    A rule matches when ``condition`` (a callable) and every declarative matcher given hold:
    ``tool``/``agent`` are fnmatch globs (or lists of them) on the tool and agent name, and
    ``when``/``context`` are predicates over the tool arguments and the run context, e.g.
    ``{"amount": {"gt": 100}, "owner.email": {"regex": "@corp$"}, "db": "prod"}``. No matcher at
    all matches every event in scope. A ``shadow`` rule is evaluated and reported, never enforced.

    ``stop_run`` (only with ``deny``) ends the run. ``input_target_arg`` (only with
    ``request_user_input``) puts the human's text into that tool argument and runs the tool.
    The approval fields (``approvers`` … ``escalate_to``) go only with ``request_approval``.
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
    tool: str | Sequence[str] | None = None
    when: Mapping[str, Any] | None = field(default=None, hash=False)
    agent: str | Sequence[str] | None = None
    context: Mapping[str, Any] | None = field(default=None, hash=False)
    shadow: bool = False
    approvers: tuple[str, ...] = ()
    quorum: int = 1
    allow_self_approval: bool = False
    expires_after_s: float | None = None
    remind_after_s: float | None = None
    escalate_after_s: float | None = None
    escalate_to: tuple[str, ...] = ()
    _matcher: RuleMatcher | None = field(
        init=False, default=None, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        if not isinstance(self.rule_id, str) or not self.rule_id:
            raise _RuleFieldError(
                self.rule_id, "rule_id", "must be a non-empty string",
                "PolicyRule.rule_id must be a non-empty string",
            )  # fmt: skip
        self._check_core()
        try:
            object.__setattr__(self, "_matcher", self._compile_matchers())
            given = {name: getattr(self, name) for name in APPROVAL_DEFAULTS}
            for name, value in check_approval(self.action, given).items():
                object.__setattr__(self, name, value)
        except SpecError as exc:
            raise _RuleFieldError(self.rule_id, exc.field or "?", str(exc)) from None

    def __deepcopy__(self, memo: dict[int, Any]) -> PolicyRule:
        # Immutable once built (read-only mappings, compiled matchers), so a copy is itself.
        return self

    def _check_core(self) -> None:
        where = f"PolicyRule {self.rule_id!r}"

        def fail(fld: str, detail: str, message: str = "") -> _RuleFieldError:
            return _RuleFieldError(self.rule_id, fld, detail, message and f"{where}: {message}")

        if self.action not in ACTIONS:
            raise fail(
                "action", f"must be one of {', '.join(ACTIONS)}, got {self.action!r}",
                f"action must be one of {ACTIONS}, got {self.action!r}",
            )  # fmt: skip
        condition: object = self.condition
        if condition is not None and not callable(condition):
            got = type(condition).__name__
            raise fail("condition", f"must be a callable taking a PolicyEvent, got {got}")
        given: Any = self.event_types  # a single string is accepted for one event type
        object.__setattr__(
            self, "event_types", (given,) if isinstance(given, str) else tuple(given)
        )
        for et in self.event_types:
            if et not in EVENT_TYPES:
                raise fail(
                    "event_types", f"entries must be among {', '.join(EVENT_TYPES)}, got {et!r}",
                    f"event_types entries must be among {EVENT_TYPES}, got {et!r}",
                )  # fmt: skip
        if not self.event_types:
            raise fail(
                "event_types",
                "must name at least one event type",
                "event_types must name at least one event type",
            )
        if not isinstance(self.priority, int) or isinstance(self.priority, bool):
            raise fail(
                "priority", "must be an int", f"priority must be an int, got {self.priority!r}"
            )
        if self.stop_run and self.action != "deny":
            raise fail(
                "stop_run",
                "true goes only with action 'deny'",
                "stop_run=True goes only with action='deny'",
            )
        if self.input_target_arg is not None and self.action != "request_user_input":
            raise fail(
                "input_target_arg", "goes only with action 'request_user_input'",
                "input_target_arg goes only with action='request_user_input'",
            )  # fmt: skip
        for flag in ("shadow", "allow_self_approval"):
            if not isinstance(getattr(self, flag), bool):
                raise fail(flag, f"must be true or false, got {getattr(self, flag)!r}")

    def _compile_matchers(self) -> RuleMatcher | None:
        globs: dict[str, Globs | None] = {}
        for name in ("tool", "agent"):
            value = getattr(self, name)
            if value is not None:
                patterns = parse_globs(value, name)
                object.__setattr__(self, name, patterns)
            globs[name] = None if value is None else Globs(patterns)
        predicates: dict[str, Any] = {}
        for name in ("when", "context"):
            value = getattr(self, name)
            predicates[name] = () if value is None else compile_predicates(value, name)
            if value is not None:
                object.__setattr__(self, name, MappingProxyType(dict(value)))
        if not any((*globs.values(), *predicates.values())):
            return None
        return RuleMatcher(globs["tool"], globs["agent"], predicates["when"], predicates["context"])


_Shadowed: TypeAlias = list[tuple[PolicyRule, Exception | None]]


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
    ) -> None:
        if default_action not in ACTIONS:
            raise ConfigurationError(
                f"PolicyEngine.default_action must be one of {ACTIONS}, got {default_action!r}"
            )
        if not isinstance(shadow, bool):
            raise ConfigurationError(f"PolicyEngine.shadow must be a bool, got {shadow!r}")
        self.default_action: PolicyAction = default_action
        self.shadow = shadow
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
        plain = self._plain.get(event.event_type)
        if plain is not None:
            return self._evaluate_plain(event, plain)
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

    def _evaluate_plain(
        self, event: PolicyEvent, plain: tuple[tuple[PolicyRule, Any], ...]
    ) -> PolicyDecision:
        matched: list[PolicyRule] = []
        for rule, cond in plain:
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
