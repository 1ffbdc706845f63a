"""The JSON columns stored deflated, shared by both backends (store schema 8).

``runs.snapshot``, ``requests.request`` and ``log.payload`` are JSON text that afk writes and
reads whole, never queried by its contents; their field names and afk's fixed values
(``"allowed_decisions":["allow","deny","edit","grant"]``, ``"quorum":1``...) repeat in every
row. Each is stored as a format byte and the text compressed with raw deflate from a preset
dictionary of that column's vocabulary (a row is too short to teach deflate much on its
own), the technique of :mod:`afk.store._event_batches`: a paused run's snapshot and request
take 25-30% of their text, its two ledger payloads 40-65%.

The keyed digests and MACs of a paused run's rows (``runs.mac``; ``requests.mac``,
``args_digest``, ``bound_digest``; ``log.prev_hash``, ``hash``) are stored as bytes too: the
77-character ``<12 hex key id>:<64 hex>`` text as a format byte and its 38 bytes
(:func:`pack_digest`); any other text (an unkeyed legacy digest, the chain's genesis) as its
UTF-8. They read back as the same text, so every comparison and check is the one before.

Trust is unchanged: every MAC (row MACs, the ledger's chain) covers the plain text as the
record holds it. Writes seal, then pack; reads unpack, then the caller verifies. A value
that does not inflate reads back as :data:`UNDECODABLE`, a text no MAC was ever made over,
so a damaged or forged blob fails verification like any edited row, through the same path
(a ``tamper_detected`` entry, the refusal). A value that is not packed (a row written by
hand, or as UTF-8 text by an older afk) reads as its text: it must verify all the same.
"""

from __future__ import annotations

import re
import zlib
from typing import Literal

Column = Literal["snapshot", "request", "payload"]
COLUMNS: tuple[Column, ...] = ("snapshot", "request", "payload")
FORMAT_DEFLATE = 1  # the first byte of every packed value: how the rest is encoded
_WBITS = -15  # raw deflate: no zlib header or checksum (the database keeps the bytes)
_LEVEL = 9  # rows of a few hundred bytes: the best ratio costs microseconds
UNDECODABLE = '{"afk_undecodable":true}'  # what a damaged value reads as: it never verifies


def _join(*texts: str) -> bytes:
    return "".join(texts).encode()


# The preset dictionaries of format 1. FROZEN: stored values inflate only with these exact
# bytes (tests pin their digests); a better dictionary is a new format byte, this one kept
# for reading. Deflate reaches nearer (later) strings more cheaply, so the commonest go last.
_SNAPSHOT = _join(
    '{"kind":"user_input","value":null}',
    '"role":"system"',
    '{"kind":"deny","reason":"","approver":"","updated_tool_args":null,"stop_run":false,'
    '"grant":null},"decided_by":"human"}',
    '"executions":[{"tool_name":"","tool_call_id":"call_","args":{},"success":true,'
    '"output":"","executed":true,"error":null,"policy":{"action":"allow","reason":"",'
    '"rule_id":"","matched_rules":[""]},"decision":{"kind":"allow","reason":null,'
    '"approver":"","updated_tool_args":null,"stop_run":false,"grant":null},'
    '"decided_by":"human"}],',
    '{"tool_call_id":"call_","tool_name":"","content":"","role":"tool"},',
    '{"text":"","role":"assistant"}],',
    '"action":"request_user_input",',
    '{"step":1,"seq":1,"messages":[{"content":"","role":"user"},{"tool_calls":[{"name":"",'
    '"arguments":{},"id":"call_"}],"role":"assistant"}],"active_s":0.0,'
    '"pending_step":{"step":1,"calls":[{"policy":{"action":"request_approval","reason":"",'
    '"rule_id":"","matched_rules":[""]},"request_id":"req_"}]},"schema_version":4}',
)
_REQUEST = _join(
    '{"kind":"deny","reason":"","approver":"","updated_tool_args":null,"stop_run":false,'
    '"grant":null}',
    '"input_target_arg":"","question":"","choices":null,"default":null,',
    '"details":null,"input_schema":null,',
    '{"step":1,"agent_name":"","tool_name":"","tool_args":{},'
    '"tool_call_id":"call_","rule_id":"","reason":"","tool_schema":null,"approvers":[],'
    '"quorum":1,"allow_self_approval":false,"escalate_to":[],"deny_decides":true,'
    '"allowed_decisions":["allow","deny","edit","grant"]}',
)
_PAYLOAD = _join(
    '{"effect":"allow","grant_id":"grant_","scope":"","until":0.0,"when":{}}',
    '{"approver":"","kind":"allow","why":""}',
    '{"refused":"","row_id":"","table":""}',
    '{"args_digest":":","authenticated_by":"app","decided_by":"human","kind":"allow",'
    '"principal":"","reason":null}',
    '{"args_digest":":","error":null,"success":true,"tool_call_id":"call_"}',
    '{"args_digest":":","tool_call_id":"call_"}',
    '{"action":"request_approval","args_digest":":","event":"tool_before_execute",'
    '"matched":[""],"reason":"","rule":"","step":1,"tool":"","tool_call_id":"call_"}',
    '{"args_digest":":","rule":"","tool":""}',
)
DICTIONARIES: dict[Column, bytes] = {
    "snapshot": _SNAPSHOT,
    "request": _REQUEST,
    "payload": _PAYLOAD,
}


