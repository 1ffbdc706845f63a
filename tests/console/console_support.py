"""A database agent whose drops wait for a human, paused in a store, and tokens for it."""

from __future__ import annotations

from typing import Any

import httpx
from dba_support import add_token, agent, drop_table, executed  # noqa: F401

from afk.agents import PolicyEngine, PolicyRule
from afk.console import app
from afk.core import Runner, RunnerConfig
from afk.store import RunStore
from afk.store.store import TokenRecord


def policy(**rule: Any) -> PolicyEngine:
    return PolicyEngine(
        [
            PolicyRule(
                "gate-drops",
                tool="drop_*",
                action="request_approval",
                reason="Dropping a table needs a human.",
                **rule,
            )
        ]
    )


def runner(store_url: str, *, timeout_s: float | None = None, **rule: Any) -> Runner:
    config = RunnerConfig(interaction_mode="external", approval_timeout_s=timeout_s)
    return Runner(policy(**rule), config=config, store=store_url)


async def paused(run: Runner, table: str = "old_logs") -> str:
    """A paused run's one request id."""
    result = await run.run(agent(), user_message=table)
    assert result.state == "paused", result
    return result.pending_requests[0].request_id


async def mint(
    store: RunStore, who: str, *, expires_at: float | None = None
) -> tuple[str, TokenRecord]:
    """A token for ``who``: its secret and its record."""
    return await add_token(store, who, expires_at=expires_at)


def client(store: RunStore) -> httpx.AsyncClient:
    """A client of the console app over ASGI (no socket; its lifespan does not run)."""
    transport = httpx.ASGITransport(app=app(store=store))
    return httpx.AsyncClient(transport=transport, base_url="http://console")


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}
