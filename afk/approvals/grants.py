"""Standing grants: an approver's "allow, and keep allowing this" becomes a record that lets
later matching calls run without asking, until it expires or is revoked. Each use is counted
and logged."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypedDict

from afk.approvals.requests import ApprovalDecision, ApprovalRequest, Decision, Request
from afk.audit.entries import GrantCreated, GrantRevoked, GrantUsed, to_log
from afk.canonical import canonical_json
from afk.errors import GrantNotFoundError
from afk.store._seal import record_ok, tamper_log
from afk.store.store import GrantRecord, RunStore

if TYPE_CHECKING:
    from afk.store._paging import Page


def scope_values(*, thread_id: str | None, agent_name: str, user: str | None) -> dict[str, Any]:
    """The value a call has for each grant scope (``thread``, ``agent``, ``user``): a grant covers a
    call when its scope's value is the call's."""
    return {"thread": thread_id, "agent": agent_name, "user": user}


def grant_record(request: Request, decision: Decision) -> GrantRecord | None:
    """The grant an allow decision creates, if it asks for one."""
    if not isinstance(decision, ApprovalDecision) or decision.grant is None:
        return None
    assert isinstance(request, ApprovalRequest) and request.tool_name is not None
    spec = decision.grant
    values = scope_values(
        thread_id=request.thread_id, agent_name=request.agent_name, user=request.requested_by
    )
    deny = decision.kind == "deny"
    return GrantRecord(
        effect="deny" if deny else "allow",
        reason=(decision.reason or "denied by a standing grant") if deny else None,
        grant_id=f"grant_{request.request_id.removeprefix('req_')}",
        tool_name=request.tool_name,
        scope=spec.scope,
        scope_value=str(values[spec.scope]),
        when=canonical_json(spec.when),
        until=spec.until,
        created_by=decision.approver,
        created_at=time.time(),
        source_request_id=request.request_id,
    )


class _Named(TypedDict):
    request_id: str | None
    grant_id: str
    tool: str


def _named(grant: GrantRecord) -> _Named:
    """What every grant entry of the ledger says about its grant."""
    return {
        "request_id": grant.source_request_id,
        "grant_id": grant.grant_id,
        "tool": grant.tool_name,
    }


async def add_grant(store: RunStore, request: Request, decision: Decision) -> None:
    """Store the grant an allow ``decision`` asks for, with its ``grant_created`` ledger entry in
    the same transaction; nothing when the decision asks for no grant."""
    grant = grant_record(request, decision)
    if grant is not None:
        entry = GrantCreated(
            run_id=request.run_id,
            actor=grant.created_by,
            until=grant.until,
            effect="deny" if grant.effect == "deny" else None,
            at=time.time(),
            **_named(grant),
        )
        await store.add_grant(grant, log=[to_log(entry)])


def _covers(grant: GrantRecord, tool_name: str, values: dict[str, Any], args: Any) -> bool:
    if grant.tool_name != tool_name or values.get(grant.scope) != grant.scope_value:
        return False
    from afk.agents._matchers import compile_predicates

    return all(p.test(args) for p in compile_predicates(json.loads(grant.when), "when"))


class Grants:
    """A runner's grants: in its store when it has one, else in memory."""

    def __init__(self, store: RunStore | None) -> None:
        self.store = store
        self._memory: dict[str, GrantRecord] = {}

    async def add(self, request: Request, decision: Decision) -> None:
        """Record the grant an allow ``decision`` asks for (nothing when it asks for none): in the
        store with its ledger entry, else in memory."""
        if self.store is not None:
            await add_grant(self.store, request, decision)
            return
        grant = grant_record(request, decision)
        if grant is not None:
            self._memory.setdefault(grant.grant_id, grant)

    async def list(
        self,
        *,
        active_at: float | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[GrantRecord]:
        """Every grant, or with ``active_at`` only those neither revoked nor past ``until`` at that
        time; ``limit`` / ``cursor``: one page of them (``RunStore.list_grants``)."""
        if self.store is not None:
            return await self.store.list_grants(active_at=active_at, limit=limit, cursor=cursor)
        grants = list(self._memory.values())
        if active_at is not None:
            grants = [g for g in grants if g.revoked_at is None and g.until > active_at]
        from afk.store._paging import Page, page_of

        if limit is None and cursor is None:
            return Page(grants)
        from afk.store._approvals_sql import grant_key

        filters = ["active" if active_at is not None else "all"]
        return page_of(grants, grant_key, "grants", filters, limit=limit, cursor=cursor)

    async def revoke(self, grant_id: str, *, by: str | None) -> GrantRecord:
        """Stop grant ``grant_id`` from allowing calls, recording ``by`` and a ledger entry; returns
        the grant as stored. Revoking a revoked grant changes nothing. Raises GrantNotFoundError for
        an unknown id."""
        now = time.time()
        if self.store is not None:
            stored = await self.store.get_grant(grant_id)
            found = [stored] if stored is not None else []
            run_id = found[0].source_request_id or "" if found else ""
            log = [
                to_log(GrantRevoked(run_id=run_id, actor=by, at=time.time(), **_named(g)))
                for g in found[:1]
            ]
            return await self.store.revoke_grant(grant_id, by=by, now=now, log=log)
        grant = self._memory.get(grant_id)
        if grant is None:
            raise GrantNotFoundError(f"no grant with id {grant_id!r}")
        if grant.revoked_at is None:
            grant = dataclasses.replace(grant, revoked_at=now, revoked_by=by)
            self._memory[grant_id] = grant
        return grant

    async def use(
        self, tool_name: str, args: Any, values: dict[str, Any], *, run_id: str, call_id: str
    ) -> GrantRecord | None:
        """The first active grant covering this call, its use counted; None if none does. A
        deny grant comes before every allow grant: "never this" outranks "this is fine"."""
        if not self.store and not self._memory:
            return None
        now = time.time()
        for grant in sorted(await self._candidates(tool_name, values, now), key=_allow_last):
            # Checked before anything reads it: inserted, edited or un-revoked in the
            # database, a grant covers nothing (and every call it is offered to logs it).
            if self.store is not None and not record_ok(self.store.keys, grant):
                where = f"let grant {grant.grant_id} cover call {call_id}"
                await self.store.log_refusal(tamper_log(grant, where, run_id))
                continue
            if not _covers(grant, tool_name, values, args):
                continue
            if self.store is not None:
                used = GrantUsed(
                    run_id=run_id, tool_call_id=call_id, at=time.time(), **_named(grant)
                )
                if not await self.store.use_grant(grant.grant_id, now=now, log=[to_log(used)]):
                    continue  # revoked or expired a moment ago
            else:
                self._memory[grant.grant_id] = dataclasses.replace(grant, uses=grant.uses + 1)
            return grant
        return None

    async def _candidates(
        self, tool_name: str, values: dict[str, Any], now: float
    ) -> Sequence[GrantRecord]:
        """The active grants that may cover a call of ``tool_name`` with scope ``values``
        (oldest first): in the store, found by index, not by reading every grant."""
        if self.store is None:
            return [g for g in await self.list(active_at=now) if g.tool_name == tool_name]
        scoped = [v for v in values.values() if isinstance(v, str)]
        return await self.store.active_grants(tool_name, scope_values=scoped, now=now)


def _allow_last(grant: GrantRecord) -> bool:
    return grant.effect != "deny"


__all__ = [
    "Grants",
    "add_grant",
    "grant_record",
    "scope_values",
]
