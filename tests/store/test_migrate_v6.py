"""A store at schema 5 (one row per event, each request carrying its tool schema) is
migrated by setup: its events and requests read back as they were, its paused runs resume,
its ledger verifies and its listings page."""

from __future__ import annotations

import json
from typing import Any

from store_support import Backend, to_v7

from afk.agents import Agent, ApprovalDecision, PolicyEngine, PolicyRule
from afk.audit.verify import verify
from afk.core import Runner, RunnerConfig
from afk.llms import FunctionModel, ModelResponse, ToolCall, ToolMessage, UserMessage
from afk.store import _packed as pk
from afk.store import _seal as s
from afk.store._common import STORE_SCHEMA_VERSION
from afk.store.store import EventRow, RequestRecord, RunStore
from afk.tools import tool

RAN: list[str] = []
POLICY = PolicyEngine(
    [PolicyRule("refunds", condition=lambda e: e.tool_name == "refund", action="request_approval")]
)
EXTERNAL = RunnerConfig(interaction_mode="external")
ANN = ApprovalDecision(kind="allow", approver="ann")


@tool
def refund(order: str, amount: int) -> str:
    """Refund an order."""
    RAN.append(order)
    return f"refunded {amount} on {order}"


def _model(messages: list[Any], tools: list[Any]) -> Any:
    order = next(m.content for m in messages if isinstance(m, UserMessage))
    if not any(isinstance(m, ToolMessage) for m in messages):
        return ToolCall("refund", {"order": order, "amount": 250})
    return ModelResponse(text=f"{order}: done")


def agent() -> Agent:
    return Agent(
        "billing", FunctionModel(_model, name="billing-model"), "You refund.", tools=[refund]
    )


def url_of(backend: Backend) -> str:
    if backend.name == "sqlite":
        return f"sqlite:///{backend.location}"
    return f"{backend.location}?afk_schema={backend.schema}"


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


async def to_v5(backend: Backend, events: list[EventRow], requests: list[RequestRecord]) -> None:
    """Rewrite the store as afk wrote it at store schema 5."""
    await to_v7(backend)  # text columns, as every store before 8 held them
    t, real = backend.table, "REAL" if backend.name == "sqlite" else "DOUBLE PRECISION"
    statements = [
        f"CREATE TABLE {t('events')} (run_id TEXT NOT NULL, seq BIGINT NOT NULL, "
        f"type TEXT NOT NULL, payload TEXT NOT NULL, ts {real} NOT NULL, "
        "PRIMARY KEY (run_id, seq))",
        *(
            f"INSERT INTO {t('events')} VALUES ({literal(e.run_id)}, {e.seq}, "
            f"{literal(e.type)}, {literal(e.payload)}, {e.ts!r})"
            for e in events
        ),
        f"DROP TABLE {t('event_batches')}",
        *(
            f"UPDATE {t('requests')} SET request = {literal(q.request)} "
            f"WHERE request_id = {literal(q.request_id)}"
            for q in requests
        ),
        f"DROP TABLE {t('tool_schemas')}",
        f"ALTER TABLE {t('requests')} DROP COLUMN schema_id",
        f"ALTER TABLE {t('requests')} DROP COLUMN schema_at",
        f"UPDATE {t('meta')} SET value = '5' WHERE key = 'store_schema_version'",
    ]
    for sql in statements:
        await backend.execute(sql)


async def contents(store: RunStore, run_ids: list[str]) -> tuple[list[Any], list[Any]]:
    events = [e for run_id in run_ids for e in await store.list_events(run_id)]
    return events, list(await store.list_requests(status=None))


async def test_a_v5_store_migrates_and_its_runs_resume_verify_and_page(backend: Backend) -> None:
    RAN.clear()
    async with Runner(POLICY, config=EXTERNAL, store=url_of(backend)) as runner:
        paused = [await runner.run(agent(), user_message=f"order-{i}") for i in range(3)]
        assert all(p.state == "paused" for p in paused)
        first = paused[0].pending_requests[0].request_id
        await runner.resolve(first, ANN)  # one decided before the upgrade
        assert runner.store is not None
        run_ids = [p.run_id for p in paused]
        events, requests = await contents(runner.store, run_ids)
    assert '"tool_schema":{' in next(iter(requests)).request  # there is a schema to move
    await to_v5(backend, events, requests)
    v5 = await backend.rows(f"SELECT count(*), min(seq) FROM {backend.table('events')}")
    assert v5 == [(len(events), 1)]

    async with Runner(POLICY, config=EXTERNAL, store=url_of(backend)) as runner:
        store = runner.store
        assert store is not None
        await store.setup()  # what the runner's first store call does: it migrates
        [(version,)] = await backend.rows(
            f"SELECT value FROM {backend.table('meta')} WHERE key = 'store_schema_version'"
        )
        assert version == str(STORE_SCHEMA_VERSION) == "10"
        assert await contents(store, run_ids) == (events, requests)
        assert all(s.record_ok(store.keys, q) for q in requests)
        stored = await backend.rows(f"SELECT request FROM {backend.table('requests')}")
        assert all(pk.is_packed(text) for (text,) in stored)  # then packed (schema 8)
        inline = [text for (text,) in stored if '"type":' in pk.unpack("request", text)]
        assert inline == []  # every schema moved out
        assert len(await backend.rows(f"SELECT * FROM {backend.table('tool_schemas')}")) == 1
        old = "SELECT count(*) FROM sqlite_master WHERE name = 'events'"
        if backend.name == "postgres":
            old = f"SELECT count(*) FROM pg_tables WHERE tablename = 'events' AND schemaname = '{backend.schema}'"  # noqa: E501
        assert await backend.rows(old) == [(0,)]
        assert (await verify(store)).ok
        page = await store.list_requests(status=None, limit=2)
        rest = await store.list_requests(status=None, limit=2, cursor=page.next_cursor)
        assert [q.request_id for q in [*page, *rest]] == [q.request_id for q in requests]
        for result in paused[1:]:
            await runner.resolve(result.pending_requests[0].request_id, ANN)
        done = [await runner.resume(run_id, agent()) for run_id in run_ids]
        assert [d.state for d in done] == ["completed"] * 3, [d.error for d in done]
        assert sorted(RAN) == ["order-0", "order-1", "order-2"]
        last = max(e.seq for e in events if e.run_id == run_ids[0])
        after = await store.list_events(run_ids[0], after_seq=last)
        assert after and after[0].seq == last + 1  # appended after the migrated history
        assert json.loads(after[-1].payload)
        assert (await verify(store)).ok
