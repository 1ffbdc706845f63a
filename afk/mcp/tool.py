"""An MCP server's tool as an afk :class:`~afk.tools.Tool`: its schema, its annotations, its call.

The arguments are checked against the server's ``inputSchema`` (JSON Schema) by afk before any
rule or human sees them, and sent exactly as checked: the server receives what was approved.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any

from afk.canonical import clean
from afk.errors import ConfigurationError
from afk.mcp.errors import MCPError
from afk.tools.tool import Tool, ToolArgumentsInvalid, ToolContext

HINTS: tuple[str, ...] = ("readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint")
# The MCP specification's defaults for a hint a tool leaves out: a tool that says nothing is
# taken to write, destroy, not be idempotent and reach the outside world.
SPEC_DEFAULTS: Mapping[str, bool] = MappingProxyType(
    {"readOnlyHint": False, "destructiveHint": True, "idempotentHint": False, "openWorldHint": True}
)
# Between a server's name and its tool's: what every provider takes in a function name
# (OpenAI and Anthropic refuse dots, so ``server.tool`` could not reach their models).
SEPARATOR = "__"
_PROVIDER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]{0,63}", re.ASCII)

Call = Callable[[str, dict[str, Any], ToolContext], Awaitable[Any]]


def check_hints(value: object, where: str) -> dict[str, bool]:
    """``value`` as hint -> bool; raises ConfigurationError naming ``where`` and the hints."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{where} must be a mapping of hint to bool, got {value!r}")
    for key, flag in value.items():
        if key not in HINTS or not isinstance(flag, bool):
            raise ConfigurationError(
                f"{where}: {key!r}: {flag!r} is not accepted; keys: {', '.join(HINTS)}, "
                "values: true or false"
            )
    return dict(value)


def effective_annotations(
    declared: Mapping[str, Any], defaults: Mapping[str, bool], *, trust: bool
) -> Mapping[str, bool]:
    """The four hints as rules see them: the tool's own (when its server is trusted), else
    ``defaults`` (the spec's, overridden by the server's ``default_annotations``).

    A read-only tool is not destructive: ``destructiveHint`` then reads false unless the tool
    itself says true (the spec gives destructiveHint meaning only for tools that write).
    """
    given = {k: v for k, v in declared.items() if k in HINTS and isinstance(v, bool)}
    if not trust:
        given = {}
    hints = {**SPEC_DEFAULTS, **defaults, **given}
    if hints["readOnlyHint"] and given.get("destructiveHint") is not True:
        hints["destructiveHint"] = False
    return MappingProxyType(hints)


def exposed_name(server: str, remote: str) -> str:
    """``server__tool``; raises MCPError when no model provider would accept the name."""
    name = f"{server}{SEPARATOR}{remote}"
    if _PROVIDER_NAME.fullmatch(name) is None:
        raise MCPError(
            f"MCP server {server!r} lists tool {remote!r}, which cannot be offered to a model as "
            f"{name!r}: a tool name must be letters, digits, '_' or '-', 64 characters at most "
            "with the server's name (leave the tool out with include=, or shorten name=)",
            server=server,
        )
    return name


@functools.cache
def _validator_class(dialect: object) -> Any:
    from jsonschema import validators

    return validators.validator_for({"$schema": dialect} if isinstance(dialect, str) else {})


class MCPTool(Tool):
    """One tool of an :class:`~afk.mcp.MCPServer`, as the agent offers it to the model.

    ``name`` is ``server__tool``; ``remote_name`` is the tool's name on the server;
    ``parameters`` is the server's ``inputSchema``; ``annotations`` are its hints with the
    spec's defaults filled in (what policy rules match on) and ``declared_annotations`` the
    hints exactly as the server sent them. Calling it sends ``tools/call`` on the server's one
    session. Never idempotent for afk: a call interrupted by a crash is not sent again, whatever
    the server's ``idempotentHint`` says.
    """

    def __init__(
        self,
        *,
        server: str,
        remote_name: str,
        description: str,
        input_schema: Mapping[str, Any],
        annotations: Mapping[str, bool],
        declared_annotations: Mapping[str, Any],
        call: Call,
    ) -> None:
        # Not Tool.__init__: that one builds the schema from a Python signature.
        self.name = exposed_name(server, remote_name)
        self.remote_name = remote_name
        self.server = server
        self.description = description
        self.inline = False
        self.idempotent = False
        self.is_async = True
        self.annotations = annotations
        self.declared_annotations = MappingProxyType(dict(declared_annotations))
        self.parameters = dict(input_schema)
        self.fn = self.invoke  # what calling the tool directly does
        self._context_param = None
        self._spec = None
        self._args_model = None
        self._call = call
        self._validator = self._build_validator(server)

    def _build_validator(self, server: str) -> Any:
        from jsonschema.exceptions import SchemaError

        cls = _validator_class(self.parameters.get("$schema"))
        try:
            cls.check_schema(self.parameters)
        except SchemaError as exc:
            raise MCPError(
                f"MCP server {server!r}: tool {self.remote_name!r} has an inputSchema that "
                f"is not valid JSON Schema ({exc.message}); afk cannot check its arguments",
                server=server,
            ) from None
        return cls(self.parameters)

    def validate(
        self, arguments: Mapping[str, Any], *, ignore: str | None = None
    ) -> dict[str, Any]:
        """Check ``arguments`` against the server's ``inputSchema``; returns them unchanged.
        ``ignore`` skips errors for one argument that a human fills in later."""
        problems: list[tuple[str, str]] = []
        for error in self._validator.iter_errors(dict(arguments)):
            if list(error.schema_path) == ["required"]:
                continue  # the top level's own list: named one by one below
            field = str(error.path[0]) if error.path else ""
            if field != ignore:
                problems.append((field, error.message))
        required = self.parameters.get("required")
        for field in required if isinstance(required, list) else ():
            if field not in arguments and field != ignore:
                problems.append((str(field), "a required argument is missing"))
        if problems:
            shown = "; ".join(f"{field or '(arguments)'}: {text}" for field, text in problems)
            raise ToolArgumentsInvalid(
                f"invalid arguments for tool {self.name!r}: {shown}",
                fields=sorted({field for field, _ in problems if field}),
            )
        return dict(arguments)

    def canonical_args(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments as JSON (every string in NFC), checked against the ``inputSchema``:
        exactly what rules and approvers see and what the server is sent. No defaults are
        filled in: the server applies its own."""
        cleaned: dict[str, Any] = clean(arguments)
        return self.validate(cleaned)

    async def invoke(self, arguments: Mapping[str, Any], ctx: ToolContext | None) -> Any:
        """Send ``tools/call`` with ``arguments``; the result as the tool's output."""
        assert ctx is not None  # wants_context: an MCP tool runs the call itself
        return await self._call(self.remote_name, dict(arguments), ctx)

    def __repr__(self) -> str:
        return f"MCPTool(name={self.name!r}, server={self.server!r})"


__all__ = [
    "HINTS",
    "SEPARATOR",
    "SPEC_DEFAULTS",
    "MCPTool",
    "check_hints",
    "effective_annotations",
    "exposed_name",
]
