"""``Runner(tracing=...)``: checked where it is written; OpenTelemetry imported only if on."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from afk.errors import ConfigurationError

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

    from afk.observability._observer import SpanFactory

INSTALL_HINT = 'pip install "afk-agents[otel]"'


def span_factory(tracing: object) -> SpanFactory | None:
    """What ``Runner(tracing=...)`` means: ``False``/``None`` no spans, ``True`` spans through
    OpenTelemetry's global tracer provider, a ``TracerProvider`` spans through that one."""
    if tracing is None or tracing is False:
        return None
    if tracing is not True and not callable(getattr(tracing, "get_tracer", None)):
        raise ConfigurationError(
            "Runner tracing must be True, False or an OpenTelemetry TracerProvider, "
            f"got {type(tracing).__name__}"
        )
    try:
        from afk.observability._spans import tracer_factory
    except ImportError as exc:
        if not (exc.name or "").startswith("opentelemetry"):
            raise
        raise ConfigurationError(
            f"Runner(tracing=...) needs OpenTelemetry: {INSTALL_HINT}"
        ) from None
    return tracer_factory(None if tracing is True else cast("TracerProvider", tracing))
