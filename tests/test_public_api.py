"""The public surface is a contract: changing it is a deliberate act.

A module is public when no part of its dotted name starts with ``_``; every public module
declares ``__all__`` (its public names: those without a leading underscore) and the lists are
locked here. Every exception class afk defines is an :class:`afk.AfkError` drawn, under its
parent, in the tree of ``afk/errors.py``'s docstring, unless it is control flow that never
leaves afk.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import runpy
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import afk
import afk.errors
from afk.errors import AfkError

EXPECTED: dict[str, list[str]] = {
    "afk": [
        "AfkError",
        "Agent",
        "ApprovalDecision",
        "InMemoryInteractiveProvider",
        "PolicyEngine",
        "PolicyRule",
        "Runner",
        "RunnerConfig",
        "__version__",
    ],
    "afk.agents": [
        "Agent",
        "ApprovalDecision",
        "ApprovalRequest",
        "ApproverDirectory",
        "GrantSpec",
        "ModelSettings",
        "PolicyDecision",
        "PolicyEngine",
        "PolicyEvent",
        "PolicyExplanation",
        "PolicyRule",
        "RuleExplanation",
        "ShadowResult",
        "StaticDirectory",
        "UserInputDecision",
        "UserInputRequest",
    ],
    "afk.agents.agent": ["Agent"],
    "afk.agents.policy": [
        "ACTIONS",
        "Condition",
        "DECISION_OPTIONS",
        "EVENT_TYPES",
        "EventType",
        "PolicyAction",
        "PolicyDecision",
        "PolicyEngine",
        "PolicyEvent",
        "PolicyRule",
        "RESTRICTIVENESS",
        "ShadowResult",
        "combine",
    ],
    "afk.agents.rules": [
        "ACTIONS",
        "Condition",
        "EVENT_TYPES",
        "EventType",
        "PolicyAction",
        "PolicyDecision",
        "PolicyEvent",
        "PolicyRule",
        "RESTRICTIVENESS",
        "Reason",
        "ShadowResult",
    ],
    "afk.approvals": [
        "ApprovalDecision",
        "ApprovalRequest",
        "ApproverDirectory",
        "Decided",
        "GrantSpec",
        "HeadlessInteractionProvider",
        "InMemoryInteractiveProvider",
        "InteractionProvider",
        "Principal",
        "StaticDirectory",
        "UserInputDecision",
        "UserInputRequest",
        "Vote",
        "VoteCounted",
        "canonical_id",
        "decide",
    ],
    "afk.approvals.approvers": [
        "ApproverDirectory",
        "GROUP_PREFIX",
        "StaticDirectory",
        "expand_approvers",
    ],
    "afk.approvals.decide": [
        "Decided",
        "Vote",
        "VoteCounted",
        "check_approver",
        "decide",
        "eligible",
        "option_of",
    ],
    "afk.approvals.display": [
        "Escaper",
        "HIDDEN_MARKER",
        "SAFE_TOOL_NAME",
        "SAFE_TOOL_NAME_TEXT",
        "escape",
        "escaped_json",
        "has_hidden",
        "is_safe_tool_name",
        "tool_label",
        "value_has_hidden",
    ],
    "afk.approvals.grants": ["Grants", "add_grant", "grant_record", "scope_values"],
    "afk.approvals.notify": [
        "DEFAULT_TIMEOUT_S",
        "DeliveryReport",
        "EventKind",
        "NotificationEvent",
        "Notifier",
        "Notifiers",
        "RequestDecidedEvent",
        "RequestEscalatedEvent",
        "RequestExpiredEvent",
        "RequestOpenedEvent",
        "RequestRemindedEvent",
        "RequestSummary",
        "deliver_pending",
        "delivery_id",
        "event_json",
        "events_from_log",
    ],
    "afk.approvals.principal": [
        "Principal",
        "asserted",
        "canonical_id",
        "canonical_ids",
        "ledger_fields",
    ],
    "afk.approvals.providers": [
        "HeadlessInteractionProvider",
        "InMemoryInteractiveProvider",
        "InteractionProvider",
    ],
    "afk.approvals.settings": ["ApprovalSettings", "ApprovalSettingsError"],
    "afk.approvals.requests": [
        "ApprovalDecision",
        "ApprovalRequest",
        "CallApproval",
        "DECISION_OPTIONS",
        "DecidedBy",
        "Decision",
        "DecisionKind",
        "FALLBACKS",
        "Fallback",
        "GRANT_SCOPES",
        "GrantScope",
        "GrantSpec",
        "Request",
        "ResolvedDecision",
        "ToolAnswer",
        "UserInputDecision",
        "UserInputRequest",
        "input_value",
        "validate_decision",
    ],
    "afk.audit": [
        "BadEntry",
        "ChainChecker",
        "Checkpoint",
        "DecisionRefused",
        "ENTRY_KINDS",
        "Entry",
        "ExecutionFinished",
        "ExecutionStarted",
        "GENESIS",
        "GrantCreated",
        "GrantRevoked",
        "GrantUsed",
        "Keyring",
        "LedgerEntry",
        "LedgerEntryError",
        "LedgerError",
        "PolicyDecided",
        "ReminderSent",
        "RequestDecided",
        "RequestEscalated",
        "RequestExpired",
        "RequestOpened",
        "SecretKey",
        "ShadowRule",
        "TamperDetected",
        "VerifyReport",
        "VoteCast",
        "audit_keyring_from_env",
        "checkpoint",
        "entry_body",
        "entry_hash",
        "entry_json",
        "export_jsonl",
        "from_log",
        "keyring_from_env",
        "parse_secret",
        "to_log",
        "verify",
    ],
    "afk.audit.chain": [
        "Checkpoint",
        "GENESIS",
        "KEY_ENV",
        "audit_keyring_from_env",
        "entry_body",
        "entry_hash",
    ],
    "afk.audit.entries": [
        "DecisionRefused",
        "ENTRY_CLASSES",
        "ENTRY_KINDS",
        "Entry",
        "ExecutionFinished",
        "ExecutionStarted",
        "GrantCreated",
        "GrantRevoked",
        "GrantUsed",
        "LedgerEntry",
        "LedgerEntryError",
        "PolicyDecided",
        "ReminderSent",
        "RequestDecided",
        "RequestEscalated",
        "RequestExpired",
        "RequestOpened",
        "ShadowRule",
        "TamperDetected",
        "VoteCast",
        "Who",
        "entry_payload",
        "from_log",
        "to_log",
        "who",
    ],
    "afk.audit.export": ["PAGE", "entry_json", "export_jsonl"],
    "afk.audit.keys": [
        "KEY_ENV",
        "Keyring",
        "MAKE_ONE",
        "MIN_SECRET_BYTES",
        "PREVIOUS_ENV",
        "SecretKey",
        "key_from_env",
        "key_id_of",
        "keyring_from_env",
        "load_key_file",
        "parse_secret",
        "postgres_keyring",
        "previous_keys",
        "sqlite_keyring",
    ],
    "afk.audit.verify": [
        "BadEntry",
        "ChainChecker",
        "CheckpointStore",
        "LedgerError",
        "PAGE",
        "Problem",
        "VerifyReport",
        "checkpoint",
        "checkpoint_store",
        "verify",
    ],
    "afk.canonical": [
        "MAX_DEPTH",
        "canonical_bytes",
        "canonical_json",
        "check_json",
        "clean",
        "join_path",
        "json_copy",
        "jsonable",
        "marked_loads",
        "normalize",
        "sha256_hex",
        "strict_loads",
        "unmarked",
    ],
    "afk.cli": ["ConsoleInteractionProvider"],
    "afk.cli.approvals_cmd": [
        "answer_input",
        "approve_request",
        "deny_request",
        "list_requests",
        "register",
        "show_request",
    ],
    "afk.cli.audit_cmd": [
        "checkpoint_ledger",
        "export_ledger",
        "read_anchor",
        "register",
        "verify_ledger",
        "write_anchor",
    ],
    "afk.cli.completion_cmd": [
        "Node",
        "Option",
        "SHELLS",
        "bash_script",
        "completion_command",
        "fish_script",
        "register",
        "walk",
        "zsh_script",
    ],
    "afk.cli.console_provider": ["ConsoleInteractionProvider", "EXIT_INTERRUPTED", "resume_hint"],
    "afk.cli.demo": [
        "DEMO_DIR",
        "DEMO_MODEL",
        "DEMO_STORE",
        "REQUEST",
        "app",
        "policy",
        "register",
        "run_demo",
    ],
    "afk.cli.grants_cmd": ["list_grants", "register", "revoke_grant"],
    "afk.cli.main": ["COMMANDS", "build_parser", "main"],
    "afk.cli.policy_cmd": ["register", "run_test"],
    "afk.cli.runs_cmd": [
        "RUN_STATUSES",
        "next_page_line",
        "positive_int",
        "register",
        "run_list",
        "run_show",
    ],
    "afk.cli.serve_cmd": ["DEFAULT_HOST", "DEFAULT_PORT", "register", "serve_command"],
    "afk.cli.tokens_cmd": [
        "DEFAULT_EXPIRES",
        "create_token",
        "expiry",
        "list_tokens",
        "register",
        "revoke_token",
    ],
    "afk.cli.worker_cmd": [
        "APP_HELP",
        "App",
        "load_app",
        "register",
        "resume_command",
        "worker_command",
    ],
    "afk.core": [
        "ApprovalDecision",
        "ApprovalReminder",
        "ApprovalRequest",
        "ApprovalRequested",
        "ApprovalResolved",
        "Event",
        "GrantUsed",
        "HeadlessInteractionProvider",
        "InMemoryInteractiveProvider",
        "InMemorySession",
        "InteractionProvider",
        "LLMCalled",
        "LLMCompleted",
        "PolicyDecisionEvent",
        "RunCancelled",
        "RunCompleted",
        "RunFailed",
        "RunHandle",
        "RunInfo",
        "RunPaused",
        "RunResult",
        "RunResumed",
        "RunStarted",
        "RunWarning",
        "Runner",
        "RunnerConfig",
        "Session",
        "StepStarted",
        "StoreSession",
        "TextDelta",
        "ToolCompleted",
        "ToolExecution",
        "ToolStarted",
        "UserInputDecision",
        "UserInputRequest",
        "UserInputRequested",
        "UserInputResolved",
        "VoteRecorded",
        "VoteRefused",
        "event_from_dict",
        "event_to_dict",
    ],
    "afk.core.config": ["DEFAULT_TIMEOUT_S", "InteractionMode", "MODES", "RunnerConfig"],
    "afk.core.events": [
        "ApprovalReminder",
        "ApprovalRequested",
        "ApprovalResolved",
        "Event",
        "GrantUsed",
        "LLMCalled",
        "LLMCompleted",
        "PolicyDecisionEvent",
        "RunCancelled",
        "RunCompleted",
        "RunFailed",
        "RunPaused",
        "RunResumed",
        "RunStarted",
        "RunWarning",
        "StepStarted",
        "TERMINAL_TYPES",
        "TextDelta",
        "ToolCompleted",
        "ToolStarted",
        "UserInputRequested",
        "UserInputResolved",
        "VoteRecorded",
        "VoteRefused",
        "event_from_dict",
        "event_from_row",
        "event_to_dict",
        "event_to_json",
        "stored_payload",
    ],
    "afk.console": [
        "INSTALL_HINT",
        "Authenticator",
        "SessionAuthenticator",
        "TokenAuthenticator",
        "app",
        "login",
    ],
    "afk.console.app": ["MAX_BODY_BYTES", "app", "error_response", "unauthenticated"],
    "afk.console.auth": [
        "Authenticator",
        "TokenAuthenticator",
        "bearer",
        "principal_of_token",
        "token_principal",
    ],
    "afk.console.web": ["ForbiddenPostError", "Web", "login", "until", "when"],
    "afk.console.oidc": [
        "FLOW_COOKIE",
        "OIDCConfig",
        "OIDCLogin",
        "OIDCLoginError",
        "OnLogin",
        "oidc_routes",
        "scopes_of",
    ],
    "afk.console.proxy": [
        "FirstOf",
        "ProxyHeaderAuthenticator",
        "forwarded_proto",
        "networks",
        "peer_in",
        "proxy_login_routes",
    ],
    "afk.console.channels": [
        "EmailNotifier",
        "SlackNotifier",
        "WebhookNotifier",
        "email_routes",
        "slack_routes",
        "verify_webhook",
    ],
    "afk.console.channels.email": [
        "EmailNotifier",
        "INSTALL_HINT",
        "LINK_PURPOSE",
        "LINK_TTL_S",
        "email_routes",
        "new_link",
        "token_of",
    ],
    "afk.console.channels.slack": [
        "APPROVE",
        "DENY",
        "INSTALL_HINT",
        "NOT_MAPPED",
        "SlackNotifier",
        "load_identities",
        "outcome_blocks",
        "outcome_text",
        "request_blocks",
        "request_text",
        "slack_routes",
    ],
    "afk.console.channels.webhook": [
        "DELIVERY_HEADER",
        "EVENT_HEADER",
        "MemorySeen",
        "SIGNATURE_HEADER",
        "SeenDeliveries",
        "TOLERANCE_S",
        "WebhookNotifier",
        "sign",
        "signature_header",
        "verify_webhook",
    ],
    "afk.core.result": ["RunInfo", "RunResult", "RunState", "ToolExecution"],
    "afk.core.runner": ["RunHandle", "Runner"],
    "afk.core.sessions": ["InMemorySession", "Session", "StoreSession"],
    "afk.errors": [
        "AfkError",
        "AlreadyDecidedError",
        "AsyncConditionError",
        "ChannelError",
        "ConfigurationError",
        "DeliveryError",
        "DuplicateVoteError",
        "GrantNotFoundError",
        "InteractionError",
        "InvalidArgumentsError",
        "InvalidDecisionError",
        "InvalidPrincipalError",
        "ModelError",
        "ModelNotFoundError",
        "RequestExpiredError",
        "RunError",
        "RunLockedError",
        "RunNotFoundError",
        "RunNotResumableError",
        "SignatureError",
        "StoreError",
        "SubAgentError",
        "TamperedRecordError",
        "ThreadBusyError",
        "TokenNotFoundError",
        "UnauthorizedApproverError",
        "UnknownRequestError",
    ],
    "afk.llms": [
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
        "Usage",
        "UnsupportedSettingError",
        "UserMessage",
        "register_model",
        "resolve_model",
        "unregister_model",
    ],
    "afk.llms.anthropic": [
        "ANTHROPIC_PRICES",
        "API_VERSION",
        "AnthropicModel",
        "DEFAULT_BASE_URL",
        "MessageStreamAccumulator",
        "OUTPUT_TOOL",
        "anthropic_settings",
        "output_tool",
        "parse_message",
        "take_output",
        "to_anthropic_messages",
        "to_anthropic_tools",
    ],
    "afk.llms.fallback": ["FallbackExhaustedError", "FallbackModel"],
    "afk.llms.litellm": ["LiteLLMModel", "as_dict", "import_litellm", "map_litellm_error"],
    "afk.llms.messages": [
        "AssistantMessage",
        "Message",
        "ModelResponse",
        "SystemMessage",
        "ToolCall",
        "ToolMessage",
        "ToolSpec",
        "Usage",
        "UserMessage",
    ],
    "afk.llms.model": ["Model", "StreamingModel", "model_label"],
    "afk.llms.openai": [
        "ChatStreamAccumulator",
        "DEFAULT_BASE_URL",
        "OPENAI_PRICES",
        "OpenAIModel",
        "openai_settings",
        "parse_chat_completion",
        "parse_usage",
        "response_format",
        "to_openai_messages",
        "to_openai_tools",
    ],
    "afk.llms.settings": [
        "ModelSettings",
        "ModelSettingsError",
        "OutputSpec",
        "TOOL_CHOICES",
        "UnsupportedSettingError",
    ],
    "afk.llms.registry": ["ModelFactory", "register_model", "resolve_model", "unregister_model"],
    "afk.llms.testing": ["FunctionModel", "FunctionResult", "ScriptedModel", "Turn"],
    "afk.mcp": [
        "HINTS",
        "HttpTarget",
        "MCPConnectionError",
        "MCPError",
        "MCPNotInstalledError",
        "MCPServer",
        "MCPTool",
        "MCPToolError",
        "SEPARATOR",
        "SPEC_DEFAULTS",
        "StdioTarget",
    ],
    "afk.mcp.errors": ["MCPConnectionError", "MCPError", "MCPNotInstalledError", "MCPToolError"],
    "afk.mcp.server": ["HttpTarget", "MCPServer", "StdioTarget"],
    "afk.mcp.tool": [
        "HINTS",
        "MCPTool",
        "SEPARATOR",
        "SPEC_DEFAULTS",
        "check_hints",
        "effective_annotations",
        "exposed_name",
    ],
    "afk.observability": [
        "INSTALL_HINT",
        "RunObserver",
        "SpanFactory",
        "observe_run",
        "span_factory",
    ],
    "afk.observability.attributes": [
        "AGENT_NAME",
        "APPROVER",
        "APPROVERS",
        "CONVERSATION_ID",
        "COST_USD",
        "DECIDED_BY",
        "DECISION",
        "ERROR_TYPE",
        "EXPIRED",
        "INPUT_TOKENS",
        "MODEL_CALL",
        "OPERATION_NAME",
        "OUTPUT_TOKENS",
        "POLICY_ACTION",
        "POLICY_EVENT",
        "POLICY_MATCHED",
        "POLICY_REASON",
        "POLICY_RULE",
        "PROVIDER_NAME",
        "REQUEST_ID",
        "REQUEST_KIND",
        "REQUEST_MODEL",
        "REQUEST_RULE",
        "RUN_ID",
        "RUN_RESUMED",
        "RUN_STATE",
        "SPAN_APPROVAL",
        "SPAN_CHAT",
        "SPAN_POLICY",
        "SPAN_RUN",
        "SPAN_TOOL",
        "SPAN_USER_INPUT",
        "STEP",
        "TOOL_CALL_ID",
        "TOOL_NAME",
        "TOOL_TYPE",
        "WAIT_SECONDS",
    ],
    "afk.store": [
        "EventRow",
        "ExecutionRecord",
        "LogEntry",
        "Page",
        "PostgresStore",
        "RequestRecord",
        "RunRecord",
        "RunStore",
        "SQLiteStore",
        "StoreError",
        "open_store",
        "record_ok",
        "store_from_env",
    ],
    "afk.store.postgres": ["MAX_CONNECTIONS", "POOL_TIMEOUT_S", "PostgresStore", "mask_dsn"],
    "afk.store.sqlite": ["BUSY_TIMEOUT_S", "POLL_INTERVAL_S", "SQLiteStore"],
    "afk.store.store": [
        "EventRow",
        "ExecutionRecord",
        "ExecutionStatus",
        "GrantRecord",
        "IdempotentAnswer",
        "LogEntry",
        "RequestOrder",
        "RequestRecord",
        "RequestStatus",
        "RunRecord",
        "RunStatus",
        "RunStore",
        "TERMINAL_RUN_STATES",
        "ClaimedRun",
        "ThreadHolder",
        "ThreadTurnRecord",
        "TimerRecord",
        "TokenRecord",
        "VoteRecord",
        "VoteRule",
    ],
    "afk.tools": ["Tool", "ToolArgumentsInvalid", "ToolContext", "tool"],
    "afk.tools.tool": ["Tool", "ToolArgumentsInvalid", "ToolContext", "tool"],
}


# Exceptions that are control flow inside afk, each caught where it is raised; any other
# exception class must be an AfkError. A name with a leading underscore says so by itself.
INTERNAL = {
    "afk.core._call.Paused": "the run loop catches it and returns a paused RunResult",
    "afk.core._tool_asks.ToolPaused": "the tool-call runner catches it: the call waits",
    "afk.core._tool_asks.ChildPaused": "the tool-call runner catches it: a sub-agent waits",
    "afk.agents._matchers.SpecError": "rules and grant specs turn it into ConfigurationError",
    "afk.cli._prompt.PromptInterrupted": "the console provider ends its prompt on it",
    "afk.audit.entries._shape.Problem": "the entry codec turns it into LedgerEntryError",
    "afk.store._sqlite_driver.WouldWait": "the SQLite store runs the operation in a thread",
}
# Modules that run something on import instead of defining names.
NOT_IMPORTABLE = {"afk.__main__"}


def _all_modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages(afk.__path__, "afk.")]
    return ["afk", *(n for n in names if n not in NOT_IMPORTABLE)]


def _is_public(module: str) -> bool:
    return not any(part.startswith("_") for part in module.split("."))


@pytest.mark.parametrize("module", sorted(EXPECTED))
def test_all_is_locked(module: str) -> None:
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == sorted(EXPECTED[module])
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name}"


def test_every_public_module_is_locked() -> None:
    public = {name for name in _all_modules() if _is_public(name)}
    assert sorted(public - EXPECTED.keys()) == [], "public modules with no entry in EXPECTED"
    assert sorted(EXPECTED.keys() - public) == [], "EXPECTED names modules that are gone"
    for name in sorted(public):
        assert isinstance(vars(importlib.import_module(name)).get("__all__"), list), name


def test_the_seed_names_come_from_afk_itself() -> None:
    from afk import (
        Agent,
        ApprovalDecision,
        InMemoryInteractiveProvider,
        PolicyEngine,
        PolicyRule,
        Runner,
        RunnerConfig,
    )
    from afk.agents import Agent as AgentAgain
    from afk.core import Runner as RunnerAgain

    assert (Agent, Runner) == (AgentAgain, RunnerAgain)
    assert {c.__name__ for c in (ApprovalDecision, InMemoryInteractiveProvider)} == {
        "ApprovalDecision",
        "InMemoryInteractiveProvider",
    }
    assert PolicyEngine(rules=[PolicyRule("r", action="deny")]).rules[0].rule_id == "r"
    assert RunnerConfig().interaction_mode in {"headless", "interactive", "external"}
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        afk.Nope  # noqa: B018


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_import_afk_loads_neither_the_runtime_nor_typing() -> None:
    # `afk --version` and every approver's command import afk first: it must stay cheap.
    code = (
        "import sys; had = 'typing' in sys.modules; import afk; "
        "print([m for m in ('afk.agents', 'afk.core', 'afk.approvals', 'pydantic', 'typing') "
        "if m in sys.modules and not (m == 'typing' and had)])"
    )
    out = _python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_importing_the_runtime_does_not_import_pydantic() -> None:
    out = _python("import sys, afk.agents, afk.core; print('pydantic' in sys.modules)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# -- the seed's examples, importing every name from `afk` --------------------------------------
_SEED = runpy.run_path(str(Path(__file__).parent / "seed" / "seed_examples.py"))
_SCRIPTED = """
from afk.llms import ScriptedModel, ToolCall, register_model
register_model("gpt-5.2-mini", ScriptedModel([ToolCall("drop_table", {"name": "t"}), "Done."]))
"""
_APPROVE = """
import threading, time
from afk.tools import tool

