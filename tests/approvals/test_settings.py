"""Approval settings are one value, checked once: the rule takes them as keyword arguments,
its decision carries them whole, and the request the run opens is built from them."""

from __future__ import annotations

import pytest

from afk.agents import PolicyEngine, PolicyEvent, PolicyRule
from afk.approvals.settings import ApprovalSettings, ApprovalSettingsError
from afk.errors import ConfigurationError


def test_defaults_are_one_value_and_lists_become_tuples() -> None:
    settings = ApprovalSettings(
        approvers=["alice", "group:ops"],  # type: ignore[arg-type]
        escalate_to="carol",  # type: ignore[arg-type]
        escalate_after_s=10,
        allowed_decisions=["deny", "allow"],  # type: ignore[arg-type]
    )
    assert settings.approvers == ("alice", "group:ops")
    assert settings.escalate_to == ("carol",)
    assert settings.allowed_decisions == ("allow", "deny")  # canonical order
    assert ApprovalSettings().is_default and not settings.is_default


@pytest.mark.parametrize(
    ("given", "field", "detail"),
    [
        ({"quorum": 0}, "quorum", "must be an integer >= 1, got 0"),
        ({"quorum": True}, "quorum", "must be an integer >= 1, got True"),
        ({"approvers": ["a"], "quorum": 2}, "quorum", "2 exceeds the 1 approvers named"),
        ({"expires_after_s": float("nan")}, "expires_after_s", "positive number of seconds"),
        ({"remind_after_s": 60, "expires_after_s": 30}, "remind_after_s", "less than"),
        ({"escalate_to": ["cfo"]}, "escalate_to", "go together"),
        ({"deny_decides": "no"}, "deny_decides", "must be true or false"),
        ({"allowed_decisions": []}, "allowed_decisions", "non-empty list"),
        ({"approvers": [""]}, "approvers", "entries must be names"),
    ],
)
def test_a_setting_that_cannot_work_is_refused_naming_it(
    given: dict[str, object], field: str, detail: str
) -> None:
    with pytest.raises(ApprovalSettingsError) as caught:
        ApprovalSettings(**given)  # type: ignore[arg-type]
    assert caught.value.field == field and detail in str(caught.value)
    assert isinstance(caught.value, ConfigurationError)


def test_the_rule_s_decision_carries_the_settings_whole() -> None:
    rule = PolicyRule("pay", action="request_approval", tool="pay", approvers=["alice", "bob"],
                      quorum=2, deny_decides=False)  # fmt: skip
    decision = PolicyEngine([rule]).evaluate(PolicyEvent(tool_name="pay"))
    assert decision.approval is rule.approval
    assert decision.approval == ApprovalSettings(approvers=("alice", "bob"), quorum=2,
                                                 deny_decides=False)  # fmt: skip
    assert (decision.approvers, decision.quorum, decision.deny_decides) == (
        ("alice", "bob"), 2, False)  # fmt: skip


def test_a_rule_names_itself_and_the_field_for_a_bad_setting() -> None:
    with pytest.raises(ConfigurationError, match=r"PolicyRule 'pay': quorum: must be an integer"):
        PolicyRule("pay", action="request_approval", quorum=0)
    with pytest.raises(
        ConfigurationError, match=r"quorum: goes only with action 'request_approval'"
    ):
        PolicyRule("pay", action="deny", quorum=2)
