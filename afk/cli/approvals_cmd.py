"""``afk approvals list|show|approve|deny`` and ``afk input``: answer what paused runs wait for.

Decisions go through :meth:`Runner.resolve`, so the command line gets exactly the checks of
the Python API: single use, expiry, schema validation of edited arguments, and a decision-log
entry for every refusal.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from afk.approvals.display import Escaper, escape, tool_label
from afk.approvals.principal import Principal
from afk.approvals.requests import ApprovalDecision, Decision, GrantSpec, UserInputDecision
from afk.canonical import strict_loads
from afk.cli._identity import cli_principal
from afk.cli._ids import REQUEST, RUN, resolve, short_ids
from afk.cli._output import (
    common_options,
    compact_json,
    decision_text,
    expires,
    fields,
    next_page_line,
    positive_int,
    pretty_json,
    print_json,
    record_json,
    relative,
    when,
    with_store,
)
from afk.errors import (
    AlreadyDecidedError,
    ConfigurationError,
    InteractionError,
    InvalidArgumentsError,
    InvalidDecisionError,
    RequestExpiredError,
)
from afk.store import RequestRecord, RunStore
from afk.store.store import RequestStatus

_EXIT_REFUSED = 1
_DECIDE_EPILOG = (
    "Exit status: 0 when recorded; 1 when the request is unknown, already decided (the first "
    "decision stands), expired, or the decision is refused (e.g. edited arguments the tool's "
    "schema rejects); 2 for usage or store errors. The run continues when a worker resumes it "
    "(afk worker / afk resume)."
)


_ID_HELP = "request id, or a unique prefix of it (at least 4 characters; 'req_' may be left out)"
_LIMIT_HELP = "at most N requests per page, 1 to 1000 (50)"
_CURSOR_HELP = (
    "start after an earlier page: the cursor its last line gave ('more: afk ... --cursor C'; "
    "printed on stderr with --json, whose stdout stays a JSON list)"
)


def register(subparsers: Any) -> None:
    """Add ``approvals`` (list, show, approve, deny) and ``input`` to ``afk``."""
    common = common_options()
    decider = argparse.ArgumentParser(add_help=False)
    decider.add_argument("--reason", metavar="TEXT", help="why; the run's model sees it")
    decider.add_argument(
        "--as",
        dest="approver",
        metavar="NAME",
        help="decide as NAME: only where the identities file ($AFK_IDENTITIES) maps your OS "
        "account to NAME or makes it an operator (default: your OS account)",
    )
    approvals = subparsers.add_parser(
        "approvals", help="list, inspect and decide the requests paused runs wait for"
    )
    commands = approvals.add_subparsers(
        dest="approvals_command", metavar="SUBCOMMAND", required=True
    )
    listing = commands.add_parser(
        "list", parents=[common], help="pending requests across runs, oldest first"
    )
    listing.add_argument("--all", action="store_true", help="every request, decided ones too")
    listing.add_argument("--limit", type=positive_int, default=50, metavar="N", help=_LIMIT_HELP)
    listing.add_argument("--cursor", metavar="C", help=_CURSOR_HELP)
    listing.add_argument(
        "--by-expiry", action="store_true", help="soonest deadline first (pending requests)"
    )
    for name in ("tool", "rule", "agent"):
        listing.add_argument(
            f"--{name}", metavar="NAME", help=f"only pending requests of this {name} (by expiry)"
        )
    listing.set_defaults(func=list_requests)
    show = commands.add_parser("show", parents=[common], help="everything about one request")
    show.add_argument("request", metavar="REQUEST", help=_ID_HELP)
    show.set_defaults(func=show_request)
    approve = commands.add_parser(
        "approve", parents=[common, decider], help="approve a request", epilog=_DECIDE_EPILOG
    )
    approve.add_argument("request", metavar="REQUEST", help=_ID_HELP)
    approve.add_argument(
        "--args",
        dest="edited_args",
        metavar="JSON",
        help="approve with these arguments instead (a JSON object, checked against the "
        "tool's schema); exactly these execute",
    )
    approve.add_argument(
        "--grant-scope",
        choices=("thread", "agent", "user"),
        help="also keep allowing this tool within this thread / agent / requesting user",
    )
    approve.add_argument(
        "--grant-for", type=float, metavar="SECONDS", help="how long the grant lasts"
    )
    approve.add_argument(
        "--grant-when",
        metavar="JSON",
        help='argument predicates later calls must match, e.g. \'{"amount": {"lte": 500}}\'',
    )
    approve.set_defaults(func=approve_request)
    deny = commands.add_parser(
        "deny", parents=[common, decider], help="deny a request", epilog=_DECIDE_EPILOG
    )
    deny.add_argument("request", metavar="REQUEST", help=_ID_HELP)
    deny.add_argument("--stop-run", action="store_true", help="also end the run")
    deny.set_defaults(func=deny_request)
    answer = subparsers.add_parser(
        "input",
        parents=[common, decider],
        help="answer a user-input request",
        description="Answer a request for user input with TEXT, or refuse it with --deny.",
        epilog=_DECIDE_EPILOG,
    )
    answer.add_argument("request", metavar="REQUEST", help=_ID_HELP)
    answer.add_argument("text", metavar="TEXT", nargs="?", help="the answer")
    answer.add_argument("--deny", action="store_true", help="refuse to answer")
    answer.add_argument("--stop-run", action="store_true", help="with --deny: end the run")
    answer.set_defaults(func=answer_input)


# -- reading -------------------------------------------------------------------------------
def list_requests(args: argparse.Namespace) -> int:
    """``afk approvals list``: pending requests (``--all``: every request), oldest first, a page at
    a time. Returns the exit status."""
    status: RequestStatus | None = None if args.all else "pending"
    filters = {"tool": args.tool, "rule": args.rule, "agent": args.agent}
    by_expiry = args.by_expiry or any(filters.values())  # the filters list by deadline
    records = with_store(
        args,
        lambda store: store.list_requests(
            status=status,
            limit=args.limit,
            cursor=args.cursor,
            order="expires" if by_expiry else "created",
            **filters,
        ),
    )
    again = [*(["--all"] if args.all else []), *(["--by-expiry"] if args.by_expiry else [])]
    again += [part for k, v in filters.items() if v for part in (f"--{k}", v)]
    more = next_page_line(args, ["approvals", "list", *again], records)
    if args.json:
        print_json([record_json(r) for r in records])
        if more:
            print(more, file=sys.stderr)
        return 0
    if not records:
        print("no requests" if args.all else "no pending requests")
        return 0
    print(_requests_table(records, args))
    if more:
        print(more)
    return 0


def _requests_table(records: Sequence[RequestRecord], args: argparse.Namespace) -> str:
    from afk.cli._table import layout, state_color, table  # here: only the list is a table

    lay = layout(args)
    headers = ["REQUEST", "RUN", "KIND", "TOOL", "ARGS", "RULE", "REASON", "EXPIRES"]
    if args.all:
        headers += ["STATUS", "DECISION", "APPROVER"]
    requests = short_ids([r.request_id for r in records], REQUEST)
    runs = short_ids([r.run_id for r in records], RUN)
    esc = Escaper()
    rows = []
    for r in records:
        request = _request(r)
        row = [
            r.request_id if lay.wide else requests[r.request_id],
            r.run_id if lay.wide else runs[r.run_id],
            "input" if r.kind == "user_input" else r.kind,
            esc.tool(r.tool_name),
            # Whole with --wide (and off a terminal); cut with "…" to fit one: `show` has them
            # exact, and exactly those execute if approved.
            esc.json(request.get("tool_args")),
            request.get("rule_id") or "-",
            request.get("reason") or "-",
            expires(r.expires_at) if r.status == "pending" else "-",
        ]
        if args.all:
            row += [r.status, decision_text(r.decision, esc), r.approver or "-"]
        rows.append(row)
    text = table(
        headers,
        rows,
        max_widths={"REASON": 60, "DECISION": 60},
        esc=esc,
        layout=lay,
        # Cut to fit, and when that is not enough left out, from the end of this list.
        flexible=("TOOL", "ARGS", "DECISION", "RULE", "REASON", "APPROVER"),
        colors={"STATUS": state_color, "DECISION": state_color},
    )
    return "\n".join([text, *lay.marker(esc)])


def show_request(args: argparse.Namespace) -> int:
    """``afk approvals show REQUEST``: everything an approver needs to decide one request. Returns
    the exit status (1 when there is no such request)."""

    async def work(store: RunStore) -> RequestRecord | None:
        return await store.get_request(await resolve(store, REQUEST, args.request) or args.request)

    record = with_store(args, work)
    if record is None:
        print(f"afk: no request with id {args.request!r}", file=sys.stderr)
        return _EXIT_REFUSED
    if args.json:
        print_json(record_json(record))
        return 0
    esc = Escaper()
    request = _request(record)
    head: list[tuple[str, object]] = [
        ("request", record.request_id),
        ("kind", record.kind),
        ("run", record.run_id),
        ("agent", request.get("agent_name") or "-"),
        ("step", request.get("step", "-")),
        ("tool", esc.tool(record.tool_name)),
    ]
    if record.kind == "user_input":
        target = request.get("input_target_arg")
        head += [
            ("prompt", request.get("prompt") or "-"),
            ("answer goes to", f"argument {target!r}" if target else "the model, as the result"),
        ]
    tail: list[tuple[str, object]] = [
        ("args digest", record.args_digest),
        ("rule", request.get("rule_id") or "-"),
        ("reason", request.get("reason") or "-"),
        ("created", when(record.created_at)),
        ("expires", when(record.expires_at)),
        ("status", record.status),
        ("decision", decision_text(record.decision, esc)),
        ("approver", record.approver or "-"),
        ("decided by", record.decided_by or "-"),
        ("decided at", when(record.decided_at)),
    ]
    if record.bound_digest and record.bound_digest != record.args_digest:
        tail.append(("approved digest", record.bound_digest))
    width = max(len(label) for label, _ in head + tail)
    print(fields(head, width=width, esc=esc))
    print("arguments")
    print(pretty_json(request.get("tool_args"), indent="  ", esc=esc))
    print(fields(tail, width=width, esc=esc))
    for line in esc.marker():
        print(line)
    return 0


# -- deciding ------------------------------------------------------------------------------
def approve_request(args: argparse.Namespace) -> int:
    """``afk approvals approve REQUEST``: allow the call, optionally with edited arguments or a
    standing grant, as the caller's principal. Returns the exit status."""
    edited = _edited_args(args.edited_args)
    decision = ApprovalDecision(
        kind="allow",
        reason=args.reason,
        approver=_approver(args),
        updated_tool_args=edited,
        grant=_grant(args),
    )
    return _decide(args, decision)


