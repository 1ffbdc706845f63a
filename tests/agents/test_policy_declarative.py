"""Declarative matchers on PolicyRule (tool/agent globs, when/context predicates) and the index."""

from __future__ import annotations

import fnmatch
import random

import pytest

from afk.agents.policy import (
    RESTRICTIVENESS,
    PolicyEngine,
    PolicyEvent,
    PolicyRule,
    combine,
)
from afk.errors import ConfigurationError


def call(tool: str | None = "refund", args: dict | None = None, **kw) -> PolicyEvent:
    return PolicyEvent(tool_name=tool, tool_args=args or {}, **kw)


def matches(rule: PolicyRule, event: PolicyEvent) -> bool:
    return PolicyEngine([rule]).evaluate(event).rule_id == rule.rule_id


def when(spec: dict, args: dict) -> bool:
    return matches(PolicyRule("r", action="deny", when=spec), call(args=args))


# -- predicates ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "hit", "miss"),
    [
        ({"db": {"eq": "prod"}}, {"db": "prod"}, {"db": "dev"}),
        ({"db": "prod"}, {"db": "prod"}, {"db": "dev"}),  # a bare value means eq
        ({"db": {"ne": "prod"}}, {"db": "dev"}, {"db": "prod"}),
        ({"amount": {"gt": 100}}, {"amount": 101}, {"amount": 100}),
        ({"amount": {"gte": 100}}, {"amount": 100}, {"amount": 99.5}),
        ({"amount": {"lt": 100}}, {"amount": 99}, {"amount": 100}),
        ({"amount": {"lte": 100}}, {"amount": 100.0}, {"amount": 101}),
        ({"day": {"gte": "2024-01-01"}}, {"day": "2024-06-01"}, {"day": "2023-12-31"}),
        ({"db": {"in": ["prod", "stage"]}}, {"db": "stage"}, {"db": "dev"}),
        ({"db": {"not_in": ["prod"]}}, {"db": "dev"}, {"db": "prod"}),
        ({"email": {"regex": "@corp\\.com$"}}, {"email": "a@corp.com"}, {"email": "a@x.com"}),
        ({"path": {"prefix": "/etc"}}, {"path": "/etc/passwd"}, {"path": "/home/etc"}),
        ({"path": {"prefix": ["/etc", "/root"]}}, {"path": "/root/x"}, {"path": "/tmp"}),
        ({"x": {"exists": True}}, {"x": None}, {}),
        ({"x": {"exists": False}}, {}, {"x": 0}),
        ({"amount": {"gt": 100, "lt": 1000}}, {"amount": 500}, {"amount": 5000}),
        ({"amount": {"gt": 100}, "db": "prod"}, {"amount": 500, "db": "prod"}, {"amount": 500}),
        ({"meta": {"eq": {"a": 1}}}, {"meta": {"a": 1}}, {"meta": {"a": 2}}),
    ],
)
def test_each_operator_matches_and_misses(spec, hit, miss):
    assert when(spec, hit)
    assert not when(spec, miss)


@pytest.mark.parametrize(
    ("spec", "args"),
    [
        ({"amount": {"gt": 5}}, {"amount": "abc"}),
        ({"amount": {"lt": "z"}}, {"amount": 3}),
        ({"amount": {"gt": 5}}, {"amount": [10]}),
        ({"amount": {"gt": 0}}, {"amount": True}),  # bools are not numbers here
        ({"flag": True}, {"flag": 1}),
        ({"n": 1}, {"n": True}),
        ({"n": {"in": [1, 2]}}, {"n": True}),
        ({"email": {"regex": "x"}}, {"email": 42}),
        ({"path": {"prefix": "/"}}, {"path": None}),
        ({"db": {"in": ["prod"]}}, {"db": ["prod"]}),
    ],
)
def test_type_mismatches_do_not_match_and_never_raise(spec, args):
    assert not when(spec, args)


@pytest.mark.parametrize(
    "spec",
    [
        {"x": "v"},
        {"x": {"ne": "v"}},
        {"x": {"gt": 1}},
        {"x": {"in": ["v"]}},
        {"x": {"not_in": ["v"]}},
        {"x": {"regex": ".*"}},
        {"x": {"prefix": ""}},
        {"x": {"exists": True}},
    ],
)
def test_a_missing_key_fails_every_operator(spec):
    assert not when(spec, {"other": 1})


def test_a_missing_key_satisfies_exists_false_only():
    assert when({"x": {"exists": False}}, {"other": 1})


