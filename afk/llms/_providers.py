"""Built-in model providers, chosen by name.

Adapters (and httpx) are imported only when a name needs them, so ``import afk`` stays fast
and an agent that only uses test models never loads a provider.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from afk.llms.model import Model

OLLAMA_DEFAULT_URL = "http://localhost:11434/v1"
_OPENAI_FAMILIES = ("gpt-", "o1", "o3", "o4")
_PREFIXES = ("openai:", "anthropic:", "litellm:", "ollama:")


def _split(name: str) -> tuple[str | None, str]:
    """``(provider, model)`` for a supported name, ``(None, name)`` otherwise."""
    for prefix in _PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix):
            return prefix[:-1], name[len(prefix) :]
    if name.startswith(_OPENAI_FAMILIES):
        return "openai", name
    if name.startswith("claude-"):
        return "anthropic", name
    return None, name


def ollama_base_url() -> str:
    """``OLLAMA_BASE_URL``, else ``OLLAMA_HOST`` (often a bare ``host:port``), as a /v1 URL."""
    raw = os.environ.get("OLLAMA_BASE_URL") or os.environ.get("OLLAMA_HOST")
    if not raw:
        return OLLAMA_DEFAULT_URL
    if "://" not in raw:
        raw = "http://" + raw
    parts = urlsplit(raw)
    netloc = parts.netloc if parts.port else f"{parts.netloc}:11434"
    path = parts.path.rstrip("/")
    if not path.endswith("/v1"):
        path += "/v1"
    return f"{parts.scheme}://{netloc}{path}"


def resolve_builtin(name: str) -> Model | None:
    """The adapter for a built-in name, or None if no provider claims it.

    Raises :class:`~afk.errors.ConfigurationError` when the provider is right but cannot be
    used: no API key, or the optional package is missing.
    """
    provider, model = _split(name)
    if provider in ("openai", "anthropic", "ollama"):
        from afk.llms._http import shared_pool

        # Models built from names are made anew for each run; the pool is what lets their
        # calls reuse connections across runs.
        pool = shared_pool()
    if provider == "openai":
        from afk.llms.openai import OpenAIModel

        return OpenAIModel(model, pool=pool)
    if provider == "anthropic":
        from afk.llms.anthropic import AnthropicModel

        return AnthropicModel(model, pool=pool)
    if provider == "litellm":
        from afk.llms.litellm import LiteLLMModel

        return LiteLLMModel(model)
    if provider == "ollama":
        from afk.llms.openai import OpenAIModel

        # Ollama ignores the key, but the OpenAI protocol expects an Authorization header.
        return OpenAIModel(
            model, api_key="ollama", base_url=ollama_base_url(), provider="ollama", pool=pool
        )
    return None


def hint_for(name: str) -> str:
    return (
        f"register it first, e.g. afk.llms.register_model({name!r}, ScriptedModel([...])), "
        "or pass a model object as Agent(model=...); built-in names are gpt-*, o1*, o3*, o4*, "
        "claude-* and the prefixes openai:, anthropic:, litellm:, ollama: (e.g. 'ollama:llama3.2')"
    )
