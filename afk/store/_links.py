"""What the notification channels keep (afk.approvals.notify, afk.console.channels): each
channel's place in the ledger, and the single-use links email carries. Their tables (store
schema 7, in their own DDL block so it merges with the others), SQL and procedures.

``notify_cursors``: one row per channel. ``after_id`` is the last ledger id the channel
delivered (or gave up on); ``attempts`` counts failed tries of the entry after it; ``owner``
and ``lease_until`` keep two workers from delivering the same channel at once (a lease
that runs out is taken over, so a dead worker stalls nobody).

``email_links``: one row per link sent. The link's secret half is never stored: the token
is the link id and a MAC under the store's keys over the row (afk.console.channels.email),
so a row edited in the database (another request, a later expiry) matches no token.
``used_at`` is set once, by compare-and-set: a link decides at most one thing.

``channel_messages``: where a channel showed a request (Slack: its channel and message ts),
so that whichever worker delivers a later event (a reminder, the outcome) finds the message,
also after a restart. A row is dropped once the outcome is shown: the table holds the
open requests' messages, not their history.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from afk._lazy import lazy_exports
from afk.errors import ConfigurationError
from afk.store._procs import FOR_UPDATE, Proc, Q
from afk.store.store import RunStore

if TYPE_CHECKING:
    from afk.store._other_records import Cursor as Cursor
    from afk.store._other_records import EmailLink as EmailLink

# Its records are built on first use (afk.store._other_records): every store imports this
# module for its tables, an approver's decision uses neither.
__getattr__, __dir__ = lazy_exports(
    __name__, dict.fromkeys(("Cursor", "EmailLink"), "afk.store._other_records"), globals()
)

T = TypeVar("T")

DDL = (
    """CREATE TABLE IF NOT EXISTS {t}notify_cursors (
        channel TEXT PRIMARY KEY, after_id BIGINT NOT NULL, attempts INTEGER NOT NULL,
        owner TEXT, lease_until {real}, updated_at {real} NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS {t}email_links (
        link_id TEXT PRIMARY KEY, request_id TEXT NOT NULL, recipient TEXT NOT NULL,
        created_at {real} NOT NULL, expires_at {real} NOT NULL, used_at {real},
        used_by TEXT)""",
    """CREATE TABLE IF NOT EXISTS {t}channel_messages (
        channel TEXT NOT NULL, request_id TEXT NOT NULL, ref TEXT NOT NULL,
        PRIMARY KEY (channel, request_id))""",
)

LINK_COLS = ("link_id", "request_id", "recipient", "created_at", "expires_at", "used_at", "used_by")
_L = ", ".join(LINK_COLS)
INSERT_CURSOR = (
    "INSERT INTO {t}notify_cursors (channel, after_id, attempts, updated_at) "
    "VALUES (?, ?, 0, ?) ON CONFLICT (channel) DO NOTHING"
)
SELECT_CURSOR = (
    "SELECT after_id, attempts, owner, lease_until FROM {t}notify_cursors WHERE channel = ?"
)
TAKE_CURSOR = (
    "UPDATE {t}notify_cursors SET owner = ?, lease_until = ? WHERE channel = ? "
    "AND (owner IS NULL OR owner = ? OR lease_until < ?)"
)
MOVE_CURSOR = (
    "UPDATE {t}notify_cursors SET after_id = ?, attempts = ?, updated_at = ?, owner = NULL, "
    "lease_until = NULL WHERE channel = ? AND owner = ?"
)
INSERT_LINK = f"INSERT INTO {{t}}email_links ({_L}) VALUES ({', '.join('?' * len(LINK_COLS))})"
SELECT_LINK = f"SELECT {_L} FROM {{t}}email_links WHERE link_id = ?"
USE_LINK = (
    "UPDATE {t}email_links SET used_at = ?, used_by = ? "
    "WHERE link_id = ? AND used_at IS NULL AND expires_at >= ?"
)

# The first message kept stands: a second post of the same request (a retried delivery
# whose first answer was lost) leaves the one already kept.
KEEP_MESSAGE = (
    "INSERT INTO {t}channel_messages (channel, request_id, ref) VALUES (?, ?, ?) "
    "ON CONFLICT (channel, request_id) DO NOTHING"
)
SELECT_MESSAGE = "SELECT ref FROM {t}channel_messages WHERE channel = ? AND request_id = ?"
FORGET_MESSAGE = "DELETE FROM {t}channel_messages WHERE channel = ? AND request_id = ?"


def link_from_row(row: Sequence[Any]) -> EmailLink:
    """The link a SELECT_LINK row holds."""
    from afk.store._other_records import EmailLink

    return EmailLink(**dict(zip(LINK_COLS, row, strict=True)))


# -- procedures ----------------------------------------------------------------------------
def take_cursor(
    channel: str, owner: str, start_after: int, now: float, ttl_s: float
) -> Proc[Cursor | None]:
    """The channel's cursor with its lease taken by ``owner`` (made at ``start_after`` when
    the channel has none), or None while another owner's lease is live."""
    yield Q(INSERT_CURSOR, (channel, start_after, now))
    taken = yield Q(TAKE_CURSOR, (owner, now + ttl_s, channel, owner, now), fetch="count")
    if taken != 1:
        return None
    row = yield Q(SELECT_CURSOR, (channel,), fetch="one", lock=FOR_UPDATE)
    from afk.store._other_records import Cursor

    return Cursor(channel=channel, after_id=int(row[0]), attempts=int(row[1]))


