"""Built-in model providers, chosen by name. Filled in by the providers work."""

from __future__ import annotations

from afk.llms.model import Model


def resolve_builtin(name: str) -> Model | None:
    return None


def hint_for(name: str) -> str:
    return (
        f"register it first, e.g. afk.llms.register_model({name!r}, ScriptedModel([...])), "
        "or pass a model object as Agent(model=...)"
    )