def _grant(args: argparse.Namespace) -> GrantSpec | None:
    if args.grant_scope is None:
        if args.grant_for is not None or args.grant_when is not None:
            raise ConfigurationError("--grant-for and --grant-when need --grant-scope")
        return None
    if args.grant_for is None or args.grant_for <= 0:
        raise ConfigurationError("--grant-scope needs --grant-for SECONDS (> 0)")
    when = _edited_args(args.grant_when) if args.grant_when else {}
    return GrantSpec(scope=args.grant_scope, until=time.time() + args.grant_for, when=when or {})


def deny_request(args: argparse.Namespace) -> int:
    """``afk approvals deny REQUEST``: refuse the call (``--stop-run`` ends the run too). Returns
    the exit status."""
    decision = ApprovalDecision(
        kind="deny", reason=args.reason, approver=_approver(args), stop_run=args.stop_run
    )
    return _decide(args, decision)


def answer_input(args: argparse.Namespace) -> int:
    """``afk input REQUEST TEXT`` (or ``--deny``): answer a user-input request. Returns the exit
    status; raises ConfigurationError when neither or both of TEXT and ``--deny`` are given."""
    if args.deny == (args.text is not None):
        raise ConfigurationError("give either the answer TEXT or --deny")
    if args.stop_run and not args.deny:
        raise ConfigurationError("--stop-run goes only with --deny")
    decision = UserInputDecision(
        kind="deny" if args.deny else "allow",
        value=args.text,
        reason=args.reason,
        approver=_approver(args),
        stop_run=args.stop_run,
    )
    return _decide(args, decision)


