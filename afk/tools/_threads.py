"""The worker threads sync tool bodies run in, off the event loop.

A sync tool must never stall the loop (every other run and server on it), so its body runs
in a thread. ``asyncio.to_thread`` did that through ``concurrent.futures`` (a work item, a
second future chained to the loop's, two callbacks); a tool call only needs its job on a
``SimpleQueue`` and its result handed back with one ``call_soon_threadsafe``. Kept from
``to_thread``: the body runs in a copy of the caller's context (contextvars, e.g. a tracing
span), a job whose caller stopped waiting before it started never runs, at most
``min(32, cpu count + 4)`` bodies run at once (more wait their turn), and the interpreter
waits at exit for the bodies still running.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import os
import queue
import threading
from collections.abc import Callable, Mapping
from typing import Any

# The loop the result goes back to, the future it sets there, and the call in its context.
_Job = tuple[
    asyncio.AbstractEventLoop,
    "asyncio.Future[Any]",
    Callable[..., Any],
    Callable[..., Any],
    Mapping[str, Any],
]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    """On the loop: the job's outcome, unless its caller stopped waiting."""
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class _Workers:
    """A process-wide pool: threads start on demand, up to ``cap``, and then stay."""

    __slots__ = ("_cap", "_idle", "_jobs", "_lock", "_threads")

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._reset()

    def _reset(self) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting for a job
        self._threads: list[threading.Thread] = []

    def submit(self, job: _Job) -> None:
        with self._lock:
            if self._idle:
                self._idle -= 1
            elif len(self._threads) < self._cap:
                worker = threading.Thread(
                    target=self._work, name=f"afk-tool-{len(self._threads)}", daemon=True
                )
                self._threads.append(worker)
                worker.start()
        self._jobs.put(job)

    def _work(self) -> None:
        jobs = self._jobs
        while True:
            job = jobs.get()
            if job is None:
                return
            loop, future, run, fn, kwargs = job
            del job
            # Read across threads on purpose, as concurrent.futures does: a caller that
            # stopped waiting before the job started (cancelled, out of time) skips it.
            if not future.cancelled():
                try:
                    result, error = run(fn, **kwargs), None
                except BaseException as exc:  # handed to the caller, as to_thread does
                    result, error = None, exc
                # A closed loop raises RuntimeError: nobody waits for this outcome any more.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_settle, future, result, error)
                del result, error
            del loop, future, run, fn, kwargs
            with self._lock:
                self._idle += 1

    def join(self) -> None:
        """At interpreter exit: let the bodies still running finish, then stop the threads."""
        with self._lock:
            threads, self._threads, self._idle = self._threads, [], 0
        for _ in threads:
            self._jobs.put(None)
        for worker in threads:
            worker.join()


_WORKERS = _Workers(min(32, (os.cpu_count() or 1) + 4))  # asyncio's default executor's cap
atexit.register(_WORKERS.join)
if hasattr(os, "register_at_fork"):  # a forked child has none of its parent's threads
    os.register_at_fork(after_in_child=_WORKERS._reset)


def run_in_thread(fn: Callable[..., Any], kwargs: Mapping[str, Any]) -> asyncio.Future[Any]:
    """``fn(**kwargs)`` in a worker thread, in a copy of the current context; await the
    future for its result (cancelling it leaves a body already running to finish)."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    _WORKERS.submit((loop, future, contextvars.copy_context().run, fn, kwargs))
    return future
