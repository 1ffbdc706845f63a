"""Telling people about requests: typed lifecycle events, the :class:`Notifier` protocol,
and :class:`Notifiers`, a fan-out that keeps one channel's failure from touching another.

Events come from the store's ledger, after the fact (:func:`deliver_pending`, which a worker
loop calls each pass): every decision path already writes the ledger in its deciding
transaction, so a channel sees every request opened, reminded, escalated, decided or
expired, whoever brought it and from whichever process, and a channel that fails can change
no decision and hold up no run. Delivery is at-least-once: each channel's place in the
ledger is kept in the store and moves only past what it delivered, and
:func:`delivery_id` is stable per (event, channel) so receivers can drop a repeat.

Channels (afk.console.channels): webhooks, Slack, email. A notifier is any object with
``async notify(event) -> None``; raising means "not delivered, try again later".
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from afk.errors import ConfigurationError

log = logging.getLogger("afk.notify")
# A channel's own retries included: one that takes longer is cut off and tried again later.
DEFAULT_TIMEOUT_S = 120.0
_CHANNEL = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestSummary:
    """What a notification may show of a request: the tool, its exact arguments (as they
    will run), the rule and its reason, the deadline, and who may decide now (None: anyone).
    Read from a stored row that verified under the store's key."""

    request_id: str
    run_id: str
    kind: Literal["approval", "user_input"]
    agent_name: str
    tool_name: str | None
    tool_args: dict[str, Any]
    rule_id: str | None
    reason: str | None
    status: str
    expires_at: float
    approvers: tuple[str, ...] | None


@dataclass(frozen=True, slots=True, kw_only=True)
class _Event:
    """What every event has: its id (stable: one per ledger entry), the ledger entry it
    comes from, the request, and when (epoch seconds)."""

    event_id: str
    ledger_id: int
    request_id: str
    run_id: str
    at: float
    request: RequestSummary


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestOpenedEvent(_Event):
    """A run asked a human (approval or input) about one call."""

    kind: Literal["request_opened"] = "request_opened"


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestRemindedEvent(_Event):
    """A pending request's reminder came due; ``approvers`` may decide it."""

    kind: Literal["request_reminded"] = "request_reminded"
    approvers: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestEscalatedEvent(_Event):
    """A pending request was escalated; ``approvers`` is the widened set."""

    kind: Literal["request_escalated"] = "request_escalated"
    approvers: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestDecidedEvent(_Event):
    """A request was decided: ``decision`` (allow / deny) by ``approver`` (the principal's
    id; None for a fallback), ``authenticated_by`` how afk knew them (``token:...``,
    ``slack:T/U``, ``os:uid=...``), ``decided_by`` human or the fallback that applied."""

    kind: Literal["request_decided"] = "request_decided"
    decision: Literal["allow", "deny"]
    decided_by: str
    approver: str | None
    authenticated_by: str | None
    operator: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestExpiredEvent(_Event):
    """A request passed its deadline; ``decision`` is the fallback that applied."""

    kind: Literal["request_expired"] = "request_expired"
    decision: Literal["allow", "deny"]
    reason: str | None = None


NotificationEvent = (
    RequestOpenedEvent
    | RequestRemindedEvent
    | RequestEscalatedEvent
    | RequestDecidedEvent
    | RequestExpiredEvent
)
EventKind = Literal[
    "request_opened", "request_reminded", "request_escalated", "request_decided", "request_expired"
]


def event_json(event: NotificationEvent) -> dict[str, Any]:
    """``event`` as JSON-ready data (tuples as lists), ``kind`` first."""
    data = asdict(event)
    return {"kind": data.pop("kind"), **data}


def delivery_id(event: NotificationEvent, channel: str) -> str:
    """The id of ``event``'s delivery to ``channel``: the same on every retry and every
    redelivery, different per channel, so a receiver drops what it already took."""
    digest = hashlib.sha256(f"{event.event_id}\x00{channel}".encode()).hexdigest()
    return "dlv_" + digest[:32]


@runtime_checkable
class Notifier(Protocol):
    """A channel: tells someone about one event. Raising means "not delivered": the
    event is offered again on a later pass."""

    async def notify(self, event: NotificationEvent) -> None:
        """Deliver ``event`` (the channel's own retries included), or raise."""


class Notifiers:
    """Several channels, each named (its delivery ids and its place in the ledger go by
    the name). ``channels``: a mapping of name to notifier, or notifiers with a ``name``.

    :meth:`notify` calls every channel at once and isolates them: a channel that raises or
    hangs (past ``timeout_s``) is logged and never keeps another from delivering, nor
    reaches the caller."""

    def __init__(
        self,
        channels: Mapping[str, Notifier] | Sequence[Notifier],
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        named = (
            dict(channels) if isinstance(channels, Mapping) else {_name_of(n): n for n in channels}
        )
        if not isinstance(channels, Mapping) and len(named) != len(channels):
            raise ConfigurationError("Notifiers: two channels share a name; name them apart")
        for name, notifier in named.items():
            if not isinstance(name, str) or not _CHANNEL.fullmatch(name):
                raise ConfigurationError(
                    f"Notifiers: channel name {name!r} must be 1 to 64 of a-z, 0-9, '_', "
                    "'-', '.', starting with a letter or digit"
                )
            if not isinstance(notifier, Notifier):
                raise ConfigurationError(
                    f"Notifiers: channel {name!r} is a {type(notifier).__name__}, which has "
                    "no async notify(event)"
                )
        if not isinstance(timeout_s, int | float) or timeout_s <= 0:
            raise ConfigurationError(f"Notifiers timeout_s must be seconds > 0, got {timeout_s!r}")
        self.channels: dict[str, Notifier] = named
        self.timeout_s = float(timeout_s)

    async def notify(self, event: NotificationEvent) -> dict[str, Exception | None]:
        """Deliver ``event`` to every channel; what each channel raised (None: delivered)."""
        names = list(self.channels)
        outcomes = await asyncio.gather(
            *(self.deliver(name, event) for name in names), return_exceptions=False
        )
        return dict(zip(names, outcomes, strict=True))

    async def deliver(self, name: str, event: NotificationEvent) -> Exception | None:
        """Deliver ``event`` to the channel ``name``; the exception it raised, logged, or None."""
        try:
            await asyncio.wait_for(self.channels[name].notify(event), self.timeout_s)
        except Exception as exc:  # a channel's failure is its own: logged, never raised
            log.warning(
                "channel %s did not deliver %s (%s %s): %s: %s",
                name,
                event.kind,
                event.request_id,
                delivery_id(event, name),
                type(exc).__name__,
                exc,
            )
            return exc
        return None


def _name_of(notifier: Notifier) -> str:
    name = getattr(notifier, "name", None)
    if not isinstance(name, str):
        raise ConfigurationError(
            f"Notifiers: a {type(notifier).__name__} has no name; pass a mapping of name to "
            "notifier, or give it a name attribute"
        )
    return name


# The ledger side, in its own module; importing it last keeps its imports of the events
# above from being circular.
from afk.approvals._delivery import (  # noqa: E402
    DeliveryReport,
    deliver_pending,
    events_from_log,
)

__all__ = [
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
]
