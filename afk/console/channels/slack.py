"""Slack: a message with Approve / Deny buttons (Block Kit, through the Web API and the
official SDK), and the interactivity endpoint their clicks come back to.

:class:`SlackNotifier` posts a message when a request opens (buttons carry the request id),
replies in its thread when it is reminded or escalated, and updates it when it is decided
or expires. :func:`slack_routes` is the endpoint (set it as the app's Interactivity
Request URL): it verifies Slack's request signature (``X-Slack-Signature``, v0 HMAC-SHA256
over ``v0:{timestamp}:{body}`` under the signing secret, ``X-Slack-Request-Timestamp``
within 5 minutes, through slack_sdk's ``SignatureVerifier``) and refuses a request seen
before; maps the clicking Slack user to an afk principal through ``identities`` (Slack user
id, or ``TEAM/USER``, to principal id); and decides through the one decision path as
``Principal(id=..., authenticated_by="slack:<team>/<user>")``. An unmapped user's click
decides nothing and is answered, to that user alone, with an ephemeral message.

Needs ``pip install "afk-agents[slack]"`` (slack_sdk and aiohttp).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

try:
    import aiohttp  # noqa: F401 - AsyncWebClient's transport
    from slack_sdk.errors import SlackApiError, SlackClientError
    from slack_sdk.signature import SignatureVerifier
    from slack_sdk.web.async_client import AsyncWebClient
except ImportError as exc:  # pragma: no cover - the dev extra installs them
    raise ImportError(
        'Slack channels need slack_sdk and aiohttp: pip install "afk-agents[slack]"'
    ) from exc

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from afk.approvals.display import escape, escaped_json, tool_label
from afk.approvals.notify import (
    NotificationEvent,
    RequestDecidedEvent,
    RequestExpiredEvent,
    RequestOpenedEvent,
    RequestSummary,
)
from afk.approvals.principal import Principal, canonical_id
from afk.approvals.requests import ApprovalDecision
from afk.console.channels.webhook import MemorySeen, SeenDeliveries
from afk.core._durable_api import resolve
from afk.errors import (
    AlreadyDecidedError,
    ConfigurationError,
    DeliveryError,
    InteractionError,
    InvalidPrincipalError,
    RequestExpiredError,
)
from afk.store import _links as lk
from afk.store.store import RunStore

INSTALL_HINT = 'Slack channels need slack_sdk and aiohttp: pip install "afk-agents[slack]"'
log = logging.getLogger("afk.notify")
APPROVE, DENY = "afk_approve", "afk_deny"
MAX_BODY_BYTES = 64 * 1024
MAX_ARGS_CHARS = 2500  # a section's text holds 3000; the rest of the request shows there too
TOLERANCE_S = 300
NOT_MAPPED = "You are not mapped to an afk approver, so nothing was decided."


def _mrkdwn(text: str) -> str:
    """Text as Slack shows it literally: hidden characters escaped, then &, <, > as Slack
    wants (so a value cannot become a link or a mention)."""
    return escape(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def request_text(summary: RequestSummary) -> str:
    """The message's body: tool, exact arguments (cut past MAX_ARGS_CHARS: the console has
    them whole), rule and reason, deadline, who may decide."""
    args = escaped_json(summary.tool_args, indent=2)
    if len(args) > MAX_ARGS_CHARS:
        args = args[:MAX_ARGS_CHARS] + "\n… (cut: the console shows them whole)"
    tool = _mrkdwn(tool_label(summary.tool_name)) if summary.tool_name else "a model call"
    who = ", ".join(summary.approvers) if summary.approvers is not None else "anyone"
    lines = [
        f"*{tool}* needs a decision (agent {_mrkdwn(summary.agent_name)}, "
        f"request `{summary.request_id}`)",
        f"```{_mrkdwn(args)}```",
        f"Rule: {_mrkdwn(summary.rule_id or '-')}: {_mrkdwn(summary.reason or '')}",
        f"Expires: <!date^{int(summary.expires_at)}^{{date_short_pretty}} {{time}}|"
        f"{int(summary.expires_at)}>. May decide: {_mrkdwn(who)}",
    ]
    return "\n".join(lines)


def request_blocks(summary: RequestSummary) -> list[dict[str, Any]]:
    """The message's blocks: the request, and Approve / Deny (values: the request id)."""
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": request_text(summary)}}
    ]
    if summary.kind == "approval":
        blocks.append(
            {
                "type": "actions",
                "block_id": "afk_decide",
                "elements": [
                    _button("Approve", APPROVE, summary.request_id, "primary"),
                    _button("Deny", DENY, summary.request_id, "danger"),
                ],
            }
        )
    else:  # free text cannot come from a button
        blocks.append(_context("Answer this one in the afk console."))
    return blocks


