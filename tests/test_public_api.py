"""The public names of each package are a contract: changing them is a deliberate act."""

import importlib

import pytest

import afk

EXPECTED = {
    "afk": ["AfkError", "__version__"],
    "afk.agents": [
        "Agent",
        "ApprovalDecision",
        "ApprovalRequest",
        "ApproverDirectory",
        "GrantSpec",
        "PolicyDecision",
        "PolicyEngine",
        "PolicyEvent",
        "PolicyExplanation",
        "PolicyRule",
        "RuleExplanation",
        "ShadowResult",
        "StaticDirectory",
        "UserInputDecision",
        "UserInputRequest",
    ],
    "afk.approvals": [
        "ApprovalDecision",
        "ApprovalRequest",
        "ApproverDirectory",
        "Decided",
        "GrantSpec",
        "HeadlessInteractionProvider",
        "InMemoryInteractiveProvider",
        "InteractionProvider",
        "Principal",
        "StaticDirectory",
        "UserInputDecision",
        "UserInputRequest",
        "Vote",
        "VoteCounted",
        "canonical_id",
        "decide",
    ],
    "afk.tools": ["Tool", "ToolArgumentsInvalid", "ToolContext", "tool"],
}


@pytest.mark.parametrize("module", sorted(EXPECTED))
def test_all_is_locked(module: str) -> None:
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == sorted(EXPECTED[module])
    for name in mod.__all__:
        assert hasattr(mod, name), name


def test_every_public_name_resolves() -> None:
    for module in ("afk.core", "afk.llms", "afk.errors", "afk.cli", "afk.store", "afk.audit"):
        mod = importlib.import_module(module)
        for name in mod.__all__:
            assert hasattr(mod, name), f"{module}.{name}"


def test_seed_imports() -> None:
    from afk.agents import Agent, ApprovalDecision, PolicyEngine, PolicyRule  # noqa: F401
    from afk.core import InMemoryInteractiveProvider, Runner, RunnerConfig  # noqa: F401

    assert issubclass(afk.AfkError, Exception)


def test_importing_the_runtime_does_not_import_pydantic() -> None:
    import subprocess
    import sys

    code = "import sys, afk.agents, afk.core; print('pydantic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
