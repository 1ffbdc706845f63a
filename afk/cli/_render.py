"""Readable one-line renderings of run events for the terminal."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from afk.core import events as ev


def _args(args: dict[str, Any]) -> str:
    return json.dumps(args, sort_keys=True, default=str)


def _policy(e: ev.PolicyDecisionEvent) -> str:
    target = e.tool_name or "model call"
    rule = f" by rule {e.rule_id}" if e.rule_id else ""
    why = f" ({e.reason})" if e.reason else ""
    return f"policy: {target} -> {e.action}{rule}{why}"


def _tool_done(e: ev.ToolCompleted) -> str:
    if e.denied:
        return f"tool {e.tool_name}: {e.error}"
    if not e.success:
        return f"tool {e.tool_name} failed: {e.error}"
    return f"tool {e.tool_name} -> {json.dumps(e.output, default=str)}"


def _resolved(e: ev.ApprovalResolved | ev.UserInputResolved) -> str:
    who = e.approver or e.decided_by
    why = f": {e.decision.reason}" if e.decision.reason else ""
    return f"decision on {e.request_id}: {e.decision.kind} by {who}{why}"


def _model(e: ev.LLMCompleted) -> str:
    calls = ", ".join(f"{c.name}({_args(c.arguments)})" for c in e.tool_calls)
    parts = [p for p in (e.text and f"says {e.text!r}", calls and f"calls {calls}") if p]
    return "model " + ("; ".join(parts) or "returned nothing")


def _approval(e: ev.ApprovalRequested) -> str:
    r = e.request
    return f"approval requested ({r.request_id}) for {r.tool_name}({_args(r.tool_args)})"


def _finished(e: ev.RunCompleted) -> str:
    return f"run {e.state}" + (f": {e.final_text}" if e.final_text else "")


_RENDERERS: dict[str, Callable[[Any], str]] = {
    "run_started": lambda e: f"run {e.run_id} started: agent {e.agent_name} on {e.model}",
    "step_started": lambda e: f"-- step {e.step}",
    "llm_completed": _model,
    "policy_decision": _policy,
    "approval_requested": _approval,
    "user_input_requested": lambda e: (
        f"input requested ({e.request.request_id}): {e.request.prompt}"
    ),
    "approval_resolved": _resolved,
    "user_input_resolved": _resolved,
    "run_paused": lambda e: f"paused, waiting for {len(e.request_ids)} decision(s)",
    "run_resumed": lambda e: "resumed",
    "tool_started": lambda e: f"tool {e.tool_name}({_args(e.args)}) running",
    "tool_completed": _tool_done,
    "warning": lambda e: f"warning: {e.message}",
    "run_completed": _finished,
    "run_failed": lambda e: f"run failed: {e.error_type}: {e.error}",
    "run_cancelled": lambda e: "run cancelled",
}


def render(event: ev.Event) -> str | None:
    """A line for the event, or None for events not worth a line (model calls, text deltas)."""
    renderer = _RENDERERS.get(event.type)
    return renderer(event) if renderer else None
