"""A policy rule, the event it sees and the decision it yields."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

from afk.agents._matchers import (
    APPROVAL_DEFAULTS,
    Globs,
    RuleMatcher,
    SpecError,
    check_approval,
    compile_predicates,
    parse_globs,
)
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
    deny_decides: bool = True


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
    deny_decides: bool = True  # one deny decides; False: denies need the quorum too
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
