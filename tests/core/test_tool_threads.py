"""The worker threads sync tools run in (afk.tools._threads): what asyncio.to_thread gave them,
kept — the caller's context, bodies side by side, a job given up before it starts never runs,
and an exception (even a BaseException) reaches the caller."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from afk.tools import _threads
from afk.tools._threads import run_in_thread

REQUEST = contextvars.ContextVar("REQUEST", default="none")


async def test_a_body_runs_off_the_loop_in_a_copy_of_the_callers_context():
    REQUEST.set("req-7")

    def body() -> tuple[str, int]:
        seen = REQUEST.get()
        REQUEST.set("changed in the body")  # a copy: the caller's value stays
        return seen, threading.get_ident()

    seen, thread = await run_in_thread(body, {})
    assert seen == "req-7"
    assert thread != threading.get_ident()
    assert REQUEST.get() == "req-7"


async def test_bodies_run_side_by_side():
    # Each waits for the other: run one after the other, both would time out.
    both = threading.Barrier(2, timeout=5.0)

    def meet(name: str) -> str:
        both.wait()
        return name

    results = await asyncio.gather(
        run_in_thread(meet, {"name": "a"}), run_in_thread(meet, {"name": "b"})
    )
    assert results == ["a", "b"]


async def test_exceptions_reach_the_caller():
    def fails(kind: type[BaseException]) -> None:
        raise kind("from the body")

    with pytest.raises(ValueError, match="from the body"):
        await run_in_thread(fails, {"kind": ValueError})
    with pytest.raises(KeyboardInterrupt):
        await run_in_thread(fails, {"kind": KeyboardInterrupt})


async def test_a_job_given_up_before_it_starts_never_runs():
    hold = threading.Event()
    started = threading.Event()
    ran: list[str] = []

    def blocker() -> None:
        started.set()
        hold.wait(timeout=5.0)

    def record() -> None:
        ran.append("ran")

    # Every worker holds a blocker (the queue is first in, first out): the next job waits.
    busy = [run_in_thread(blocker, {}) for _ in range(_threads._WORKERS._cap)]
    await asyncio.to_thread(started.wait, 5.0)
    queued = run_in_thread(record, {})
    queued.cancel()
    hold.set()
    await asyncio.gather(*busy)
    await asyncio.sleep(0.05)
    assert ran == []
    assert queued.cancelled()
