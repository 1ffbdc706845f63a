"""The one hook the run loop calls: every event of a run, and its end.

The core knows only :class:`RunObserver`; logging is always on (it costs a dictionary
lookup per event when nothing listens), spans only when the runner was given ``tracing``.
An observer that raises is logged and ignored: telemetry never changes a run's outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from afk.observability._logging import LogObserver

if TYPE_CHECKING:
    from afk.core._setup import RunSetup
    from afk.core.events import Event

_log = logging.getLogger("afk.observability")


class RunObserver(Protocol):
    """Sees each event of one run as it is emitted (in the task that emits it)."""

    def on_event(self, event: Event) -> None:
        """Handle one event of the run, as it is emitted."""

    def close(self) -> None:
        """No more events in this process: the run ended, or it paused (external mode)."""

    def trace_context(self) -> dict[str, str]:
        """The W3C trace context (``traceparent``, maybe ``tracestate``) to store with the
        run, so the process that resumes it continues the same trace; empty without one."""


SpanFactory = Callable[["RunSetup"], RunObserver]


class _Observers:
    __slots__ = ("_observers", "_stored")

    def __init__(self, observers: tuple[RunObserver, ...], stored: dict[str, str]) -> None:
        self._observers = observers
        self._stored = stored

    def on_event(self, event: Event) -> None:
        for observer in self._observers:
            try:
                observer.on_event(event)
            except Exception:
                _log.warning("%s failed on %s", type(observer).__name__, event.type, exc_info=True)

    def close(self) -> None:
        for observer in self._observers:
            try:
                observer.close()
            except Exception:
                _log.warning("%s failed to close", type(observer).__name__, exc_info=True)

    def trace_context(self) -> dict[str, str]:
        # Without tracing in this process, the stored context is kept as it was: a run traced
        # where it started stays one trace when a process without tracing resumes it once.
        for observer in self._observers:
            try:
                found = observer.trace_context()
            except Exception:
                _log.warning("%s failed to give its trace context", type(observer).__name__)
                continue
            if found:
                return found
        return dict(self._stored)


def observe_run(setup: RunSetup) -> RunObserver:
    """The observer of one run: its log lines and, when the runner traces, its spans."""
    observers: list[RunObserver] = [LogObserver(setup)]
    if setup.tracing is not None:
        try:
            observers.append(setup.tracing(setup))
        except Exception:
            _log.warning("tracing is off for run %s", setup.run_id, exc_info=True)
    stored = setup.snapshot.trace_context if setup.snapshot is not None else {}
    if len(observers) == 1 and not stored:
        # The common case, on every event of every run: no layer in between. Logging
        # itself never raises into its caller (a failing handler is reported by logging).
        return observers[0]
    return _Observers(tuple(observers), stored)
