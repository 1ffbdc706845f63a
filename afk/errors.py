"""Every error afk raises on purpose derives from :class:`AfkError`.

The whole tree, with where each class lives when it is not in this module (tests/
test_public_api.py checks it against every exception class afk defines, parents included):

AfkError
├── ConfigurationError        a developer mistake, raised at construction or before a run
│   ├── ModelNotFoundError    a model name nothing can serve
│   ├── AsyncConditionError   sync evaluate()/explain() met an async condition (also a TypeError)
│   ├── _RuleFieldError       afk.agents.rules: a PolicyRule field, naming the rule and the field
│   ├── ApprovalSettingsError  afk.approvals.settings: an approval setting that cannot work
│   ├── AmbiguousIdError      afk.cli._ids: an id prefix more than one record's id starts with
│   ├── ModelSettingsError    afk.llms.settings: a ModelSettings field out of range, naming it
│   ├── UnsupportedSettingError  afk.llms.settings: a setting the provider cannot honour
│   └── MCPNotInstalledError  afk.mcp: afk.mcp used without the mcp extra (the install hint)
├── ModelError                a model call failed during a run
│   ├── FallbackExhaustedError  afk.llms: every model of a FallbackModel failed
│   └── ProviderError         afk.llms: a provider's API refused or failed the call
│       ├── ProviderAuthError        HTTP 401/403: a missing or wrong key
│       ├── ProviderRateLimitError   HTTP 429 (retried)
│       ├── ProviderServerError      HTTP 5xx (retried)
│       ├── ProviderConnectionError  unreachable, dropped or timed out (retried)
│       └── ProviderBadRequestError  any other 4xx: sending it again cannot help
├── InvalidArgumentsError     data canonical JSON cannot hold (NaN, ±Infinity, a repeated key)
├── ToolArgumentsInvalid      afk.tools: arguments the tool's schema rejects (also a ValueError)
├── InteractionError          a human's decision could not be recorded
│   ├── UnknownRequestError   no such request
│   ├── AlreadyDecidedError   the request was decided before; the first decision stands
│   ├── RequestExpiredError   the request passed its deadline or its run ended
│   ├── InvalidDecisionError  the decision itself is malformed (bad kind, bad edited args)
│   │   ├── BodyError      afk.console._decision: an HTTP body or parameter, naming the field
│   │   └── InvalidPrincipalError  an approver id that is empty or holds hidden characters
│   ├── UnauthorizedApproverError  this person may not decide this request (or not alone)
│   └── DuplicateVoteError    this approver already voted on a request that needs a quorum
├── RunError                  a run could not continue (limits); ends the run ``failed``
│   └── OutputValidationError  afk.llms._output: the final answer never fit the output_type
├── RunNotFoundError          no stored run with this id
├── RunNotResumableError      the stored run already ended, or belongs to another agent
├── RunLockedError            another worker holds the run's lease
├── ThreadBusyError           another run is on this conversation thread (running or paused)
├── SubAgentError             a sub-agent (Agent.as_tool) failed, stopped or cannot resume
├── GrantNotFoundError        no standing grant with this id
├── TokenNotFoundError        no API token with this id (afk tokens revoke)
├── ForbiddenPostError        afk.console.web: a browser POST with no valid session or CSRF token
├── OIDCLoginError            afk.console.oidc: an OpenID Connect login that proved nobody
├── ChannelError              afk.console.channels: a notification channel failed or refused
│   ├── DeliveryError         a webhook, Slack or email delivery failed (4xx, or out of retries)
│   └── SignatureError        an inbound payload whose signature is bad, stale or replayed
├── LedgerError               afk.audit: the ledger does not verify, so it is not signed
├── MCPError                  afk.mcp: an MCP server could not be used (a listing afk refuses)
│   ├── MCPConnectionError    the server could not be started or reached, went away, or timed out
│   └── MCPToolError          the server failed or refused a tool call (``isError``, ...)
└── StoreError                the run store failed or holds data this code cannot read
    ├── TamperedRecordError   a stored record's MAC does not verify: it was changed outside afk
    ├── SnapshotVersionError  afk.core._snapshot: a checkpoint of a schema this code cannot read
    ├── SnapshotJoinError     afk.core._snapshot: a checkpoint naming a row the store lacks
    └── LedgerEntryError      afk.audit.entries: a ledger entry of no known kind, or misfitting

Each class carries ``http_status``, the status the HTTP API (afk.console) answers it with,
so that mapping lives here, next to the tree, and nowhere else.

Exceptions whose names start with ``_`` (and ``Paused``, ``ToolPaused``, ``ChildPaused``,
``SpecError``) are control flow inside afk: each is caught where it is raised and never
reaches a caller.
"""

from __future__ import annotations


class AfkError(Exception):
    """Root of every afk error."""

    # Not typing.ClassVar: importing afk must not import typing. Read from the class.
    http_status: int = 500  # the server's fault unless a subclass says otherwise


class ConfigurationError(AfkError, ValueError):
    """Bad configuration, raised where it is written (constructors) or before a run starts."""

    http_status = 422