def outcome_blocks(summary: RequestSummary, outcome: str) -> list[dict[str, Any]]:
    """The message once decided: the request, no buttons, and what became of it."""
    section = {"type": "section", "text": {"type": "mrkdwn", "text": request_text(summary)}}
    return [section, _context(outcome)]


def _button(text: str, action: str, request_id: str, style: str) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action,
        "value": request_id,
        "style": style,
    }


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _mrkdwn(text)}]}


def outcome_text(event: RequestDecidedEvent | RequestExpiredEvent) -> str:
    """One line: who decided what (and how they were known), or the fallback applied."""
    word = "Approved" if event.decision == "allow" else "Denied"
    if isinstance(event, RequestExpiredEvent):
        return f"Expired: the fallback applied ({word.lower()})."
    if event.approver is None:
        return f"{word} by the {event.decided_by} fallback."
    reason = f": {event.reason}" if event.reason else ""
    return f"{word} by {event.approver} ({event.authenticated_by}){reason}"


class SlackNotifier:
    """Posts requests to ``channel`` with the bot ``token``. ``base_url``: the Web API's
    (default Slack's; a stand-in's in tests). ``store``: where each request's message is
    kept (afk's SQLite or Postgres store), so that a reminder threads under it and its
    outcome updates it whichever worker delivers them, also after a restart; without one,
    only the process that posted a message knows it (another posts the reminder anew and
    cannot update the outcome)."""

    def __init__(
        self,
        token: str,
        channel: str,
        *,
        name: str = "slack",
        base_url: str | None = None,
        client: AsyncWebClient | None = None,
        store: RunStore | None = None,
    ) -> None:
        if not token or not channel:
            raise ConfigurationError("SlackNotifier needs a bot token and a channel id")
        self.name, self.channel, self.store = name, channel, store
        self.client = client or _client(token, base_url)
        self.messages: dict[str, tuple[str, str]] = {}  # request id -> (channel, ts)

    async def notify(self, event: NotificationEvent) -> None:
        """Post, reply in the thread, or update the message; DeliveryError when the Web API
        refuses or cannot be reached."""
        try:
            await self._send(event)
        except (SlackApiError, SlackClientError, OSError, TimeoutError) as exc:
            status = getattr(getattr(exc, "response", None), "status_code", None)
            raise DeliveryError(
                f"slack {self.name}: {type(exc).__name__}: {exc}",
                channel=self.name,
                status=status,
                retryable=status is None or status >= 500 or status == 429,
            ) from exc

    async def _send(self, event: NotificationEvent) -> None:
        summary = event.request
        known = None if isinstance(event, RequestOpenedEvent) else await self._message(event)
        if known is None:
            if isinstance(event, RequestDecidedEvent | RequestExpiredEvent):
                return  # never shown here: nothing to update
            answer = await self.client.chat_postMessage(
                channel=self.channel,
                text=f"{summary.tool_name or 'a model call'} needs a decision",
                blocks=request_blocks(summary),
            )
            await self._keep(event.request_id, (str(answer["channel"]), str(answer["ts"])))
            return
        channel, ts = known
        if isinstance(event, RequestDecidedEvent | RequestExpiredEvent):
            text = outcome_text(event)
            blocks = outcome_blocks(summary, text)
            await self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
            await self._forget(event.request_id)
            return
        who = ", ".join(getattr(event, "approvers", ()))
        what = "Escalated" if event.kind == "request_escalated" else "Reminder"
        await self.client.chat_postMessage(
            channel=channel, thread_ts=ts, text=f"{what}: still waiting. May decide: {who}"
        )

    async def _message(self, event: NotificationEvent) -> tuple[str, str] | None:
        known = self.messages.get(event.request_id)
        if known is not None or self.store is None:
            return known
        ref = await lk.run(self.store, lk.message_ref(self.name, event.request_id))
        if ref is None:
            return None
        channel, _, ts = ref.partition(" ")
        return channel, ts

    async def _keep(self, request_id: str, message: tuple[str, str]) -> None:
        self.messages[request_id] = message
        if self.store is not None:
            await lk.run(self.store, lk.keep_message(self.name, request_id, " ".join(message)))

    async def _forget(self, request_id: str) -> None:
        self.messages.pop(request_id, None)
        if self.store is not None:
            await lk.run(self.store, lk.forget_message(self.name, request_id))


