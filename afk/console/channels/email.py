"""Email: each approver who may decide gets a message holding a link of their own, and the
link's page, where a logged-in approver decides.

The link (``<console>/email/<token>``) is single-use and expires (at the request's deadline,
or ``link_ttl_s`` after sending when that is sooner). The token is the link's id and a MAC
under the store's keys over the link's row (its request, recipient and expiry), so a token
cannot be made up or bent to another request, and no secret is stored. ``GET`` shows the
request and a confirm form and changes nothing: mail scanners and link previews open links.
The decision happens only on ``POST``, by a principal the console's
:class:`~afk.console.auth.Authenticator` authenticates (the link alone is not a login) and
who may decide the request, through the one decision path; the link is marked used in the
same step, by compare-and-set, so a used or expired link decides nothing.

Sent over SMTP with ``aiosmtplib`` (asyncio; ``pip install "afk-agents[email]"``).
"""

from __future__ import annotations

import html
import secrets
import time
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, urlsplit

try:
    import aiosmtplib
except ImportError as exc:  # pragma: no cover - the dev extra installs it
    raise ImportError('Email channels need aiosmtplib: pip install "afk-agents[email]"') from exc

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from afk.approvals._rows import load_request
from afk.approvals.decide import Vote, check_approver
from afk.approvals.display import escape, escaped_json, tool_label
from afk.approvals.notify import (
    NotificationEvent,
    RequestEscalatedEvent,
    RequestOpenedEvent,
    RequestRemindedEvent,
    RequestSummary,
)
from afk.approvals.principal import canonical_id
from afk.approvals.requests import ApprovalDecision
from afk.console.auth import Authenticator
from afk.core._durable_api import log_refused, resolve
from afk.errors import (
    ConfigurationError,
    DeliveryError,
    InteractionError,
    InvalidPrincipalError,
    UnauthorizedApproverError,
)
from afk.store import _links as lk
from afk.store._seal import record_ok
from afk.store.store import RequestRecord, RunStore

INSTALL_HINT = 'Email channels need aiosmtplib: pip install "afk-agents[email]"'
LINK_PURPOSE = "email_link"  # the MAC's purpose: a MAC made for another use does not fit
LINK_TTL_S = 3 * 86400.0
MAX_BODY_BYTES = 16 * 1024
MAX_REASON_CHARS = 2000
SENT_FOR = (RequestOpenedEvent, RequestRemindedEvent, RequestEscalatedEvent)
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token is in the URL: never pass it on
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'",
}


def _tag(store: RunStore, link: lk.EmailLink) -> str:
    return store.keys.mac(
        LINK_PURPOSE, [link.link_id, link.request_id, link.recipient, link.expires_at]
    )


def token_of(store: RunStore, link: lk.EmailLink) -> str:
    """The token a link's URL carries: ``<link id>.<key id>.<hex MAC>``."""
    return f"{link.link_id}.{_tag(store, link).replace(':', '.')}"


async def new_link(
    store: RunStore, request_id: str, recipient: str, expires_at: float
) -> tuple[lk.EmailLink, str]:
    """A link for ``recipient`` to decide ``request_id`` until ``expires_at``, stored, and
    its token."""
    link = lk.EmailLink(
        link_id="eml_" + secrets.token_hex(16),
        request_id=request_id,
        recipient=recipient,
        created_at=time.time(),
        expires_at=expires_at,
    )
    await lk.run(store, lk.add_link(link))
    return link, token_of(store, link)


