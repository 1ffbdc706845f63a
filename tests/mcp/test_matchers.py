"""The ``server`` and ``annotations`` matchers on PolicyRule, in code and in policy files
(no MCP server needed: the event carries what the tool declares)."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from afk.agents import PolicyEngine, PolicyEvent, PolicyRule
from afk.errors import ConfigurationError

DESTRUCTIVE = {"readOnlyHint": False, "destructiveHint": True, "openWorldHint": True}


def event(**fields: object) -> PolicyEvent:
    return PolicyEvent(agent_name="clerk", tool_name="shop__delete_order", **fields)  # type: ignore[arg-type]


def test_a_plain_event_has_no_annotations_and_no_server() -> None:
    plain = PolicyEvent(tool_name="refund")
    assert plain.tool_annotations == {} and plain.tool_server is None
    given = event(tool_annotations={"destructiveHint": True}, tool_server="shop")
    assert isinstance(given.tool_annotations, MappingProxyType)


def test_server_globs_and_annotation_predicates_must_all_hold() -> None:
    engine = PolicyEngine(
        [
            PolicyRule(
                "gate-shop-destruction",
                action="request_approval",
                server=["shop", "crm-*"],
                annotations={"destructiveHint": True, "openWorldHint": {"ne": False}},
            )
        ]
    )
    gated = engine.evaluate(event(tool_annotations=DESTRUCTIVE, tool_server="crm-eu"))
    assert (gated.action, gated.rule_id) == ("request_approval", "gate-shop-destruction")
    for other in (
        event(tool_annotations=DESTRUCTIVE, tool_server="github"),
        event(tool_annotations={**DESTRUCTIVE, "destructiveHint": False}, tool_server="shop"),
        event(tool_annotations=DESTRUCTIVE),  # not an MCP tool's event: no server
        event(tool_server="shop"),  # no annotations: destructiveHint is missing
    ):
        assert engine.evaluate(other).action == "allow"


def test_a_hint_true_is_not_the_number_one() -> None:
    engine = PolicyEngine([PolicyRule("r", action="deny", annotations={"destructiveHint": 1})])
    assert engine.evaluate(event(tool_annotations={"destructiveHint": True})).action == "allow"


def test_explain_says_which_matcher_failed() -> None:
    engine = PolicyEngine(
        [
            PolicyRule("by-server", action="deny", server="shop"),
            PolicyRule("by-hint", action="deny", annotations={"destructiveHint": True}),
        ]
    )
    explained = engine.explain(event(tool_annotations={"destructiveHint": False}))
    why = {r.rule_id: r.why_not for r in explained.rules}
    assert why == {
        "by-server": "server: the event has no server name",
        "by-hint": "annotations destructiveHint: False is not True",
    }


def test_malformed_matchers_name_the_rule_and_the_field() -> None:
    with pytest.raises(ConfigurationError, match="PolicyRule 'r': server: must be a glob"):
        PolicyRule("r", action="deny", server=[])
    with pytest.raises(ConfigurationError, match="PolicyRule 'r': annotations: 'destructiveHint'"):
        PolicyRule("r", action="deny", annotations={"destructiveHint": {"near": True}})
    with pytest.raises(ConfigurationError, match=r"rules\[0\] \(id 'r'\): annotations: must be"):
        PolicyEngine.from_dict(
            {"version": 1, "rules": [{"id": "r", "action": "deny", "annotations": 5}]}
        )
    engine = PolicyEngine.from_dict(
        {
            "version": 1,
            "rules": [
                {
                    "id": "r",
                    "action": "deny",
                    "server": "shop",
                    "annotations": {"readOnlyHint": False},
                }
            ],
        }
    )
    denied = engine.evaluate(event(tool_annotations={"readOnlyHint": False}, tool_server="shop"))
    assert denied.action == "deny"
