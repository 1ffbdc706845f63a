"""The LangGraph side of benchmarks/bench_resume_peers.py: the refund agent as a graph whose
gate node calls ``interrupt()`` before the tool (LangGraph's human-in-the-loop idiom), over a
durable checkpointer: ``SqliteSaver`` on a file, or ``PostgresSaver`` in a given schema.

The idiomatic flavours: sync ``invoke`` over ``SqliteSaver`` / ``PostgresSaver``, and
``ainvoke`` over ``AsyncSqliteSaver`` / ``AsyncPostgresSaver``, both in LangGraph's default
``durability="async"``; and sync ``invoke`` with ``durability="sync"``. The benchmark times
all three and compares afk with the fastest. The resume is
``graph.invoke(Command(resume="allow"), config)``: LangGraph stores no decision of its own,
the resume value *is* the decision, written with the next checkpoint.

Run as a child (``python langgraph_durable_peer.py sync|async STORE THREAD_ID``) it opens the
store, resumes one paused thread and prints, as JSON, ``perf_counter()`` just before it opens
the store, just before the resume call, and at the tool body's start (the parent compares
them with its spawn time).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import Command
from langgraph_peer import gate, route  # the same interrupt gate and routing

TOOL_STARTS: list[float] = []  # perf_counter() at the start of each refund body


def refund(order: str, amount: int) -> str:
    TOOL_STARTS.append(time.perf_counter())
    return f"refunded {amount} on {order}"


class State(TypedDict):
    messages: Annotated[list[Any], add_messages]


def _model(state: State) -> dict[str, Any]:
    # The scripted model: ask for the refund, then say it is done once the tool answered.
    messages = state["messages"]
    order = messages[0].content
    if any(isinstance(m, ToolMessage) for m in messages):
        return {"messages": [AIMessage(content=f"{order}: done")]}
    call = {"name": "refund", "args": {"order": order, "amount": 250}, "id": uuid.uuid4().hex}
    return {"messages": [AIMessage(content="", tool_calls=[call])]}


def _tools(state: State) -> dict[str, Any]:
    call = state["messages"][-1].tool_calls[0]
    output = refund(**call["args"])
    return {"messages": [ToolMessage(content=output, tool_call_id=call["id"])]}


def graph(checkpointer: Any) -> Any:
    builder = StateGraph(State)
    builder.add_node("model", _model)
    builder.add_node("gate", gate)
    builder.add_node("tools", _tools)
    builder.add_edge(START, "model")
    builder.add_conditional_edges("model", route, ["gate", END])
    builder.add_edge("tools", "model")
    return builder.compile(checkpointer=checkpointer)


def postgres_url(dsn: str, schema: str) -> str:
    """``dsn`` with its search_path set to ``schema`` (PostgresSaver uses unqualified names)."""
    sep = "&" if "?" in dsn else "?"
    return f"{dsn}{sep}options=-csearch_path%3D{schema}"


@contextmanager
def saver(store: str, *, set_up: bool = True) -> Iterator[Any]:
    """``sqlite:PATH`` or ``postgres:URL``: the checkpointer (its tables set up when
    ``set_up``)."""
    kind, _, where = store.partition(":")
    if kind == "sqlite":
        from langgraph.checkpoint.sqlite import SqliteSaver

        # As SqliteSaver.from_conn_string opens it (PRAGMA synchronous stays FULL, like afk's).
        conn = sqlite3.connect(where, check_same_thread=False)
        try:
            yield _set_up(SqliteSaver(conn), set_up)
        finally:
            conn.close()
    elif kind == "postgres":
        from langgraph.checkpoint.postgres import PostgresSaver

        with PostgresSaver.from_conn_string(where) as pg:
            yield _set_up(pg, set_up)
    else:
        raise ValueError(f"store must start with sqlite: or postgres:, got {store!r}")


def _set_up(checkpointer: Any, set_up: bool) -> Any:
    if set_up:
        checkpointer.setup()
    return checkpointer


@asynccontextmanager
async def asaver(store: str, *, set_up: bool = True) -> AsyncIterator[Any]:
    """The async counterpart of :func:`saver` (``AsyncSqliteSaver`` / ``AsyncPostgresSaver``)."""
    kind, _, where = store.partition(":")
    if kind == "sqlite":
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        async with AsyncSqliteSaver.from_conn_string(where) as lite:
            if set_up:
                await lite.setup()
            yield lite
    elif kind == "postgres":
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        async with AsyncPostgresSaver.from_conn_string(where) as pg:
            if set_up:
                await pg.setup()
            yield pg
    else:
        raise ValueError(f"store must start with sqlite: or postgres:, got {store!r}")


def pause(app: Any, order: str) -> dict[str, Any]:
    """A fresh thread run until its interrupt; its config."""
    config = {"configurable": {"thread_id": uuid.uuid4().hex}}
    first = app.invoke({"messages": [HumanMessage(content=order)]}, config)
    assert "__interrupt__" in first, first
    return config


def resume(app: Any, config: dict[str, Any], durability: str | None = None) -> None:
    """``durability=None`` is LangGraph's default, ``"async"``: a step's checkpoint is written
    while the next step runs; ``"sync"`` writes it before the next step starts."""
    done = app.invoke(Command(resume="allow"), config, durability=durability)
    assert done["messages"][-1].content.endswith(": done"), done


async def apause(app: Any, order: str) -> dict[str, Any]:
    config = {"configurable": {"thread_id": uuid.uuid4().hex}}
    first = await app.ainvoke({"messages": [HumanMessage(content=order)]}, config)
    assert "__interrupt__" in first, first
    return config


async def aresume(app: Any, config: dict[str, Any]) -> None:
    done = await app.ainvoke(Command(resume="allow"), config)
    assert done["messages"][-1].content.endswith(": done"), done


def _child(mode: str, store: str, thread_id: str) -> None:
    # Marks: before the store is opened (as afk's child marks before its Runner: both then
    # include connecting and any set-up check), and just before the resume call. No
    # setup() (the parent made the tables, as a deployment would); SqliteSaver still runs
    # its own on first use.
    config = {"configurable": {"thread_id": thread_id}}
    marks = {"open": time.perf_counter()}
    if mode == "sync":
        with saver(store, set_up=False) as checkpointer:
            app = graph(checkpointer)
            marks["call"] = time.perf_counter()
            resume(app, config)
    else:

        async def main() -> None:
            async with asaver(store, set_up=False) as checkpointer:
                app = graph(checkpointer)
                marks["call"] = time.perf_counter()
                await aresume(app, config)

        asyncio.run(main())
    print(json.dumps({**marks, "tool_start": TOOL_STARTS[0]}))


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2], sys.argv[3])
