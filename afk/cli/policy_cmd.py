"""``afk policy check FILE``: whether a policy file loads, and what its rules do.
``afk policy test POLICY --events FILE``: what a policy file would decide, before it ships.

The events file is JSONL. Each line is one of:

* a tool-call event: ``{"tool_name": "refund", "tool_args": {...}, "agent_name": "billing",
  "context": {...}, "event_type": "tool_before_execute"}``; every key is optional (the
  defaults are those of :class:`~afk.agents.policy.PolicyEvent`), and ``run_id``,
  ``thread_id``, ``step`` and ``tool_call_id`` are accepted too. An MCP tool's call adds
  ``"server": "github"`` and ``"annotations": {"readOnlyHint": false}`` (its hints as the
  server declares them; the MCP spec's defaults fill in the others, as in a run), which
  rules' ``server:`` and ``annotations:`` match;
* a recorded run event of type ``approval_requested`` or ``user_input_requested`` (as written
  by ``event_to_dict``): its request's tool call is re-evaluated and the recorded action is
  shown next to the new one. Recorded requests carry no run context, so ``context``
  predicates see an empty mapping;
* any other recorded run event (``policy_decision`` carries no tool arguments, for one):
  skipped, with a count on stderr.

Blank lines are ignored. Exit status: 0 after printing, 2 when either file is malformed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from afk.agents.policy import PolicyDecision, PolicyEngine, PolicyEvent
from afk.approvals.display import escape
from afk.errors import ConfigurationError

_EVENT_KEYS = (
    "event_type", "tool_name", "tool_args", "agent_name", "context",
    "run_id", "thread_id", "step", "tool_call_id", "annotations", "server",
)  # fmt: skip
# The events file's names for what PolicyEvent calls tool_annotations and tool_server.
_RENAMED = {"annotations": "tool_annotations", "server": "tool_server"}
_EXPECTED_TYPES: dict[str, tuple[type, ...]] = {
    "event_type": (str,),
    "tool_name": (str, type(None)),
    "tool_args": (dict,),
    "agent_name": (str,),
    "context": (dict,),
    "run_id": (str,),
    "thread_id": (str, type(None)),
    "step": (int,),
    "tool_call_id": (str, type(None)),
    "annotations": (dict,),
    "server": (str,),
}
_RECORDED_REQUESTS = {
    "approval_requested": "request_approval",
    "user_input_requested": "request_user_input",
}
_CELL = 48


class _BadInput(Exception):
    """A malformed events file; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class _Case:
    line: int
    event: PolicyEvent
    recorded: dict[str, Any] | None = None