ran = []

@tool
def drop_table(name: str) -> str:
    ran.append(name)
    return "dropped"

agent = Agent(name="change-manager", model="gpt-5.2-mini", instructions="x", tools=[drop_table])

def human():
    while not provider.pending():
        time.sleep(0.001)
    provider.resolve_approval(provider.pending()[0].request_id, ApprovalDecision(kind="allow"))

threading.Thread(target=human).start()
result = runner.run_sync(agent, user_message="Drop old production tables")
assert result.state == "completed", result.error
assert ran == ["t"], ran
print("approved and ran")
"""


def _from_afk(example: str) -> str:
    code = example.replace("from afk.agents import", "from afk import")
    code = code.replace("from afk.core import", "from afk import")
    assert "afk.agents" not in code and "afk.core" not in code
    return code


def test_the_seed_examples_run_importing_from_afk() -> None:
    headless = _from_afk(_SEED["HEADLESS"])
    out = _python(_SCRIPTED + headless + 'assert result.tool_executions[0].denied\nprint("ok")')
    assert out.returncode == 0, out.stderr
    assert "State: completed" in out.stdout and "ok" in out.stdout
    out = _python(_SCRIPTED + headless + _from_afk(_SEED["INTERACTIVE"]) + _APPROVE)
    assert out.returncode == 0, out.stderr
    assert "approved and ran" in out.stdout


# -- one error tree ----------------------------------------------------------------------------
def _exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for name in _all_modules():
        module: ModuleType = importlib.import_module(name)
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == name
            ):
                found[f"{name}.{value.__qualname__}"] = value
    return found


def _drawn_tree() -> dict[str, str | None]:
    """Each class drawn in errors.py's docstring, mapped to the class drawn as its parent."""
    lines = (afk.errors.__doc__ or "").splitlines()
    tree = lines[lines.index("AfkError") :]
    tree = tree[: tree.index("")] if "" in tree else tree
    parents: dict[str, str | None] = {"AfkError": None}
    stack = ["AfkError"]
    for line in tree[1:]:
        match = re.match(r"^((?:[│ ]   )*)[├└]── (_?[A-Z]\w*)(?:\s|$)", line)
        assert match is not None, f"not a line of the tree: {line!r}"
        depth = len(match.group(1)) // 4 + 1  # AfkError's children are at depth 1
        del stack[depth:]
        parents[match.group(2)] = stack[-1]
        stack.append(match.group(2))
    return parents


