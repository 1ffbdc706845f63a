"""The Runner: runs agents under policy, asking humans when a rule says so."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

from afk.agents.agent import Agent
from afk.agents.policy import PolicyEngine
from afk.core._run import Run, RunSetup
from afk.core.config import RunnerConfig
from afk.core.events import Event
from afk.core.interaction import HeadlessInteractionProvider, InMemoryInteractiveProvider
from afk.core.result import RunResult
from afk.errors import ConfigurationError
from afk.llms.registry import resolve_model


class RunHandle:
    """A run in progress: ``async for event in handle``, ``await handle.result()``,
    ``handle.cancel()``."""

    __slots__ = ("_run", "_task", "run_id")

    def __init__(self, run: Run, task: asyncio.Task[RunResult]) -> None:
        self._run = run
        self._task = task
        self.run_id = run.setup.run_id

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._run.emitter.follow()

    async def result(self) -> RunResult:
        return await asyncio.shield(self._task)

    def cancel(self) -> None:
        self._task.cancel()

    def done(self) -> bool:
        return self._task.done()


class Runner:
    """Runs agents. Configuration errors raise here or before ``run_started``; failures
    during a run end it in a state (``failed``, ``stopped``, ...) and never raise."""

    def __init__(
        self,
        policy_engine: PolicyEngine | None = None,
        interaction_provider: Any = None,
        config: RunnerConfig | None = None,
    ) -> None:
        config = RunnerConfig() if config is None else config
        if not isinstance(config, RunnerConfig):
            raise ConfigurationError(
                f"Runner config must be a RunnerConfig, got {type(config).__name__}"
            )
        if policy_engine is not None and not isinstance(policy_engine, PolicyEngine):
            raise ConfigurationError(
                f"Runner policy_engine must be a PolicyEngine, got {type(policy_engine).__name__}"
            )
        _check_provider(config, interaction_provider)
        self.config = config
        self.policy_engine = policy_engine
        self.interaction_provider = interaction_provider

    def run_stream(
        self,
        agent: Agent,
        *,
        user_message: str,
        context: dict[str, Any] | None = None,
        thread_id: str | None = None,
    ) -> RunHandle:
        """Start a run on the running event loop and return its handle."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise ConfigurationError(
                "run_stream() must be called inside a running event loop; "
                "use run_sync() from plain code"
            ) from None
        run = Run(self._setup(agent, user_message, context, thread_id))
        return RunHandle(run, asyncio.create_task(run.execute()))

    async def run(
        self,
        agent: Agent,
        *,
        user_message: str,
        context: dict[str, Any] | None = None,
        thread_id: str | None = None,
    ) -> RunResult:
        run = Run(self._setup(agent, user_message, context, thread_id))
        return await run.execute()

    def run_sync(
        self,
        agent: Agent,
        *,
        user_message: str,
        context: dict[str, Any] | None = None,
        thread_id: str | None = None,
    ) -> RunResult:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise ConfigurationError(
                "run_sync() cannot be called from a running event loop; use `await runner.run()`"
            )
        return asyncio.run(
            self.run(agent, user_message=user_message, context=context, thread_id=thread_id)
        )

    def _setup(
        self,
        agent: Agent,
        user_message: str,
        context: dict[str, Any] | None,
        thread_id: str | None,
    ) -> RunSetup:
        if not isinstance(agent, Agent):
            raise ConfigurationError(f"run() needs an Agent, got {type(agent).__name__}")
        if not isinstance(user_message, str):
            raise ConfigurationError("run() user_message must be a string")
        if context is not None and not isinstance(context, dict):
            raise ConfigurationError("run() context must be a dict or None")
        engines = tuple(e for e in (self.policy_engine, agent.policy_engine) if e is not None)
        return RunSetup(
            agent=agent,
            model=resolve_model(agent.model),
            engines=engines,
            config=self.config,
            provider=self.interaction_provider,
            user_message=user_message,
            context=dict(context) if context else {},
            thread_id=thread_id,
            run_id=f"run_{uuid.uuid4().hex}",
        )


def _check_provider(config: RunnerConfig, provider: Any) -> None:
    mode = config.interaction_mode
    if mode == "external":
        raise ConfigurationError(
            "interaction_mode='external' needs a run store to persist paused runs; "
            "durable runs are not available in this version (use 'interactive' with a provider)"
        )
    if mode == "interactive":
        if provider is None:
            raise ConfigurationError(
                "interaction_mode='interactive' needs interaction_provider=..., "
                "e.g. InMemoryInteractiveProvider()"
            )
        for method in ("request_approval", "request_user_input"):
            if not callable(getattr(provider, method, None)):
                raise ConfigurationError(
                    f"interaction_provider {type(provider).__name__} has no {method}() method"
                )
    if mode == "headless" and isinstance(provider, InMemoryInteractiveProvider):
        raise ConfigurationError(
            "interaction_mode='headless' never asks a human, so InMemoryInteractiveProvider "
            "would wait for nothing; use interaction_mode='interactive'"
        )
    if isinstance(provider, HeadlessInteractionProvider):
        for name in ("approval_fallback", "input_fallback"):
            if getattr(provider, name) != getattr(config, name):
                raise ConfigurationError(
                    f"HeadlessInteractionProvider.{name}={getattr(provider, name)!r} conflicts "
                    f"with RunnerConfig.{name}={getattr(config, name)!r}: the runner applies "
                    "RunnerConfig's fallbacks; set them there"
                )
