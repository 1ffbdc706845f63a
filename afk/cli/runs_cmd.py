"""``afk runs list`` and ``afk runs show RUN``: what a durable run store holds."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, get_args

from afk.approvals.display import Escaper
from afk.cli._ids import REQUEST, RUN, resolve, short_ids
from afk.cli._output import (
    common_options,
    decision_text,
    fields,
    next_page_line,
    positive_int,
    print_json,
    record_json,
    relative,
    shorten,
    when,
    with_store,
)
from afk.cli._table import Layout, layout, state_color, table
from afk.errors import AfkError
from afk.store import EventRow, Page, RequestRecord, RunRecord, RunStore
from afk.store._paging import every_request
from afk.store.store import RunStatus

if TYPE_CHECKING:
    from afk.approvals.requests import Request
    from afk.core._snapshot import RunSnapshot
    from afk.core.result import ToolExecution

RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)
_TEXT = 100  # how much of a message or tool output a summary line shows
_ALL = ("TOOL", "ARGS", "RESULT", "DECISION", "CONTENT")  # cut to fit, these first


def register(subparsers: Any) -> None:
    """Add ``runs list`` and ``runs show`` to the ``afk`` command's sub-parsers."""
    common = common_options()
    runs = subparsers.add_parser("runs", help="list and inspect durable runs in a run store")
    commands = runs.add_subparsers(dest="runs_command", metavar="SUBCOMMAND", required=True)
    listing = commands.add_parser(
        "list",
        parents=[common],
        help="list runs, newest first",
        description="List stored runs, most recently updated first, with their pending "
        "request count. Exit status: 0, or 2 when the store is missing or unusable.",
    )
    listing.add_argument("--status", choices=RUN_STATUSES, help="only runs in this state")
    listing.add_argument(
        "--limit", type=positive_int, default=50, metavar="N", help="at most N runs per page (50)"
    )
    listing.add_argument(
        "--cursor", metavar="C", help="start after an earlier page (its 'more:' line)"
    )
    listing.set_defaults(func=run_list)
    show = commands.add_parser(
        "show",
        parents=[common],
        help="show one run: record, conversation, requests, events",
        description="Show one run: its record, its conversation as checkpointed, its "
        "requests and decisions, and its event log. Exit status: 0, 1 when there is no such "
        "run, 2 when the store is missing or unusable.",
    )
    show.add_argument(
        "run",
        metavar="RUN",
        help="run id, or a unique prefix of it (at least 4 characters; 'run_' may be left out)",
    )
    show.set_defaults(func=run_show)


def run_list(args: argparse.Namespace) -> int:
    """``afk runs list``: stored runs, most recently updated first, with their pending request
    counts. Returns 0."""

    async def work(store: RunStore) -> tuple[Page[RunRecord], dict[str, int]]:
        runs = await store.list_runs(status=args.status, limit=args.limit, cursor=args.cursor)
        # Counted per run on this page (the run's own index), not over every pending request.
        pending = {r.run_id: len(await every_request(store, run_id=r.run_id)) for r in runs}
        return runs, pending

    runs, pending = with_store(args, work)
    status = ["--status", args.status] if args.status else []
    more = next_page_line(args, ["runs", "list", *status], runs)
    if args.json:
        print_json(
            [
                {**record_json(r, drop=("snapshot",)), "pending_requests": pending[r.run_id]}
                for r in runs
            ]
        )
        if more:
            print(more, file=sys.stderr)
        return 0
    if not runs:
        print("no runs" + (f" with status {args.status}" if args.status else ""))
        return 0
    now, lay, esc = time.time(), layout(args), Escaper()
    ids = short_ids([r.run_id for r in runs], RUN)
    rows = [
        [
            r.run_id if lay.wide else ids[r.run_id],
            r.agent_name,
            r.status,
            relative(r.updated_at, now),
            pending[r.run_id],
        ]
        for r in runs
    ]
    headers = ["RUN", "AGENT", "STATUS", "UPDATED", "PENDING"]
    print(
        table(
            headers, rows, esc=esc, layout=lay, flexible=("AGENT",), colors={"STATUS": state_color}
        )
    )
    for line in lay.marker(esc):
        print(line)
    if more:
        print(more)
    return 0


