"""The database agent the console, inbox and channel tests share: its drops wait for a human
(their policies say so), and ``executed`` records each table actually dropped; API tokens
minted straight into a store; and what a read must not change (``store_contents``)."""

from __future__ import annotations

import time
from typing import Any

from afk.agents import Agent
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
    """The agent: it drops the table its user message names, then reports."""
    return Agent("dba", FunctionModel(_model, name="dba"), "You drop tables.", tools=[drop_table])


async def add_token(
    store: RunStore, who: str, *, expires_at: float | None = None
) -> tuple[str, TokenRecord]:
    """An API token for ``who`` in ``store``: its secret and its record."""
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


async def store_contents(store: RunStore) -> Any:
    """Everything a read could change: rows (with their status and deadlines), the ledger."""
    requests = await store.list_requests(status=None, limit=1000)
    runs = await store.list_runs(limit=1000)
    tokens = await store.list_tokens(limit=1000)
    return list(requests), list(runs), tokens, await store.list_log(), await store.last_log_id()