def _client(token: str, base_url: str | None) -> AsyncWebClient:
    if base_url is None:
        return AsyncWebClient(token=token)
    return AsyncWebClient(token=token, base_url=base_url.rstrip("/") + "/")


def load_identities(identities: Mapping[str, str] | str | Path) -> dict[str, str]:
    """Slack user (``U123`` or ``T123/U123``) to afk principal id: a mapping, or a JSON file
    holding one (``{"T1/U1": "alice"}``). Ids are canonicalized; a bad one is refused."""
    if isinstance(identities, str | Path):
        path = Path(identities)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"Slack identities file {path}: {exc}") from None
    else:
        data = dict(identities)
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise ConfigurationError("Slack identities must map Slack user ids to afk principal ids")
    try:
        return {key: canonical_id(value) for key, value in data.items()}
    except InvalidPrincipalError as exc:
        raise ConfigurationError(f"Slack identities: {exc}") from None


class _Interactivity:
    """The endpoint's state: the verifier, the identities, the Web API client."""

    def __init__(
        self,
        store: RunStore,
        verifier: SignatureVerifier,
        identities: dict[str, str],
        client: AsyncWebClient,
        seen: SeenDeliveries,
    ) -> None:
        self.store, self.verifier, self.identities = store, verifier, identities
        self.client, self.seen = client, seen

    async def __call__(self, request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _refused("the body is too large", 413)
        problem = self.check(request.headers, body)
        if problem is not None:
            return _refused(problem, 401)
        payload = _payload(body)
        action = _action(payload)
        if action is None:
            return Response(status_code=200)  # another kind of interaction: not ours
        await self.click(payload, *action)
        return Response(status_code=200)

    def check(self, headers: Mapping[str, str], body: bytes) -> str | None:
        """Why the request is refused (None: it is Slack's, fresh, and new)."""
        stamp, signature = (
            headers.get("x-slack-request-timestamp"),
            headers.get("x-slack-signature"),
        )
        if not stamp or not signature or not stamp.isdigit():
            return "the Slack signature headers are missing"
        if abs(self.verifier.clock.now() - int(stamp)) > TOLERANCE_S:
            return "the request's timestamp is outside the 5-minute window"
        if not self.verifier.is_valid(body=body, timestamp=stamp, signature=signature):
            return "the Slack signature does not match"
        if not self.seen.first_time(f"slack:{signature}", int(stamp) + TOLERANCE_S):
            return "this request was received before"
        return None

    async def click(self, payload: dict[str, Any], request_id: str, kind: str) -> None:
        """Decide ``request_id`` as the clicking user's principal, and say what happened."""
        user = payload.get("user") or {}
        team = (payload.get("team") or {}).get("id") or user.get("team_id") or "-"
        user_id = str(user.get("id") or "")
        channel = str((payload.get("channel") or {}).get("id") or "")
        ts = str((payload.get("container") or {}).get("message_ts") or "")
        principal = self.principal(str(team), user_id)
        if principal is None:
            await self._tell(channel, user_id, NOT_MAPPED)
            return
        decision = ApprovalDecision(kind=kind, reason="decided in Slack")  # type: ignore[arg-type]
        try:
            outcome = await resolve(self.store, request_id, decision, principal)
        except (AlreadyDecidedError, RequestExpiredError) as exc:
            await self._tell(channel, user_id, f"Nothing recorded: {exc}")
            await self._show_outcome(request_id, channel, ts)
            return
        except InteractionError as exc:  # not an approver, the requester, ...
            await self._tell(channel, user_id, f"Nothing recorded: {exc}")
            return
        if outcome == "pending":
            await self._tell(channel, user_id, "Your vote is counted; more approvers must agree.")
            return
        word = "Approved" if kind == "allow" else "Denied"
        text = f"{word} by {principal.id} ({principal.authenticated_by})"
        if channel and ts:
            await self.client.chat_update(
                channel=channel, ts=ts, text=text, blocks=[_context(text)]
            )

    async def _show_outcome(self, request_id: str, channel: str, ts: str) -> None:
        """A message still showing buttons for a request decided elsewhere: say how it ended."""
        record = await self.store.get_request(request_id)
        if record is None or record.status == "pending" or not (channel and ts):
            return
        word = {"allow": "Approved", "deny": "Denied"}.get(
            _kind_of(record.decision) or "", "Decided"
        )
        by = f" by {record.approver}" if record.approver else f" ({record.decided_by})"
        text = f"{word}{by}." if record.status == "decided" else f"Expired: {word.lower()}."
        await self.client.chat_update(channel=channel, ts=ts, text=text, blocks=[_context(text)])

    def principal(self, team: str, user: str) -> Principal | None:
        """The afk principal a Slack user is mapped to, or None."""
        mapped = self.identities.get(f"{team}/{user}") or self.identities.get(user)
        if not user or mapped is None:
            return None
        return Principal(id=mapped, authenticated_by=f"slack:{team}/{user}")

    async def _tell(self, channel: str, user: str, text: str) -> None:
        try:
            await self.client.chat_postEphemeral(channel=channel, user=user, text=text)
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.warning("slack: could not tell %s: %s", user, exc)


def _kind_of(decision: str | None) -> str | None:
    try:
        kind = json.loads(decision or "{}").get("kind")
    except (ValueError, AttributeError):
        return None
    return kind if isinstance(kind, str) else None


def _payload(body: bytes) -> dict[str, Any]:
    form = parse_qs(body.decode("utf-8", "replace"))
    try:
        payload = json.loads(form.get("payload", ["{}"])[0])
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _action(payload: dict[str, Any]) -> tuple[str, str] | None:
    """(request id, allow/deny) of an Approve / Deny click, or None."""
    if payload.get("type") != "block_actions":
        return None
    for action in payload.get("actions") or ():
        if not isinstance(action, dict) or action.get("action_id") not in (APPROVE, DENY):
            continue
        value = action.get("value")
        if isinstance(value, str) and value:
            return value, "allow" if action["action_id"] == APPROVE else "deny"
    return None


def _refused(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": {"type": "SignatureError", "message": message}}, status)


def slack_routes(
    store: RunStore,
    *,
    signing_secret: str,
    token: str,
    identities: Mapping[str, str] | str | Path,
    base_url: str | None = None,
    path: str = "/slack/interactivity",
    seen: SeenDeliveries | None = None,
) -> list[Route]:
    """The interactivity endpoint, as Starlette routes to mount beside the console's
    (``Starlette(routes=[*slack_routes(...), Mount("/", app(store=...))])``). ``store``
    must be set up. ``seen``: where replays are remembered (default: this process)."""
    if not signing_secret:
        raise ConfigurationError("slack_routes needs the app's signing secret")
    endpoint = _Interactivity(
        store,
        SignatureVerifier(signing_secret),
        load_identities(identities),
        _client(token, base_url),
        seen or MemorySeen(),
    )
    return [Route(path, endpoint.__call__, methods=["POST"])]  # a method: request/response


__all__ = [
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
]
