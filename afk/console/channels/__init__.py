"""Where notifications go: outbound webhooks, Slack and email, each a
:class:`~afk.approvals.notify.Notifier`, and the inbound endpoints that let a human decide
from Slack (:func:`slack_routes`) or from an emailed link (:func:`email_routes`) through the
one decision path.

Names load on first use: webhooks need only httpx; Slack needs ``afk-agents[slack]``
(``slack_sdk``, ``aiohttp``), email ``afk-agents[email]`` (``aiosmtplib``).
"""

from __future__ import annotations

from afk._lazy import lazy_exports

TYPE_CHECKING = False
if TYPE_CHECKING:
    from afk.console.channels.email import EmailNotifier, email_routes
    from afk.console.channels.slack import SlackNotifier, slack_routes
    from afk.console.channels.webhook import WebhookNotifier, verify_webhook

_LAZY: dict[str, str] = {
    "EmailNotifier": "afk.console.channels.email",
    "email_routes": "afk.console.channels.email",
    "SlackNotifier": "afk.console.channels.slack",
    "slack_routes": "afk.console.channels.slack",
    "WebhookNotifier": "afk.console.channels.webhook",
    "verify_webhook": "afk.console.channels.webhook",
}

__all__ = [
    "EmailNotifier",
    "SlackNotifier",
    "WebhookNotifier",
    "email_routes",
    "slack_routes",
    "verify_webhook",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