class ModelNotFoundError(ConfigurationError):
    """A model name that neither the registry nor a built-in provider can serve."""

    def __init__(self, model: str, hint: str) -> None:
        self.model = model
        super().__init__(f"unknown model {model!r}: {hint}")


class AsyncConditionError(ConfigurationError, TypeError):
    """A sync ``PolicyEngine.evaluate`` (or ``explain``) met an async condition, which it
    cannot await; the message names the rule and the async method to call instead. Also a
    ``TypeError``, which it was before it was an ``AfkError``."""


class ModelError(AfkError):
    """A model call failed (a scripted model ran out of turns, a provider error, ...)."""


class InvalidArgumentsError(AfkError, ValueError):
    """Data canonical JSON cannot hold (NaN, ±Infinity, a non-string key, a Python object), or
    JSON text two parsers read differently (a repeated key). ``path`` names where, e.g.
    ``amount`` or ``items[2].price`` (empty: the whole value); ``detail`` is the message
    without ``what``, the thing that was being read."""

    http_status = 422

    def __init__(self, detail: str, *, path: str = "", what: str | None = None) -> None:
        self.path = path
        self.detail = detail
        super().__init__(f"{what}: {detail}" if what else detail)


class InteractionError(AfkError):
    """A decision for an approval or input request was refused."""

    http_status = 409

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        self.request_id = request_id
        super().__init__(message)


class UnknownRequestError(InteractionError, KeyError):
    """No request with this id is known."""

    http_status = 404

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0])


class AlreadyDecidedError(InteractionError):
    """The request already has a decision; the first one stands."""

    http_status = 409

    def __init__(self, message: str, *, request_id: str | None, first_decision: object) -> None:
        self.first_decision = first_decision
        super().__init__(message, request_id=request_id)


class RequestExpiredError(InteractionError):
    """The request passed its ``expires_at`` or its run stopped before a decision arrived."""

    http_status = 410


class InvalidDecisionError(InteractionError, ValueError):
    """The decision is malformed: a bad ``kind``, or edited arguments the tool does not accept."""

    http_status = 422


class InvalidPrincipalError(InvalidDecisionError):
    """A principal id that is empty once canonicalized, or holds control or invisible
    characters."""


class UnauthorizedApproverError(InteractionError):
    """The approver is not among the request's approvers, or approves their own run."""

    http_status = 403


class DuplicateVoteError(InteractionError):
    """This approver already voted; a quorum needs distinct approvers."""

    http_status = 409


class RunError(AfkError):
    """A run hit one of its limits (``max_steps``, ``max_run_time_s``)."""


class RunNotFoundError(AfkError, KeyError):
    """No stored run with this id."""

    http_status = 404

    def __str__(self) -> str:
        return str(self.args[0])


class RunNotResumableError(AfkError):
    """The stored run cannot be resumed (it ended, or the agent does not match)."""

    http_status = 409


class RunLockedError(AfkError):
    """Another worker holds the run's lease; it is being resumed there."""

    http_status = 409


class SubAgentError(AfkError):
    """A sub-agent (``Agent.as_tool``) failed, stopped or cannot be resumed: the call that
    ran it fails with this, and its parent's model is told."""


class ThreadBusyError(AfkError):
    """Another run is on this conversation thread (running, or paused for a decision):
    one run per thread at a time. ``run_id`` names it."""

    http_status = 409

    def __init__(self, message: str, *, thread_id: str, run_id: str | None) -> None:
        self.thread_id = thread_id
        self.run_id = run_id
        super().__init__(message)


class GrantNotFoundError(AfkError, KeyError):
    """No standing grant with this id."""

    http_status = 404

    def __str__(self) -> str:
        return str(self.args[0])


class TokenNotFoundError(AfkError, KeyError):
    """No API token with this id."""

    http_status = 404

    def __str__(self) -> str:
        return str(self.args[0])


class ChannelError(AfkError):
    """A notification channel (webhook, Slack, email) failed or refused something."""

    http_status = 502


class DeliveryError(ChannelError):
    """A notification was not delivered: ``channel`` names where, ``status`` the HTTP status
    answered (None: no answer), ``retryable`` whether trying again may help."""

    def __init__(
        self, message: str, *, channel: str, status: int | None = None, retryable: bool = False
    ) -> None:
        self.channel = channel
        self.status = status
        self.retryable = retryable
        super().__init__(message)


class SignatureError(ChannelError):
    """An inbound payload (a webhook, a Slack click) refused: ``reason`` is ``missing``,
    ``malformed``, ``bad`` (the MAC does not match), ``stale`` (outside the replay window) or
    ``replayed`` (its delivery was seen before)."""

    http_status = 401

    def __init__(self, message: str, *, reason: str) -> None:
        self.reason = reason
        super().__init__(message)


class StoreError(AfkError):
    """The run store failed, or holds data this version of afk cannot read."""


class TamperedRecordError(StoreError):
    """A stored record does not verify under the deployment key (it was written or changed by
    something that does not hold the key), so afk refuses to act on it."""

    def __init__(self, message: str, *, table: str, record_id: str) -> None:
        self.table = table
        self.record_id = record_id
        super().__init__(message)


__all__ = [
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
]
