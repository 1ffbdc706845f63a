"""Readable one-line renderings of run events for the terminal.

Every value from the model, a tool, a rule or a person goes through one Escaper, so a line
cannot carry control sequences, line breaks or hidden characters onto the screen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from afk.approvals.display import HIDDEN_MARKER, Escaper
from afk.core import events as ev

_Renderer = Callable[[Any, Escaper], str]


def _policy(e: ev.PolicyDecisionEvent, esc: Escaper) -> str:
    target = esc.tool(e.tool_name, none="model call")
    rule = f" by rule {esc.text(e.rule_id)}" if e.rule_id else ""
    why = f" ({esc.text(e.reason)})" if e.reason else ""
    return f"policy: {target} -> {esc.text(e.action)}{rule}{why}"


def _tool_done(e: ev.ToolCompleted, esc: Escaper) -> str:
    name = esc.tool(e.tool_name)
    if e.denied:
        return f"tool {name}: {esc.text(e.error)}"
    if not e.success:
        return f"tool {name} failed: {esc.text(e.error)}"
    return f"tool {name} -> {esc.json(e.output)}"


def _resolved(e: ev.ApprovalResolved | ev.UserInputResolved, esc: Escaper) -> str:
    who = esc.text(e.approver or e.decided_by)
    why = f": {esc.text(e.decision.reason)}" if e.decision.reason else ""
    return f"decision on {esc.text(e.request_id)}: {esc.text(e.decision.kind)} by {who}{why}"


def _call(name: str, args: Any, esc: Escaper) -> str:
    return f"{esc.tool(name)}({esc.json(args)})"


def _model(e: ev.LLMCompleted, esc: Escaper) -> str:
    calls = ", ".join(_call(c.name, c.arguments, esc) for c in e.tool_calls)
    says = e.text and f"says {esc.json(e.text)}"
    parts = [p for p in (says, calls and f"calls {calls}") if p]
    return "model " + ("; ".join(parts) or "returned nothing")


def _approval(e: ev.ApprovalRequested, esc: Escaper) -> str:
    r = e.request
    call = _call(r.tool_name, r.tool_args, esc) if r.tool_name is not None else "the model call"
    return f"approval requested ({esc.text(r.request_id)}) for {call}"


def _input(e: ev.UserInputRequested, esc: Escaper) -> str:
    return f"input requested ({esc.text(e.request.request_id)}): {esc.text(e.request.prompt)}"


def _finished(e: ev.RunCompleted, esc: Escaper) -> str:
    text = f"run {e.state}" + (f": {esc.text(e.final_text)}" if e.final_text else "")
    if e.expired_calls:  # never a plain "completed" when the fallback decided a call
        n = len(e.expired_calls)
        text += f" ({n} call{'' if n == 1 else 's'} expired undecided)"
    return text


_RENDERERS: dict[str, _Renderer] = {
    "run_started": lambda e, esc: (
        f"run {esc.text(e.run_id)} started: agent {esc.text(e.agent_name)} on {esc.text(e.model)}"
    ),
    "step_started": lambda e, esc: f"-- step {e.step}",
    "llm_completed": _model,
    "policy_decision": _policy,
    "approval_requested": _approval,
    "user_input_requested": _input,
    "approval_resolved": _resolved,
    "user_input_resolved": _resolved,
    "run_paused": lambda e, esc: f"paused, waiting for {len(e.request_ids)} decision(s)",
    "run_resumed": lambda e, esc: "resumed",
    "tool_started": lambda e, esc: f"tool {_call(e.tool_name, e.args, esc)} running",
    "tool_completed": _tool_done,
    "warning": lambda e, esc: f"warning: {esc.text(e.message)}",
    "run_completed": _finished,
    "run_failed": lambda e, esc: f"run failed: {esc.text(e.error_type)}: {esc.text(e.error)}",
    "run_cancelled": lambda e, esc: "run cancelled",
}


def render(event: ev.Event, esc: Escaper | None = None) -> str | None:
    """A line for the event, or None for events not worth a line (model calls, text deltas).

    With ``esc`` the caller shows the hidden-characters marker once for its whole output;
    without it, a line that escaped anything ends with the marker itself."""
    renderer = _RENDERERS.get(event.type)
    if renderer is None:
        return None
    own = esc if esc is not None else Escaper()
    line = renderer(event, own)
    return f"{line}  {HIDDEN_MARKER}" if esc is None and own.escaped else line
