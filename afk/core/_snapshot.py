"""The durable form of a run: one pydantic adapter, one schema version, explicit migrations.

A paused run is a :class:`RunSnapshot` in memory. Stored (schema v2 on), it holds what resuming
needs once, and nothing the rest of the store or the agent already holds:

- ``run_id``, ``agent_name``, ``thread_id``, ``requested_by``: the run row's own columns;
- the agent's instructions (the first message): the agent definition, given to resume;
- the conversation before the run (v4 on; ``history`` counts it): its thread's turns;
- ``user_message``: the first user message of ``messages``;
- the requests of the paused step: their request rows, named by ``request_id``
  (``model_request_id`` for a gated model call);
- a paused call's ``call`` when it is the step's assistant turn's call at that position
  (always, today): ``call`` is written only when it differs; likewise ``paused_ids`` when they
  are the ids of the step's requests, in order;
- fields at their default, except ``Literal`` fields (``role``, ``kind``: they tell the members
  of a union apart) and the decisions (``ApprovalDecision`` and ``UserInputDecision`` are told
  apart by their keys). A default that changes is a new schema version: the drift test in
  tests/durable/test_schema_fixtures.py compares the written shape and its JSON schema with
  the newest frozen fixture.

Older stored versions are migrated on load, step by step; a version newer than this code, or
one with no migration, fails loudly.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from afk.agents.policy import PolicyDecision
from afk.approvals import _codec as request_codec
from afk.approvals.requests import (
    ApprovalDecision,
    Request,
    ToolAnswer,
    UserInputDecision,
)
from afk.canonical import sha256_hex
from afk.core.result import ToolExecution
from afk.errors import StoreError
from afk.llms.messages import (
    AssistantMessage,
    Message,
    SystemMessage,
    ToolCall,
    Usage,
)

if TYPE_CHECKING:
    from afk.store.store import RunRecord

# 2: slim (see above). 3: a policy decision's approval settings are one value, ``approval``;
# a settled call of the paused step is its execution record alone (the message derives).
# 4: ``history``: a run on a conversation thread leaves the thread's earlier messages to the
# thread (afk.core.sessions); a v3 run has none.
SCHEMA_VERSION = 4


class SnapshotVersionError(StoreError):
    """A stored run whose schema version this code cannot read."""


class SnapshotJoinError(StoreError):
    """A stored run whose snapshot names something the store does not hold (a request row)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallState:
    """One tool call of the paused step: its policy decision, request and, once known,
    its outcome."""

    call: ToolCall
    policy: PolicyDecision
    request: Request | None = None
    # Its record once it settled (the model's message is derived from it: tool_message).
    settled: ToolExecution | None = None
    # Questions its tool asked from inside its body, and the answers it was given so far
    # (afk.core._tool_asks): stored by request id, like ``request``.
    asked: tuple[Request, ...] = ()
    answers: tuple[ToolAnswer, ...] = ()
    # A sub-agent call's child run, paused: its own stored snapshot (as dump_snapshot writes
    # it) and the requests it waits on (stored by id); ``entries``: pauses so far.
    child: str | None = None
    child_waits: tuple[Request, ...] = ()
    entries: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class StepState:
    """The step a run paused in: its tool calls, or the request gating its model call."""

    step: int
    calls: list[CallState] = field(default_factory=list)
    paused_ids: tuple[str, ...] = ()
    model_request: Request | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSnapshot:
    run_id: str
    agent_name: str
    user_message: str
    step: int
    seq: int
    messages: list[Message]
    # How many messages after the instructions are the thread's history: not stored here,
    # the thread holds them (the Runner puts them back when it resumes the run).
    history: int = 0
    thread_id: str | None = None
    requested_by: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    executions: list[ToolExecution] = field(default_factory=list)
    usage: Usage | None = None
    active_s: float = 0.0
    pending_step: StepState | None = None
    # W3C trace context (traceparent) of the run, so a resuming process continues its trace.
    trace_context: dict[str, str] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION


@cache
def _adapter(kind: type) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(kind)


def prepare() -> None:
    """Build the snapshot's adapter now rather than on first use (pydantic takes tens of
    milliseconds for it): a worker does this as it starts, so that its first resume, a
    decision's way to its tool, does not wait for it."""
    _adapter(RunSnapshot)


def _codec(kind: Any) -> Any:
    """The codec module when ``kind`` is a request, decision or grant: those are read and
    written without pydantic (afk.approvals._codec), here as everywhere else."""
    return request_codec if kind in request_codec.KINDS else None


