"""Passing settings and the output schema only to models that take them.

The Model protocol began as ``complete(messages, tools)``; a user's model written that way must
keep working. afk's own models take ``settings=`` and ``output=`` keywords, and so may any
other: whether a method accepts them is read from its signature once per class.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from afk.errors import ConfigurationError
from afk.llms.settings import ModelSettings, OutputSpec

KEYWORDS = ("settings", "output")

_CACHE: dict[tuple[type, str], frozenset[str]] = {}


def _accepted(cls: type, method: str) -> frozenset[str]:
    key = (cls, method)
    found = _CACHE.get(key)
    if found is None:
        found = _CACHE[key] = _accepted_by(getattr(cls, method, None))
    return found


def _accepted_by(fn: Callable[..., Any] | None) -> frozenset[str]:
    try:
        parameters = inspect.signature(fn).parameters.values()  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return frozenset()
    # Named parameters only: a ``**kwargs`` model written before settings existed may hand its
    # keywords on to an SDK that would refuse ``settings=``.
    named = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return frozenset(p.name for p in parameters if p.name in KEYWORDS and p.kind in named)


def accepted(model: object, method: str) -> frozenset[str]:
    """Which of ``settings`` / ``output`` ``model.<method>`` takes as keywords."""
    own = getattr(model, "__dict__", None)
    if own is not None and method in own:
        return _accepted_by(getattr(model, method))  # set on the instance: not cacheable
    return _accepted(type(model), method)


def call_kwargs(
    model: object, method: str, settings: ModelSettings | None, output: OutputSpec | None
) -> dict[str, Any]:
    """The keyword arguments to call ``model.<method>`` with: only what is set and taken.

    Settings a model cannot take are dropped here; :func:`ignored` says so to the caller.
    """
    if (settings is None or settings.is_empty()) and output is None:
        return {}
    takes = accepted(model, method)
    kwargs: dict[str, Any] = {}
    if settings is not None and not settings.is_empty() and "settings" in takes:
        kwargs["settings"] = settings
    if output is not None and "output" in takes:
        kwargs["output"] = output
    return kwargs


def ignored(
    model: object, method: str, settings: ModelSettings | None, output: OutputSpec | None
) -> list[str]:
    """The keywords a model will not receive although they are set (for a run warning)."""
    takes = accepted(model, method)
    missing = []
    if settings is not None and not settings.is_empty() and "settings" not in takes:
        missing.append("settings")
    if output is not None and "output" not in takes:
        missing.append("output")
    return missing


def model_kwargs(
    model: object,
    method: str,
    settings: ModelSettings | None,
    output: OutputSpec | None,
    warnings: list[str],
) -> dict[str, Any]:
    """:func:`call_kwargs`, adding to ``warnings`` (once) what the model will not receive."""
    missing = ignored(model, method, settings, output)
    if missing:
        from afk.llms.model import model_label

        note = (
            f"model {model_label(model)}.{method}() takes no {' or '.join(missing)} keyword; "
            "its calls go out without them"
        )
        if note not in warnings:
            warnings.append(note)
    return call_kwargs(model, method, settings, output)


def run_settings(
    agent_settings: ModelSettings | None,
    per_run: ModelSettings | None,
    *,
    tool_names: Sequence[str],
    agent_name: str,
) -> ModelSettings | None:
    """A run's settings: the run's fields over the agent's. Raises ModelSettingsError when the
    run's ``tool_choice`` names a tool the agent does not have, ConfigurationError for
    something that is not a ModelSettings."""
    if per_run is not None and not isinstance(per_run, ModelSettings):
        raise ConfigurationError(
            f"run() model_settings must be an afk.llms.ModelSettings, got {type(per_run).__name__}"
        )
    if per_run is None:
        return agent_settings
    merged = per_run if agent_settings is None else agent_settings.merged(per_run)
    merged.check_tools(tool_names, where=f"Agent {agent_name!r}")
    return merged


__all__ = [
    "KEYWORDS",
    "accepted",
    "call_kwargs",
    "ignored",
    "model_kwargs",
    "run_settings",
]
