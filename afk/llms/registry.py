"""Model names → model objects.

``register_model("gpt-5.2-mini", ScriptedModel([...]))`` points a name at a model without
editing the agent. A name ending in ``:`` registers a prefix. An exact name beats a prefix and
the longest prefix wins. A callable without ``complete`` is a factory: it is called once per full
model name and the result cached.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from afk.errors import ConfigurationError, ModelNotFoundError
from afk.llms.model import Model

ModelFactory = Callable[[str], Model]

_lock = threading.Lock()
_exact: dict[str, Model | ModelFactory] = {}
_prefixes: dict[str, Model | ModelFactory] = {}
_built: dict[str, Model] = {}


def _is_model(obj: object) -> bool:
    return callable(getattr(obj, "complete", None))


def register_model(name: str, model_or_factory: Model | ModelFactory) -> None:
    """Register a model (or a factory of models) under an exact name or a ``prefix:``."""
    if not isinstance(name, str) or not name:
        raise ConfigurationError("register_model name must be a non-empty string")
    if not _is_model(model_or_factory) and not callable(model_or_factory):
        raise ConfigurationError(
            f"register_model({name!r}, ...) takes a model (an object with async complete()) "
            f"or a factory callable(name) -> model; got {type(model_or_factory).__name__}"
        )
    with _lock:
        (_prefixes if name.endswith(":") else _exact)[name] = model_or_factory
        # Registering again replaces: drop what earlier factories built for names it covers.
        for built in [n for n in _built if n == name or n.startswith(name)]:
            del _built[built]


def unregister_model(name: str) -> None:
    """Forget the factory registered under ``name`` and the models it built; nothing happens for an
    unknown name."""
    with _lock:
        _exact.pop(name, None)
        _prefixes.pop(name, None)
        for built in [n for n in _built if n == name or n.startswith(name)]:
            del _built[built]


def _lookup(name: str) -> Model | ModelFactory | None:
    if name in _exact:
        return _exact[name]
    best = max((p for p in _prefixes if name.startswith(p)), key=len, default=None)
    return _prefixes[best] if best is not None else None


def _instantiate(name: str, entry: Model | ModelFactory) -> Model:
    if _is_model(entry):
        return entry  # type: ignore[return-value]
    with _lock:
        if name in _built:
            return _built[name]
    model = entry(name)  # type: ignore[operator]
    if not _is_model(model):
        raise ConfigurationError(
            f"the factory registered for model {name!r} returned {type(model).__name__}, "
            "which has no async complete()"
        )
    with _lock:
        return _built.setdefault(name, model)


def resolve_model(model: str | Any) -> Model:
    """Return the model object for a name (registry first, then built-in providers).

    A list of names or models becomes a :class:`~afk.llms.FallbackModel` trying each in turn.
    """
    if isinstance(model, list | tuple):
        from afk.llms.fallback import FallbackModel

        return FallbackModel(list(model))
    if not isinstance(model, str):
        if _is_model(model):
            return model  # type: ignore[no-any-return]
        raise ConfigurationError(
            f"Agent model must be a model name or an object with async complete(); "
            f"got {type(model).__name__}"
        )
    with _lock:
        entry = _lookup(model)
    if entry is not None:
        return _instantiate(model, entry)
    from afk.llms import _providers  # built-in providers; imported only when needed

    found = _providers.resolve_builtin(model)
    if found is not None:
        return found
    raise ModelNotFoundError(model, _providers.hint_for(model))


__all__ = [
    "ModelFactory",
    "register_model",
    "resolve_model",
    "unregister_model",
]