def to_json(value: Any, kind: Any) -> str:
    """Serialize any durable value (snapshot, request, decision, event) to JSON text."""
    codec = _codec(kind)
    if codec is not None:
        text: str = codec.dumps(value)
        return text
    data: bytes = _adapter(kind).dump_json(value)
    return data.decode()


def from_json(text: str | bytes, kind: Any) -> Any:
    codec = _codec(kind)
    if codec is not None:
        return codec.loads(text, kind)
    return _adapter(kind).validate_json(text)


def to_jsonable(value: Any) -> Any:
    """``value`` (a durable dataclass) as JSON data: dicts, lists, strings, numbers."""
    kind: Any = type(value)
    codec = _codec(kind)
    if codec is not None:
        return codec.encode(value)
    return _adapter(kind).dump_python(value, mode="json")


def validate(data: Any, kind: Any) -> Any:
    """``data`` (JSON data, or objects of the right types) as a ``kind``."""
    codec = _codec(kind)
    if codec is not None:
        return codec.decode(data, kind)
    return _adapter(kind).validate_python(data)


# -- writing -------------------------------------------------------------------------------
_ROW_FIELDS = ("run_id", "agent_name", "thread_id", "requested_by")  # the run row's columns
_WHOLE = (ApprovalDecision, UserInputDecision)  # an undiscriminated union: keys tell them apart


def dump_snapshot(snapshot: RunSnapshot) -> str:
    """The stored (v2) form of ``snapshot``: see the module docstring for what it leaves out."""
    data: dict[str, Any] = _adapter(RunSnapshot).dump_python(snapshot, mode="json")
    without_defaults(snapshot, data)
    for name in _ROW_FIELDS:
        data.pop(name, None)
    messages = snapshot.messages
    if not messages or not isinstance(messages[0], SystemMessage):
        # The reader puts the agent's instructions first: a run must start with them.
        raise StoreError(f"run {snapshot.run_id}: its first message is not its instructions")
    data["messages"] = data["messages"][1 + snapshot.history :]
    if snapshot.user_message == _first_user(data["messages"]):
        del data["user_message"]
    if snapshot.pending_step is not None:
        data["pending_step"] = _step_refs(snapshot.pending_step, data["pending_step"], messages)
    data["schema_version"] = snapshot.schema_version
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _step_refs(step: StepState, data: dict[str, Any], messages: list[Message]) -> dict[str, Any]:
    """The paused step with its requests named by id and its calls, where they are the
    assistant turn's own, left to that turn."""
    turn = _turn_calls(messages)
    for position, (state, call) in enumerate(zip(step.calls, data.get("calls", []), strict=True)):
        request = call.pop("request", None)
        if request is not None:
            call["request_id"] = request["request_id"]
        for name in ("asked", "child_waits"):
            if name in call:
                call[f"{name}_ids"] = [r["request_id"] for r in call.pop(name)]
        if position < len(turn) and turn[position] == state.call:
            del call["call"]
    request = data.pop("model_request", None)
    if request is not None:
        data["model_request_id"] = request["request_id"]
    if step.paused_ids == _requested(data):
        data.pop("paused_ids", None)
    return data


def _requested(step: dict[str, Any]) -> tuple[str, ...]:
    """The request ids a stored step names, in order: what ``paused_ids`` is unless written."""
    found = [c["request_id"] for c in step.get("calls", []) if c.get("request_id") is not None]
    found += [c["asked_ids"][-1] for c in step.get("calls", []) if c.get("asked_ids")]
    found += [i for c in step.get("calls", []) for i in c.get("child_waits_ids", ())]
    if step.get("model_request_id") is not None:
        found.append(step["model_request_id"])
    return tuple(found)


def without_defaults(value: Any, data: Any) -> None:
    """Remove from ``data`` (``value`` dumped as JSON) every dataclass field whose value is
    its default, at any depth, but for ``Literal`` fields and decisions (see the module)."""
    if isinstance(value, _WHOLE):
        return
    if dataclasses.is_dataclass(value) and isinstance(data, dict):
        kind: Any = type(value)
        for name, default, factory in _defaults(kind):
            item = getattr(value, name)
            if (default is not _NONE and item == default) or (
                factory is not None and item == factory()
            ):
                data.pop(name, None)
            elif name in data:
                without_defaults(item, data[name])
    elif isinstance(value, list | tuple) and isinstance(data, list):
        for item, dumped in zip(value, data, strict=False):
            without_defaults(item, dumped)
    elif isinstance(value, dict) and isinstance(data, dict):
        for key, item in value.items():
            if isinstance(key, str) and key in data:
                without_defaults(item, data[key])


