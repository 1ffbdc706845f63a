"""OpenTelemetry is imported only when a runner traces, and its absence is one clear line."""

from __future__ import annotations

import json

from otel_support import last_line as run


def test_runs_without_tracing_never_import_opentelemetry() -> None:
    code = (
        "import sys, json\n"
        "import afk, afk.core, afk.observability\n"
        "from traced_app import refund_agent, refund_policy\n"
        "from afk.core import Runner\n"
        "result = Runner(refund_policy()).run_sync(refund_agent(), user_message='refund')\n"
        "assert result.state == 'completed', result.state\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('opentelemetry'))))\n"
    )
    assert json.loads(run(code)) == []


def test_tracing_without_opentelemetry_installed_names_the_extra() -> None:
    code = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None  # as if it were not installed\n"
        "from afk.core import Runner\n"
        "from afk.errors import ConfigurationError\n"
        "try:\n"
        "    Runner(tracing=True)\n"
        "except ConfigurationError as exc:\n"
        "    print(exc)\n"
    )
    assert run(code) == ('Runner(tracing=...) needs OpenTelemetry: pip install "afk-agents[otel]"')


def test_tracing_true_uses_the_global_tracer_provider() -> None:
    code = (
        "import json\n"
        "from opentelemetry import trace\n"
        "from otel_support import memory_tracing\n"
        "from traced_app import refund_agent\n"
        "from afk.core import Runner\n"
        "runner = Runner(tracing=True)  # before the app sets its provider: still found\n"
        "provider, exporter = memory_tracing()\n"
        "trace.set_tracer_provider(provider)\n"
        "runner.run_sync(refund_agent(), user_message='refund')\n"
        "print(json.dumps([s.name for s in exporter.get_finished_spans()]))\n"
    )
    names = json.loads(run(code))
    assert names[-1] == "invoke_agent billing"
    assert "execute_tool refund" in names
