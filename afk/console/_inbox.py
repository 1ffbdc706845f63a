"""What the web inbox's pages show, read from the store: the pending list and one request.

Reads only. Every row shown is checked against its MAC first (a row changed outside afk is
refused, never shown), and every untrusted string reaches the page through the templates'
escaping filters (afk.approvals.display), never raw.

Order: the store's pending listing by deadline, soonest first (expires_at, request_id),
filtered by tool, rule or agent in the store: one index range scan per page
(afk.store._listing).
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from afk.approvals._rows import load_decision, load_request
from afk.approvals.decide import eligible
from afk.approvals.requests import ApprovalRequest, Request
from afk.console._views import checked
from afk.store._procs import one
from afk.store._seal import record_ok
from afk.store.store import RequestRecord, RunStore, VoteRecord

PAGE = 50
IDENTICAL_SCAN = 2000  # pending rows searched for identical requests
COUNT_CAP = 10_000  # past it the page says "10,000+": an exact count costs O(pending)
_COUNT = "SELECT count(*) FROM (SELECT 1 FROM {t}requests WHERE status = 'pending' LIMIT ?) AS p"
_COUNT_RUN = (
    "SELECT count(*) FROM (SELECT 1 FROM {t}requests{by:requests_page_run_status} "
    "WHERE run_id = ? AND status = 'pending' LIMIT ?) AS p"
)
# The store's filter columns (afk.store._listing), in the order it picks their index.
_COLUMN = {"rule": "rule_id", "tool": "tool_name", "agent": "agent_name"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Filters:
    """The pending list's filters (None: any)."""

    tool: str | None = None
    run: str | None = None
    agent: str | None = None
    rule: str | None = None

    def matches(self, record: RequestRecord, request: Request) -> bool:
        """Whether a row passes the tool, rule and agent filters, read from the request
        itself (the store chose the rows by its columns; the run filter is the store's)."""
        if self.tool is not None and record.tool_name != self.tool:
            return False
        if self.rule is not None and request.rule_id != self.rule:
            return False
        return self.agent is None or request.agent_name == self.agent

    def query(self) -> dict[str, str]:
        """The filters as query parameters (for the next page's link)."""
        found = {"tool": self.tool, "run": self.run, "agent": self.agent, "rule": self.rule}
        return {k: v for k, v in found.items() if v}


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    """One pending request as the list shows it; ``identical``: how many rows of this page
    share its tool and arguments."""

    record: RequestRecord
    request: Request
    identical: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class InboxPage:
    """One page of the pending list."""

    rows: list[Row]
    next_cursor: str | None
    total_pending: int | None  # None: the store cannot count cheaply
    matching: int | None = None  # pending requests passing the filters (None: no filter)
    scanned: int  # rows the store returned for this page
    truncated: bool = False  # kept for the template: filters are the store's, never cut short


async def pending_count(store: RunStore, filters: Filters | None = None) -> int | None:
    """How many requests are pending (that pass ``filters``' tool, rule or agent, or are of
    its run), up to COUNT_CAP + 1 (more than COUNT_CAP: "at least"): one bounded scan of an
    index, through the store's own statement driver (both backends; the store has no count
    operation yet). None for a store without one. A count read from the rule and agent
    columns, which no MAC covers: it chooses nothing, the listed rows are checked."""
    run = getattr(store, "_run", None)
    if run is None:
        return None
    sql, args = (_COUNT, []) if filters is None else _filtered_count(filters)
    row = await run(one(sql, (*args, COUNT_CAP + 1)), tx=False)
    return int(row[0]) if row else None


def _filtered_count(filters: Filters) -> tuple[str, list[str]]:
    if filters.run is not None:
        return _COUNT_RUN, [filters.run]
    found = [(name, v) for name in _COLUMN if (v := getattr(filters, name)) is not None]
    index = f"requests_pending_{found[0][0]}" if found else "requests_pending_expires"
    where = "".join(f" AND {_COLUMN[c]} = ?" for c, _ in found)
    sql = (
        f"SELECT count(*) FROM (SELECT 1 FROM {{t}}requests{{by:{index}}} "
        f"WHERE status = 'pending'{where} LIMIT ?) AS p"
    )
    return sql, [v for _, v in found]


