"""Helpers for the tracing tests: an in-memory span exporter and ways to read its spans."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

HERE = Path(__file__).parent


def last_line(code: str, *args: str) -> str:
    """Run ``code`` in a fresh interpreter (this folder importable); its last output line."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()[-1]


def memory_tracing() -> tuple[TracerProvider, InMemorySpanExporter]:
    """A tracer provider of the test's own (never the global one) and its exporter."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def named(spans: Iterable[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, f"expected one {name!r}, got {[s.name for s in spans]}"
    return found[0]


def children(spans: Iterable[ReadableSpan], parent: ReadableSpan) -> list[str]:
    """The names of ``parent``'s children, in start order."""
    mine = [s for s in spans if s.parent is not None and s.parent.span_id == _id(parent)]
    return [s.name for s in sorted(mine, key=lambda s: s.start_time or 0)]


def errors(spans: Iterable[ReadableSpan]) -> list[str]:
    return [s.name for s in spans if s.status.status_code is StatusCode.ERROR]


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def _id(span: ReadableSpan) -> int:
    assert span.context is not None
    span_id: int = span.context.span_id
    return span_id


def as_dicts(spans: Sequence[ReadableSpan]) -> list[dict[str, Any]]:
    """Finished spans as JSON data, for a test process to read another process's spans."""
    return [
        {
            "name": s.name,
            "trace_id": s.context.trace_id if s.context else None,
            "span_id": s.context.span_id if s.context else None,
            "parent_id": s.parent.span_id if s.parent else None,
            "status": s.status.status_code.name,
            "attributes": {k: list(v) if isinstance(v, tuple) else v for k, v in attrs(s).items()},
        }
        for s in spans
    ]