def run_show(args: argparse.Namespace) -> int:
    """``afk runs show RUN``: the run's record, conversation, tool calls, requests and events. Calls
    whose request expired undecided are marked, and so is the run's state. Returns 0, or 1 when
    there is no such run."""

    async def work(
        store: RunStore,
    ) -> tuple[RunRecord, list[RequestRecord], list[EventRow]] | None:
        record = await store.load_run(await resolve(store, RUN, args.run) or args.run)
        if record is None:
            return None
        requests = await every_request(store, run_id=record.run_id, status=None)
        return record, requests, await store.list_events(record.run_id)

    found = with_store(args, work)
    if found is None:
        print(f"afk: no run with id {args.run!r}", file=sys.stderr)
        return 1
    record, requests, events = found
    loaded = _loaded(requests)
    snapshot = _snapshot(record, loaded)
    expired = _expired(snapshot)
    if args.json:
        print_json(
            {
                "run": record_json(record, drop=("snapshot",)),
                "state": _state(record.status, [e.tool_name for e in expired]),
                "expired_calls": [_expired_json(e, loaded) for e in expired],
                "snapshot": record_json(record)["snapshot"],
                "requests": [_request_json(r, loaded, expired) for r in requests],
                "events": [_event_json(e, loaded) for e in events],
            }
        )
        return 0
    esc = Escaper()  # one for the whole output: the marker ends it once
    lay = layout(args)
    # Sections are indented by two columns: their tables fit in what is left.
    inner = replace(lay, width=None if lay.width is None else lay.width - 2)
    sections = [
        _record_text(record, _state(record.status, [esc.tool(e.tool_name) for e in expired]), esc),
        _conversation_text(snapshot, esc, inner),
        _requests_text(requests, _expired_requests(loaded, expired), esc, inner),
        _events_text(events, loaded, esc, inner),
    ]
    print("\n\n".join(s for s in sections if s))
    for line in lay.marker(esc):
        print(line)
    return 0


def _snapshot(record: RunRecord, requests: Mapping[str, Request]) -> RunSnapshot | Exception:
    """The run's checkpoint, or why it cannot be read (the rest of the run is still worth
    showing when its snapshot is from another version)."""
    from afk.core._snapshot import load_snapshot

    try:
        # Without the agent: the conversation after its instructions.
        return load_snapshot(record.snapshot, record=record, requests=requests, system=None)
    except (AfkError, ValueError) as exc:
        return exc


def _expired(snapshot: RunSnapshot | Exception) -> list[ToolExecution]:
    """The run's calls whose request expired undecided, by ``ToolExecution.expired`` (the rule
    ``RunResult.expired_calls`` and the worker's report line use too)."""
    if isinstance(snapshot, Exception):
        return []
    return [e for e in snapshot.executions if e.expired]


def _state(status: str, expired_tools: list[str]) -> str:
    """The run's status, never a plain ``completed`` when the fallback decided a call nobody
    approved in time: ``completed (1 call expired: refund)``."""
    if not expired_tools:
        return status
    calls = "call" if len(expired_tools) == 1 else "calls"
    return f"{status} ({len(expired_tools)} {calls} expired: {', '.join(expired_tools)})"


def _expired_requests(
    requests: Mapping[str, Request], expired: list[ToolExecution]
) -> dict[str, ToolExecution]:
    """The expired calls by the id of the request that asked about them."""
    by_call = {e.tool_call_id: e for e in expired}
    return {
        rid: by_call[r.tool_call_id]
        for rid, r in requests.items()
        if r.tool_call_id is not None and r.tool_call_id in by_call
    }


def _fallback_text(execution: ToolExecution) -> str:
    outcome = "denied" if execution.denied else "allowed"
    return f"expired undecided: the fallback {outcome} the call"