def _decide(args: argparse.Namespace, decision: Decision) -> int:
    # What Runner.resolve does once its store is ready (with_store readies it), without
    # importing the runner: a decision needs none of the run loop, its events or models.
    from afk.core._durable_api import resolve as decide_request

    principal = _principal(args)

    async def work(store: RunStore) -> RequestRecord | str:
        # An unknown id goes on as typed: the decision path reports it (and logs nothing).
        request_id = await resolve(store, REQUEST, args.request) or args.request
        try:
            await decide_request(store, request_id, decision, principal)
        except InteractionError as exc:
            return await _refusal(store, request_id, decision, exc)
        record = await store.get_request(request_id)
        assert record is not None  # it was just decided, or voted on
        return record

    outcome = with_store(args, work)
    if isinstance(outcome, str):
        print(f"afk: {outcome}", file=sys.stderr)
        return _EXIT_REFUSED
    if args.json:
        print_json(record_json(outcome))
        return 0
    tool = tool_label(outcome.tool_name) if outcome.tool_name else "model call"
    call = f"{tool} {compact_json(_request(outcome).get('tool_args'))}"
    if outcome.status == "pending":  # a vote towards a quorum
        quorum = _request(outcome).get("quorum", 1)
        print(f"{outcome.request_id} ({call}): vote recorded; it needs {quorum} approvers")
        return 0
    decided = decision_text(outcome.decision)
    print(f"{outcome.request_id} ({call}): {decided}, by {escape(outcome.approver or '?')}")
    print(f"run {outcome.run_id} continues when a worker resumes it (afk worker / afk resume)")
    return 0


