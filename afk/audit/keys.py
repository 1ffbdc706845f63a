"""The deployment secret: what makes afk's stored records prove themselves.

Every row a store writes carries an HMAC under this key, argument digests are keyed with it,
and the ledger's chain and checkpoints are MACs under it. Someone who can write the database
but does not hold the key cannot forge any of them.

A MAC is written ``"<key_id>:<hex HMAC-SHA256>"`` over ``canonical_bytes([purpose, value])``
(:mod:`afk.canonical`). The purpose (a table name, ``"args"``, ``"ledger"``, ...) keeps a MAC
made for one use from being replayed as another. ``key_id`` names the key that made it, so a
:class:`Keyring` can verify records made before a rotation with the older keys.

Where the key comes from:

- ``AFK_SECRET_KEY``: hex of at least 32 bytes, or text of at least 32 characters;
- ``AFK_SECRET_KEYS_PREVIOUS``: older keys (comma separated), for verification only;
- for a SQLite store without the variable: a key file ``<db path>.key`` beside the database,
  created on first use with mode 0600. Postgres stores need the variable.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from afk.canonical import canonical_bytes
from afk.errors import ConfigurationError

KEY_ENV = "AFK_SECRET_KEY"
PREVIOUS_ENV = "AFK_SECRET_KEYS_PREVIOUS"
MIN_SECRET_BYTES = 32
MAKE_ONE = 'python -c "import secrets; print(secrets.token_hex(32))"'
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")


def key_id_of(secret: bytes) -> str:
    """The public name of a secret: the first 12 hex digits of sha256(b"afk-key-id" + it)."""
    return hashlib.sha256(b"afk-key-id" + secret).hexdigest()[:12]


@dataclass(frozen=True, slots=True, kw_only=True)
class SecretKey:
    """One secret and its public ``key_id``. Its repr never shows the secret."""

    secret: bytes = field(repr=False)
    key_id: str = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.secret, bytes) or len(self.secret) < MIN_SECRET_BYTES:
            size = len(self.secret) if isinstance(self.secret, bytes) else "not bytes"
            raise ConfigurationError(
                f"SecretKey secret must be at least {MIN_SECRET_BYTES} bytes (got {size}); "
                f"make one with: {MAKE_ONE}"
            )
        object.__setattr__(self, "key_id", key_id_of(self.secret))

    def __repr__(self) -> str:
        return f"SecretKey(key_id={self.key_id!r})"

    def _tag(self, message: bytes) -> str:
        return f"{self.key_id}:{hmac.new(self.secret, message, hashlib.sha256).hexdigest()}"


@dataclass(frozen=True, slots=True)
class Keyring:
    """The current key (which makes every new MAC) and older ones (which only verify)."""

    current: SecretKey
    previous: tuple[SecretKey, ...] = ()
    _by_id: dict[str, SecretKey] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        keys = (self.current, *self.previous)
        if not all(isinstance(k, SecretKey) for k in keys):
            raise ConfigurationError("Keyring keys must be SecretKey objects")
        object.__setattr__(self, "previous", tuple(self.previous))
        object.__setattr__(self, "_by_id", {k.key_id: k for k in reversed(keys)})

    @property
    def key_id(self) -> str:
        """The id of the current key, which every new MAC names."""
        return self.current.key_id

    def mac(self, purpose: str, value: Any) -> str:
        """``"<key_id>:<hex>"``: HMAC-SHA256 under the current key of ``[purpose, value]``."""
        return self.current._tag(canonical_bytes([purpose, value]))

    def verify(self, purpose: str, value: Any, tag: str | None) -> bool:
        """Whether ``tag`` is a MAC of ``[purpose, value]`` under any key of this ring (in
        constant time; an unknown key id, or no tag at all, is False)."""
        if not isinstance(tag, str):
            return False
        key_id, _, _ = tag.partition(":")
        key = self._by_id.get(key_id)
        if key is None:
            return False
        expected = key._tag(canonical_bytes([purpose, value]))
        return hmac.compare_digest(expected.encode(), tag.encode())

    def digest(self, args: Any) -> str:
        """The keyed digest of tool arguments: what an approval is bound to."""
        return self.mac("args", args)


# -- sources -------------------------------------------------------------------------------
def parse_secret(text: str, source: str) -> SecretKey:
    """A key from text: hex of at least 32 bytes, else the UTF-8 of at least 32 characters.
    ``source`` names where the text came from, for the error."""
    value = text.strip()
    if _HEX.fullmatch(value) and len(value) >= 2 * MIN_SECRET_BYTES:
        return SecretKey(secret=bytes.fromhex(value))
    if len(value) >= MIN_SECRET_BYTES:
        return SecretKey(secret=value.encode("utf-8"))
    raise ConfigurationError(
        f"{source} is too short: it needs hex of at least {MIN_SECRET_BYTES} bytes or text of at "
        f"least {MIN_SECRET_BYTES} characters; make one with: {MAKE_ONE}"
    )


def _environ(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def key_from_env(name: str = KEY_ENV, environ: Mapping[str, str] | None = None) -> SecretKey | None:
    """The key in environment variable ``name``; None when it is unset or blank."""
    text = _environ(environ).get(name, "").strip()
    return parse_secret(text, name) if text else None


def previous_keys(environ: Mapping[str, str] | None = None) -> tuple[SecretKey, ...]:
    """The retired keys listed (comma-separated) in ``AFK_SECRET_KEYS_PREVIOUS``: they still verify
    old records after a key rotation but sign nothing new. Raises ConfigurationError naming the item
    that is not a valid key."""
    text = _environ(environ).get(PREVIOUS_ENV, "")
    parts = [p.strip() for p in text.split(",") if p.strip()]
    return tuple(parse_secret(p, f"{PREVIOUS_ENV} item {i + 1}") for i, p in enumerate(parts))


def keyring_from_env(environ: Mapping[str, str] | None = None) -> Keyring | None:
    """``AFK_SECRET_KEY`` (and older keys), or None when the variable is not set."""
    current = key_from_env(KEY_ENV, environ)
    return Keyring(current, previous_keys(environ)) if current is not None else None


def postgres_keyring(environ: Mapping[str, str] | None = None) -> Keyring:
    """A Postgres store's keys: the variable is required (there is no file to keep one in)."""
    found = keyring_from_env(environ)
    if found is None:
        raise ConfigurationError(
            f"a Postgres run store needs a secret key: set {KEY_ENV} (the same on every "
            f"machine that uses the store), or pass keys=; make one with: {MAKE_ONE}"
        )
    return found


