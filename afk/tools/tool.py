"""Typed tools: a Python function, its JSON schema, and validated execution."""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol, get_type_hints, overload

from afk.approvals.display import SAFE_TOOL_NAME, SAFE_TOOL_NAME_TEXT, is_safe_tool_name
from afk.approvals.requests import CallApproval, ToolAnswer
from afk.canonical import clean
from afk.errors import AfkError, ConfigurationError, InvalidArgumentsError
from afk.tools._threads import run_in_thread


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolContext:
    """Given to a tool that declares a parameter annotated ``ToolContext``.

    ``idempotency_key`` is stable for one tool call across retries and resumes: a tool that
    talks to an external system should pass it along so a repeated call is recognised.

    ``approval`` says how a gated call came to run (:class:`~afk.approvals.requests.
    CallApproval`: the approver and their reason, or the grant); None when policy allowed it.
    """

    run_id: str
    agent_name: str
    tool_call_id: str
    idempotency_key: str
    context: Mapping[str, Any]
    # How this call came to run when policy gated it: who approved it and why, or the
    # grant that covered it; None when policy allowed it outright.
    approval: CallApproval | None = None
    asks: ToolQuestions | None = None  # set by the runner: what the two methods below use
    children: SubAgents | None = None  # set by the runner: how run_agent runs a sub-agent

    async def request_approval(
        self, *, reason: str, details: Mapping[str, Any] | None = None
    ) -> ToolAnswer:
        """Ask a human to approve what the tool is about to do (``reason``, and ``details``
        as JSON for the approver) and return their :class:`~afk.approvals.requests.
        ToolAnswer` (``approved``). Under the approvers of the rule that gated the call, if
        one did. In a run with a store this pauses the call and re-enters the tool from its
        start once decided: read the contract in :mod:`afk.core._tool_asks` first."""
        return await self._questions().approval(reason, details)

    async def request_input(
        self, *, prompt: str, schema: Mapping[str, Any] | None = None
    ) -> ToolAnswer:
        """Ask a human for input (``prompt``); with a JSON ``schema`` an answer that does not
        fit it is refused when submitted (the request stays pending) and ``value`` is the
        JSON it holds. Same re-entry contract as :meth:`request_approval`."""
        return await self._questions().input(prompt, schema)

    async def run_agent(self, agent: Any, user_message: str) -> str:
        """Run ``agent`` (an :class:`~afk.agents.Agent`) as a sub-agent of this run on
        ``user_message`` and return its final text (what ``Agent.as_tool`` tools do). Its
        policy decisions and requests are this run's: its requests join the run's pending
        ones (naming their ``path``), its events this run's stream, and the run's policy
        sees its calls too; when it pauses, this call pauses with it (re-entry contract:
        :mod:`afk.core._tool_asks`). Raises SubAgentError when it fails or stops."""
        if self.children is None:
            raise ConfigurationError(
                "ToolContext: only a tool running in a run can run a sub-agent (this context "
                "was made by hand)"
            )
        return await self.children.run(agent, user_message)

    def _questions(self) -> ToolQuestions:
        if self.asks is None:
            raise ConfigurationError(
                "ToolContext: only a tool running in a run can ask a human (this context "
                "was made by hand)"
            )
        return self.asks


class SubAgents(Protocol):
    """What a ToolContext runs sub-agents through (afk.core._subagents.ChildCall)."""

    async def run(self, agent: Any, user_message: str) -> str:
        """Run ``agent`` on ``user_message`` under this call; its final text."""


class ToolQuestions(Protocol):
    """What a ToolContext asks through (afk.core._tool_asks.ToolAsks)."""

    async def approval(self, reason: str, details: Mapping[str, Any] | None) -> ToolAnswer:
        """Ask for approval."""

    async def input(self, prompt: str, schema: Mapping[str, Any] | None) -> ToolAnswer:
        """Ask for input."""


if TYPE_CHECKING:
    from pydantic import ValidationError
    from pydantic_core import PydanticSerializationError


@functools.cache
def _validation_error() -> type[ValidationError]:
    # Imported on first use, once: pydantic stays out of the CLI's decision path, and the
    # hot path of every tool call does no import statement.
    from pydantic import ValidationError

    return ValidationError


