"""Models: the protocol, the message types, test models and the name registry."""

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
from afk.llms.testing import FunctionModel, ScriptedModel

__all__ = [
    "AssistantMessage",
    "FunctionModel",
    "Message",
    "Model",
    "ModelResponse",
    "ScriptedModel",
    "StreamingModel",
    "SystemMessage",
    "ToolCall",
    "ToolMessage",
    "ToolSpec",
    "Usage",
    "UserMessage",
    "register_model",
    "resolve_model",
    "unregister_model",
]
