"""Running an agent with per-run model settings.

``Runner.run(model_settings=...)`` reaches the run through ``RunSetup.model_settings``; until the
runner takes the keyword, the helper builds the setup itself (the same ``_setup`` run() uses).
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

from afk.agents import Agent
from afk.core import Runner
from afk.core._run import Run
from afk.core.result import RunResult
from afk.llms import ModelSettings


async def run(
    agent: Agent, message: str = "go", *, settings: ModelSettings | None = None, **runner: Any
) -> RunResult:
    runner_ = Runner(**runner)
    if settings is None:
        return await runner_.run(agent, user_message=message)
    if "model_settings" in inspect.signature(Runner.run).parameters:
        result: RunResult = await runner_.run(  # type: ignore[call-arg]
            agent, user_message=message, model_settings=settings
        )
        return result
    setup = runner_._setup(agent, message, None, None, None)
    return await Run(dataclasses.replace(setup, model_settings=settings)).execute()