def _expired_json(execution: ToolExecution, requests: Mapping[str, Request]) -> dict[str, Any]:
    found = _expired_requests(requests, [execution])
    return {
        "tool_name": execution.tool_name,
        "tool_call_id": execution.tool_call_id,
        "request_id": next(iter(found), None),
        "denied": execution.denied,
    }


def _request_json(
    record: RequestRecord, requests: Mapping[str, Request], expired: list[ToolExecution]
) -> dict[str, Any]:
    execution = _expired_requests(requests, expired).get(record.request_id)
    data = record_json(record)
    data["expired"] = execution is not None
    data["fallback"] = None if execution is None else _fallback_text(execution)
    return data


def _record_text(record: RunRecord, state: str, esc: Escaper) -> str:
    lease = "-"
    if record.lease_owner:
        lease = f"{record.lease_owner} until {when(record.lease_expires_at)}"
    return fields(
        [
            ("run", record.run_id),
            ("agent", record.agent_name),
            ("status", state),
            ("created", when(record.created_at)),
            ("updated", when(record.updated_at)),
            ("thread", record.thread_id or "-"),
            ("requested by", record.requested_by or "-"),
            ("lease", lease),
        ],
        esc=esc,
    )


def _conversation_text(snapshot: RunSnapshot | Exception, esc: Escaper, lay: Layout) -> str:
    if isinstance(snapshot, Exception):
        return f"Conversation: cannot read the checkpoint: {shorten(snapshot, 200, esc)}"
    lines = [_message_row(i, m, esc) for i, m in enumerate(snapshot.messages, 1)]
    text = f"Conversation ({len(lines)} messages, step {snapshot.step})\n"
    text += _indent(table(["#", "ROLE", "CONTENT"], lines, esc=esc, layout=lay, flexible=_ALL))
    if snapshot.executions:
        rows = [
            [
                esc.tool(e.tool_name),
                esc.json(e.args),
                _outcome(e.executed, e.denied, e.success, e.output, e.error, esc),
                _expired_who(e) if e.expired else _who(e.decision, e.decided_by, e.policy, esc),
            ]
            for e in snapshot.executions
        ]
        text += f"\n\nTool calls ({len(rows)})\n"
        headers = ["TOOL", "ARGS", "RESULT", "DECISION"]
        text += _indent(table(headers, rows, esc=esc, layout=lay, flexible=_ALL))
    return text


def _message_row(index: int, message: Any, esc: Escaper) -> list[object]:
    from afk.llms.messages import AssistantMessage, ToolMessage

    if isinstance(message, AssistantMessage):
        parts = [shorten(message.text, _TEXT, esc)] if message.text else []
        # Arguments are shown whole: they are what a tool was (or will be) called with.
        parts += [f"calls {esc.tool(c.name)}({esc.json(c.arguments)})" for c in message.tool_calls]
        return [index, "assistant", "; ".join(parts) or "(empty turn)"]
    if isinstance(message, ToolMessage):
        flag = " [error]" if message.is_error else ""
        content = shorten(message.content, _TEXT, esc)
        return [index, "tool", f"{esc.tool(message.tool_name)} -> {content}{flag}"]
    return [index, message.role, shorten(message.content, _TEXT, esc)]


def _outcome(
    executed: bool, denied: bool, success: bool, output: Any, error: str | None, esc: Escaper
) -> str:
    if denied:
        return shorten(error or "denied", _TEXT, esc)
    if not success:
        return "failed: " + shorten(error, _TEXT, esc)
    text = output if isinstance(output, str) else esc.json(output)
    return ("ran -> " if executed else "answered -> ") + shorten(text, _TEXT, esc)


def _who(decision: Any, decided_by: str | None, policy: Any, esc: Escaper) -> str:
    if decision is not None:
        return f"{decision.kind} by {esc.text(decision.approver or decided_by or 'human')}"
    if policy is not None:
        rule = f" ({esc.text(policy.rule_id)})" if policy.rule_id else ""
        return f"{policy.action} by policy{rule}"
    return "-"


