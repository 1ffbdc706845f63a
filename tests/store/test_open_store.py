"""open_store / store_from_env: which specs name which store, and what stays unimported."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from afk.errors import ConfigurationError, StoreError
from afk.store import PostgresStore, SQLiteStore, open_store, store_from_env
from afk.store.postgres import mask_dsn


def test_sqlite_specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = open_store("sqlite:///data/afk.db")
    assert isinstance(relative, SQLiteStore)
    assert relative.path == str(tmp_path / "data" / "afk.db")
    assert relative.url == f"sqlite:///{tmp_path}/data/afk.db"
    absolute = open_store(f"sqlite:///{tmp_path}/x.db")
    assert isinstance(absolute, SQLiteStore) and absolute.path == str(tmp_path / "x.db")
    roundtrip = open_store(relative.url)
    assert isinstance(roundtrip, SQLiteStore) and roundtrip.path == relative.path
    for bare in ("runs.db", "runs.sqlite", "sub/runs.SQLITE3", tmp_path / "p.db"):
        assert isinstance(open_store(bare), SQLiteStore), bare


async def test_sqlite_creates_missing_directories(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/a/b/afk.db")
    await store.setup()
    await store.close()
    assert (tmp_path / "a" / "b" / "afk.db").exists()


def test_postgres_specs_mask_the_password() -> None:
    store = open_store("postgresql://afk:s3cr%40t@db.internal:5432/prod")
    assert isinstance(store, PostgresStore)
    assert store.url == "postgresql://afk:***@db.internal:5432/prod"
    assert store.schema == "afk"
    assert isinstance(open_store("postgres://afk@db/prod"), PostgresStore)
    assert mask_dsn("host=db password='a b' user=afk") == "host=db password=*** user=afk"
    assert mask_dsn("postgresql://db/x?password=pw&sslmode=require") == (
        "postgresql://db/x?password=***&sslmode=require"
    )


def test_a_store_object_is_returned_as_is(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "a.db")
    assert open_store(store) is store


@pytest.mark.parametrize("spec", ["mysql://db/x", "runs.txt", "sqlite:///", "sqlite://x.db", ""])
def test_unknown_specs_are_refused(spec: str) -> None:
    with pytest.raises(ConfigurationError, match=r"sqlite:///.*postgresql://"):
        open_store(spec)


def test_bad_postgres_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="schema"):
        PostgresStore("postgresql://db/x", schema='afk"; drop')
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(ConfigurationError, match=r"afk-agents\[postgres\]"):
        PostgresStore("postgresql://db/x")


def test_store_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AFK_STORE", raising=False)
    assert store_from_env() is None
    monkeypatch.setenv("AFK_STORE", f"sqlite:///{tmp_path}/env.db")
    store = store_from_env()
    assert isinstance(store, SQLiteStore) and store.path == str(tmp_path / "env.db")


def test_importing_the_store_stays_light() -> None:
    code = (
        "import sys, afk.store; "
        "print(sorted(m for m in ('psycopg', 'pydantic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


async def test_sqlite_connection_is_durable_and_concurrent(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "afk.db")
    await store.setup()
    pragmas = await store._call(
        lambda conn: [conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("journal_mode",
                      "synchronous", "busy_timeout")]
    )  # fmt: skip
    await store.close()
    assert pragmas == ["wal", 2, 10_000]  # synchronous 2 == FULL


# -- a store this process cannot write ----------------------------------------------------
@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[None]:
    """``path`` unwritable for this process: mode 0444, or for root (whom modes do not stop)
    the immutable attribute."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        yield
        return
    subprocess.run(["chattr", "+i", str(path)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


async def test_a_read_only_sqlite_file_is_a_store_error_saying_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    store = SQLiteStore(path)
    await store.setup()
    await store.close()
    for leftover in tmp_path.glob("runs.db-*"):
        leftover.unlink()
    with _read_only(path):
        again = SQLiteStore(path)
        try:
            with pytest.raises(StoreError) as info:
                await again.setup()
        finally:
            await again.close()
    message = str(info.value)
    assert str(path) in message and "writable by this user" in message
    assert not isinstance(info.value.__cause__, StoreError)


@pytest.mark.parametrize("where", ["/proc/afk-test-runs.db", "/proc/afk-no-dir/runs.db"])
async def test_a_directory_that_cannot_be_written_is_a_store_error(where: str) -> None:
    store = SQLiteStore(where)
    try:
        with pytest.raises(StoreError) as info:
            await store.setup()
    finally:
        await store.close()
    assert where in str(info.value) and "writable" in str(info.value)
