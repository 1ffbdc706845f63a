"""What the run's machinery reads about the run it serves, handed down explicitly.

The run loop (:mod:`afk.core._run`) owns a run's changing state. What it calls (the tool
calls of a step, asking humans, the durable journal, the policy gate) receives these
read-only facts and the services it uses, and returns results: nothing below the loop holds
the run, reads its attributes or calls back up into it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from afk.core.config import RunnerConfig

if TYPE_CHECKING:
    from afk.approvals.approvers import ApproverDirectory
    from afk.approvals.grants import Grants
    from afk.core._setup import RunSetup
    from afk.tools.tool import Tool

_NO_CONTEXT: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFacts:
    """Fixed for the life of one run (in this process)."""

    run_id: str
    agent_name: str
    tools: Mapping[str, Tool]
    thread_id: str | None
    requested_by: str | None
    # The application's context, read-only: policies and tools see it, none may change it.
    context: Mapping[str, Any]
    config: RunnerConfig
    provider: Any  # the InteractionProvider: asked in interactive mode
    grants: Grants | None
    directory: ApproverDirectory | None
    started_at: float
    headless: bool
    external: bool
    # A sub-agent's run (afk.core._subagents) shares its top run's id, so its requests are
    # the top run's; ``scope`` keeps its execution keys apart, ``path`` names it on requests.
    scope: str = ""
    path: tuple[str, ...] = ()
    children: Any = None  # starts and resumes sub-agent runs (afk.core._subagents.ChildRuns)

    @classmethod
    def of(cls, setup: RunSetup, *, started_at: float) -> RunFacts:
        """The facts of the run ``setup`` describes, started (or resumed) at ``started_at``."""
        mode = setup.config.interaction_mode
        return cls(
            run_id=setup.run_id,
            agent_name=setup.agent.name,
            tools=setup.agent.tools,
            thread_id=setup.thread_id,
            requested_by=setup.requested_by,
            context=_context(setup),
            config=setup.config,
            provider=setup.provider,
            grants=setup.grants,
            directory=setup.directory,
            started_at=started_at,
            headless=mode == "headless",
            # A sub-agent of a durable run pauses to its parent, which stores its requests.
            external=mode == "external" or (setup.nested is not None and setup.store is not None),
            scope=setup.nested.scope if setup.nested is not None else setup.run_id,
            path=setup.nested.path if setup.nested is not None else (),
            children=setup.children,
        )


def _context(setup: RunSetup) -> Mapping[str, Any]:
    """The stored context with the resumed run's live one (``resume(context=...)``) over
    it: the Runner has refused a live key that would change a stored one."""
    if setup.live_context:
        return MappingProxyType({**(setup.context or {}), **setup.live_context})
    return MappingProxyType(setup.context) if setup.context else _NO_CONTEXT