def _expired_who(execution: ToolExecution) -> str:
    kind = execution.decision.kind if execution.decision is not None else "-"
    return f"{kind} by fallback (request expired)"


def _requests_text(
    requests: list[RequestRecord],
    expired: Mapping[str, ToolExecution],
    esc: Escaper,
    lay: Layout,
) -> str:
    if not requests:
        return "Requests: none"
    ids = short_ids([r.request_id for r in requests], REQUEST)
    rows = [
        [
            r.request_id if lay.wide else ids[r.request_id],
            r.kind,
            esc.tool(r.tool_name),
            esc.json(_request_field(r, "tool_args")),
            r.status,
            decision_text(r.decision, esc),
            r.approver or "-",
            r.decided_by or "-",
        ]
        for r in requests
    ]
    headers = ["REQUEST", "KIND", "TOOL", "ARGS", "STATUS", "DECISION", "APPROVER", "DECIDED BY"]
    fitted = table(
        headers,
        rows,
        max_widths={"DECISION": _TEXT},
        esc=esc,
        layout=lay,
        flexible=("TOOL", "ARGS", "DECISION", "APPROVER", "DECIDED BY"),
        colors={"STATUS": state_color, "DECISION": state_color},
    )
    # Said in words as well: a cut DECISION column or a glance at STATUS can miss it.
    notes = [
        f"request {r.request_id if lay.wide else ids[r.request_id]} "
        + _fallback_text(expired[r.request_id])
        for r in requests
        if r.request_id in expired
    ]
    return f"Requests ({len(rows)})\n" + _indent("\n".join([fitted, *notes]))


def _events_text(
    events: list[EventRow], requests: Mapping[str, Request], esc: Escaper, lay: Layout
) -> str:
    if not events:
        return "Events: none"
    rows = [[e.seq, e.type, _event_summary(e, requests, esc)] for e in events]
    fitted = table(
        ["SEQ", "TYPE", "SUMMARY"],
        rows,
        max_widths={"SUMMARY": 120},
        esc=esc,
        layout=lay,
        flexible=("SUMMARY",),
    )
    return f"Events ({len(rows)})\n" + _indent(fitted)


def _loaded(records: list[RequestRecord]) -> dict[str, Request]:
    """The run's requests by id, for the events and the snapshot that name them by id (a
    row this afk cannot read is left out: what names it says so)."""
    from afk.approvals._rows import load_request

    found = {}
    for record in records:
        with contextlib.suppress(AfkError, ValueError):
            found[record.request_id] = load_request(record)
    return found


def _event_json(row: EventRow, requests: Mapping[str, Request]) -> dict[str, Any]:
    """The row, its payload the whole event (the stored one leaves out the row's columns and
    names its request by id)."""
    from afk.core.events import event_from_row, event_to_dict

    data = record_json(row)
    with contextlib.suppress(AfkError, ValueError):
        data["payload"] = event_to_dict(event_from_row(row, requests))
    return data


def _event_summary(row: EventRow, requests: Mapping[str, Request], esc: Escaper) -> str:
    from afk.cli._render import render  # lazy: it loads every event type
    from afk.core.events import event_from_row

    try:
        data = json.loads(row.payload)
        event = event_from_row(row, requests)
    except (AfkError, ValueError):
        return "(payload unreadable by this afk version)"
    if event.type == "llm_called":
        model = esc.text(data.get("model"))
        return f"model {model} called with {esc.text(data.get('message_count'))} messages"
    return render(event, esc) or "-"


def _request_field(record: RequestRecord, name: str) -> Any:
    try:
        return json.loads(record.request).get(name)
    except (ValueError, AttributeError):
        return None


def _indent(text: str) -> str:
    return "\n".join("  " + line if line else line for line in text.splitlines())


__all__ = [
    "RUN_STATUSES",
    "next_page_line",
    "positive_int",
    "register",
    "run_list",
    "run_show",
]
