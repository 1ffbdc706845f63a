"""The pending list by expiry (store schema 9, afk.store._listing) on both backends: soonest
deadline first across pages, filtered by tool, rule and agent (alone and combined), a row
whose rule or agent column was edited in SQL left out, typed errors for what the listing
cannot answer, and a v8 store's real paused runs backfilled by setup."""

from __future__ import annotations

import json
from typing import Any

import pytest
from store_support import Backend, request, run, to_v8
from test_migrate_v6 import ANN, EXTERNAL, POLICY, RAN, agent, url_of

from afk.core import Runner
from afk.errors import ConfigurationError
from afk.store import _seal as s
from afk.store._common import STORE_SCHEMA_VERSION
from afk.store.store import RequestRecord, RunStore

TOOLS = ("drop_table", "refund", "send_email")


def _request(i: int, *, expires: float, status: str = "pending") -> RequestRecord:
    tool, rule, agent_name = TOOLS[i % 3], f"rule-{i % 2}", f"agent-{i % 4}"
    body = {"request_id": f"q{i:02d}", "tool_name": tool, "rule_id": rule, "agent_name": agent_name}
    return request(
        f"q{i:02d}",
        "run-1",
        request=json.dumps(body),
        tool_name=tool,
        expires_at=expires,
        created_at=100.0 + i,
        status=status,
    )


async def _fill(store: RunStore, n: int = 24) -> list[RequestRecord]:
    # Deadlines out of creation order, with ties; every fifth one already decided.
    made = [
        _request(i, expires=1000.0 + (i * 7) % 11, status="decided" if i % 5 == 4 else "pending")
        for i in range(n)
    ]
    await store.save_run(run("run-1"), requests=made)
    return made


async def _walk(store: RunStore, limit: int, **filters: Any) -> tuple[list[str], list[int]]:
    ids: list[str] = []
    sizes: list[int] = []
    cursor = None
    while True:
        page = await store.list_requests(
            limit=limit, cursor=cursor, order="expires", status="pending", **filters
        )
        ids += [r.request_id for r in page]
        sizes.append(len(page))
        if page.next_cursor is None:
            return ids, sizes
        cursor = page.next_cursor


def _expected(made: list[RequestRecord], **want: str) -> list[str]:
    def keep(r: RequestRecord) -> bool:
        body = json.loads(r.request)
        return r.status == "pending" and all(
            body[{"tool": "tool_name", "rule": "rule_id", "agent": "agent_name"}[k]] == v
            for k, v in want.items()
        )

    return [
        r.request_id for r in sorted(filter(keep, made), key=lambda r: (r.expires_at, r.request_id))
    ]


async def test_pending_requests_soonest_deadline_first_across_pages(store: RunStore) -> None:
    made = await _fill(store)
    ids, sizes = await _walk(store, 4)
    assert ids == _expected(made)
    assert sizes[:-1] == [4] * (len(sizes) - 1)
    records = list(await store.list_requests(order="expires", limit=100))
    assert all(s.record_ok(store.keys, r) for r in records)


@pytest.mark.parametrize(
    "want",
    [{"tool": "refund"}, {"rule": "rule-1"}, {"agent": "agent-2"}],
    ids=["tool", "rule", "agent"],
)
async def test_each_filter(store: RunStore, want: dict[str, str]) -> None:
    made = await _fill(store)
    ids, _ = await _walk(store, 3, **want)
    assert ids == _expected(made, **want) and ids


async def test_combined_filters_page(store: RunStore) -> None:
    made = await _fill(store, 48)
    for want in (
        {"tool": "refund", "rule": "rule-1"},
        {"tool": "drop_table", "agent": "agent-0"},
        {"rule": "rule-0", "agent": "agent-2", "tool": "send_email"},
    ):
        ids, _ = await _walk(store, 2, **want)
        assert ids == _expected(made, **want) and ids, want
    assert await _walk(store, 2, tool="refund", agent="nobody") == ([], [0])


async def test_one_runs_requests_by_expiry(store: RunStore) -> None:
    made = await _fill(store, 10)
    page = await store.list_requests(run_id="run-1", status=None, order="expires", limit=100)
    assert [r.request_id for r in page] == [
        r.request_id for r in sorted(made, key=lambda r: (r.expires_at, r.request_id))
    ]


async def test_a_column_edited_in_sql_lists_nothing_it_claims(
    store: RunStore, backend: Backend
) -> None:
    await _fill(store, 6)
    table = backend.table("requests")
    # q01 is rule-1 and agent-1 in its (MAC-covered) JSON; its columns now say otherwise.
    await backend.execute(
        f"UPDATE {table} SET rule_id = 'rule-0', agent_name = 'agent-0' WHERE request_id = 'q01'"
    )
    ids, _ = await _walk(store, 10, rule="rule-0")
    assert "q01" not in ids
    ids, _ = await _walk(store, 10, agent="agent-0")
    assert "q01" not in ids
    ids, _ = await _walk(store, 10, rule="rule-1")
    assert "q01" not in ids  # its column no longer finds it either: it only chose rows
    assert "q01" in (await _walk(store, 10))[0]  # the unfiltered list still shows it


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"order": "newest"}, "order"),
        ({"order": "expires", "status": "decided"}, "status"),
        ({"tool": "refund"}, "tool"),
        ({"order": "expires", "rule": ""}, "rule"),
        ({"order": "expires", "agent": "a", "run_id": "run-1"}, "agent"),
    ],
)
async def test_what_the_listing_refuses(
    store: RunStore, kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigurationError, match=field):
        await store.list_requests(**kwargs)


async def test_a_cursor_belongs_to_its_filters(store: RunStore) -> None:
    await _fill(store)
    page = await store.list_requests(order="expires", tool="refund", limit=1)
    assert page.next_cursor is not None
    with pytest.raises(ConfigurationError, match="cursor"):
        await store.list_requests(order="expires", tool="drop_table", cursor=page.next_cursor)
    with pytest.raises(ConfigurationError, match="cursor"):
        await store.list_requests(cursor=page.next_cursor)


async def test_a_v8_store_is_backfilled(backend: Backend) -> None:
    RAN.clear()
    async with Runner(POLICY, config=EXTERNAL, store=url_of(backend)) as runner:
        paused = [await runner.run(agent(), user_message=f"order-{i}") for i in range(3)]
        await runner.resolve(paused[0].pending_requests[0].request_id, ANN)
    await to_v8(backend)
    async with Runner(POLICY, config=EXTERNAL, store=url_of(backend)) as runner:
        store = runner.store
        assert store is not None
        await store.setup()
        [(version,)] = await backend.rows(
            f"SELECT value FROM {backend.table('meta')} WHERE key = 'store_schema_version'"
        )
        assert version == str(STORE_SCHEMA_VERSION) == "10"
        rows = await backend.rows(f"SELECT rule_id, agent_name FROM {backend.table('requests')}")
        assert rows == [("refunds", "billing")] * 3
        pending = [r.request_id for r in await store.list_requests(order="expires", limit=10)]
        by_rule = await store.list_requests(order="expires", rule="refunds", agent="billing")
        assert [r.request_id for r in by_rule] == pending and len(pending) == 2
        assert all(s.record_ok(store.keys, r) for r in by_rule)
        for result in paused[1:]:
            await runner.resolve(result.pending_requests[0].request_id, ANN)
        done = [await runner.resume(p.run_id, agent()) for p in paused]
        assert [d.state for d in done] == ["completed"] * 3
        assert not await store.list_requests(order="expires", rule="refunds")