def test_dots_reach_into_nested_mappings_and_lists():
    args = {"owner": {"email": "bob@corp", "teams": ["ops", "db"]}}
    assert when({"owner.email": {"regex": "@corp$"}}, args)
    assert when({"owner.teams.1": "db"}, args)
    assert not when({"owner.teams.5": {"exists": True}}, args)
    assert not when({"owner.email.x": {"exists": True}}, args)
    assert not when({"owner.name": {"exists": True}}, args)


def test_a_literal_dotted_key_wins_over_nesting():
    assert when({"a.b": 1}, {"a.b": 1, "a": {"b": 2}})


def test_regex_searches_anywhere_unless_anchored():
    assert when({"email": {"regex": ".*@corp"}}, {"email": "bob@corp.com"})
    assert not when({"email": {"regex": "^@corp"}}, {"email": "bob@corp.com"})


# -- globs -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("tool", "name", "expected"),
    [
        ("refund", "refund", True),
        ("refund", "refund_card", False),
        ("refund*", "refund_card", True),
        ("refund*", "Refund_card", False),  # case-sensitive
        ("*_table", "drop_table", True),
        ("drop_?", "drop_x", True),
        ("drop_?", "drop_xy", False),
        ("[dt]rop", "trop", True),
        (["drop_*", "truncate"], "truncate", True),
        (["drop_*", "truncate"], "refund", False),
    ],
)
def test_tool_globs(tool, name, expected):
    assert matches(PolicyRule("r", action="deny", tool=tool), call(name)) is expected


def test_a_tool_rule_never_matches_an_event_without_a_tool():
    rule = PolicyRule("r", action="deny", tool="*", event_types=("llm_before_execute",))
    assert not matches(rule, PolicyEvent(event_type="llm_before_execute"))


def test_tool_is_normalised_to_a_tuple():
    assert PolicyRule("r", action="deny", tool="a*").tool == ("a*",)
    assert PolicyRule("r", action="deny", tool=["a", "b"]).tool == ("a", "b")


def test_agent_globs_and_context_predicates():
    rule = PolicyRule("r", action="deny", agent=["billing-*", "ops"], context={"env": "prod"})
    assert matches(rule, call(agent_name="billing-eu", context={"env": "prod"}))
    assert matches(rule, call(agent_name="ops", context={"env": "prod"}))
    assert not matches(rule, call(agent_name="support", context={"env": "prod"}))
    assert not matches(rule, call(agent_name="ops", context={"env": "dev"}))
    assert not matches(rule, call(agent_name="ops"))


def test_a_condition_and_declarative_matchers_must_all_hold():
    seen = []

    def condition(event):
        seen.append(event.tool_name)
        return event.tool_args.get("currency") == "EUR"

    rule = PolicyRule(
        "r", action="deny", tool="refund", when={"amount": {"gt": 100}}, condition=condition
    )
    assert matches(rule, call(args={"amount": 200, "currency": "EUR"}))
    assert not matches(rule, call(args={"amount": 200, "currency": "USD"}))
    assert not matches(rule, call(args={"amount": 50, "currency": "EUR"}))
    assert not matches(rule, call("other", {"amount": 200, "currency": "EUR"}))
    assert len(seen) == 2  # the condition runs only once the declarative part matched


async def test_declarative_rules_work_in_aevaluate():
    async def is_big(event):
        return event.tool_args["amount"] > 1000

    engine = PolicyEngine([PolicyRule("r", action="deny", tool="refund", condition=is_big)])
    assert (await engine.aevaluate(call(args={"amount": 5000}))).action == "deny"
    assert (await engine.aevaluate(call("x", {"amount": 5000}))).action == "allow"


