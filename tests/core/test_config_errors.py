"""Configuration mistakes raise ConfigurationError where written, or before a run starts."""

from __future__ import annotations

import pytest
from hitl_support import Calls, drop_agent

from afk.agents import Agent
from afk.core import HeadlessInteractionProvider, InMemoryInteractiveProvider, Runner, RunnerConfig
from afk.errors import AfkError, ConfigurationError
from afk.llms import ScriptedModel


def test_runner_config_defaults():
    config = RunnerConfig()
    assert config.interaction_mode == "headless"
    assert config.approval_fallback == "deny"
    assert config.input_fallback == "deny"
    assert config.approval_timeout_s == 300.0
    assert config.input_timeout_s == 300.0
    assert config.max_run_time_s is None


def test_runner_config_is_keyword_only():
    with pytest.raises(TypeError):
        RunnerConfig("interactive")  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value", "accepted"),
    [
        ("interaction_mode", "batch", ("headless", "interactive", "external")),
        ("approval_fallback", "ask", ("allow", "deny")),
        ("input_fallback", "yes", ("allow", "deny")),
    ],
)
def test_bad_choices_name_the_field_and_the_accepted_values(field, value, accepted):
    with pytest.raises(ConfigurationError) as info:
        RunnerConfig(**{field: value})
    message = str(info.value)
    assert field in message
    assert repr(value) in message or value in message
    for choice in accepted:
        assert choice in message
    assert isinstance(info.value, AfkError)


@pytest.mark.parametrize("field", ["approval_timeout_s", "input_timeout_s", "max_run_time_s"])
@pytest.mark.parametrize("value", [0, -1, "10", True])
def test_bad_durations_name_the_field(field, value):
    with pytest.raises(ConfigurationError, match=field):
        RunnerConfig(**{field: value})


def test_external_mode_needs_a_store():
    with pytest.raises(ConfigurationError, match="store"):
        Runner(config=RunnerConfig(interaction_mode="external"))


def test_interactive_mode_needs_a_provider():
    with pytest.raises(ConfigurationError, match="interaction_provider"):
        Runner(config=RunnerConfig(interaction_mode="interactive"))


def test_headless_mode_refuses_an_in_memory_interactive_provider():
    with pytest.raises(ConfigurationError, match="headless"):
        Runner(
            interaction_provider=InMemoryInteractiveProvider(),
            config=RunnerConfig(interaction_mode="headless"),
        )
    with pytest.raises(ConfigurationError):
        Runner(interaction_provider=InMemoryInteractiveProvider())  # headless is the default


@pytest.mark.parametrize(
    ("provider_kwargs", "config_kwargs", "field"),
    [
        ({"approval_fallback": "allow"}, {}, "approval_fallback"),
        ({}, {"approval_fallback": "allow"}, "approval_fallback"),
        ({"input_fallback": "allow"}, {}, "input_fallback"),
    ],
)
def test_a_headless_provider_with_conflicting_fallbacks_is_refused(
    provider_kwargs, config_kwargs, field
):
    with pytest.raises(ConfigurationError, match=field):
        Runner(
            interaction_provider=HeadlessInteractionProvider(**provider_kwargs),
            config=RunnerConfig(interaction_mode="headless", **config_kwargs),
        )


def test_a_headless_provider_with_matching_fallbacks_is_fine():
    Runner(
        interaction_provider=HeadlessInteractionProvider(approval_fallback="allow"),
        config=RunnerConfig(approval_fallback="allow"),
    )


def test_a_provider_missing_a_method_is_refused_in_interactive_mode():
    class HalfProvider:
        async def request_approval(self, request): ...

    with pytest.raises(ConfigurationError, match="request_user_input"):
        Runner(
            interaction_provider=HalfProvider(), config=RunnerConfig(interaction_mode="interactive")
        )


def test_agent_validates_its_arguments():
    with pytest.raises(ConfigurationError):
        Agent("", ScriptedModel([]), "i")
    with pytest.raises(ConfigurationError):
        Agent("a", ScriptedModel([]), "i", max_steps=0)
    agent = Agent(
        name="a",
        model=ScriptedModel([]),
        instructions="i",
        tools=[],
        policy_engine=None,
        max_steps=3,
    )
    assert agent.max_steps == 3


async def test_configuration_errors_in_run_stream_raise_before_any_event():
    runner = Runner()
    with pytest.raises(ConfigurationError):
        runner.run_stream(Agent("a", "no-such-model-at-all", "i"), user_message="x")
    with pytest.raises(ConfigurationError):
        runner.run_stream("not an agent", user_message="x")  # type: ignore[arg-type]


def test_run_stream_outside_an_event_loop_is_a_configuration_error():
    calls = Calls()
    with pytest.raises(ConfigurationError):
        Runner().run_stream(drop_agent(calls), user_message="x")


async def test_run_sync_inside_an_event_loop_is_a_configuration_error():
    calls = Calls()
    with pytest.raises(ConfigurationError):
        Runner().run_sync(drop_agent(calls), user_message="x")