def register(subparsers: Any) -> None:
    """Add ``policy check`` and ``policy test`` to the ``afk`` command's sub-parsers."""
    policy = subparsers.add_parser("policy", help="check policy files")
    commands = policy.add_subparsers(dest="policy_command", metavar="SUBCOMMAND", required=True)
    check = commands.add_parser(
        "check",
        help="validate a policy file and summarize its rules",
        description="Load a policy file as the runner would. Exit status: 0 and a summary "
        "(rules by action) when it is valid; 2 and the first error, naming the rule and the "
        "field, when it is not.",
    )
    check.add_argument("policy", metavar="FILE", help="policy file (.yaml, .yml or .json)")
    check.add_argument("--json", action="store_true", help="print the summary as JSON")
    check.set_defaults(func=run_check)
    test = commands.add_parser(
        "test",
        help="show what a policy file would decide for recorded or hand-written tool calls",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    test.add_argument("policy", metavar="POLICY", help="policy file (.yaml, .yml or .json)")
    test.add_argument("--events", required=True, metavar="FILE", help="JSONL file of events")
    output = test.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print one JSON object per event")
    output.add_argument("--explain", action="store_true", help="explain every rule per event")
    test.set_defaults(func=run_test)


def run_check(args: argparse.Namespace) -> int:
    try:
        engine = PolicyEngine.from_file(args.policy)
    except ConfigurationError as exc:
        first, *more = str(exc).splitlines() or [type(exc).__name__]
        extra = f" (and {len(more)} more error{'s' if len(more) > 1 else ''})" if more else ""
        print(f"afk policy check: {escape(first)}{extra}", file=sys.stderr)
        return 2
    by_action: dict[str, list[str]] = {}
    for rule in engine.rules:
        flags = [f for f, on in (("shadow", rule.shadow), ("disabled", not rule.enabled)) if on]
        label = rule.rule_id + (f" ({', '.join(flags)})" if flags else "")
        by_action.setdefault(rule.action, []).append(label)
    if args.json:
        summary = {
            "file": args.policy,
            "valid": True,
            "rules": len(engine.rules),
            "default_action": engine.default_action,
            "shadow": engine.shadow,
            "actions": by_action,
        }
        print(json.dumps(summary, indent=2, ensure_ascii=True))
        return 0
    count = len(engine.rules)
    mode = ", shadow mode (decides nothing)" if engine.shadow else ""
    print(
        f"{escape(args.policy)}: valid: {count} rule{'' if count == 1 else 's'}, default "
        f"action {engine.default_action}{mode}"
    )
    width = max((len(a) for a in by_action), default=0)
    for action, rules in by_action.items():
        print(f"  {action.ljust(width)}  {len(rules)}  {escape(', '.join(rules))}")
    return 0


def run_test(args: argparse.Namespace) -> int:
    """``afk policy test POLICY EVENTS``: evaluate the policy file against recorded tool calls and
    print each decision (``--explain``: why). Returns 0, or 2 when a file cannot be read."""
    try:
        engine = PolicyEngine.from_file(args.policy)
        cases, skipped = _read_events(Path(args.events))
    except (ConfigurationError, _BadInput) as exc:
        print(f"afk policy test: {exc}", file=sys.stderr)
        return 2
    decisions = [engine.evaluate(case.event) for case in cases]
    if args.json:
        for case, decision in zip(cases, decisions, strict=True):
            print(json.dumps(_as_json(case, decision), default=str))
    elif args.explain:
        for case in cases:
            print(f"line {case.line}: {engine.explain(case.event)}\n")
    else:
        print(_table(cases, decisions))
    if skipped:
        counts = ", ".join(f"{kind} x{count}" for kind, count in sorted(skipped.items()))
        print(f"skipped recorded events without a tool call to evaluate: {counts}", file=sys.stderr)
    return 0


def _read_events(path: Path) -> tuple[list[_Case], Counter[str]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise _BadInput(f"{path}: cannot read the events file: {exc}") from None
    cases: list[_Case] = []
    skipped: Counter[str] = Counter()
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        where = f"{path}:{number}"
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _BadInput(f"{where}: invalid JSON: {exc.msg}") from None
        if not isinstance(data, dict):
            raise _BadInput(f"{where}: each line must be a JSON object, got {text.strip()[:40]}")
        kind = data.get("type")
        if kind is None:
            cases.append(_Case(number, _tool_call(data, where)))
        elif kind in _RECORDED_REQUESTS:
            cases.append(_from_request(data, kind, number, where))
        else:
            skipped[str(kind)] += 1
    return cases, skipped


def _tool_call(data: dict[str, Any], where: str) -> PolicyEvent:
    unknown = sorted(set(data) - set(_EVENT_KEYS))
    if unknown:
        raise _BadInput(
            f"{where}: unknown key {', '.join(map(repr, unknown))}; "
            f"accepted keys: {', '.join(_EVENT_KEYS)} (or a recorded run event with 'type')"
        )
    for key, value in data.items():
        if not isinstance(value, _EXPECTED_TYPES[key]) or isinstance(value, bool):
            raise _BadInput(f"{where}: {key}: wrong type {type(value).__name__}: {value!r}")
    fields = {_RENAMED.get(key, key): value for key, value in data.items()}
    try:
        if "annotations" in data or "server" in data:
            fields["tool_annotations"] = _mcp_hints(data.get("annotations"), where)
        return PolicyEvent(**fields)
    except ConfigurationError as exc:
        raise _BadInput(f"{where}: {exc}") from None


def _mcp_hints(declared: dict[str, Any] | None, where: str) -> Any:
    """An MCP tool's hints as a run shows them to rules: the declared ones (checked), the
    spec's defaults for the rest. Imported here: plain events need none of afk.mcp."""
    from afk.mcp.tool import check_hints, effective_annotations

    given = check_hints(declared, f"{where}: annotations")
    return effective_annotations(given, {}, trust=True)


def _from_request(data: dict[str, Any], kind: str, number: int, where: str) -> _Case:
    request = data.get("request")
    if not isinstance(request, dict):
        raise _BadInput(f"{where}: a {kind} event needs a 'request' object")
    call = {key: request[key] for key in _EVENT_KEYS if request.get(key) is not None}
    call["event_type"] = "tool_before_execute" if call.get("tool_name") else "llm_before_execute"
    recorded = {"action": _RECORDED_REQUESTS[kind], "rule_id": request.get("rule_id")}
    return _Case(number, _tool_call(call, where), recorded)


def _as_json(case: _Case, decision: PolicyDecision) -> dict[str, Any]:
    event = case.event
    return {
        "line": case.line,
        "event": {
            "event_type": event.event_type,
            "tool_name": event.tool_name,
            "tool_args": dict(event.tool_args),
            "agent_name": event.agent_name,
            "context": dict(event.context),
            "annotations": dict(event.tool_annotations),
            "server": event.tool_server,
        },
        "decision": _decision_json(decision),
        "recorded": case.recorded,
    }


def _decision_json(decision: PolicyDecision) -> dict[str, Any]:
    """The decision as its JSON has always been: the approval settings (one value on the
    decision now) beside its other fields, in the order they had."""
    data = asdict(decision)
    data.update(data.pop("approval"))
    return data


def _cell(text: str) -> str:
    return text if len(text) <= _CELL else text[: _CELL - 3] + "..."


def _table(cases: list[_Case], decisions: list[PolicyDecision]) -> str:
    header = ["LINE", "TOOL", "AGENT", "ACTION", "RULE", "REASON", "SHADOW"]
    with_recorded = any(case.recorded for case in cases)
    if with_recorded:
        header.append("RECORDED")
    rows = [header]
    for case, decision in zip(cases, decisions, strict=True):
        shadow = "; ".join(
            f"{s.rule_id if s.source == 'rule' else 'engine'} -> {s.action}"
            for s in decision.shadow
        )
        row = [
            str(case.line),
            case.event.tool_name or "(model call)",
            case.event.agent_name or "-",
            decision.action,
            decision.rule_id or "(default)",
            decision.reason or "-",
            shadow or "-",
        ]
        if with_recorded:
            recorded = case.recorded
            row.append(f"{recorded['action']} ({recorded['rule_id']})" if recorded else "-")
        rows.append([_cell(cell) for cell in row])
    if len(rows) == 1:
        return "no events to evaluate"
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


__all__ = [
    "register",
    "run_test",
]
