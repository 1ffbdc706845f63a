"""Email, against an SMTP server the test starts (aiosmtpd): each approver's message holds
a single-use, expiring, signed link whose GET changes nothing; only a POST by a logged-in,
eligible principal decides, once."""

from __future__ import annotations

import asyncio
import email
import re
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from channels_support import agent, executed, mint, paused, runner
from starlette.applications import Starlette

from afk.approvals.notify import Notifiers, deliver_pending
from afk.console.auth import TokenAuthenticator
from afk.console.channels.email import EmailNotifier, email_routes
from afk.store import RunStore
from afk.store import _links as lk

ADDRESSES = {"alice": "alice@example.com", "bob": "bob@example.com", "carol": "carol@example.com"}


class Inbox:
    """An aiosmtpd handler keeping every message."""

    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def link_of(self, address: str) -> str:
        [message] = [m for m in self.messages if m["To"] == address]
        body = message.get_payload(decode=True).decode()
        found = re.search(r"http://console(/email/\S+)", body)
        assert found is not None, body
        return found.group(1)


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    server = Controller(inbox, hostname="127.0.0.1", port=port)
    server.start()
    try:
        yield inbox, port
    finally:
        server.stop()


def _notifier(store: RunStore, port: int, **options: Any) -> EmailNotifier:
    return EmailNotifier(
        store,
        sender="afk@example.com",
        addresses=ADDRESSES,
        console_url="http://console",
        hostname="127.0.0.1",
        port=port,
        **options,
    )


def _client(store: RunStore) -> httpx.AsyncClient:
    routes = email_routes(store, TokenAuthenticator(store))
    transport = httpx.ASGITransport(app=Starlette(routes=routes))
    return httpx.AsyncClient(transport=transport, base_url="http://console")


async def _mailed(store_url: str, store: RunStore, port: int, **options: Any) -> tuple[Any, str]:
    notifiers = Notifiers([_notifier(store, port, **options)])
    await deliver_pending(store, notifiers)
    run = runner(store_url, approvers=["alice", "bob"])
    request_id = await paused(run)
    report = await deliver_pending(store, notifiers)
    assert report.failed == {}, report
    return run, request_id


async def _state(store: RunStore, request_id: str, link: str) -> tuple[Any, ...]:
    link_id = link.rsplit("/", 1)[-1].split(".")[0]
    return (
        await store.get_request(request_id),
        await store.list_log(),
        await lk.run(store, lk.get_link(link_id)),
        await store.list_votes(request_id),
    )


async def test_each_approver_gets_a_link_whose_get_changes_nothing(
    store_url: str, store: RunStore, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    run, request_id = await _mailed(store_url, store, port)
    async with run:
        assert sorted(m["To"] for m in inbox.messages) == ["alice@example.com", "bob@example.com"]
        text = inbox.messages[0].get_payload(decode=True).decode()
        assert '"name": "old_logs"' in text and "gate-drops" in text
        link = inbox.link_of("alice@example.com")
        before = await _state(store, request_id, link)
        async with _client(store) as http:
            page = await http.get(link)
            head = await http.head(link)
        assert page.status_code == 200 and head.status_code == 200
        assert "old_logs" in page.text and 'value="allow"' in page.text
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["cache-control"] == "no-store"
        assert await _state(store, request_id, link) == before


async def test_a_scanners_get_then_the_humans_post_decides_once(
    store_url: str, store: RunStore, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    run, request_id = await _mailed(store_url, store, port)
    async with run:
        link = inbox.link_of("alice@example.com")
        alice = await mint(store, "alice")
        async with _client(store) as http:
            assert (await http.get(link)).status_code == 200  # the mail scanner
            decided = await http.post(
                link,
                data={"decision": "allow", "reason": "fine"},
                headers={"Authorization": f"Bearer {alice}"},
            )
            assert decided.status_code == 200, decided.text
            again = await http.post(
                link, data={"decision": "deny"}, headers={"Authorization": f"Bearer {alice}"}
            )
            assert again.status_code == 410
            assert (await http.get(link)).status_code == 410
            bob = await mint(store, "bob")  # bob's own link: the request is decided
            other = await http.post(
                inbox.link_of("bob@example.com"),
                data={"decision": "deny"},
                headers={"Authorization": f"Bearer {bob}"},
            )
            assert other.status_code == 410
        record = await store.get_request(request_id)
        assert record is not None and record.approver == "alice" and record.status == "decided"
        assert [e.actor for e in await store.list_log() if e.kind == "decided"] == ["alice"]
        [resumed] = await run.resume_ready([agent()])
        assert resumed.state == "completed" and executed == ["old_logs"]


async def test_an_expired_link_decides_nothing(
    store_url: str, store: RunStore, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    run, request_id = await _mailed(store_url, store, port, link_ttl_s=0.2)
    async with run:
        link = inbox.link_of("alice@example.com")
        alice = await mint(store, "alice")
        await asyncio.sleep(0.3)
        async with _client(store) as http:
            assert (await http.get(link)).status_code == 410
            answer = await http.post(
                link, data={"decision": "allow"}, headers={"Authorization": f"Bearer {alice}"}
            )
        assert answer.status_code == 410 and "expired" in answer.text
        record = await store.get_request(request_id)
        assert record is not None and record.status == "pending"


async def test_no_login_an_ineligible_principal_and_a_forged_token_decide_nothing(
    store_url: str, store: RunStore, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    run, request_id = await _mailed(store_url, store, port)
    async with run:
        link = inbox.link_of("alice@example.com")
        carol = await mint(store, "carol")
        async with _client(store) as http:
            anonymous = await http.post(link, data={"decision": "allow"})
            assert anonymous.status_code == 401
            ineligible = await http.post(
                link, data={"decision": "allow"}, headers={"Authorization": f"Bearer {carol}"}
            )
            assert ineligible.status_code == 403
            forged = link[:-4] + ("0000" if not link.endswith("0000") else "1111")
            assert (await http.get(forged)).status_code == 404
            cross_site = await http.post(
                link,
                data={"decision": "allow"},
                headers={"Authorization": f"Bearer {carol}", "Origin": "https://evil.example"},
            )
            assert cross_site.status_code == 403
            assert (await http.get(link)).status_code == 200  # still unused
        record = await store.get_request(request_id)
        assert record is not None and record.status == "pending"
        [refused] = [e for e in await store.list_log() if e.kind == "refused"]
        assert refused.actor == "carol"
        assert executed == []
