"""A policy rule, the event it sees and the decision it yields (and how it is built)."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

from afk.agents._matchers import (
    Globs,
    RuleMatcher,
    SpecError,
    compile_predicates,
    parse_globs,
)
from afk.approvals.requests import DECISION_OPTIONS
from afk.approvals.settings import DEFAULT as DEFAULT_APPROVAL
from afk.approvals.settings import ApprovalSettings, ApprovalSettingsError, settings_fields
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
    so a condition can never change what executes.

    ``tool_annotations`` and ``tool_server`` describe the tool, not the call: an MCP tool's
    hints (``readOnlyHint``, ``destructiveHint``, ``idempotentHint``, ``openWorldHint``, with
    the spec's defaults filled in) and its server's name; empty and None for other tools."""

    event_type: EventType = "tool_before_execute"
    run_id: str = ""
    thread_id: str | None = None
    step: int = 0
    agent_name: str = ""
    tool_name: str | None = None
    tool_args: Mapping[str, Any] = field(default_factory=dict)
    tool_call_id: str | None = None
    context: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    tool_annotations: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    tool_server: str | None = None

    def __post_init__(self) -> None:
        if self.event_type not in EVENT_TYPES:
            raise ConfigurationError(
                f"PolicyEvent.event_type must be one of {EVENT_TYPES}, got {self.event_type!r}"
            )
        if not isinstance(self.context, MappingProxyType):
            object.__setattr__(self, "context", MappingProxyType(dict(self.context)))
        if not isinstance(self.tool_annotations, MappingProxyType):
            annotations = MappingProxyType(dict(self.tool_annotations))
            object.__setattr__(self, "tool_annotations", annotations)


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
    approval: ApprovalSettings = DEFAULT_APPROVAL  # the deciding rule's, for its request

    # Read-only views of ``approval``, by the names PolicyRule takes them under.
    @property
    def approvers(self) -> tuple[str, ...]:
        """``approval.approvers``: who may decide (names, ``group:NAME``; empty: anyone)."""
        return self.approval.approvers

    @property
    def quorum(self) -> int:
        """``approval.quorum``: how many distinct approvers must allow."""
        return self.approval.quorum

    @property
    def allow_self_approval(self) -> bool:
        """``approval.allow_self_approval``: whether the run's requester may approve."""
        return self.approval.allow_self_approval

    @property
    def expires_after_s(self) -> float | None:
        """``approval.expires_after_s``: how long the request waits (None: the default)."""
        return self.approval.expires_after_s

    @property
    def remind_after_s(self) -> float | None:
        """``approval.remind_after_s``: when approvers are reminded."""
        return self.approval.remind_after_s

    @property
    def escalate_after_s(self) -> float | None:
        """``approval.escalate_after_s``: when ``escalate_to`` may decide too."""
        return self.approval.escalate_after_s

    @property
    def escalate_to(self) -> tuple[str, ...]:
        """``approval.escalate_to``: approvers added at ``escalate_after_s``."""
        return self.approval.escalate_to

    @property
    def deny_decides(self) -> bool:
        """``approval.deny_decides``: whether one deny decides."""
        return self.approval.deny_decides

    @property
    def allowed_decisions(self) -> tuple[str, ...]:
        """``approval.allowed_decisions``: what a reviewer may do with the request."""
        return self.approval.allowed_decisions


Condition: TypeAlias = Callable[[PolicyEvent], "bool | Awaitable[bool]"]
Reason: TypeAlias = "str | Callable[[PolicyEvent], str] | None"
_REASON_TYPES = "a string, a callable taking a PolicyEvent and returning a string, or None"


