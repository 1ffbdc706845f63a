"""Everything a run needs, checked by the Runner before the run starts: what the runner
hands the run loop, and what observers of a run (afk.observability) are given."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from afk.agents.agent import Agent
from afk.agents.policy import PolicyEngine
from afk.approvals.approvers import ApproverDirectory
from afk.approvals.grants import Grants
from afk.core._snapshot import RunSnapshot
from afk.core.config import RunnerConfig
from afk.core.sessions import Session
from afk.llms.messages import Message
from afk.llms.model import Model
from afk.llms.settings import ModelSettings
from afk.observability import SpanFactory
from afk.store.store import RunStore


@dataclass(frozen=True, slots=True, kw_only=True)
class Nested:
    """A sub-agent's run: its key ``scope``, its ``path`` of "<tool_call_id>:<agent>" hops
    from the top run, and the emitter of the run that called it (its events go there)."""

    scope: str
    path: tuple[str, ...]
    parent_emitter: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSetup:
    """Everything a run needs, checked by the Runner before the run starts."""

    agent: Agent
    model: Model
    engines: tuple[PolicyEngine, ...]
    config: RunnerConfig
    provider: Any
    user_message: str
    context: dict[str, Any] | None
    thread_id: str | None
    run_id: str
    requested_by: str | None = None
    store: RunStore | None = None
    owner: str = ""
    lease_ttl_s: float = 30.0
    snapshot: RunSnapshot | None = None  # set when resuming
    # The conversation before this run: its thread's history, or run(messages=...).
    history: tuple[Message, ...] = ()
    session: Session | None = None  # keeps the thread's turns: set when thread_id is
    # resume(context=...): live objects for this stretch of the run, never checkpointed.
    live_context: dict[str, Any] | None = None
    directory: ApproverDirectory | None = None
    grants: Grants | None = None
    tracing: SpanFactory | None = None  # Runner(tracing=...): spans of this run
    # run(model_settings=...): merged over the agent's, field by field, when the run starts.
    model_settings: ModelSettings | None = None
    # Set for a sub-agent's run (afk.core._subagents): where it sits under its top run.
    nested: Nested | None = None
    # How this run's sub-agent calls (Agent.as_tool) start and resume their child runs.
    children: Any = None