# -- validation ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "field", "needle"),
    [
        ({"tool": 3}, "tool", "glob string or a non-empty list"),
        ({"tool": []}, "tool", "glob string or a non-empty list"),
        ({"tool": ["a", ""]}, "tool", "non-empty string"),
        ({"agent": {"a": 1}}, "agent", "glob string"),
        ({"when": ["amount"]}, "when", "mapping"),
        ({"when": {"a": {"gtt": 1}}}, "when", "accepted: eq, ne, gt, gte, lt, lte, in, not_in"),
        ({"when": {"a": {"regex": "("}}}, "when", "invalid regular expression"),
        ({"when": {"a": {"gt": [1]}}}, "when", "number or a string"),
        ({"when": {"a": {"gt": float("nan")}}}, "when", "number or a string"),
        ({"when": {"a": {"in": "prod"}}}, "when", "list of strings, numbers"),
        ({"when": {"a": {"in": [[1]]}}}, "when", "list of strings, numbers"),
        ({"when": {"a": {"exists": "yes"}}}, "when", "true or false"),
        ({"when": {"a": {"prefix": 1}}}, "when", "string or a list of strings"),
        ({"when": {"a": {}}}, "when", "at least one operator"),
        ({"when": {"a": ["x"]}}, "when", "bare list is ambiguous"),
        ({"when": {".a": 1}}, "when", "names like"),
        ({"context": {"a": {"nope": 1}}}, "context", "unknown operator"),
        ({"shadow": "yes"}, "shadow", "true or false"),
    ],
)
def test_malformed_matchers_fail_at_construction_naming_rule_and_field(kwargs, field, needle):
    with pytest.raises(ConfigurationError) as info:
        PolicyRule("my-rule", action="deny", **kwargs)
    message = str(info.value)
    assert "'my-rule'" in message
    assert f"{field}:" in message
    assert needle in message


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"action": "deny", "approvers": ["bob"]}, "approvers"),
        ({"action": "allow", "quorum": 2}, "quorum"),
        ({"action": "request_user_input", "expires_after_s": 60}, "expires_after_s"),
        ({"action": "deny", "allow_self_approval": True}, "allow_self_approval"),
        ({"action": "request_approval", "quorum": 0}, "quorum"),
        ({"action": "request_approval", "quorum": True}, "quorum"),
        ({"action": "request_approval", "approvers": ["a"], "quorum": 2}, "quorum"),
        ({"action": "request_approval", "approvers": ["group:"]}, "approvers"),
        ({"action": "request_approval", "approvers": [""]}, "approvers"),
        ({"action": "request_approval", "expires_after_s": -1}, "expires_after_s"),
        ({"action": "request_approval", "remind_after_s": float("inf")}, "remind_after_s"),
        ({"action": "request_approval", "escalate_after_s": 5}, "escalate_to"),
        ({"action": "request_approval", "escalate_to": ["boss"]}, "escalate_to"),
        ({"action": "request_approval", "expires_after_s": 10, "remind_after_s": 10}, "remind"),
    ],
)
def test_approval_settings_are_validated(kwargs, field):
    with pytest.raises(ConfigurationError, match=field):
        PolicyRule("r", **kwargs)


def test_the_deciding_rule_s_approval_settings_reach_the_decision():
    rule = PolicyRule(
        "big",
        action="request_approval",
        tool="refund",
        approvers=["group:finance", "carol"],
        quorum=3,
        allow_self_approval=True,
        expires_after_s=3600,
        remind_after_s=600,
        escalate_after_s=1800,
        escalate_to="group:cfo",
    )
    decision = PolicyEngine([rule]).evaluate(call())
    assert decision.approvers == ("group:finance", "carol")
    assert decision.quorum == 3  # a group can grow, so 3 > 2 names is allowed
    assert decision.allow_self_approval is True
    assert (decision.expires_after_s, decision.remind_after_s) == (3600, 600)
    assert (decision.escalate_after_s, decision.escalate_to) == (1800, ("group:cfo",))
    assert PolicyEngine().evaluate(call()).approvers == ()


def test_rules_with_predicates_stay_hashable_and_comparable():
    a = PolicyRule("r", action="deny", when={"a": 1})
    b = PolicyRule("r", action="deny", when={"a": 1})
    assert a == b
    assert hash(a) == hash(b)
    with pytest.raises(TypeError):
        a.when["a"] = 2  # type: ignore[index]


# -- existing semantics still hold -----------------------------------------------------------
def test_priority_then_restrictiveness_decide_with_declarative_rules():
    engine = PolicyEngine(
        [
            PolicyRule("low-deny", action="deny", tool="refund"),
            PolicyRule("hi-allow", action="allow", tool="ref*", priority=5),
            PolicyRule("hi-ask", action="request_approval", tool="*", priority=5),
        ]
    )
    decision = engine.evaluate(call())
    assert decision.rule_id == "hi-ask"
    assert decision.matched_rules == ("hi-allow", "hi-ask", "low-deny")