class _RuleFieldError(ConfigurationError):
    """Names the rule and the field, so a policy file can report its own location."""

    def __init__(self, rule_id: object, fld: str, detail: str, message: str = "") -> None:
        self.rule_id, self.field, self.detail = rule_id, fld, detail
        super().__init__(message or f"PolicyRule {rule_id!r}: {fld}: {detail}")


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """One rule: when it matches an event in ``event_types``, take ``action``.

    A rule matches when ``condition`` (a callable) and every declarative matcher given hold:
    ``tool``/``agent``/``server`` are fnmatch globs (or lists of them) on the tool, agent and
    MCP server name, and ``when``/``context``/``annotations`` are predicates over the tool
    arguments, the run context and the tool's MCP annotations, e.g.
    ``{"amount": {"gt": 100}, "owner.email": {"regex": "@corp$"}, "db": "prod"}`` or
    ``{"destructiveHint": True}``. A tool that is not an MCP tool has no server and no
    annotations: a ``server`` glob or an annotation's value never matches it. No matcher at
    all matches every event in scope. A ``shadow`` rule is evaluated and reported, never enforced.

    ``stop_run`` (only with ``deny``) ends the run. ``input_target_arg`` (only with
    ``request_user_input``) puts the human's text into that tool argument and runs the tool.
    The approval fields (``approvers`` … ``allowed_decisions``) go only with
    ``request_approval``; ``allowed_decisions`` lists what a reviewer may do with the request
    (any of ``allow``, ``deny``, ``edit`` = allow with changed arguments, ``grant`` = allow with
    a standing grant; all four by default).

    ``reason`` is the text of the decision (and of the request it opens): a string, or a
    callable given the matching ``PolicyEvent`` that returns one. A reason callable that raises
    or returns anything but a string fails closed: the call is denied, naming the rule.

    A ``condition`` may be sync or async. Async conditions run under the runner's
    ``RunnerConfig.policy_timeout_s`` (and its ``max_run_time_s``); one that takes longer is
    failed closed like one that raises. Sync conditions (and reason callables) run on the event
    loop and cannot be timed out: they must not block (no network or disk calls).
    """

    rule_id: str
    _: KW_ONLY
    action: PolicyAction
    description: str = ""
    condition: Condition | None = None
    reason: Reason = None
    priority: int = 0
    enabled: bool = True
    event_types: tuple[EventType, ...] = ("tool_before_execute",)
    stop_run: bool = False
    input_target_arg: str | None = None
    tool: str | Sequence[str] | None = None
    when: Mapping[str, Any] | None = field(default=None, hash=False)
    agent: str | Sequence[str] | None = None
    context: Mapping[str, Any] | None = field(default=None, hash=False)
    server: str | Sequence[str] | None = None
    annotations: Mapping[str, Any] | None = field(default=None, hash=False)
    shadow: bool = False
    approvers: tuple[str, ...] = ()
    quorum: int = 1
    allow_self_approval: bool = False
    expires_after_s: float | None = None
    remind_after_s: float | None = None
    escalate_after_s: float | None = None
    escalate_to: tuple[str, ...] = ()
    deny_decides: bool = True  # one deny decides; False: denies need the quorum too
    allowed_decisions: tuple[str, ...] = DECISION_OPTIONS
    # The nine settings above as one value (checked once, by ApprovalSettings itself).
    approval: ApprovalSettings = field(init=False, default=DEFAULT_APPROVAL, repr=False)
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
        except SpecError as exc:
            raise _RuleFieldError(self.rule_id, exc.field or "?", str(exc)) from None
        self._settle_approval()

    def _settle_approval(self) -> None:
        try:
            settings = ApprovalSettings(**{n: getattr(self, n) for n in settings_fields()})
        except ApprovalSettingsError as exc:
            raise _RuleFieldError(self.rule_id, exc.field, exc.detail) from None
        if self.action != "request_approval" and not settings.is_default:
            changed = next(
                n for n in settings_fields() if getattr(settings, n) != getattr(DEFAULT_APPROVAL, n)
            )
            detail = f"goes only with action 'request_approval', not {self.action!r}"
            raise _RuleFieldError(self.rule_id, changed, detail)
        for name in settings_fields():  # normalised (lists as tuples), as the value has them
            object.__setattr__(self, name, getattr(settings, name))
        object.__setattr__(self, "approval", settings)

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
        reason: object = self.reason
        if reason is not None and not isinstance(reason, str) and not callable(reason):
            # Checked here: a number or a list would only fail later, writing a durable run.
            raise fail("reason", f"must be {_REASON_TYPES}, got {type(reason).__name__}")
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
        for name in ("tool", "agent", "server"):
            value = getattr(self, name)
            if value is not None:
                patterns = parse_globs(value, name)
                object.__setattr__(self, name, patterns)
            globs[name] = None if value is None else Globs(patterns)
        predicates: dict[str, Any] = {}
        for name in ("when", "context", "annotations"):
            value = getattr(self, name)
            predicates[name] = () if value is None else compile_predicates(value, name)
            if value is not None:
                object.__setattr__(self, name, MappingProxyType(dict(value)))
        if not any((*globs.values(), *predicates.values())):
            return None
        return RuleMatcher(
            globs["tool"],
            globs["agent"],
            predicates["when"],
            predicates["context"],
            server=globs["server"],
            annotations=predicates["annotations"],
        )


