"""An agent: a model, instructions, tools and, optionally, its own policy."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from afk.agents.policy import PolicyEngine
from afk.errors import ConfigurationError
from afk.tools.tool import Tool, tool


class Agent:
    """What to run. ``model`` is a model name (see ``afk.llms.register_model``) or a model
    object; a list of either tries each in turn when a call fails (a fallback chain)."""

    def __init__(
        self,
        name: str,
        model: Any,
        instructions: str = "",
        *,
        tools: Iterable[Tool | Callable[..., Any]] = (),
        policy_engine: PolicyEngine | None = None,
        max_steps: int = 20,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError("Agent.name must be a non-empty string")
        if model is None or (isinstance(model, str) and not model):
            raise ConfigurationError(f"Agent {name!r}: model must be a model name or object")
        if not isinstance(instructions, str):
            raise ConfigurationError(f"Agent {name!r}: instructions must be a string")
        if not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps < 1:
            raise ConfigurationError(
                f"Agent {name!r}: max_steps must be an int >= 1, got {max_steps!r}"
            )
        if policy_engine is not None and not isinstance(policy_engine, PolicyEngine):
            raise ConfigurationError(
                f"Agent {name!r}: policy_engine must be a PolicyEngine, "
                f"got {type(policy_engine).__name__}"
            )
        self.name = name
        self.model = model
        self.instructions = instructions
        self.policy_engine = policy_engine
        self.max_steps = max_steps
        self.tools: dict[str, Tool] = {}
        self._specs: list[Any] | None = None
        self._system: Any = None
        for item in tools:
            t = item if isinstance(item, Tool) else tool(item)
            if t.name in self.tools:
                raise ConfigurationError(f"Agent {name!r}: two tools are named {t.name!r}")
            self.tools[t.name] = t

    @property
    def tool_list(self) -> Sequence[Tool]:
        """The agent's tools in the order they were given (``tools`` maps them by name)."""
        return tuple(self.tools.values())

    @property
    def system_message(self) -> Any:
        """The instructions as the conversation's first message (immutable, so shared)."""
        if self._system is None or self._system.content != self.instructions:
            from afk.llms.messages import SystemMessage

            self._system = SystemMessage(content=self.instructions)
        return self._system

    @property
    def tool_specs(self) -> list[Any]:
        """What the model is told about the tools, shared by every run of this agent."""
        if self._specs is None or len(self._specs) != len(self.tools):
            self._specs = [t.spec() for t in self.tools.values()]
        return self._specs

    def __repr__(self) -> str:
        return f"Agent(name={self.name!r}, model={self.model!r}, tools={list(self.tools)})"


__all__ = [
    "Agent",
]
