"""The durable form of a run: one pydantic adapter, one schema version, explicit migrations.

A paused run is a :class:`RunSnapshot`. Older stored versions are migrated on load, step by
step; a version newer than this code, or one with no migration, fails loudly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from afk.agents.policy import PolicyDecision
from afk.approvals.requests import Request
from afk.canonical import sha256_hex
from afk.core.result import ToolExecution
from afk.errors import StoreError
from afk.llms.messages import Message, ToolCall, ToolMessage, Usage

SCHEMA_VERSION = 1


class SnapshotVersionError(StoreError):
    """A stored run whose schema version this code cannot read."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SettledCall:
    message: ToolMessage
    execution: ToolExecution


@dataclass(frozen=True, slots=True, kw_only=True)
class CallState:
    """One tool call of the paused step: its policy decision, request and, once known,
    its outcome."""

    call: ToolCall
    policy: PolicyDecision
    request: Request | None = None
    settled: SettledCall | None = None


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
    thread_id: str | None = None
    requested_by: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    executions: list[ToolExecution] = field(default_factory=list)
    usage: Usage | None = None
    active_s: float = 0.0
    pending_step: StepState | None = None
    schema_version: int = SCHEMA_VERSION


@cache
def _adapter(kind: type) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(kind)


def to_json(value: Any, kind: Any) -> str:
    """Serialize any durable value (snapshot, request, decision, event) to JSON text."""
    data: bytes = _adapter(kind).dump_json(value)
    return data.decode()


def from_json(text: str | bytes, kind: Any) -> Any:
    return _adapter(kind).validate_json(text)


# Each entry upgrades a stored dict from version N to N + 1.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def dump_snapshot(snapshot: RunSnapshot) -> str:
    return to_json(snapshot, RunSnapshot)


def load_snapshot(text: str | bytes) -> RunSnapshot:
    data = json.loads(text)
    version = data.get("schema_version")
    if not isinstance(version, int):
        raise SnapshotVersionError("stored run has no integer schema_version")
    if version > SCHEMA_VERSION:
        raise SnapshotVersionError(
            f"stored run has schema_version {version}, newer than this afk ({SCHEMA_VERSION}); "
            "upgrade afk-agents to resume it"
        )
    while version < SCHEMA_VERSION:
        migrate = MIGRATIONS.get(version)
        if migrate is None:
            raise SnapshotVersionError(
                f"no migration from schema_version {version} to {version + 1}"
            )
        data = migrate(data)
        version += 1
        data["schema_version"] = version
    snapshot: RunSnapshot = _adapter(RunSnapshot).validate_python(data)
    return snapshot


def args_digest(args: Any) -> str:
    """Unkeyed SHA-256 of the canonical JSON of tool arguments. Not what an approval is bound
    to any more: anyone can recompute it, so stored digests are ``store.keys.digest(args)``
    (see :mod:`afk.audit.keys`); this stays for code that only needs a stable fingerprint."""
    return sha256_hex(args)