async def inbox_page(store: RunStore, filters: Filters, cursor: str | None) -> InboxPage:
    """The page of pending requests after ``cursor``, soonest deadline first, that pass
    ``filters``: the tool, rule and agent filters are the store's (each one index range
    scan, O(page)); a run's page is its pending requests (a run holds few), filtered here.
    Every row is checked against its MAC, and against its own JSON, before it is shown."""
    if filters.run is not None:
        page = await store.list_requests(
            run_id=filters.run, status="pending", order="expires", limit=PAGE, cursor=cursor
        )
    else:
        page = await store.list_requests(
            status="pending",
            order="expires",
            tool=filters.tool,
            rule=filters.rule,
            agent=filters.agent,
            limit=PAGE,
            cursor=cursor,
        )
    rows = []
    for record in page:
        checked(store, record)  # before reading it: a forged row is refused, not shown
        request = load_request(record)
        if filters.matches(record, request):
            rows.append(Row(record=record, request=request))
    return InboxPage(
        rows=_grouped(rows),
        next_cursor=page.next_cursor,
        total_pending=await pending_count(store),
        matching=await pending_count(store, filters) if filters.query() else None,
        scanned=len(page),
        truncated=False,
    )


def _grouped(rows: list[Row]) -> list[Row]:
    counts: dict[tuple[str | None, str], int] = {}
    for row in rows:
        key = (row.record.tool_name, row.record.args_digest)
        counts[key] = counts.get(key, 0) + 1
    return [
        Row(
            record=r.record,
            request=r.request,
            identical=counts[r.record.tool_name, r.record.args_digest],
        )
        for r in rows
    ]


# -- one request ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class Excerpt:
    """The conversation that led to a request: the last user message, and the assistant
    turn that made the call (its text and its calls)."""

    user: str | None = None
    assistant: str | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class Risk:
    """The platform's account of why this call waits: the rule that decided, every rule
    that matched, the policy's action, the call it matched on, and where that was read."""

    rule: str | None
    action: str | None
    matched: list[str]
    rule_reason: str | None
    source: str  # "ledger", "run snapshot", or "request only"
    mismatch: bool = False  # the record read names another rule than the request


@dataclass(frozen=True, slots=True, kw_only=True)
class Detail:
    """Everything the request page shows."""

    record: RequestRecord
    request: Request
    decision: Any  # the stored decision (an ApprovalDecision / UserInputDecision) or None
    votes: list[VoteRecord]
    eligible: tuple[str, ...] | None  # None: anyone authenticated
    identical: list[str]  # ids of the pending requests with this tool and these arguments
    excerpt: Excerpt
    risk: Risk
    now: float


async def detail(store: RunStore, record: RequestRecord) -> Detail:
    """The request page's facts for ``record`` (already read, checked here)."""
    checked(store, record)
    request = load_request(record)
    now = time.time()
    votes = [v for v in await store.list_votes(record.request_id) if record_ok(store.keys, v)]
    snapshot = await run_snapshot(store, record.run_id)
    return Detail(
        record=record,
        request=request,
        decision=load_decision(record) if record.decision else None,
        votes=votes,
        eligible=eligible(request, now),
        identical=await identical(store, record) if record.status == "pending" else [],
        excerpt=excerpt(snapshot, request.tool_call_id),
        risk=await risk(store, record, request, snapshot),
        now=now,
    )


async def identical(store: RunStore, record: RequestRecord) -> list[str]:
    """Pending approval requests with the same tool and arguments as ``record`` (it among
    them), in listing order: the keyed argument digest, compared, says "identical"."""
    if record.kind != "approval":
        return []
    found: list[str] = []
    scanned, cursor = 0, None
    while scanned < IDENTICAL_SCAN:
        page = await store.list_requests(status="pending", limit=1000, cursor=cursor)
        for other in page:
            same = other.tool_name == record.tool_name and other.args_digest == record.args_digest
            if same and other.kind == "approval" and record_ok(store.keys, other):
                found.append(other.request_id)
        scanned += len(page)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return found


async def run_snapshot(store: RunStore, run_id: str) -> dict[str, Any]:
    """The run's stored snapshot as JSON data ({} when it is missing or does not verify)."""
    run = await store.load_run(run_id)
    if run is None or not record_ok(store.keys, run):
        return {}  # shown as "no conversation": a run row that does not verify says nothing
    with contextlib.suppress(ValueError):
        data = json.loads(run.snapshot)
        return data if isinstance(data, dict) else {}
    return {}