FORMAT_KEYED = 2  # a packed digest: the key id's 6 bytes, then the MAC's 32
_KEYED = re.compile(r"[0-9a-f]{12}:[0-9a-f]{64}")
_KEYED_SIZE = 1 + 6 + 32


def pack_digest(text: str | None) -> bytes | None:
    """The stored form of a keyed digest or MAC column's ``text``."""
    if text is None:
        return None
    if _KEYED.fullmatch(text):
        return bytes([FORMAT_KEYED]) + bytes.fromhex(text[:12]) + bytes.fromhex(text[13:])
    return text.encode()


def unpack_digest(stored: bytes | memoryview | str | None) -> str | None:
    """The text a stored digest column holds (text stored as text reads as itself)."""
    if stored is None or isinstance(stored, str):
        return stored
    raw = bytes(stored)
    if len(raw) == _KEYED_SIZE and raw[0] == FORMAT_KEYED:
        return f"{raw[1:7].hex()}:{raw[7:].hex()}"
    return _text(raw)


def pack(column: Column, text: str) -> bytes:
    """The stored form of ``column``'s JSON ``text``."""
    deflate = zlib.compressobj(_LEVEL, zlib.DEFLATED, _WBITS, zdict=DICTIONARIES[column])
    return bytes([FORMAT_DEFLATE]) + deflate.compress(text.encode()) + deflate.flush()


def unpack(column: Column, stored: bytes | memoryview | str | None) -> str:
    """The text a stored ``column`` value holds (see the module docstring for values that
    are not packed, or do not inflate)."""
    if stored is None or isinstance(stored, str):
        return stored or ""
    raw = bytes(stored)
    if not raw.startswith(bytes([FORMAT_DEFLATE])):
        return _text(raw)
    try:
        inflate = zlib.decompressobj(_WBITS, zdict=DICTIONARIES[column])
        text = inflate.decompress(raw[1:]) + inflate.flush()
        if not inflate.eof or inflate.unused_data:
            return UNDECODABLE  # cut short, or bytes appended after the stream
    except zlib.error:
        return UNDECODABLE
    return _text(text)


def is_packed(stored: bytes | memoryview | str | None) -> bool:
    """Whether ``stored`` is already in the packed form (the migration skips it)."""
    return isinstance(stored, (bytes, memoryview)) and bytes(stored[:1]) == bytes([FORMAT_DEFLATE])


def _text(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return UNDECODABLE