@functools.cache
def _serialization_error() -> type[PydanticSerializationError]:
    from pydantic_core import PydanticSerializationError

    return PydanticSerializationError


class _Ignored(Exception):
    """Validation failed only on the argument a human fills in later."""


class ToolArgumentsInvalid(AfkError, ValueError):
    """Arguments the tool's schema rejects; ``message`` names each bad argument and ``fields``
    lists them. A ``ValueError`` too, as bad values are."""

    def __init__(self, message: str, *, fields: list[str]) -> None:
        self.fields = fields
        super().__init__(message)


def _docstring_parts(doc: str | None) -> tuple[str, dict[str, str]]:
    """Summary and per-parameter descriptions from a Google- or Sphinx-style docstring."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    params: dict[str, str] = {}
    in_args = False
    current: str | None = None
    for line in lines:
        stripped = line.strip()
        sphinx = re.match(r"^:param\s+(?:[^:]+\s)?(\w+):\s*(.*)$", stripped)
        if sphinx:
            params[sphinx.group(1)] = sphinx.group(2)
            continue
        if stripped.lower() in ("args:", "arguments:", "parameters:"):
            in_args, current = True, None
            continue
        if in_args:
            google = re.match(r"^(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$", stripped)
            if google and line.startswith((" ", "\t")) and not line.startswith(" " * 8):
                current = google.group(1)
                params[current] = google.group(2)
            elif stripped and current and line.startswith((" ", "\t")):
                params[current] = f"{params[current]} {stripped}".strip()
            elif stripped and not line.startswith((" ", "\t")):
                in_args = False
            continue
        if stripped.startswith(":"):
            continue
        summary.append(line)
    return "\n".join(summary).strip(), params


class Tool:
    """A function the model can call. Build one with :func:`tool`."""

    # What policy rules' ``annotations`` and ``server`` matchers see (PolicyEvent): an MCP
    # tool's hints and its server's name (afk.mcp.MCPTool); a Python tool has neither.
    annotations: Mapping[str, Any] = MappingProxyType({})
    server: str | None = None
    sub_agent: Any = None  # the Agent this tool runs (Agent.as_tool), else None

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        inline: bool = False,
        idempotent: bool = False,
    ) -> None:
        if not callable(fn):
            raise ConfigurationError(f"tool() needs a function, got {type(fn).__name__}")
        self.fn = fn
        self.name = name or fn.__name__
        if not isinstance(self.name, str) or not is_safe_tool_name(self.name):
            # The one pattern approvers' screens show as is: a name outside it could forge
            # or hide text there (and ``$`` would have let a trailing newline through).
            raise ConfigurationError(
                f"tool name {self.name!r} is invalid: use {SAFE_TOOL_NAME_TEXT} "
                f"(pattern {SAFE_TOOL_NAME.pattern})"
            )
        summary, param_docs = _docstring_parts(fn.__doc__)
        self.description = description if description is not None else summary
        self.inline = inline
        self.idempotent = idempotent
        self.is_async = inspect.iscoroutinefunction(fn)
        self._context_param: str | None = None
        self._spec: Any = None
        self._args_model = self._build_model(fn, param_docs)
        self.parameters: dict[str, Any] = self._args_model.model_json_schema()
        self.parameters.pop("title", None)

    def _build_model(self, fn: Callable[..., Any], docs: dict[str, str]) -> Any:
        from pydantic import ConfigDict, Field, create_model

        try:
            hints = get_type_hints(fn)
        except Exception as exc:
            raise ConfigurationError(
                f"tool {self.name!r}: cannot resolve its type hints ({exc})"
            ) from exc
        fields: dict[str, Any] = {}
        for pname, param in inspect.signature(fn).parameters.items():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise ConfigurationError(
                    f"tool {self.name!r}: *{pname} / **{pname} parameters cannot be described "
                    "to a model; give every parameter a name and a type"
                )
            annotation = hints.get(pname, Any)
            if annotation is ToolContext:
                self._context_param = pname
                continue
            default = ... if param.default is param.empty else param.default
            fields[pname] = (annotation, Field(default, description=docs.get(pname)))
        config = ConfigDict(extra="forbid", arbitrary_types_allowed=False)
        return create_model(f"{self.name}_args", __config__=config, **fields)

    def spec(self) -> Any:
        """The :class:`~afk.llms.ToolSpec` the model is shown: name, description and JSON schema of
        the arguments (built once)."""
        if self._spec is None:
            from afk.llms.messages import ToolSpec

            self._spec = ToolSpec(
                name=self.name, description=self.description, parameters=self.parameters
            )
        return self._spec

    def validate(
        self, arguments: Mapping[str, Any], *, ignore: str | None = None
    ) -> dict[str, Any]:
        """Validate the model's arguments; returns them as the function will receive them.

        ``ignore`` skips errors for one argument that a human will fill in later.
        """
        try:
            model = self._validated(arguments, ignore=ignore)
        except _Ignored:
            return dict(arguments)
        return {name: getattr(model, name) for name in type(model).model_fields}

    def _validated(self, arguments: Mapping[str, Any], *, ignore: str | None = None) -> Any:
        """The tool's argument model for ``arguments``; raises ToolArgumentsInvalid, or
        _Ignored when the only errors are for ``ignore``."""
        try:
            return self._args_model.model_validate(
                arguments if type(arguments) is dict else dict(arguments)
            )
        except _validation_error() as exc:
            errors = [
                e for e in exc.errors() if not ignore or not e["loc"] or e["loc"][0] != ignore
            ]
            if not errors:
                raise _Ignored from None
            parts = []
            for err in errors:
                where = ".".join(str(p) for p in err["loc"]) or "(arguments)"
                parts.append(f"{where}: {err['msg']}")
            fields = sorted({str(e["loc"][0]) for e in errors if e["loc"]})
            raise ToolArgumentsInvalid(
                f"invalid arguments for tool {self.name!r}: " + "; ".join(parts), fields=fields
            ) from None

    def canonical_args(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments exactly as they will run, as JSON: validated, defaults filled in,
        coerced to their types (``"5"`` → ``5`` for an int), every string in NFC.

        What rules, approvers, events and records see, so none of them can be shown
        something other than what executes. Raises :class:`ToolArgumentsInvalid` like
        :meth:`validate`, and :class:`~afk.errors.InvalidArgumentsError` for what JSON cannot
        hold (NaN, ±Infinity, Python objects), also when validation produces it
        (``"NaN"`` for a float).
        """
        model = self._validated(clean(arguments))  # clean: a fresh dict the model may keep
        try:
            dumped = self._args_model.__pydantic_serializer__.to_python(model, mode="json")
        except _serialization_error() as exc:
            raise InvalidArgumentsError(
                f"the arguments of tool {self.name!r} cannot be written as JSON: {exc}"
            ) from None
        result: dict[str, Any] = clean(dumped)
        return result

    @property
    def wants_context(self) -> bool:
        """Whether :meth:`invoke` uses its ToolContext: the function declares one, or a
        subclass runs the call itself (an MCP tool)."""
        return self._context_param is not None or type(self).invoke is not Tool.invoke

    async def invoke(self, arguments: Mapping[str, Any], ctx: ToolContext | None) -> Any:
        """Run the tool with already-validated arguments (``ctx``: None when
        :attr:`wants_context` is false)."""
        kwargs = dict(arguments)
        if self._context_param:
            kwargs[self._context_param] = ctx
        if self.is_async:
            return await self.fn(**kwargs)
        if self.inline:
            return self.fn(**kwargs)
        return await run_in_thread(self.fn, kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the underlying function directly (handy in tests)."""
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Tool(name={self.name!r})"


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    inline: bool = False,
    idempotent: bool = False,
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    inline: bool = False,
    idempotent: bool = False,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Turn a typed function (sync or async) into a :class:`Tool`.

    Sync tools run in a worker thread so they never block other runs; ``inline=True`` runs a
    cheap pure function on the event loop. ``idempotent=True`` declares that running the call
    twice is safe, which lets a resumed run retry a call interrupted mid-execution.
    """

    def wrap(f: Callable[..., Any]) -> Tool:
        return Tool(f, name=name, description=description, inline=inline, idempotent=idempotent)

    return wrap(fn) if fn is not None else wrap


__all__ = [
    "Tool",
    "ToolArgumentsInvalid",
    "ToolContext",
    "tool",
]