_NONE = object()  # "no default"


@cache
def _defaults(kind: type) -> tuple[tuple[str, Any, Callable[[], Any] | None], ...]:
    """Per field of a dataclass: (name, default or _NONE, default factory or None);
    ``Literal`` fields count as having no default (they are always written)."""
    try:
        hints = typing.get_type_hints(kind)
    except NameError:  # an annotation only a type checker resolves: read it as text
        hints = {}
    found = []
    for f in dataclasses.fields(kind):
        hint = hints.get(f.name)
        literal = typing.get_origin(hint) is Literal if hint else "Literal[" in str(f.type)
        default = _NONE if literal or f.default is dataclasses.MISSING else f.default
        factory = None
        if not literal and f.default_factory is not dataclasses.MISSING:
            factory = f.default_factory
        found.append((f.name, default, factory))
    return tuple(found)


# -- reading -------------------------------------------------------------------------------
# Each entry upgrades a stored dict from version N to N + 1.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def load_snapshot(
    text: str | bytes,
    *,
    record: RunRecord,
    requests: Mapping[str, Request],
    system: SystemMessage | None,
) -> RunSnapshot:
    """The run ``record`` holds, joined with what its snapshot leaves out: the run's request
    rows (``requests``, by id: at least those of the paused step) and the agent's instructions
    (``system``; None, for a reader without the agent, leaves them out of ``messages``). The
    thread's history (``history`` messages) is not put back: see :func:`with_history`."""
    data = _migrated(json.loads(text))
    for name in _ROW_FIELDS:
        data[name] = getattr(record, name)
    messages = data.get("messages", [])
    data.setdefault("user_message", _first_user(messages) or "")
    if system is not None:
        data["messages"] = [system, *messages]
    step = data.get("pending_step")
    if step is not None:
        data["pending_step"] = _step_joined(step, messages, requests, record.run_id)
    snapshot: RunSnapshot = _adapter(RunSnapshot).validate_python(data)
    return snapshot


def _migrated(data: Any) -> dict[str, Any]:
    version = data.get("schema_version") if isinstance(data, dict) else None
    if not isinstance(version, int):
        raise SnapshotVersionError("stored run has no integer schema_version")
    if version > SCHEMA_VERSION:
        raise SnapshotVersionError(
            f"stored run has schema_version {version}, newer than this afk ({SCHEMA_VERSION}); "
            "upgrade afk-agents to resume it"
        )
    assert isinstance(data, dict)
    while version < SCHEMA_VERSION:
        migrate = MIGRATIONS.get(version)
        if migrate is None:
            raise SnapshotVersionError(
                f"no migration from schema_version {version} to {version + 1}"
            )
        data = migrate(data)
        version += 1
        data["schema_version"] = version
    migrated: dict[str, Any] = data
    return migrated


def _step_joined(
    data: dict[str, Any],
    messages: list[dict[str, Any]],
    requests: Mapping[str, Request],
    run_id: str,
) -> dict[str, Any]:
    turn = _turn_calls(messages)

    def request(request_id: str) -> Request:
        found = requests.get(request_id)
        if found is None:
            raise SnapshotJoinError(
                f"stored run {run_id} waits on request {request_id}, which the store does not "
                "hold: it cannot be resumed"
            )
        return found

    calls = []
    for position, call in enumerate(data.get("calls", [])):
        call = dict(call)
        if "call" not in call:
            if position >= len(turn):
                raise SnapshotJoinError(
                    f"stored run {run_id}: paused call {position} has no tool call, and the "
                    f"assistant turn holds {len(turn)}"
                )
            call["call"] = turn[position]
        request_id = call.pop("request_id", None)
        if request_id is not None:
            call["request"] = request(request_id)
        for name in ("asked", "child_waits"):
            if f"{name}_ids" in call:
                call[name] = [request(i) for i in call.pop(f"{name}_ids")]
        calls.append(call)
    joined = {**data, "calls": calls}
    joined.setdefault("paused_ids", _requested(data))
    model_request_id = joined.pop("model_request_id", None)
    if model_request_id is not None:
        joined["model_request"] = request(model_request_id)
    return joined


def _first_user(messages: list[Any]) -> str | None:
    """The content of the first user message (dumped as JSON)."""
    return next((m.get("content") for m in messages if m.get("role") == "user"), None)


