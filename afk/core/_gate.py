"""The policy gate of one run: every engine's decision on an event, combined, within the
policy timeout and the run's active-time budget; announced as an event and queued for the
decision ledger."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from afk.agents.policy import PolicyDecision, PolicyEngine, PolicyEvent, combine
from afk.core.events import PolicyDecisionEvent

if TYPE_CHECKING:
    from afk.core._durable import Durable
    from afk.core._emitter import ActiveClock, Emitter
    from afk.core._facts import RunFacts


class PolicyGate:
    """Decides events of one run (tool calls, and model calls when some rule covers them)."""

    __slots__ = ("_clock", "_durable", "_emitter", "_engines", "_facts", "gates_model")

    def __init__(
        self,
        facts: RunFacts,
        engines: Sequence[PolicyEngine],
        *,
        clock: ActiveClock,
        emitter: Emitter,
        durable: Durable | None,
    ) -> None:
        self._facts = facts
        self._engines = tuple(engines)
        self._clock = clock
        self._emitter = emitter
        self._durable = durable
        # Most agents have no rule on model calls: then the loop asks nothing before each.
        self.gates_model = any(e.covers("llm_before_execute") for e in self._engines)

    async def decide(self, step: int, event: PolicyEvent) -> PolicyDecision:
        """The combined decision on ``event``; the ``policy_decision`` event is emitted and,
        with a store, the ledger entry queued for the run's next write."""
        decision = await self._evaluate(event)
        await self._emitter.emit(
            PolicyDecisionEvent,
            step,
            event_type=event.event_type,
            tool_name=event.tool_name,
            tool_call_id=event.tool_call_id,
            action=decision.action,
            rule_id=decision.rule_id,
            matched_rules=decision.matched_rules,
            reason=decision.reason,
            shadow=decision.shadow,
        )
        if self._durable is not None:
            await self._durable.log_policy(event, decision)
        return decision

    async def _evaluate(self, event: PolicyEvent) -> PolicyDecision:
        """The engines share one ``policy_timeout_s`` for their async conditions (a hung one
        is denied, naming its rule), and the run's remaining active time bounds it all:
        policy time counts towards ``max_run_time_s``."""
        self._clock.check()
        limit = self._facts.config.policy_timeout_s
        deadline = asyncio.get_running_loop().time() + limit
        return await self._clock.bounded(self._all(event, limit, deadline))

    async def _all(self, event: PolicyEvent, limit: float, deadline: float) -> PolicyDecision:
        decision: PolicyDecision | None = None
        for engine in self._engines:
            found = await engine.aevaluate(event, timeout_s=limit, deadline=deadline)
            decision = found if decision is None else combine(decision, found)
        return decision if decision is not None else PolicyDecision(action="allow")