def excerpt(snapshot: dict[str, Any], tool_call_id: str | None) -> Excerpt:
    """The last user message and the assistant turn holding ``tool_call_id`` (else the last
    assistant turn) from a run's stored messages."""
    messages = [m for m in snapshot.get("messages") or [] if isinstance(m, dict)]
    user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    turns = [m for m in messages if m.get("role") == "assistant"]
    turn = next(
        (m for m in reversed(turns) if any(c.get("id") == tool_call_id for c in _calls(m))),
        turns[-1] if turns else None,
    )
    return Excerpt(
        user=_text(user),
        assistant=_text(turn),
        calls=_calls(turn) if turn is not None else [],
    )


def _calls(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in message.get("tool_calls") or [] if isinstance(c, dict)]


def _text(message: dict[str, Any] | None) -> str | None:
    content = message.get("content") if message is not None else None
    return content if isinstance(content, str) else None


async def risk(
    store: RunStore, record: RequestRecord, request: Request, snapshot: dict[str, Any]
) -> Risk:
    """Why this call waits, from the policy's own records: its ledger entry for this call
    (same run, call id and keyed argument digest), else the paused run's stored policy
    decision; the request's rule alone when neither is found."""
    entry = await _ledger_policy(store, record, request)
    if entry is not None:
        return _risk_from(entry, "ledger", request, "rule", "matched")
    for call in (snapshot.get("pending_step") or {}).get("calls") or []:
        if isinstance(call, dict) and call.get("request_id") == record.request_id:
            policy = call.get("policy") or {}
            return _risk_from(policy, "run snapshot", request, "rule_id", "matched_rules")
    rule_reason = request.reason
    return Risk(
        rule=request.rule_id, action=None, matched=[], rule_reason=rule_reason, source="request"
    )


def _risk_from(
    data: dict[str, Any], source: str, request: Request, rule: str, matched: str
) -> Risk:
    found = data.get(rule)
    return Risk(
        rule=found if isinstance(found, str) else None,
        action=str(data.get("action")) if data.get("action") else None,
        matched=[str(m) for m in data.get(matched) or []],
        rule_reason=data.get("reason") if isinstance(data.get("reason"), str) else None,
        source=source,
        mismatch=found != request.rule_id,
    )


LEDGER_WINDOW = 2000  # entries read after the request's time before giving up
# The policy entry is stamped when the call was evaluated, just before the request opened,
# and committed with it; entries of other runs committed around it may be stamped a little
# out of id order. The search starts this much earlier to cover both.
MARGIN_S = 5.0


async def _ledger_policy(
    store: RunStore, record: RequestRecord, request: Request
) -> dict[str, Any] | None:
    """The ``policy_decision`` ledger entry for this call. The ledger has no index by run or
    request, but its ids follow commit order and the entry is written in the transaction
    that opens the request: a binary search on ids for the request's time, then a short
    forward scan (at most LEDGER_WINDOW entries) finds it."""
    if not isinstance(request, ApprovalRequest) or request.tool_call_id is None:
        return None
    start = await _first_id_at(store, record.created_at - MARGIN_S)
    read = 0
    while read < LEDGER_WINDOW:
        entries = await store.list_log(after_id=start, limit=500)
        for entry in entries:
            if entry.kind == "policy_decision" and entry.run_id == record.run_id:
                with contextlib.suppress(ValueError):
                    payload = json.loads(entry.payload)
                    if (
                        payload.get("tool_call_id") == request.tool_call_id
                        and payload.get("args_digest") == record.args_digest
                    ):
                        return payload if isinstance(payload, dict) else None
            if entry.kind == "request_opened" and entry.request_id == record.request_id:
                return None  # its policy entry comes before it, in the same transaction
        if len(entries) < 500:
            return None
        read += len(entries)
        start = entries[-1].id
    return None


async def _first_id_at(store: RunStore, at: float) -> int:
    """The id after which ledger entries are from ``at`` on (about: times of entries written
    by different processes interleave by a little, which MARGIN_S covers)."""
    low, high = 0, await store.last_log_id()
    while low < high:
        mid = (low + high) // 2
        found = await store.list_log(after_id=mid, limit=1)
        if not found or found[0].at >= at:
            high = mid
        else:
            low = found[0].id
    return low