def test_fail_closed_async_errors_defaults_and_duplicates_still_hold():
    def boom(event):
        raise ValueError("bad")

    assert (
        PolicyEngine([PolicyRule("b", action="allow", tool="refund", condition=boom)])
        .evaluate(call())
        .action
        == "deny"
    )

    async def slow(event):
        return True

    with pytest.raises(TypeError, match="'a'"):
        PolicyEngine([PolicyRule("a", action="deny", tool="refund", condition=slow)]).evaluate(
            call()
        )
    engine = PolicyEngine(default_action="deny")
    assert engine.evaluate(call()).action == "deny"
    assert engine.evaluate(PolicyEvent(event_type="llm_before_execute")).action == "allow"
    with pytest.raises(ConfigurationError, match="duplicate"):
        PolicyEngine([PolicyRule("x", action="deny", tool="a"), PolicyRule("x", action="deny")])
    assert PolicyEngine([PolicyRule("x", action="deny", tool="a")]).covers("tool_before_execute")
    assert not PolicyEngine([PolicyRule("x", action="deny")]).covers("llm_before_execute")


def test_combine_keeps_the_approval_settings_of_the_winner():
    ask = PolicyEngine([PolicyRule("a", action="request_approval", quorum=2)]).evaluate(call())
    allow = PolicyEngine([PolicyRule("b", action="allow")]).evaluate(call())
    merged = combine(allow, ask)
    assert (merged.rule_id, merged.quorum, merged.matched_rules) == ("a", 2, ("b", "a"))


# -- the index agrees with a plain linear scan -----------------------------------------------
NAMES = ["ab", "abc", "abd", "b", "ba", "bab", "c", "cab", "a", ""]
GLOBS = ["ab", "abc", "a*", "ab*", "*b", "b?", "[ab]*", "*", "c*b", "ba*", "x", "abc*"]
ACTIONS = list(RESTRICTIVENESS)


def random_rule(rng: random.Random, i: int) -> PolicyRule:
    kwargs: dict = {
        "action": rng.choice(ACTIONS),
        "priority": rng.randint(0, 3),
        "enabled": rng.random() > 0.1,
        "event_types": rng.choice(
            [
                ("tool_before_execute",),
                ("llm_before_execute",),
                ("llm_before_execute", "tool_before_execute"),
            ]
        ),
    }
    if rng.random() < 0.8:
        kwargs["tool"] = rng.sample(GLOBS, rng.randint(1, 3))
    if rng.random() < 0.3:
        kwargs["when"] = {"n": {"gt": rng.randint(0, 5)}}
    if rng.random() < 0.15:
        skip = rng.randint(0, 5)
        kwargs["condition"] = lambda event: event.tool_args.get("n", 0) != skip
    if kwargs["action"] == "deny" and rng.random() < 0.3:
        kwargs["stop_run"] = True
    return PolicyRule(f"r{i}", **kwargs)


def linear(rules: list[PolicyRule], event: PolicyEvent) -> tuple[str | None, tuple[str, ...]]:
    """The documented semantics, written the slow obvious way."""
    hits = []
    for rule in sorted(rules, key=lambda r: -r.priority):
        if not rule.enabled or event.event_type not in rule.event_types:
            continue
        if rule.tool is not None and (
            event.tool_name is None
            or not any(fnmatch.fnmatchcase(event.tool_name, g) for g in rule.tool)
        ):
            continue
        if rule.when and not event.tool_args.get("n", 0) > rule.when["n"]["gt"]:
            continue
        if rule.condition is not None and not rule.condition(event):
            continue
        hits.append(rule)
    if not hits:
        return None, ()
    top = [r for r in hits if r.priority == hits[0].priority]
    best = max(RESTRICTIVENESS[r.action] * 2 + r.stop_run for r in top)
    winner = next(r for r in top if RESTRICTIVENESS[r.action] * 2 + r.stop_run == best)
    return winner.rule_id, tuple(r.rule_id for r in hits)


@pytest.mark.parametrize("seed", range(40))
def test_indexed_evaluation_equals_a_linear_scan(seed):
    rng = random.Random(seed)
    rules = [random_rule(rng, i) for i in range(rng.randint(0, 25))]
    engine = PolicyEngine(rules)
    for _ in range(30):
        if rng.random() < 0.1:
            event = PolicyEvent(event_type="llm_before_execute", tool_args={})
        else:
            event = call(rng.choice(NAMES), {"n": rng.randint(0, 6)})
        decision = engine.evaluate(event)
        assert (decision.rule_id, decision.matched_rules) == linear(rules, event), event


def test_rules_survive_replace_and_deepcopy():
    import copy
    import dataclasses

    rule = PolicyRule("r", action="deny", tool="a*", when={"n": {"gt": 1}})
    moved = dataclasses.replace(rule, tool="b*")
    assert matches(moved, call("bb", {"n": 2}))
    assert not matches(moved, call("aa", {"n": 2}))
    assert copy.deepcopy(rule) is rule
