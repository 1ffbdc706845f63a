"""Outbound webhooks against a real HTTP receiver on 127.0.0.1: signed as documented,
retried with backoff on 5xx and connection errors (not on 4xx), and verified by
verify_webhook, which refuses bad, stale and replayed payloads."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest
from channels_support import Recorder, http_server, paused, runner

from afk.approvals.notify import Notifiers, deliver_pending
from afk.console.channels.webhook import (
    MemorySeen,
    WebhookNotifier,
    signature_header,
    verify_webhook,
)
from afk.errors import DeliveryError, SignatureError
from afk.store import RunStore

SECRET = "whsec_" + "k" * 32


class Receiver:
    """Answers ``statuses`` in turn (then 200), verifying what it gets."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.attempts: list[tuple[dict[str, str], bytes]] = []
        self.accepted: list[dict[str, Any]] = []
        self.seen = MemorySeen()

    def __call__(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes]:
        self.attempts.append((headers, body))
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 200:
            self.accepted.append(verify_webhook(SECRET, headers, body, seen=self.seen))
        return status, b"{}"


async def _event(store_url: str, store: RunStore) -> Any:
    seen = Recorder()
    notifiers = Notifiers([seen])
    await deliver_pending(store, notifiers)
    async with runner(store_url, approvers=["alice"]) as run:
        await paused(run)
    await deliver_pending(store, notifiers)
    return seen.events[0]


async def test_a_delivery_is_signed_and_carries_the_request(
    store_url: str, store: RunStore
) -> None:
    event = await _event(store_url, store)
    receiver = Receiver()
    with http_server(receiver) as url:
        hook = WebhookNotifier(f"{url}/hooks", SECRET, console_url="https://afk.example/")
        await hook.notify(event)
    [(headers, body)] = receiver.attempts
    assert headers["afk-event"] == "request_opened"
    assert headers["afk-delivery-id"].startswith("dlv_")
    stamp, mac = headers["afk-signature"].split(",")
    assert stamp.startswith("t=") and abs(int(stamp[2:]) - time.time()) < 5
    import hashlib
    import hmac

    want = hmac.new(SECRET.encode(), stamp[2:].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert mac == f"v1={want}"
    [payload] = receiver.accepted
    assert payload["event"]["request"]["tool_args"] == {"name": "old_logs"}
    assert payload["event"]["request"]["rule_id"] == "gate-drops"
    assert payload["event"]["request"]["approvers"] == ["alice"]
    assert payload["links"]["decide"].startswith("https://afk.example/api/v1/requests/")


async def test_5xx_is_retried_with_the_same_delivery_id(store_url: str, store: RunStore) -> None:
    event = await _event(store_url, store)
    receiver = Receiver(503, 500)
    with http_server(receiver) as url:
        hook = WebhookNotifier(url, SECRET, base_delay_s=0.01, max_delay_s=0.05)
        await hook.notify(event)
    assert len(receiver.attempts) == 3 and len(receiver.accepted) == 1
    assert len({h["afk-delivery-id"] for h, _ in receiver.attempts}) == 1


async def test_4xx_is_not_retried_and_attempts_are_bounded(store_url: str, store: RunStore) -> None:
    event = await _event(store_url, store)
    refusing = Receiver(400)
    with http_server(refusing) as url, pytest.raises(DeliveryError) as refused:
        await WebhookNotifier(url, SECRET, base_delay_s=0.01).notify(event)
    assert len(refusing.attempts) == 1 and refusing.accepted == []
    assert refused.value.status == 400 and not refused.value.retryable
    down = Receiver(500, 500, 500, 500)
    with http_server(down) as url:
        hook = WebhookNotifier(url, SECRET, max_attempts=3, base_delay_s=0.01, max_delay_s=0.02)
        with pytest.raises(DeliveryError) as failed:
            await hook.notify(event)
    assert len(down.attempts) == 3 and failed.value.status == 500


async def test_connection_errors_are_retried(store_url: str, store: RunStore) -> None:
    event = await _event(store_url, store)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    hook = WebhookNotifier(f"http://127.0.0.1:{port}/", SECRET, max_attempts=2, base_delay_s=0.01)
    with pytest.raises(DeliveryError) as failed:
        await hook.notify(event)
    assert failed.value.retryable and failed.value.status is None


async def test_the_pump_redelivers_after_a_failed_pass(store_url: str, store: RunStore) -> None:
    receiver = Receiver(500, 500)  # the first pass's two attempts fail
    with http_server(receiver) as url:
        hook = WebhookNotifier(url, SECRET, max_attempts=2, base_delay_s=0.01)
        notifiers = Notifiers([hook])
        await deliver_pending(store, notifiers)
        async with runner(store_url) as run:
            await paused(run)
        first = await deliver_pending(store, notifiers)
        assert "webhook" in first.failed
        second = await deliver_pending(store, notifiers)
    assert second.delivered == 1 and len(receiver.accepted) == 1
    assert len({h["afk-delivery-id"] for h, _ in receiver.attempts}) == 1


def _signed(body: bytes, *, at: float | None = None, secret: str = SECRET) -> dict[str, str]:
    stamp = int(time.time() if at is None else at)
    delivery = json.loads(body)["delivery_id"]
    return {"afk-signature": signature_header([secret], stamp, body), "afk-delivery-id": delivery}


def test_bad_stale_replayed_and_malformed_payloads_are_refused() -> None:
    body = json.dumps({"delivery_id": "dlv_1", "event": {"kind": "request_opened"}}).encode()
    seen = MemorySeen()
    assert verify_webhook(SECRET, _signed(body), body, seen=seen)["delivery_id"] == "dlv_1"
    cases = {
        "replayed": (_signed(body), body),
        "bad": (_signed(body, secret="another-secret-entirely"), body),
        "stale": (_signed(body, at=time.time() - 301), body),
        "missing": ({}, body),
        "malformed": ({"afk-signature": "v1=abc", "afk-delivery-id": "dlv_1"}, body),
    }
    for reason, (headers, payload) in cases.items():
        with pytest.raises(SignatureError) as refused:
            verify_webhook(SECRET, headers, payload, seen=seen)
        assert refused.value.reason == reason, reason
    tampered = body.replace(b"request_opened", b"request_decided")
    with pytest.raises(SignatureError, match="does not match"):
        verify_webhook(SECRET, _signed(body), tampered, seen=MemorySeen())
    future = _signed(body, at=time.time() + 301)
    with pytest.raises(SignatureError, match="more than 300 s"):
        verify_webhook(SECRET, future, body, seen=MemorySeen())
    other = json.dumps({"delivery_id": "dlv_2"}).encode()
    swapped = {**_signed(other), "afk-delivery-id": "dlv_1"}
    with pytest.raises(SignatureError, match="not the body's"):
        verify_webhook(SECRET, swapped, other, seen=MemorySeen())
    # A rotation: signed with the old and the new secret, verified by either.
    rotated = {
        **_signed(body),
        "afk-signature": signature_header([SECRET, "n" * 32], int(time.time()), body),
    }
    assert verify_webhook(["n" * 32], rotated, body, seen=MemorySeen())["delivery_id"] == "dlv_1"