async def _refusal(
    store: RunStore, request_id: str, decision: Decision, exc: InteractionError
) -> str:
    """A message for a refused decision, naming what stands instead; stored and typed text
    in it is escaped."""
    record = await store.get_request(request_id)
    if record is None:
        return f"no request with id {escape(repr(request_id))}"
    rid = escape(request_id)
    if isinstance(exc, AlreadyDecidedError) and record.decision is not None:
        who = escape(record.approver or record.decided_by or "?")
        return (
            f"request {rid} was already decided: {decision_text(record.decision)}, "
            f"by {who}, {relative(record.decided_at)}; the first decision stands"
        )
    if isinstance(exc, RequestExpiredError):
        fallback = f"; stored decision: {decision_text(record.decision)}" if record.decision else ""
        return (
            f"request {rid} expired {relative(record.expires_at)}; the run applies "
            f"its fallback when it resumes{fallback}"
        )
    if record.kind == "user_input" and isinstance(decision, ApprovalDecision):
        return f"request {rid} asks for input: answer it with afk input {rid} TEXT"
    if record.kind == "approval" and isinstance(decision, UserInputDecision):
        return f"request {rid} is an approval: use afk approvals approve/deny {rid}"
    if isinstance(exc, InvalidDecisionError):
        return f"refused: {escape(str(exc))} (the request is still {record.status})"
    return escape(str(exc))


def _edited_args(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:  # strict: NaN, Infinity and repeated keys are refused, not silently read
        value = strict_loads(text, what="--args")
    except InvalidArgumentsError as exc:
        raise ConfigurationError(f"--args is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ConfigurationError(
            f"--args must be a JSON object of argument name to value, got {type(value).__name__}"
        )
    return value


def _approver(args: argparse.Namespace) -> str:
    """The id the decision names; the vote itself is cast by :func:`_principal`."""
    return _principal(args).id


def _principal(args: argparse.Namespace) -> Principal:
    return cli_principal(args.approver)


def _request(record: RequestRecord) -> dict[str, Any]:
    try:
        data = json.loads(record.request)
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


__all__ = [
    "answer_input",
    "approve_request",
    "deny_request",
    "list_requests",
    "register",
    "show_request",
]