def move_cursor(channel: str, owner: str, after_id: int, attempts: int, now: float) -> Proc[bool]:
    """Record the channel's new place and give its lease back; False when ``owner`` lost
    the lease meanwhile (another worker's place then stands)."""
    moved = yield Q(MOVE_CURSOR, (after_id, attempts, now, channel, owner), fetch="count")
    return bool(moved == 1)


def cursor_position(channel: str) -> Proc[int | None]:
    """The last ledger id the channel delivered, or None before its first pass."""
    row = yield Q(SELECT_CURSOR, (channel,), fetch="one")
    return int(row[0]) if row is not None else None


def add_link(link: EmailLink) -> Proc[None]:
    """Insert a new link (a repeated id is a StoreError: ids are random)."""
    yield Q(INSERT_LINK, tuple(getattr(link, c) for c in LINK_COLS))


def get_link(link_id: str) -> Proc[EmailLink | None]:
    """The link ``link_id``, or None."""
    row = yield Q(SELECT_LINK, (link_id,), fetch="one")
    return link_from_row(row) if row is not None else None


def use_link(link_id: str, by: str, now: float) -> Proc[bool]:
    """Mark the link used by ``by``: True only for the one caller that found it unused and
    unexpired (compare-and-set), so a link decides at most once."""
    used = yield Q(USE_LINK, (now, by, link_id, now), fetch="count")
    return bool(used == 1)


def keep_message(channel: str, request_id: str, ref: str) -> Proc[None]:
    """Remember where ``channel`` showed ``request_id`` (``ref``: the channel's own words)."""
    yield Q(KEEP_MESSAGE, (channel, request_id, ref))


def message_ref(channel: str, request_id: str) -> Proc[str | None]:
    """Where ``channel`` showed ``request_id``, or None."""
    row = yield Q(SELECT_MESSAGE, (channel, request_id), fetch="one")
    return str(row[0]) if row is not None else None


def forget_message(channel: str, request_id: str) -> Proc[None]:
    """The request's outcome is shown: its message needs no more finding."""
    yield Q(FORGET_MESSAGE, (channel, request_id))


# -- running them --------------------------------------------------------------------------
class _Driven(Protocol):
    async def _run(self, proc: Proc[T], *, tx: bool, durable: bool = True) -> T: ...


async def run(store: RunStore, proc: Proc[T]) -> T:
    """Run ``proc`` in one transaction of ``store`` (afk's SQLite or Postgres store: the
    tables of the channels and of ended inbox sessions are theirs; another RunStore has no
    place to keep them)."""
    if not callable(getattr(store, "_run", None)):
        raise ConfigurationError(
            f"notification channels and inbox sessions keep their state in an afk store "
            f"(sqlite:/// or postgresql://), got {type(store).__name__}"
        )
    return await cast("_Driven", store)._run(proc, tx=True)
