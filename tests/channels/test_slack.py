"""Slack, against a Web API stand-in on 127.0.0.1: the request posted with Approve / Deny
buttons, and signed interactivity POSTs (good, bad signature, stale, replayed, unmapped
user) deciding through the one decision path as the mapped principal, or nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
from channels_support import Recorder, agent, executed, http_server, paused, runner
from starlette.applications import Starlette

from afk.approvals.notify import Notifiers, deliver_pending
from afk.console.channels.slack import NOT_MAPPED, SlackNotifier, slack_routes
from afk.store import RunStore

SIGNING = "8f742231b10e8888abcd99yyyzzz85a5"


class SlackStandIn:
    """Records Web API calls (method, arguments) and answers as Slack does."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes]:
        name = path.rsplit("/", 1)[-1]
        if headers.get("content-type", "").startswith("application/json"):
            args = json.loads(body or b"{}")
        else:
            args = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        for key in ("blocks",):
            if isinstance(args.get(key), str):
                args[key] = json.loads(args[key])
        self.calls.append((name, args))
        answer = {"ok": True, "channel": args.get("channel", "C1"), "ts": "1700000000.000100"}
        return 200, json.dumps(answer).encode()

    def named(self, name: str) -> list[dict[str, Any]]:
        return [args for called, args in self.calls if called == name]


def _signed(
    payload: dict[str, Any], *, at: float | None = None, secret: str = SIGNING
) -> tuple[bytes, dict[str, str]]:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    stamp = str(int(time.time() if at is None else at))
    mac = hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    headers = {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={mac}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    return body, headers


def _click(request_id: str, user: str = "U_ALICE", action: str = "afk_approve") -> dict[str, Any]:
    return {
        "type": "block_actions",
        "team": {"id": "T1"},
        "user": {"id": user, "team_id": "T1"},
        "channel": {"id": "C1"},
        "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": "C1"},
        "actions": [{"action_id": action, "value": request_id, "type": "button"}],
    }


def _app(store: RunStore, base_url: str) -> httpx.AsyncClient:
    routes = slack_routes(
        store,
        signing_secret=SIGNING,
        token="xoxb-test",
        identities={"T1/U_ALICE": "Alice", "U_BOB": "bob"},
        base_url=f"{base_url}/api/",
    )
    transport = httpx.ASGITransport(app=Starlette(routes=routes))
    return httpx.AsyncClient(transport=transport, base_url="http://console")


async def test_a_request_is_posted_with_buttons_and_updated_when_decided(
    store_url: str, store: RunStore
) -> None:
    slack = SlackStandIn()
    with http_server(slack) as url:
        notifier = SlackNotifier("xoxb-test", "C1", base_url=f"{url}/api/")
        notifiers = Notifiers([notifier])
        await deliver_pending(store, notifiers)
        async with runner(store_url, approvers=["alice"]) as run:
            request_id = await paused(run)
            await deliver_pending(store, notifiers)
            [posted] = slack.named("chat.postMessage")
            assert posted["channel"] == "C1"
            section, actions = posted["blocks"]
            assert "drop_table" in section["text"]["text"] and "old_logs" in section["text"]["text"]
            assert [b["value"] for b in actions["elements"]] == [request_id, request_id]
            assert [b["action_id"] for b in actions["elements"]] == ["afk_approve", "afk_deny"]
            async with _app(store, url) as http:
                body, headers = _signed(_click(request_id))
                answer = await http.post("/slack/interactivity", content=body, headers=headers)
            assert answer.status_code == 200
            record = await store.get_request(request_id)
            assert record is not None and record.status == "decided" and record.approver == "alice"
            [decided] = [e for e in await store.list_log() if e.kind == "decided"]
            assert json.loads(decided.payload)["authenticated_by"] == "slack:T1/U_ALICE"
            [update] = slack.named("chat.update")
            assert update["ts"] == "1700000000.000100" and "Approved by alice" in update["text"]
            await deliver_pending(store, notifiers)  # the notifier updates its message too
            assert "Approved by alice" in slack.named("chat.update")[-1]["text"]
            [resumed] = await run.resume_ready([agent()])
            assert resumed.state == "completed" and executed == ["old_logs"]