# -- building decisions ------------------------------------------------------------------------
# Shadow rules that matched (or failed) during one evaluation.
_Shadowed: TypeAlias = list[tuple[PolicyRule, Exception | None]]


class _ConditionTimeout(Exception):
    """An async condition did not finish in time; failed closed like one that raised."""

    def __init__(self, timeout_s: float | None) -> None:
        self.timeout_s = timeout_s
        super().__init__(f"timed out after {timeout_s}s" if timeout_s else "timed out")


class _BadReason(Exception):
    """A reason callable raised or returned something other than a string."""


def _reason_text(rule: PolicyRule, event: PolicyEvent) -> str | None:
    """The rule's reason for this event. Raises _BadReason when a reason callable fails."""
    reason = rule.reason
    if reason is None or isinstance(reason, str):
        return reason or rule.description or None
    try:
        text: object = reason(event)
    except Exception as exc:
        raise _BadReason(f"raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(text, str):
        if inspect.iscoroutine(text):
            text.close()  # an async reason callable: never awaited, so never warned about
        raise _BadReason(f"returned {type(text).__name__}, not a str")
    return text or rule.description or None


def _decision_of(
    winner: PolicyRule,
    matched: tuple[str, ...],
    shadow: tuple[ShadowResult, ...],
    event: PolicyEvent,
) -> PolicyDecision:
    return PolicyDecision(
        action=winner.action,
        reason=_reason_text(winner, event),
        rule_id=winner.rule_id,
        matched_rules=matched,
        stop_run=winner.stop_run,
        input_target_arg=winner.input_target_arg,
        shadow=shadow,
        approval=winner.approval,
    )


def _rank(choice: PolicyRule | PolicyDecision) -> tuple[int, bool]:
    # A deny that stops the run is stricter than one that does not.
    return RESTRICTIVENESS[choice.action], choice.stop_run


def _failed_reason(rule: PolicyRule, exc: Exception) -> str:
    if isinstance(exc, _ConditionTimeout):
        return f"policy rule {rule.rule_id!r} {exc}: denied"
    if isinstance(exc, _BadReason):
        return f"policy rule {rule.rule_id!r}: its reason callable {exc} (failing closed)"
    return f"policy rule {rule.rule_id!r} raised {type(exc).__name__}: {exc} (failing closed)"


def _shadow_results(
    shadowed: _Shadowed, winner: PolicyRule | None, enforced: str, event: PolicyEvent
) -> tuple[ShadowResult, ...]:
    results = []
    for rule, failure in shadowed:
        exc, reason = failure, None
        if exc is None:
            try:
                reason = _reason_text(rule, event)
            except _BadReason as bad:
                exc = bad  # reported as the shadow rule failing closed, like a raising condition
        action: PolicyAction = "deny" if exc is not None else rule.action
        # Failing closed overrides every priority; otherwise the usual order and tie-break.
        wins = exc is not None or winner is None or rule.priority > winner.priority
        if not wins and winner is not None and rule.priority == winner.priority:
            wins = _rank(rule) > _rank(winner)
        results.append(
            ShadowResult(
                action=action,
                rule_id=rule.rule_id,
                reason=_failed_reason(rule, exc) if exc is not None else reason,
                would_change=wins and action != enforced,
            )
        )
    return tuple(results)


def _failed_closed(
    rule: PolicyRule, exc: Exception, event: PolicyEvent, shadowed: _Shadowed | None = None
) -> PolicyDecision:
    shadow = _shadow_results(shadowed, rule, "deny", event) if shadowed else ()
    return PolicyDecision(
        action="deny",
        reason=_failed_reason(rule, exc),
        rule_id=rule.rule_id,
        matched_rules=(rule.rule_id,),
        # Nothing a shadow rule does could undo failing closed, hence no would_change.
        shadow=tuple(replace(r, would_change=False) for r in shadow),
    )


__all__ = [
    "ACTIONS",
    "EVENT_TYPES",
    "RESTRICTIVENESS",
    "Condition",
    "EventType",
    "PolicyAction",
    "PolicyDecision",
    "PolicyEvent",
    "PolicyRule",
    "Reason",
    "ShadowResult",
]
