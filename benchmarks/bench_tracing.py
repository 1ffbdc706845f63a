"""What observability costs per run. Run: python benchmarks/bench_tracing.py

Prints one table: the CPU time the run observer takes for the events of one approved round
trip (model call, policy, approval, tool, model call: 11 events), fed to it directly, so the
number does not drown in the noise of a whole run; and that cost next to the round trip's
own median. Rows: the default observer (logging, nothing configured), INFO logging to a
handler, spans through the OpenTelemetry API alone (no SDK: non-recording spans), and spans
through the SDK with an in-memory exporter.
Target (2-core machine): the default observer < 1% of a round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from bench_core import GATE, _agent, _InstantApprover

from afk.core import Runner, RunnerConfig
from afk.observability import observe_run

N = 2000


def _runner(tracing: object = False) -> Runner:
    return Runner(
        policy_engine=GATE,
        interaction_provider=_InstantApprover(),
        config=RunnerConfig(interaction_mode="interactive"),
        tracing=tracing,
    )


async def _round_trip_us(runner: Runner) -> tuple[float, list[Any]]:
    agent = _agent()
    samples, events = [], []
    for i in range(N + 100):
        t0 = time.process_time()
        result = await runner.run(agent, user_message="go")
        if i >= 100:  # after a warm-up
            samples.append(time.process_time() - t0)
        events = list(result.events)
    return statistics.median(samples) * 1e6, events


async def _observer_us(runner: Runner, events: list[Any], after: Any = None) -> float:
    """CPU per run of observing ``events`` (a fresh observer per run, as the runner makes)."""
    setup = runner._setup(_agent(), "go", None, None, None)
    t0 = time.process_time()
    for _ in range(N):
        observer = observe_run(setup)
        for event in events:
            observer.on_event(event)
        observer.close()
        if after is not None:
            after()
    return (time.process_time() - t0) / N * 1e6


@contextlib.contextmanager
def _info_logging() -> Iterator[None]:
    handler = logging.StreamHandler(io.StringIO())
    afk_log = logging.getLogger("afk")
    afk_log.addHandler(handler)
    afk_log.setLevel(logging.INFO)
    try:
        yield
    finally:
        afk_log.removeHandler(handler)
        afk_log.setLevel(logging.NOTSET)


async def _rows() -> list[tuple[str, float]]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    round_trip, events = await _round_trip_us(_runner())
    rows = [("approved round trip (whole run, default observer)", round_trip)]
    rows.append(
        ("observer: default (logging, unconfigured)", await _observer_us(_runner(), events))
    )
    with _info_logging():
        rows.append(("observer: INFO logging to a handler", await _observer_us(_runner(), events)))
    rows.append(("observer: spans, API only (no SDK)", await _observer_us(_runner(True), events)))
    sdk = await _observer_us(_runner(provider), events, exporter.clear)
    rows.append(("observer: spans, SDK + in-memory exporter", sdk))
    return rows


def main() -> None:
    rows = asyncio.run(_rows())
    base = rows[0][1]
    print(f"{f'CPU per run (median / mean of {N})':<52} {'µs':>8} {'of run':>8}")
    for name, value in rows:
        print(f"{name:<52} {value:>8.1f} {value / base:>8.1%}")


if __name__ == "__main__":
    main()