class EmailNotifier:
    """Mails every approver who may decide a request (``addresses``: principal id to email
    address) when it opens, is reminded or escalated; each message holds that approver's
    own link to ``console_url``. A request anyone may decide goes to every address."""

    def __init__(
        self,
        store: RunStore,
        *,
        sender: str,
        addresses: Mapping[str, str],
        console_url: str,
        hostname: str = "localhost",
        port: int = 25,
        name: str = "email",
        link_ttl_s: float = LINK_TTL_S,
        use_tls: bool = False,
        start_tls: bool | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        try:
            self.addresses = {canonical_id(k): v for k, v in addresses.items()}
        except InvalidPrincipalError as exc:
            raise ConfigurationError(f"EmailNotifier addresses: {exc}") from None
        if not console_url.startswith(("https://", "http://")):
            raise ConfigurationError(
                f"EmailNotifier console_url must be http(s)://..., got {console_url!r}"
            )
        if link_ttl_s <= 0:
            raise ConfigurationError(f"EmailNotifier link_ttl_s must be > 0, got {link_ttl_s!r}")
        self.store, self.sender, self.name = store, sender, name
        self.console_url = console_url.rstrip("/")
        self.link_ttl_s = link_ttl_s
        self.smtp: dict[str, Any] = {
            "hostname": hostname,
            "port": port,
            "use_tls": use_tls,
            "start_tls": start_tls,
            "username": username,
            "password": password,
            "timeout": timeout_s,
        }

    def recipients(self, summary: RequestSummary) -> list[str]:
        """Who is mailed: the request's approvers now (everyone known when anyone may)."""
        if summary.approvers is None:
            return list(self.addresses)
        return [who for who in summary.approvers if who in self.addresses]

    async def notify(self, event: NotificationEvent) -> None:
        """Mail each recipient their link; DeliveryError when the SMTP server refuses."""
        if not isinstance(event, SENT_FOR) or event.request.kind != "approval":
            return  # decided / expired: nothing to do; input needs the console's form
        expires_at = min(event.request.expires_at, time.time() + self.link_ttl_s)
        for who in self.recipients(event.request):
            _, token = await new_link(self.store, event.request_id, who, expires_at)
            message = self.message(event, who, f"{self.console_url}/email/{token}")
            try:
                await aiosmtplib.send(message, **self.smtp)
            except (aiosmtplib.SMTPException, OSError) as exc:
                raise DeliveryError(
                    f"email {self.name}: {type(exc).__name__}: {exc}",
                    channel=self.name,
                    retryable=True,
                ) from exc

    def message(self, event: NotificationEvent, who: str, url: str) -> EmailMessage:
        """The message to ``who``: the request in plain text and the link to decide it."""
        summary = event.request
        tool = tool_label(summary.tool_name) if summary.tool_name else "a model call"
        what = {"request_reminded": "Reminder: ", "request_escalated": "Escalated: "}
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = self.addresses[who]
        message["Subject"] = f"{what.get(event.kind, '')}approval needed: {tool}"
        expires = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(summary.expires_at))
        message.set_content(
            "\n".join(
                [
                    f"{tool} (agent {escape(summary.agent_name)}) waits for a decision.",
                    "",
                    "Arguments, exactly as they will run:",
                    escaped_json(summary.tool_args, indent=2),
                    "",
                    f"Rule: {escape(summary.rule_id or '-')}: {escape(summary.reason or '')}",
                    f"Expires: {expires}",
                    "",
                    f"Review and decide (you will be asked to sign in): {url}",
                    "The link works once and only for this request.",
                ]
            )
        )
        return message