async def test_bad_stale_and_replayed_clicks_decide_nothing(
    store_url: str, store: RunStore
) -> None:
    slack = SlackStandIn()
    with http_server(slack) as url:
        async with runner(store_url) as run, _app(store, url) as http:
            request_id = await paused(run)
            click = _click(request_id)
            cases = [
                _signed(click, secret="not-the-signing-secret"),
                _signed(click, at=time.time() - 301),
                (_signed(click)[0], {}),
            ]
            for body, headers in cases:
                answer = await http.post("/slack/interactivity", content=body, headers=headers)
                assert answer.status_code == 401, answer.text
            record = await store.get_request(request_id)
            assert record is not None and record.status == "pending"
            deny = _signed(_click(request_id, action="afk_deny"))
            assert (
                await http.post("/slack/interactivity", content=deny[0], headers=deny[1])
            ).status_code == 200
            replay = await http.post("/slack/interactivity", content=deny[0], headers=deny[1])
            assert replay.status_code == 401 and "received before" in replay.text
            late = _signed(_click(request_id, user="U_BOB"))  # a fresh click, once decided
            assert (
                await http.post("/slack/interactivity", content=late[0], headers=late[1])
            ).status_code == 200
            [told] = slack.named("chat.postEphemeral")
            assert told["user"] == "U_BOB" and "already decided" in told["text"]
            assert slack.named("chat.update")[-1]["text"] == "Denied by alice."
            record = await store.get_request(request_id)
            assert record is not None and record.status == "decided"
            assert json.loads(record.decision or "{}")["kind"] == "deny"


async def test_an_unmapped_user_decides_nothing_and_is_told(
    store_url: str, store: RunStore
) -> None:
    slack = SlackStandIn()
    with http_server(slack) as url:
        async with runner(store_url) as run, _app(store, url) as http:
            request_id = await paused(run)
            body, headers = _signed(_click(request_id, user="U_MALLORY"))
            answer = await http.post("/slack/interactivity", content=body, headers=headers)
            assert answer.status_code == 200
            record = await store.get_request(request_id)
            assert record is not None and record.status == "pending"
            [told] = slack.named("chat.postEphemeral")
            assert told["user"] == "U_MALLORY" and told["text"] == NOT_MAPPED
            assert slack.named("chat.update") == []
            assert [e for e in await store.list_log() if e.kind in ("decided", "vote")] == []


async def test_an_ineligible_mapped_user_is_refused_and_told(
    store_url: str, store: RunStore
) -> None:
    slack = SlackStandIn()
    with http_server(slack) as url:
        async with runner(store_url, approvers=["alice"]) as run, _app(store, url) as http:
            request_id = await paused(run)
            body, headers = _signed(_click(request_id, user="U_BOB"))
            assert (
                await http.post("/slack/interactivity", content=body, headers=headers)
            ).status_code == 200
            record = await store.get_request(request_id)
            assert record is not None and record.status == "pending"
            [told] = slack.named("chat.postEphemeral")
            assert "not an approver" in told["text"]
            [refused] = [e for e in await store.list_log() if e.kind == "refused"]
            assert refused.actor == "bob"
            assert "slack:T1/U_BOB" in refused.payload


async def test_a_reminder_replies_in_the_thread(store_url: str, store: RunStore) -> None:
    import asyncio

    slack = SlackStandIn()
    seen = Recorder()
    with http_server(slack) as url:
        notifiers = Notifiers([SlackNotifier("xoxb-test", "C1", base_url=f"{url}/api/"), seen])
        await deliver_pending(store, notifiers)
        async with runner(store_url, approvers=["alice"], remind_after_s=0.01) as run:
            await paused(run)
            await deliver_pending(store, notifiers)
            await asyncio.sleep(0.05)
            await run.fire_due_timers()
            await deliver_pending(store, notifiers)
    _, reply = slack.named("chat.postMessage")
    assert reply["thread_ts"] == "1700000000.000100" and "Reminder" in reply["text"]


async def test_another_process_threads_the_reminder_and_updates_the_outcome(
    store_url: str, store: RunStore
) -> None:
    """The message is kept in the store: a notifier in another worker (or after a restart)
    replies in its thread and updates it, instead of posting the request again."""
    import asyncio

    from afk.agents import ApprovalDecision
    from afk.store import _links as lk

    slack = SlackStandIn()
    with http_server(slack) as url:

        def notifier() -> SlackNotifier:
            return SlackNotifier("xoxb-test", "C1", base_url=f"{url}/api/", store=store)

        first = Notifiers([notifier()])
        await deliver_pending(store, first)
        async with runner(store_url, approvers=["alice"], remind_after_s=0.01) as run:
            request_id = await paused(run)
            await deliver_pending(store, first)  # posted by the first process
            later = Notifiers([notifier()])  # the first is gone; another worker delivers
            await asyncio.sleep(0.05)
            await run.fire_due_timers()
            await deliver_pending(store, later)
            await run.resolve(request_id, ApprovalDecision(kind="allow", approver="alice"))
            await deliver_pending(store, later)
            kept = await lk.run(store, lk.message_ref("slack", request_id))
    posted, reply = slack.named("chat.postMessage")
    assert "blocks" in posted and reply["thread_ts"] == "1700000000.000100"
    [update] = slack.named("chat.update")
    assert update["ts"] == "1700000000.000100" and "Approved by alice" in update["text"]
    assert kept is None  # the outcome is shown: nothing left to find
