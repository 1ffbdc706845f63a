"""bench_core.py's scenario in LangGraph, for its LangGraph column (``pip install langgraph``).

The same run: a scripted model asks for ``drop_table(name="old_logs")``, a gate interrupts for
a human's approval, the approval resumes the graph, the sync tool runs, the model says "Done.".
LangGraph needs a checkpointer to interrupt; the in-process one (``InMemorySaver``) is its
counterpart of a run waiting in memory. Sync ``invoke``: LangGraph's fastest path.
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
import uuid
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import Command, interrupt


def drop_table(name: str) -> str:
    return f"dropped {name}"


class State(TypedDict):
    messages: Annotated[list[Any], add_messages]


def _model(state: State) -> dict[str, Any]:
    if any(isinstance(m, ToolMessage) for m in state["messages"]):
        return {"messages": [AIMessage(content="Done.")]}
    call = {"name": "drop_table", "args": {"name": "old_logs"}, "id": f"call_{uuid.uuid4().hex}"}
    return {"messages": [AIMessage(content="", tool_calls=[call])]}


def gate(state: State) -> Command[Any]:
    call = state["messages"][-1].tool_calls[0]
    answer = interrupt({"tool": call["name"], "args": call["args"]})
    return Command(goto="tools" if answer == "allow" else END)


def _tools(state: State) -> dict[str, Any]:
    call = state["messages"][-1].tool_calls[0]
    output = drop_table(**call["args"])
    return {"messages": [ToolMessage(content=output, tool_call_id=call["id"])]}


def route(state: State) -> str:
    return "gate" if state["messages"][-1].tool_calls else END


def graph() -> Any:
    builder = StateGraph(State)
    builder.add_node("model", _model)
    builder.add_node("gate", gate)
    builder.add_node("tools", _tools)
    builder.add_edge(START, "model")
    builder.add_conditional_edges("model", route, ["gate", END])
    builder.add_edge("tools", "model")
    return builder.compile(checkpointer=InMemorySaver())


def _pause(app: Any) -> dict[str, Any]:
    config = {"configurable": {"thread_id": uuid.uuid4().hex}}
    first = app.invoke({"messages": [HumanMessage(content="go")]}, config)
    assert "__interrupt__" in first
    return config


def _round_trip(app: Any) -> None:
    config = _pause(app)
    done = app.invoke(Command(resume="allow"), config)
    assert done["messages"][-1].content == "Done."


def round_trip_us(n: int) -> float:
    """Median µs of one approved round trip: invoke until the interrupt, resume to the end."""
    app = graph()
    for _ in range(50):
        _round_trip(app)
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        _round_trip(app)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e6


def waiting_bytes(n: int) -> float:
    """tracemalloc growth per run interrupted and waiting (held by the in-memory saver)."""
    app = graph()
    _round_trip(app)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    waiting = [_pause(app) for _ in range(n)]
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    assert len(waiting) == n
    return sum(s.size_diff for s in after.compare_to(before, "filename")) / n