def _turn_calls(messages: list[Any]) -> list[Any]:
    """The tool calls of the last assistant turn: the paused step's, in call order (objects
    when writing, their JSON when reading)."""
    for message in reversed(messages):
        if isinstance(message, AssistantMessage):
            return list(message.tool_calls)
        if isinstance(message, dict) and message.get("role") == "assistant":
            return list(message.get("tool_calls", []))
    return []


def _from_v1(data: dict[str, Any]) -> dict[str, Any]:
    """v1 held everything inline: the row's columns, the instructions, ``user_message`` and
    the paused step's requests. v2 keeps each of them in one place (the module docstring)."""
    slim = {k: v for k, v in data.items() if k not in _ROW_FIELDS}
    messages = slim.get("messages", [])
    if messages and messages[0].get("role") == "system":
        slim["messages"] = messages[1:]
    if slim.get("user_message") == _first_user(slim["messages"]):
        slim.pop("user_message")
    step = slim.get("pending_step")
    if step is not None:
        step = dict(step)
        calls = []
        for call in step.get("calls", []):
            call = dict(call)
            request = call.pop("request", None)
            if request is not None:
                call["request_id"] = request["request_id"]
            calls.append(call)  # its "call" stays: explicit is always readable
        step["calls"] = calls
        model_request = step.pop("model_request", None)
        if model_request is not None:
            step["model_request_id"] = model_request["request_id"]
        slim["pending_step"] = step
    return slim


MIGRATIONS[1] = _from_v1

# The approval settings of a v2 policy decision, kept flat on it.
_V2_APPROVAL_KEYS = (
    "approvers",
    "quorum",
    "allow_self_approval",
    "expires_after_s",
    "remind_after_s",
    "escalate_after_s",
    "escalate_to",
    "deny_decides",
    "allowed_decisions",
)


def _from_v2(data: dict[str, Any]) -> dict[str, Any]:
    """v2 kept a policy decision's approval settings as its own fields; v3 keeps them as one
    value, ``approval`` (afk.approvals.settings), left out when every one is at its default.
    v2 kept a settled call's tool message beside its record; v3 derives it from the record."""
    moved = dict(data)
    moved["executions"] = [_executed_v3(e) for e in data.get("executions", [])]
    step = data.get("pending_step")
    if step is not None:
        calls = []
        for call in step.get("calls", []):
            call = dict(call)
            if call.get("policy") is not None:
                call["policy"] = _policy_v3(call["policy"])
            settled = call.get("settled")
            if settled is not None:  # v2: {message, execution}; the message now derives
                call["settled"] = _executed_v3(settled["execution"])
            calls.append(call)
        moved["pending_step"] = {**step, "calls": calls}
    return moved


def _executed_v3(execution: dict[str, Any]) -> dict[str, Any]:
    policy = execution.get("policy")
    return execution if policy is None else {**execution, "policy": _policy_v3(policy)}


def _policy_v3(policy: dict[str, Any]) -> dict[str, Any]:
    flat = {k: v for k, v in policy.items() if k not in _V2_APPROVAL_KEYS}
    settings = {k: policy[k] for k in _V2_APPROVAL_KEYS if k in policy}
    if settings:
        flat["approval"] = settings
    return flat


MIGRATIONS[2] = _from_v2


def _from_v3(data: dict[str, Any]) -> dict[str, Any]:
    return data  # v4 added ``history``, whose default (none) is every v3 run's


MIGRATIONS[3] = _from_v3


def with_history(snapshot: RunSnapshot, history: list[Message]) -> RunSnapshot:
    """``snapshot`` (read with its instructions) with its thread's history put back after
    them: the first ``snapshot.history`` messages of ``history``."""
    if not snapshot.history:
        return snapshot
    if len(history) < snapshot.history:
        raise SnapshotJoinError(
            f"stored run {snapshot.run_id} continues {snapshot.history} messages of thread "
            f"{snapshot.thread_id!r}, which holds {len(history)}: it cannot be resumed"
        )
    first, rest = snapshot.messages[:1], snapshot.messages[1:]
    return dataclasses.replace(snapshot, messages=[*first, *history[: snapshot.history], *rest])


def args_digest(args: Any) -> str:
    """Unkeyed SHA-256 of the canonical JSON of tool arguments. Not what an approval is bound
    to any more: anyone can recompute it, so stored digests are ``store.keys.digest(args)``
    (see :mod:`afk.audit.keys`); this stays for code that only needs a stable fingerprint."""
    return sha256_hex(args)
