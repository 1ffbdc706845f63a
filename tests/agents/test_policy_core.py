"""evaluate, aevaluate, explain and aexplain share one core: they decide alike, always."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import pytest

from afk.agents.policy import PolicyDecision, PolicyEngine, PolicyEvent, PolicyRule
from afk.errors import AfkError, AsyncConditionError


def call(tool: str | None = "refund", amount: int = 50, **kw: object) -> PolicyEvent:
    return PolicyEvent(tool_name=tool, tool_args={"amount": amount}, **kw)  # type: ignore[arg-type]


def boom(event: PolicyEvent) -> bool:
    raise RuntimeError("lookup down")


def bad_reason(event: PolicyEvent) -> str:
    raise ValueError("no text")


async def four_ways(engine: PolicyEngine, event: PolicyEvent) -> PolicyDecision:
    """The decision, after checking that all four entry points agree on it."""
    decision = engine.evaluate(event)
    assert await engine.aevaluate(event) == decision
    assert engine.explain(event).decision == decision
    assert (await engine.aexplain(event)).decision == decision
    return decision


ENGINE = PolicyEngine(
    [
        PolicyRule(
            "big-refund", action="request_approval", tool="refund", when={"amount": {"gt": 100}}
        ),
        PolicyRule(
            "huge", action="deny", priority=5, condition=lambda e: e.tool_args["amount"] > 10_000
        ),
        PolicyRule("drops", action="deny", tool="drop_*"),
        PolicyRule("drops-ok", action="allow", tool="drop_*"),  # a tie: deny is stricter
        PolicyRule("truthy", action="request_user_input", tool="ask", condition=lambda e: "yes"),
        PolicyRule("falsy", action="deny", tool="ask", condition=lambda e: 0),
        PolicyRule("models", action="deny", event_types="llm_before_execute", agent="untrusted"),
    ]
)

CASES: list[tuple[str, PolicyEvent, str, str | None]] = [
    ("no rule matches: the default", call(amount=5), "allow", None),
    ("a declarative match", call(amount=500), "request_approval", "big-refund"),
    ("higher priority wins", call(amount=50_000), "deny", "huge"),
    ("a tie goes to the stricter", call("drop_table"), "deny", "drops"),
    ("a truthy non-bool holds, a falsy one does not", call("ask"), "request_user_input", "truthy"),
    (
        "another event type",
        PolicyEvent(event_type="llm_before_execute", agent_name="untrusted"),
        "deny",
        "models",
    ),
    (
        "a model call of another agent",
        PolicyEvent(event_type="llm_before_execute", agent_name="ok"),
        "allow",
        None,
    ),
]


@pytest.mark.parametrize(("why", "event", "action", "rule_id"), CASES, ids=[c[0] for c in CASES])
async def test_the_four_entry_points_agree_on_a_table_of_events(
    why: str, event: PolicyEvent, action: str, rule_id: str | None
) -> None:
    decision = await four_ways(ENGINE, event)
    assert (decision.action, decision.rule_id) == (action, rule_id)


async def test_an_enforced_condition_that_raises_fails_closed_and_evaluate_stops_there() -> None:
    asked: list[str] = []

    def spy(name: str) -> Callable[[PolicyEvent], bool]:
        return lambda e: asked.append(name) is None  # always holds

    engine = PolicyEngine(
        [
            PolicyRule("first", action="allow", priority=3, condition=spy("first")),
            PolicyRule("flaky", action="allow", priority=2, condition=boom),
            PolicyRule("later", action="allow", priority=1, condition=spy("later")),
        ]
    )
    decision = engine.evaluate(call())
    assert (decision.action, decision.rule_id) == ("deny", "flaky")
    assert "lookup down" in (decision.reason or "")
    assert asked == ["first"]  # nothing after the failure is asked
    asked.clear()
    assert await four_ways(engine, call()) == decision
    # explain and aexplain ask every condition, for the whys, and still decide the same.
    assert asked == ["first", "first", "first", "later", "first", "later"]
    rows = {r.rule_id: r for r in engine.explain(call()).rules}
    assert rows["later"].matched and not rows["later"].decided and rows["flaky"].decided


async def test_a_shadow_rule_that_raises_is_reported_and_the_walk_goes_on() -> None:
    engine = PolicyEngine(
        [
            PolicyRule("shadow-boom", action="allow", priority=9, shadow=True, condition=boom),
            PolicyRule("shadow-deny", action="deny", priority=8, shadow=True),
            PolicyRule("enforced", action="request_approval", priority=1),
            PolicyRule("low-shadow", action="allow", priority=0, shadow=True),
        ]
    )
    decision = await four_ways(engine, call())
    assert (decision.action, decision.rule_id) == ("request_approval", "enforced")
    by_rule = {s.rule_id: s for s in decision.shadow}
    assert list(by_rule) == ["shadow-boom", "shadow-deny", "low-shadow"]  # rule order
    assert by_rule["shadow-boom"].action == "deny" and by_rule["shadow-boom"].would_change
    assert by_rule["shadow-deny"].would_change and not by_rule["low-shadow"].would_change


async def test_shadow_rules_before_an_enforced_failure_are_kept_and_none_would_change_it() -> None:
    engine = PolicyEngine(
        [
            PolicyRule("watch", action="allow", priority=5, shadow=True),
            PolicyRule("flaky", action="allow", priority=4, condition=boom),
            PolicyRule("after", action="deny", priority=3, shadow=True),
        ]
    )
    decision = await four_ways(engine, call())
    assert (decision.action, decision.rule_id) == ("deny", "flaky")
    assert [(s.rule_id, s.would_change) for s in decision.shadow] == [("watch", False)]


async def test_a_shadow_engine_allows_and_reports_what_it_would_have_done() -> None:
    rules = [
        PolicyRule("drops", action="deny", tool="drop_*"),
        PolicyRule("r", action="allow", tool="ask", condition=boom, priority=-1),
    ]
    engine = PolicyEngine(rules, shadow=True, default_action="request_approval")
    dropped = await four_ways(engine, call("drop_table"))
    assert dropped.action == "allow" and dropped.rule_id is None
    assert [(s.source, s.action, s.rule_id, s.would_change) for s in dropped.shadow] == [
        ("engine", "deny", "drops", True)
    ]
    failing = await four_ways(engine, call("ask"))  # failing closed outranks every priority
    assert failing.action == "allow"
    assert [(s.action, s.rule_id, s.would_change) for s in failing.shadow] == [("deny", "r", True)]
    nothing = await four_ways(PolicyEngine([], shadow=True, default_action="deny"), call())
    assert [(s.source, s.action, s.would_change) for s in nothing.shadow] == [
        ("engine", "deny", True)
    ]


async def test_a_reason_callable_that_fails_denies_the_call() -> None:
    engine = PolicyEngine(
        [PolicyRule("r", action="allow", reason=bad_reason), PolicyRule("s", action="allow")]
    )
    decision = await four_ways(engine, call())
    assert (decision.action, decision.rule_id) == ("deny", "r")
    assert "reason callable" in (decision.reason or "")


async def test_an_async_condition_is_a_typed_error_in_sync_calls_and_awaited_in_async_ones() -> (
    None
):
    async def big(event: PolicyEvent) -> bool:
        await asyncio.sleep(0)
        return event.tool_args["amount"] > 100

    engine = PolicyEngine(
        [
            PolicyRule("async-big", action="deny", condition=big),
            PolicyRule("d", action="allow", tool="x"),
        ]
    )
    for ask, use in ((engine.evaluate, "aevaluate"), (engine.explain, "aexplain")):
        with pytest.raises(AsyncConditionError, match=rf"'async-big'.*{use}") as raised:
            ask(call(amount=500))
        assert isinstance(raised.value, TypeError) and isinstance(raised.value, AfkError)
    for amount, action in ((500, "deny"), (5, "allow")):
        decision = await engine.aevaluate(call(amount=amount))
        assert (await engine.aexplain(call(amount=amount))).decision == decision
        assert decision.action == action


def _random_rule(rng: random.Random, i: int) -> PolicyRule:
    kinds: list[Callable[[PolicyEvent], object] | None] = [
        None, lambda e: True, lambda e: False, lambda e: 1, lambda e: None,
        lambda e: e.tool_args["amount"] > 50, boom,
    ]  # fmt: skip
    declarative: dict[str, object] = {}
    if rng.random() < 0.4:
        declarative["tool"] = rng.choice(["refund", "drop_*", ["ask", "refund"], "*"])
    if rng.random() < 0.3:
        declarative["when"] = {"amount": {rng.choice(["gt", "lte"]): rng.choice([10, 100])}}
    return PolicyRule(
        f"r{i}",
        action=rng.choice(["allow", "deny", "request_approval", "request_user_input"]),
        priority=rng.choice([0, 0, 1, 2]),
        shadow=rng.random() < 0.25,
        enabled=rng.random() < 0.9,
        condition=rng.choice(kinds),
        reason=bad_reason if rng.random() < 0.05 else None,
        **declarative,  # type: ignore[arg-type]
    )


async def test_random_engines_decide_alike_through_all_four_entry_points() -> None:
    rng = random.Random(9)
    events = [
        call(tool, amount)
        for tool in ("refund", "drop_table", "ask", None)
        for amount in (5, 75, 500)
    ]
    for _ in range(150):
        rules = [_random_rule(rng, i) for i in range(rng.randint(0, 8))]
        default = rng.choice(["allow", "deny", "request_approval"])
        engine = PolicyEngine(rules, shadow=rng.random() < 0.15, default_action=default)  # type: ignore[arg-type]
        for event in rng.sample(events, 4):
            await four_ways(engine, event)
