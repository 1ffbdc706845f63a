"""An agent: a model, instructions, tools and, optionally, its own policy."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from afk.agents.policy import PolicyEngine
from afk.errors import ConfigurationError
from afk.tools.tool import Tool, ToolContext, tool

if TYPE_CHECKING:
    from afk.mcp.server import MCPServer


class Agent:
    """What to run. ``model`` is a model name (see ``afk.llms.register_model``) or a model
    object; a list of either tries each in turn when a call fails (a fallback chain).

    ``model_settings`` (an ``afk.llms.ModelSettings``) applies to every model call of its runs.
    ``output_type`` (a pydantic model or any type pydantic validates) asks for a structured
    answer: the run validates the model's final answer into ``RunResult.output``, tells the
    model what was wrong up to ``max_output_retries`` times, then fails.
    """

    def __init__(
        self,
        name: str,
        model: Any,
        instructions: str = "",
        *,
        tools: Iterable[Tool | Callable[..., Any]] = (),
        mcp_servers: Iterable[MCPServer] = (),
        policy_engine: PolicyEngine | None = None,
        max_steps: int = 20,
        model_settings: Any = None,
        output_type: Any = None,
        max_output_retries: int = 2,
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
        self._own_tools: dict[str, Tool] = {}
        self._specs: list[Any] | None = None
        self._spec_tools: tuple[Tool, ...] = ()
        self._system: Any = None
        for item in tools:
            t = item if isinstance(item, Tool) else tool(item)
            if t.name in self._own_tools:
                raise ConfigurationError(f"Agent {name!r}: two tools are named {t.name!r}")
            self._own_tools[t.name] = t
        self.mcp_servers: tuple[MCPServer, ...] = ()
        if mcp_servers:
            from afk.mcp._agent import check_servers

            self.mcp_servers = check_servers(name, mcp_servers)
        self._init_output(model_settings, output_type, max_output_retries)

    def _init_output(self, settings: Any, output_type: Any, retries: int) -> None:
        """``model_settings``, ``output_type`` and ``max_output_retries``, checked."""
        from afk.llms.settings import ModelSettings  # no pydantic: a plain dataclass

        if settings is not None and not isinstance(settings, ModelSettings):
            raise ConfigurationError(
                f"Agent {self.name!r}: model_settings must be an afk.llms.ModelSettings, "
                f"got {type(settings).__name__}"
            )
        if settings is not None:
            # Only the agent's own tools: MCP servers' are listed when they connect.
            settings.check_tools(list(self._own_tools), where=f"Agent {self.name!r}")
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise ConfigurationError(
                f"Agent {self.name!r}: max_output_retries must be an int >= 0, got {retries!r}"
            )
        self.model_settings: ModelSettings | None = settings
        self.output_type = output_type
        self.max_output_retries = retries
        # The type's schema and validator (afk.llms._output.Output); pydantic loads only here.
        self.output_validator: Any = None
        if output_type is not None:
            from afk.llms._output import Output

            self.output_validator = Output(output_type)

    @property
    def tools(self) -> dict[str, Tool]:
        """The agent's tools by name: its own, then each of ``mcp_servers``' (named
        ``server__tool``) as listed when the server connected; with a server that is not open
        (``async with server:``) this raises :class:`~afk.mcp.MCPConnectionError`."""
        if not self.mcp_servers:
            return self._own_tools
        from afk.mcp._agent import merged_tools

        return merged_tools(self.name, self._own_tools, self.mcp_servers)

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
        tools = tuple(self.tools.values())  # MCP servers' tools change when they reconnect
        if self._specs is None or self._spec_tools != tools:
            self._specs, self._spec_tools = [t.spec() for t in tools], tools
        return self._specs

    def as_tool(self, *, name: str | None = None, description: str | None = None) -> Tool:
        """This agent as a tool of another: the model calls it with one ``input`` and gets the
        agent's final text. It runs as a sub-agent of the calling run (afk.core._subagents):
        its requests are the run's, under the calling run's policy first and its own after."""
        agent = self

        async def run_agent(input: str, ctx: ToolContext) -> str:
            """Ask the agent.

            Args:
                input: What to ask it, as a message to it.
            """
            return await ctx.run_agent(agent, input)

        shown = description if description is not None else f"Ask the {self.name} agent."
        # Idempotent: entered again after a crash, the child resumes from its last stored
        # snapshot and each of its own calls is exactly-once on its own record.
        made = Tool(
            run_agent, name=name or _tool_name(self.name), description=shown, idempotent=True
        )
        made.sub_agent = self
        return made

    @property
    def has_sub_agents(self) -> bool:
        """Whether any of the agent's tools is another agent (:meth:`as_tool`)."""
        return any(t.sub_agent is not None for t in self.tools.values())

    def __repr__(self) -> str:
        servers = f", mcp_servers={[s.name for s in self.mcp_servers]}" if self.mcp_servers else ""
        # The own tools only: listing a closed MCP server's would raise.
        return (
            f"Agent(name={self.name!r}, model={self.model!r}, tools={list(self._own_tools)}"
            f"{servers})"
        )


def _tool_name(agent_name: str) -> str:
    """A tool name providers accept, from an agent's name."""
    cleaned = "".join(c if c.isalnum() or c in "_-" else "_" for c in agent_name.strip())
    return cleaned[:64] or "agent"


__all__ = [
    "Agent",
]
