"""Outbound webhooks: each lifecycle event POSTed as signed JSON to a URL of yours.

The body (``application/json``)::

    {"delivery_id": "dlv_...", "event": {"kind": "request_opened", "event_id": "evt_...",
     "request_id": ..., "run_id": ..., "at": ..., "request": {"tool_name": ...,
     "tool_args": {...exact, as they will run...}, "rule_id": ..., "reason": ...,
     "expires_at": ..., "approvers": [...] or null, ...}, ...},
     "links": {"request": "<base>/api/v1/requests/<id>", "decide": "<base>/api/v1/requests/
     <id>/decision"}}

The headers:

- ``afk-signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``: the
  timestamp and the MAC over the timestamp, a dot, and the raw body bytes. Several ``v1=``
  may appear while a secret rotates (``secret=[new, old]``); one matching is enough.
- ``afk-delivery-id``: the same on every retry and redelivery of this event to this
  webhook (also in the body, under the signature): drop one you have already taken.
- ``afk-event``: the event's kind (``request_opened``, ``request_reminded``,
  ``request_escalated``, ``request_decided``, ``request_expired``).

Receivers check it with :func:`verify_webhook`: a missing or malformed header, a MAC that
does not match, a timestamp outside ``tolerance_s`` (default 300 s, either way) and a
delivery id already seen inside that window are all refused (:class:`~afk.errors.
SignatureError`, whose ``reason`` says which).

Retries: a 5xx answer, a 429 or a connection error is tried again, at most ``max_attempts``
times in all, after exponential backoff with full jitter (``base_delay_s`` · 2^n, capped at
``max_delay_s``); any other 4xx is the receiver refusing the payload, and sending it again
cannot help: :class:`~afk.errors.DeliveryError` at once. Each attempt is signed afresh.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import httpx

from afk.approvals.notify import NotificationEvent, delivery_id, event_json
from afk.errors import ConfigurationError, DeliveryError, SignatureError

SIGNATURE_HEADER = "afk-signature"
DELIVERY_HEADER = "afk-delivery-id"
EVENT_HEADER = "afk-event"
TOLERANCE_S = 300.0
MIN_SECRET_CHARS = 16


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>.<body>"`` under ``secret``."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    """The ``afk-signature`` value: ``t=<timestamp>,v1=<mac>`` (one ``v1`` per secret)."""
    return ",".join([f"t={timestamp}", *(f"v1={sign(s, timestamp, body)}" for s in secrets)])


class SeenDeliveries(Protocol):
    """Where a receiver remembers the delivery ids it took (share one between processes,
    e.g. backed by Redis or a table, when several receive)."""

    def first_time(self, delivery_id: str, until: float) -> bool:
        """Record ``delivery_id`` until ``until`` (epoch seconds); False when it was
        recorded before and not yet forgotten."""


class MemorySeen:
    """A process's own memory of delivery ids, each forgotten when its window ends."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_time(self, delivery_id: str, until: float) -> bool:
        """Record ``delivery_id`` until ``until``; False when it is already recorded."""
        now = time.time()
        with self._lock:
            if len(self._until) > 1024:  # forget what is past its window
                self._until = {k: v for k, v in self._until.items() if v >= now}
            if self._until.get(delivery_id, 0.0) >= now:
                return False
            self._until[delivery_id] = until
            return True


_SEEN = MemorySeen()


