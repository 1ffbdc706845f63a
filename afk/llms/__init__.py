"""Models: the protocol, the message types, test models, the name registry and providers.

Provider adapters and their errors load on first use, so ``import afk.llms`` stays fast.
"""

from typing import TYPE_CHECKING, Any

from afk.llms.messages import (
    AssistantMessage,
    Message,
    ModelResponse,
    SystemMessage,
    ToolCall,
    ToolMessage,
    ToolSpec,
    Usage,
    UserMessage,
)
from afk.llms.model import Model, StreamingModel
from afk.llms.registry import register_model, resolve_model, unregister_model
from afk.llms.settings import ModelSettings, ModelSettingsError, OutputSpec, UnsupportedSettingError
from afk.llms.testing import FunctionModel, ScriptedModel

_LAZY = {
    "AnthropicModel": "afk.llms.anthropic",
    "FallbackExhaustedError": "afk.llms.fallback",
    "FallbackModel": "afk.llms.fallback",
    "LiteLLMModel": "afk.llms.litellm",
    "OpenAIModel": "afk.llms.openai",
    "ProviderAuthError": "afk.llms._http",
    "ProviderBadRequestError": "afk.llms._http",
    "ProviderConnectionError": "afk.llms._http",
    "ProviderError": "afk.llms._http",
    "ProviderRateLimitError": "afk.llms._http",
    "ProviderServerError": "afk.llms._http",
}

if TYPE_CHECKING:
    from afk.llms._http import (
        ProviderAuthError,
        ProviderBadRequestError,
        ProviderConnectionError,
        ProviderError,
        ProviderRateLimitError,
        ProviderServerError,
    )
    from afk.llms.anthropic import AnthropicModel
    from afk.llms.fallback import FallbackExhaustedError, FallbackModel
    from afk.llms.litellm import LiteLLMModel
    from afk.llms.openai import OpenAIModel


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'afk.llms' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "AnthropicModel",
    "AssistantMessage",
    "FallbackExhaustedError",
    "FallbackModel",
    "FunctionModel",
    "LiteLLMModel",
    "Message",
    "Model",
    "ModelResponse",
    "ModelSettings",
    "ModelSettingsError",
    "OpenAIModel",
    "OutputSpec",
    "ProviderAuthError",
    "ProviderBadRequestError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderRateLimitError",
    "ProviderServerError",
    "ScriptedModel",
    "StreamingModel",
    "SystemMessage",
    "ToolCall",
    "ToolMessage",
    "ToolSpec",
    "UnsupportedSettingError",
    "Usage",
    "UserMessage",
    "register_model",
    "resolve_model",
    "unregister_model",
]
