"""A database agent whose drops wait for a human, paused in a store, and tokens for it."""

from __future__ import annotations

import time
from typing import Any

import httpx

from afk.agents import Agent, PolicyEngine, PolicyRule
from afk.console import app
from afk.core import Runner, RunnerConfig
from afk.llms import FunctionModel, ModelResponse, ToolCall, ToolMessage, UserMessage
from afk.store import RunStore
from afk.store import _tokens as tk
from afk.store.store import TokenRecord
from afk.tools import tool

executed: list[str] = []


@tool
def drop_table(name: str) -> str:
    """Drop a table.

    Args:
        name: The table to drop.
    """
    executed.append(name)
    return f"dropped {name}"


def _model(messages: list[Any], tools: list[Any]) -> Any:
    table = next(m.content for m in messages if isinstance(m, UserMessage))
    done = [m for m in messages if isinstance(m, ToolMessage)]
    if not done:
        return ToolCall("drop_table", {"name": table})
    return ModelResponse(text=done[-1].content)


def agent() -> Agent:
    return Agent("dba", FunctionModel(_model, name="dba"), "You drop tables.", tools=[drop_table])


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
    token_id = tk.new_token_id()
    secret = tk.new_secret(token_id)
    record = TokenRecord(
        token_id=token_id,
        principal_id=who,
        secret_hash=tk.secret_hash(secret),
        created_at=time.time(),
        expires_at=expires_at,
    )
    await store.add_token(record)
    return secret, record


def client(store: RunStore) -> httpx.AsyncClient:
    """A client of the console app over ASGI (no socket; its lifespan does not run)."""
    transport = httpx.ASGITransport(app=app(store=store))
    return httpx.AsyncClient(transport=transport, base_url="http://console")


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}