def verify_webhook(
    secret: str | Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: float = TOLERANCE_S,
    seen: SeenDeliveries | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The payload of a webhook afk signed, or :class:`~afk.errors.SignatureError`:
    ``missing`` / ``malformed`` headers, a ``bad`` MAC, a ``stale`` timestamp (more than
    ``tolerance_s`` from now), or a ``replayed`` delivery id (one ``seen`` already took;
    default: this process's memory). Pass the body's raw bytes, as received."""
    secrets = [secret] if isinstance(secret, str) else list(secret)
    found = {k.lower(): v for k, v in headers.items()}
    header, delivery = found.get(SIGNATURE_HEADER), found.get(DELIVERY_HEADER)
    if not header or not delivery:
        raise SignatureError(
            f"the {SIGNATURE_HEADER} and {DELIVERY_HEADER} headers are required",
            reason="missing",
        )
    timestamp, macs = _parse(header)
    clock = time.time() if now is None else now
    if abs(clock - timestamp) > tolerance_s:
        raise SignatureError(
            f"the signature's timestamp {timestamp} is more than {tolerance_s:g} s from now",
            reason="stale",
        )
    expected = [sign(s, timestamp, body) for s in secrets]
    if not any(hmac.compare_digest(e, m) for e in expected for m in macs):
        raise SignatureError("the signature does not match the body", reason="bad")
    try:
        payload = json.loads(body)
    except ValueError:
        raise SignatureError("the signed body is not JSON", reason="malformed") from None
    if not isinstance(payload, dict) or payload.get("delivery_id") != delivery:
        raise SignatureError(f"the {DELIVERY_HEADER} header is not the body's", reason="bad")
    if not (seen or _SEEN).first_time(delivery, timestamp + tolerance_s):
        raise SignatureError(f"delivery {delivery} was received before", reason="replayed")
    return payload


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp, macs = None, []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1" and value:
            macs.append(value)
    if timestamp is None or not macs:
        raise SignatureError(
            f"{SIGNATURE_HEADER} must be t=<unix seconds>,v1=<hex mac>", reason="malformed"
        )
    return timestamp, macs


class WebhookNotifier:
    """POSTs each event to ``url``, signed with ``secret`` (a list: the first signs, all are
    sent, for rotation). ``console_url``: the console's base URL, for the body's links."""

    def __init__(
        self,
        url: str,
        secret: str | Sequence[str],
        *,
        name: str = "webhook",
        console_url: str | None = None,
        max_attempts: int = 5,
        base_delay_s: float = 0.5,
        max_delay_s: float = 30.0,
        timeout_s: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.secrets = [secret] if isinstance(secret, str) else list(secret)
        if not self.secrets or any(
            not isinstance(s, str) or len(s) < MIN_SECRET_CHARS for s in self.secrets
        ):
            raise ConfigurationError(
                f"WebhookNotifier secret must be at least {MIN_SECRET_CHARS} characters "
                '(make one: python -c "import secrets; print(secrets.token_hex(32))")'
            )
        if not url.startswith(("https://", "http://")):
            raise ConfigurationError(f"WebhookNotifier url must be http(s)://..., got {url!r}")
        if max_attempts < 1 or base_delay_s < 0 or max_delay_s < base_delay_s:
            raise ConfigurationError(
                "WebhookNotifier needs max_attempts >= 1 and 0 <= base_delay_s <= max_delay_s"
            )
        self.url, self.name = url, name
        self.console_url = console_url.rstrip("/") if console_url else None
        self.max_attempts, self.timeout_s = max_attempts, timeout_s
        self.base_delay_s, self.max_delay_s = base_delay_s, max_delay_s
        self._client = client

    def body(self, event: NotificationEvent) -> bytes:
        """The JSON body sent for ``event`` (the same bytes on every attempt)."""
        data: dict[str, Any] = {
            "delivery_id": delivery_id(event, self.name),
            "event": event_json(event),
        }
        if self.console_url is not None:
            base = f"{self.console_url}/api/v1/requests/{event.request_id}"
            data["links"] = {"request": base, "decide": f"{base}/decision"}
        return json.dumps(data, separators=(",", ":"), sort_keys=True).encode("utf-8")

    async def notify(self, event: NotificationEvent) -> None:
        """POST ``event``, retrying 5xx, 429 and connection errors with backoff; raises
        :class:`~afk.errors.DeliveryError` on another 4xx or when out of attempts."""
        body = self.body(event)
        headers = {
            "content-type": "application/json",
            DELIVERY_HEADER: delivery_id(event, self.name),
            EVENT_HEADER: event.kind,
            "user-agent": "afk-webhooks",
        }
        client = self._client or httpx.AsyncClient(timeout=self.timeout_s)
        try:
            for attempt in range(1, self.max_attempts + 1):
                stamp = int(time.time())
                headers[SIGNATURE_HEADER] = signature_header(self.secrets, stamp, body)
                problem = await self._attempt(client, body, headers)
                if problem is None:
                    return
                if not problem.retryable or attempt == self.max_attempts:
                    raise problem
                await asyncio.sleep(self._delay(attempt))
        finally:
            if self._client is None:
                await client.aclose()

    async def _attempt(
        self, client: httpx.AsyncClient, body: bytes, headers: dict[str, str]
    ) -> DeliveryError | None:
        try:
            answer = await client.post(self.url, content=body, headers=headers)
        except httpx.TransportError as exc:
            return DeliveryError(
                f"webhook {self.name}: {type(exc).__name__}: {exc}",
                channel=self.name,
                retryable=True,
            )
        if answer.status_code < 300:
            return None
        retryable = answer.status_code >= 500 or answer.status_code == 429
        return DeliveryError(
            f"webhook {self.name}: {self.url} answered {answer.status_code}",
            channel=self.name,
            status=answer.status_code,
            retryable=retryable,
        )

    def _delay(self, attempt: int) -> float:
        # Full jitter: receivers that came back up are not hit by every sender at once.
        return random.uniform(0, min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1)))


__all__ = [
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "SIGNATURE_HEADER",
    "TOLERANCE_S",
    "MemorySeen",
    "SeenDeliveries",
    "WebhookNotifier",
    "sign",
    "signature_header",
    "verify_webhook",
]
