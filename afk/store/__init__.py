"""Durable run stores: where a run waiting for a human is kept until someone decides.

``open_store`` turns a spec (``AFK_STORE``) into a store. Importing this package stays cheap:
``PostgresStore`` and psycopg load only when asked for.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from afk.audit.keys import Keyring
from afk.errors import ConfigurationError, StoreError
from afk.store._paging import Page
from afk.store._seal import record_ok
from afk.store.sqlite import SQLiteStore
from afk.store.store import EventRow, ExecutionRecord, LogEntry, RequestRecord, RunRecord, RunStore

if TYPE_CHECKING:
    from afk.store.postgres import PostgresStore

_SQLITE_PREFIX = "sqlite:///"
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
_POSTGRES_PREFIXES = ("postgresql://", "postgres://")
_ACCEPTED = (
    "a RunStore object, 'sqlite:///relative.db', 'sqlite:////absolute/path.db', a file path "
    "ending in .db/.sqlite/.sqlite3, or 'postgresql://user@host:5432/dbname'"
)


def __getattr__(name: str) -> Any:
    if name == "PostgresStore":
        from afk.store.postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_store(spec: RunStore | str | os.PathLike[str], *, keys: Keyring | None = None) -> RunStore:
    """A store for ``spec``; the caller still awaits ``setup()`` before using it. ``keys``:
    the deployment secret (default: $AFK_SECRET_KEY; for SQLite, else a key file beside
    the database)."""
    if isinstance(spec, RunStore):
        if keys is not None:
            raise ConfigurationError(
                "open_store(keys=) goes with a store URL or path; a store object keeps its own"
            )
        return spec
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if not isinstance(spec, str):
        raise ConfigurationError(f"cannot open a store from {spec!r}; expected {_ACCEPTED}")
    text = spec.strip()
    if text.startswith(_SQLITE_PREFIX) and len(text) > len(_SQLITE_PREFIX):
        return SQLiteStore(text[len(_SQLITE_PREFIX) :], keys=keys)
    if text.startswith(_POSTGRES_PREFIXES):
        from afk.store.postgres import PostgresStore

        dsn, schema = _split_schema(text)
        return PostgresStore(dsn, schema=schema or "afk", keys=keys)
    if "://" not in text and text.lower().endswith(_SQLITE_SUFFIXES):
        return SQLiteStore(text, keys=keys)
    raise ConfigurationError(f"cannot open a store from {spec!r}; expected {_ACCEPTED}")


def _split_schema(url: str) -> tuple[str, str | None]:
    """``?afk_schema=NAME`` picks the Postgres schema (default ``afk``); it is ours, not
    libpq's, so it is taken out of the URL before connecting."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "afk_schema"), None)
    rest = urlencode([(k, v) for k, v in query if k != "afk_schema"])
    return urlunsplit(parts._replace(query=rest)), schema


def store_from_env() -> RunStore | None:
    """The store named by ``AFK_STORE``, or None when it is unset or empty."""
    spec = os.environ.get("AFK_STORE", "").strip()
    return open_store(spec) if spec else None


__all__ = [
    "EventRow",
    "ExecutionRecord",
    "LogEntry",
    "Page",
    "PostgresStore",
    "RequestRecord",
    "RunRecord",
    "RunStore",
    "SQLiteStore",
    "StoreError",
    "open_store",
    "record_ok",
    "store_from_env",
]
