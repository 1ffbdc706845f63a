"""How a model should answer: sampling, limits and tool choice, per agent and per run.

``ModelSettings`` is checked where it is written, so a typo fails at construction and not
halfway through a run. Each adapter maps the fields to its provider's wire format and refuses
(with :class:`UnsupportedSettingError`) the ones its provider cannot honour rather than
dropping them silently.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from afk.errors import ConfigurationError

TOOL_CHOICES = ("auto", "required", "none")


class ModelSettingsError(ConfigurationError):
    """A ModelSettings field holds a value it cannot take; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"ModelSettings.{field} {message}")


class UnsupportedSettingError(ConfigurationError):
    """A provider cannot honour a setting (Anthropic has no ``seed``); sending the call without
    it would quietly give the caller something else than they asked for."""

    def __init__(self, provider: str, field: str, message: str) -> None:
        self.provider = provider
        self.field = field
        super().__init__(f"{provider} cannot honour ModelSettings.{field}: {message}")


def _number(name: str, value: object, low: float, high: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ModelSettingsError(name, f"must be a number, got {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f"between {low:g} and {high:g}" if high is not None else f">= {low:g}"
        raise ModelSettingsError(name, f"must be {bounds}, got {value!r}")


def _integer(name: str, value: object, low: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ModelSettingsError(name, f"must be an int, got {value!r}")
    if low is not None and value < low:
        raise ModelSettingsError(name, f"must be >= {low}, got {value!r}")


def _check_stop(value: object) -> None:
    if value is None or (isinstance(value, str) and value):
        return
    if isinstance(value, list | tuple) and value and all(isinstance(s, str) and s for s in value):
        return
    raise ModelSettingsError("stop", f"must be a non-empty str or list of str, got {value!r}")


def _check_tool_choice(value: object) -> None:
    if value is None or (isinstance(value, str) and value.strip()):
        return
    raise ModelSettingsError(
        "tool_choice", f"must be 'auto', 'required', 'none' or a tool name, got {value!r}"
    )


def _check_extra_body(value: object) -> None:
    if value is None:
        return
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ModelSettingsError(
            "extra_body", f"must be a dict with str keys, got {type(value).__name__}"
        )
    try:
        json.dumps(dict(value), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ModelSettingsError("extra_body", f"must be JSON-able: {exc}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSettings:
    """Sampling and tool-choice settings for model calls; ``None`` leaves the provider's default.

    ``tool_choice`` is ``"auto"``, ``"required"``, ``"none"`` or the name of one of the agent's
    tools. ``extra_body`` is merged into the request body last (provider-specific fields).
    Give them to ``Agent(model_settings=...)`` and, per run, ``Runner.run(model_settings=...)``:
    the run's fields win one by one (see :meth:`merged`).
    """

    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stop: str | Sequence[str] | None = None
    seed: int | None = None
    tool_choice: str | None = None
    parallel_tool_calls: bool | None = None
    extra_body: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        _number("temperature", self.temperature, 0.0, 2.0)
        _number("top_p", self.top_p, 0.0, 1.0)
        _integer("max_tokens", self.max_tokens, 1)
        _integer("seed", self.seed, None)
        _check_stop(self.stop)
        _check_tool_choice(self.tool_choice)
        if self.parallel_tool_calls is not None and not isinstance(self.parallel_tool_calls, bool):
            raise ModelSettingsError(
                "parallel_tool_calls",
                f"must be True, False or None, got {self.parallel_tool_calls!r}",
            )
        _check_extra_body(self.extra_body)
        if isinstance(self.stop, list):  # frozen: a tuple cannot change under the caller
            object.__setattr__(self, "stop", tuple(self.stop))

    @property
    def stop_list(self) -> list[str] | None:
        """``stop`` as a list (a single string becomes a list of one)."""
        if self.stop is None:
            return None
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def merged(self, over: ModelSettings | None) -> ModelSettings:
        """These settings with every field ``over`` sets replacing ours; ``extra_body`` is
        merged key by key (``over``'s keys win)."""
        if over is None:
            return self
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for f in fields(over):
            value = getattr(over, f.name)
            if value is not None:
                values[f.name] = value
        if self.extra_body is not None and over.extra_body is not None:
            values["extra_body"] = {**self.extra_body, **over.extra_body}
        return ModelSettings(**values)

    def is_empty(self) -> bool:
        """Whether no field is set (the call then goes out exactly as without settings)."""
        return all(getattr(self, f.name) is None for f in fields(self))

    def check_tools(self, tool_names: Sequence[str], *, where: str) -> None:
        """Raise ModelSettingsError when ``tool_choice`` names a tool that is not offered."""
        choice = self.tool_choice
        if choice is None or choice in TOOL_CHOICES or choice in tool_names:
            return
        known = ", ".join(repr(n) for n in tool_names) or "none"
        raise ModelSettingsError(
            "tool_choice",
            f"names tool {choice!r}, which {where} does not have; accepted: 'auto', "
            f"'required', 'none' or one of its tools ({known})",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputSpec:
    """The structured answer a run wants: its JSON schema, as given to the model.

    ``strict`` says the schema fits OpenAI's strict mode (every property required, no
    defaults). ``wrapped``: the output type is not a JSON object, so the model is asked for
    ``{"result": ...}`` (providers want an object at the root) and afk unwraps it.
    """

    name: str
    schema: dict[str, Any]
    strict: bool = False
    wrapped: bool = False


__all__ = [
    "TOOL_CHOICES",
    "ModelSettings",
    "ModelSettingsError",
    "OutputSpec",
    "UnsupportedSettingError",
]