# -- the link's page -----------------------------------------------------------------------
class _LinkPage:
    """``GET`` (a confirm page, no change) and ``POST`` (the decision) of ``/email/{token}``."""

    def __init__(self, store: RunStore, auth: Authenticator) -> None:
        self.store, self.auth = store, auth

    async def __call__(self, request: Request) -> Response:
        token = request.path_params["token"]
        found = await self.open(token)
        if isinstance(found, Response):
            return found
        link, record = found
        if request.method in ("GET", "HEAD"):
            return _page("Decide this request", _confirm(record), 200)
        return await self.post(request, link, record)

    async def open(self, token: str) -> tuple[lk.EmailLink, RequestRecord] | Response:
        """The link and its request, or the page saying why it decides nothing. Reads only."""
        link_id, _, tag = token.partition(".")
        link = (
            await lk.run(self.store, lk.get_link(link_id)) if link_id.startswith("eml_") else None
        )
        if link is None or not self.store.keys.verify(
            LINK_PURPOSE,
            [link.link_id, link.request_id, link.recipient, link.expires_at],
            tag.replace(".", ":", 1),
        ):
            return _page("Not a valid link", "<p>This link is not one afk sent.</p>", 404)
        if link.used_at is not None:
            return _page(
                "Link already used", "<p>This link was used; it decides nothing more.</p>", 410
            )
        if time.time() > link.expires_at:
            return _page("Link expired", "<p>This link expired; it decides nothing.</p>", 410)
        record = await self.store.get_request(link.request_id)
        if record is None or not record_ok(self.store.keys, record):
            return _page("Not a valid link", "<p>The request cannot be read.</p>", 404)
        if record.status != "pending":
            return _page("Already decided", f"<p>This request is {record.status}.</p>", 410)
        return link, record

    async def post(self, request: Request, link: lk.EmailLink, record: RequestRecord) -> Response:
        """Decide as the authenticated principal, using the link up (once)."""
        if not _same_origin(request):
            return _page("Refused", "<p>A decision must come from this page.</p>", 403)
        principal = await self.auth.authenticate(request)
        if principal is None:
            body = (
                "<p>Sign in to the afk console, then open this link again. It is still unused.</p>"
            )
            return _page("Sign in first", body, 401)
        form = await _form(request)
        kind, reason = form.get("decision"), form.get("reason") or None
        if kind not in ("allow", "deny") or (reason is not None and len(reason) > MAX_REASON_CHARS):
            return _page("Not understood", "<p>Choose Approve or Deny.</p>", 422)
        decision = ApprovalDecision(kind=kind, reason=reason)  # type: ignore[arg-type]
        vote = Vote(principal=principal, decision=decision, at=time.time())
        try:
            check_approver(load_request(record), principal, vote.at)  # before the link is spent
        except UnauthorizedApproverError as exc:
            await log_refused(self.store, load_request(record), vote, exc)
            return _page("Not yours to decide", f"<p>{html.escape(str(exc))}</p>", 403)
        if not await lk.run(self.store, lk.use_link(link.link_id, principal.id, time.time())):
            return _page(
                "Link already used", "<p>This link was used; nothing was decided.</p>", 410
            )
        try:
            outcome = await resolve(self.store, record.request_id, decision, principal)
        except InteractionError as exc:
            return _page("Nothing decided", f"<p>{html.escape(str(exc))}</p>", exc.http_status)
        word = "approved" if kind == "allow" else "denied"
        said = "Your vote is counted." if outcome == "pending" else f"You {word} this request."
        return _page("Recorded", f"<p>{said}</p>", 200)


def _same_origin(request: Request) -> bool:
    """A browser's POST names its page's origin: it must be this host (a form on another
    site must not spend a link someone opened)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


async def _form(request: Request) -> dict[str, str]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return {}
    fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
    return {name: values[0] for name, values in fields.items() if len(values) == 1}


def _confirm(record: RequestRecord) -> str:
    request = load_request(record)
    tool = tool_label(request.tool_name) if request.tool_name else "a model call"
    args = escaped_json(request.tool_args, indent=2)
    expires = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(record.expires_at))
    rows = [
        ("Tool", tool),
        ("Agent", escape(request.agent_name)),
        ("Rule", escape(request.rule_id or "-")),
        ("Reason", escape(request.reason or "")),
        ("Expires", expires),
    ]
    table = "".join(f"<tr><th>{k}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return (
        f"<table>{table}</table><h2>Arguments, exactly as they will run</h2>"
        f"<pre>{html.escape(args)}</pre>"
        '<form method="post"><label>Reason <textarea name="reason" maxlength="2000">'
        "</textarea></label><p>"
        '<button type="submit" name="decision" value="allow">Approve</button> '
        '<button type="submit" name="decision" value="deny">Deny</button></p></form>'
        "<p>Opening this page changed nothing; pressing a button decides, as the person "
        "you are signed in as.</p>"
    )


def _page(title: str, body: str, status: int) -> HTMLResponse:
    text = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)} · afk</title></head>"
        f"<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    return HTMLResponse(text, status_code=status, headers=HEADERS)


def email_routes(store: RunStore, auth: Authenticator, *, prefix: str = "/email") -> list[Route]:
    """The links' page, as Starlette routes to mount beside the console's; ``auth`` is the
    console's authenticator (who may POST a decision). ``store`` must be set up."""
    if not isinstance(auth, Authenticator):
        raise ConfigurationError(
            f"email_routes(auth=) takes an Authenticator, got {type(auth).__name__}"
        )
    page = _LinkPage(store, auth)
    return [Route(prefix + "/{token}", page.__call__, methods=["GET", "HEAD", "POST"])]


__all__ = [
    "INSTALL_HINT",
    "LINK_PURPOSE",
    "LINK_TTL_S",
    "EmailNotifier",
    "email_routes",
    "new_link",
    "token_of",
]