def sqlite_keyring(db_path: str, environ: Mapping[str, str] | None = None) -> Keyring:
    """A SQLite store's keys: ``AFK_SECRET_KEY`` when set, else the key file beside it."""
    found = keyring_from_env(environ)
    if found is not None:
        return found
    return Keyring(load_key_file(db_path + ".key"), previous_keys(environ))


def load_key_file(path: str) -> SecretKey:
    """The key in ``path``, made first when there is none. Refuses a key file that others
    than its owner can read: a secret anyone on the machine can read protects nothing."""
    try:
        if not os.path.exists(path):
            _create_key_file(path)
        mode = os.stat(path).st_mode
        if mode & 0o077:
            raise ConfigurationError(
                f"the key file {path} is readable by group or others (mode {mode & 0o777:o}); "
                f"restrict it with: chmod 600 {path}"
            )
        with open(path, encoding="ascii") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read or create the key file {path} ({exc.strerror or exc}); make its "
            f"directory writable, or set {KEY_ENV}: {MAKE_ONE}"
        ) from exc
    return parse_secret(text, f"the key file {path}")


def _create_key_file(path: str) -> None:
    """Write a fresh key so that it appears complete or not at all: the secret goes to a
    private temporary file (O_CREAT|O_EXCL, mode 0600), which is then hard-linked into place.
    Linking fails when the name exists, so two processes racing agree on the first key."""
    tmp = f"{path}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(MIN_SECRET_BYTES) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process was first: its key stands
            os.link(tmp, path)
    finally:
        os.unlink(tmp)


__all__ = [
    "KEY_ENV",
    "MAKE_ONE",
    "MIN_SECRET_BYTES",
    "PREVIOUS_ENV",
    "Keyring",
    "SecretKey",
    "key_from_env",
    "key_id_of",
    "keyring_from_env",
    "load_key_file",
    "parse_secret",
    "postgres_keyring",
    "previous_keys",
    "sqlite_keyring",
]