def test_every_exception_afk_defines_is_an_afk_error_or_internal_control_flow() -> None:
    for qualified, cls in _exception_classes().items():
        if issubclass(cls, AfkError):
            continue
        assert cls.__name__.startswith("_") or qualified in INTERNAL, (
            f"{qualified} is not an AfkError: derive it from one in afk/errors.py's tree"
        )
    for qualified in INTERNAL:
        assert qualified in _exception_classes(), f"INTERNAL names {qualified}, which is gone"


def test_the_tree_in_errors_py_draws_every_afk_error_under_its_parent() -> None:
    drawn = _drawn_tree()
    assert drawn["AfkError"] is None
    errors = {c.__name__: c for c in _exception_classes().values() if issubclass(c, AfkError)}
    assert sorted(errors.keys() - drawn.keys()) == [], "AfkErrors missing from the tree"
    assert sorted(drawn.keys() - errors.keys()) == [], "the tree draws classes that are gone"
    for name, cls in errors.items():
        if cls is AfkError:
            continue
        parent = next(b for b in cls.__bases__ if issubclass(b, AfkError))
        assert drawn[name] == parent.__name__, f"{name} is drawn under {drawn[name]}"


def test_errors_that_were_builtin_errors_still_are() -> None:
    from afk.tools import ToolArgumentsInvalid

    assert issubclass(ToolArgumentsInvalid, AfkError) and issubclass(
        ToolArgumentsInvalid, ValueError
    )
    assert issubclass(afk.errors.AsyncConditionError, TypeError)
    assert issubclass(afk.errors.AsyncConditionError, afk.errors.ConfigurationError)
