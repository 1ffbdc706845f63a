"""Sub-agents: an agent called as a tool of another (``Agent.as_tool``), in a run of its own
that belongs to the run that called it.

One tree, one run: a child run has its top run's id, so its requests are the top run's
requests (one pending set, each naming its ``path`` of "<tool_call_id>:<agent>" hops); its
events go into its parent's stream; its policy is its parent's engines and then its own
agent's, so authority only narrows (a child never allows what a parent's policy denies).

Without a store the child runs inline: it asks the run's provider (or its fallback) like
the parent does. With one, a child that needs a decision pauses its parent's call: the
parent stores the child's snapshot inside its own paused step and the child's requests as
its own, so deciding them makes the top run ready, and resuming it enters the sub-agent
call again (the re-entry contract of :mod:`afk.core._tool_asks`), which resumes the child
from that snapshot. Each call anywhere in the tree runs at most once: its execution key is
scoped by the child's place in the tree.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from afk.core._setup import Nested, RunSetup
from afk.core._tool_asks import ChildPaused
from afk.errors import SubAgentError

if TYPE_CHECKING:
    from afk.agents.agent import Agent
    from afk.core._durable import Durable
    from afk.core._emitter import Emitter
    from afk.core._snapshot import RunSnapshot

# The Runner's way to build a child's setup from its parent's: (parent, agent, message,
# nested, snapshot) -> the child's RunSetup.
MakeSetup = Callable[["RunSetup", "Agent", str, Nested, "RunSnapshot | None"], RunSetup]
_REQUEST_KEYS = ("request_id", "model_request_id")
_REQUEST_LISTS = ("asked_ids", "child_waits_ids")


class ChildRuns:
    """The sub-agent calls of one run: given to its tool calls (``RunFacts.children``)."""

    __slots__ = ("make", "parent")

    def __init__(self, make: MakeSetup) -> None:
        self.make = make
        self.parent: RunSetup  # set once the setup it belongs to exists

    def bind(
        self, *, call_id: str, saved: str | None, emitter: Emitter, durable: Durable | None
    ) -> ChildCall:
        """The sub-agent runner of one tool call (``saved``: its paused child's snapshot)."""
        return ChildCall(self, call_id=call_id, saved=saved, emitter=emitter, durable=durable)


class ChildCall:
    """``ToolContext.run_agent`` for one call: starts the child, or resumes the paused one."""

    __slots__ = ("_call_id", "_durable", "_emitter", "_runs", "_saved")

    def __init__(
        self,
        runs: ChildRuns,
        *,
        call_id: str,
        saved: str | None,
        emitter: Emitter,
        durable: Durable | None,
    ) -> None:
        self._runs, self._call_id, self._saved = runs, call_id, saved
        self._emitter, self._durable = emitter, durable

    async def run(self, agent: Any, user_message: str) -> str:
        """Run ``agent`` under this call; its final text (see ``ToolContext.run_agent``)."""
        from afk.agents.agent import Agent
        from afk.core._run import Run

        if not isinstance(agent, Agent):
            raise SubAgentError(f"run_agent() needs an Agent, got {type(agent).__name__}")
        parent = self._runs.parent
        scope = parent.nested.scope if parent.nested is not None else parent.run_id
        path = parent.nested.path if parent.nested is not None else ()
        nested = Nested(
            scope=f"{scope}/{self._call_id}",
            path=(*path, f"{self._call_id}:{agent.name}"),
            parent_emitter=self._emitter,
        )
        snapshot = await self._snapshot(agent) if self._saved is not None else None
        run = Run(self._runs.make(parent, agent, user_message, nested, snapshot))
        if run.durable is not None and self._durable is not None:
            run.durable.remember(self._durable.decided_rows())
        result = await run.execute()
        if result.state == "paused":
            from afk.core._durable import NestedDurable
            from afk.core._snapshot import dump_snapshot

            journal = run.durable
            assert isinstance(journal, NestedDurable) and journal.last is not None
            raise ChildPaused(
                snapshot=dump_snapshot(journal.last),
                requests=result.pending_requests,
                log=journal.take_log(),
            )
        if result.state != "completed":
            why = result.error or (result.final_text or "")
            raise SubAgentError(f"sub-agent {agent.name!r} {result.state}: {why}".rstrip(": "))
        return result.final_text or ""

    async def _snapshot(self, agent: Agent) -> RunSnapshot:
        """The paused child, read back from its stored form with the request rows it names."""
        from afk.approvals._rows import load_request
        from afk.core._snapshot import SCHEMA_VERSION, load_snapshot
        from afk.store.store import RunRecord

        assert self._saved is not None and self._durable is not None
        parent = self._runs.parent
        requests = {}
        for request_id in named_requests(self._saved):
            row = await self._durable.request_row(request_id)
            if row is None:
                raise SubAgentError(
                    f"sub-agent {agent.name!r} waits on request {request_id}, which the store "
                    "does not hold: it cannot be resumed"
                )
            requests[request_id] = load_request(row)
        record = RunRecord(
            run_id=parent.run_id,
            agent_name=agent.name,
            status="paused",
            snapshot=self._saved,
            schema_version=SCHEMA_VERSION,
            created_at=time.time(),
            updated_at=time.time(),
            thread_id=parent.thread_id,
            requested_by=parent.requested_by,
        )
        return load_snapshot(
            self._saved, record=record, requests=requests, system=agent.system_message
        )


def named_requests(stored: str) -> list[str]:
    """The request ids a stored snapshot's paused step names (not those of a child's own
    stored snapshot inside it: that one is read when its call is entered again)."""
    step = json.loads(stored).get("pending_step") or {}
    found = [step[k] for k in _REQUEST_KEYS if step.get(k)]
    for call in step.get("calls", []):
        found += [call[k] for k in _REQUEST_KEYS if call.get(k)]
        found += [i for k in _REQUEST_LISTS for i in call.get(k, ())]
    return list(dict.fromkeys(found))


__all__: list[str] = []
