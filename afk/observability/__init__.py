"""Observability: OpenTelemetry spans (opt-in) and library logging (always, silent by default).

Tracing is switched on per runner, and only then is OpenTelemetry imported::

    Runner(policy, tracing=True)              # the global tracer provider
    Runner(policy, tracing=tracer_provider)   # a TracerProvider of your own

It needs ``pip install "afk-agents[otel]"`` (afk depends on the OpenTelemetry API only; the
SDK and exporters are the application's choice). Each run is an ``invoke_agent {agent}``
span with ``chat {model}``, ``evaluate_policy {tool}``, ``execute_tool {tool}`` and
``await_approval {tool}`` children; names and attributes are in
:mod:`afk.observability.attributes`. A durable run keeps its W3C trace context in its
checkpoint, so a run paused in one process and resumed in another is one trace, and the
approval wait spans the time from the request to the decision.

Logging goes to the ``afk`` logger's children (``afk.run``, ``afk.approvals``, ...): run
lifecycle at INFO with the run and request ids in the message and as record attributes
(``record.run_id``, ``record.request_id``). afk adds only a NullHandler: configure logging
(e.g. ``logging.basicConfig(level=logging.INFO)``) to see it.
"""

from __future__ import annotations

from afk.observability._observer import RunObserver, SpanFactory, observe_run
from afk.observability._tracing import INSTALL_HINT, span_factory

__all__ = ["INSTALL_HINT", "RunObserver", "SpanFactory", "observe_run", "span_factory"]
