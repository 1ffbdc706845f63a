"""Which Postgres source a test session picks, given the environment, a reachable default
server and installed binaries (``pg_support.choose`` and ``find_bindir``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pg_support
import pytest
from pg_support import DEFAULT_DSN, Choice, choose, find_bindir


def _never(dsn: str) -> bool:
    return False


def _no_binaries(env: Mapping[str, str]) -> str | None:
    return None


def test_an_explicit_dsn_wins_without_probing_anything() -> None:
    def probe(dsn: str) -> bool:
        raise AssertionError("probed although AFK_TEST_POSTGRES was set")

    env = {"AFK_TEST_POSTGRES": "postgresql://me@db:6543/x"}
    found = choose(env, reachable=probe, find_bindir=lambda env: "/bin")
    assert found == Choice(source="env", dsn="postgresql://me@db:6543/x")


def test_a_server_answering_at_the_default_dsn_comes_next() -> None:
    asked: list[str] = []

    def probe(dsn: str) -> bool:
        asked.append(dsn)
        return True

    found = choose({"AFK_TEST_POSTGRES": ""}, reachable=probe, find_bindir=lambda env: "/bin")
    assert found == Choice(source="default", dsn=DEFAULT_DSN) and asked == [DEFAULT_DSN]


def test_installed_binaries_give_a_throwaway_server() -> None:
    found = choose({}, reachable=_never, find_bindir=lambda env: "/opt/pg/bin")
    assert found == Choice(source="throwaway", bindir="/opt/pg/bin")


def test_nothing_at_all_means_none() -> None:
    assert choose({}, reachable=_never, find_bindir=_no_binaries) == Choice(source="none")


def _fake_bindir(root: Path, tools: tuple[str, ...] = ("initdb", "pg_ctl")) -> str:
    root.mkdir(parents=True)
    for tool in tools:
        (root / tool).write_text("#!/bin/sh\n")
        (root / tool).chmod(0o755)
    return str(root)


def test_the_bindir_override_is_searched_in_order_and_needs_both_tools(tmp_path: Path) -> None:
    half = _fake_bindir(tmp_path / "half", ("initdb",))
    full = _fake_bindir(tmp_path / "full")
    assert find_bindir({"AFK_TEST_PG_BINDIRS": os.pathsep.join([half, full])}) == full
    assert find_bindir({"AFK_TEST_PG_BINDIRS": half}) is None
    assert find_bindir({"AFK_TEST_PG_BINDIRS": "", "PATH": full}) is None  # hides even PATH


def test_initdb_on_path_is_found(tmp_path: Path) -> None:
    full = _fake_bindir(tmp_path / "bin")
    assert find_bindir({"PATH": full}) == full


def test_require_turns_no_server_into_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pg_support, "answers", _never)
    monkeypatch.setattr(pg_support, "_session", pg_support.current())  # restored afterwards
    env = {"AFK_TEST_PG_BINDIRS": "", "AFK_REQUIRE_POSTGRES": "1"}
    with pytest.raises(pg_support.PostgresUnavailable, match="AFK_TEST_POSTGRES"):
        pg_support.start_session(env)


def test_a_password_is_set_on_the_dsn_user() -> None:
    dsn = "postgresql://postgres@127.0.0.1:5999/test"
    assert pg_support.with_password(dsn, "pw") == "postgresql://postgres:pw@127.0.0.1:5999/test"


def test_a_throwaway_server_serves_database_test_and_leaves_nothing_behind() -> None:
    # CI has a server at the default DSN, so the session never starts one there: this does.
    bindir = find_bindir(os.environ)
    if bindir is None:
        pytest.skip(pg_support.HINT)
    import psycopg

    server = pg_support.ThrowawayServer(bindir)
    try:
        dsn = server.start()
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute("SELECT current_user, current_database()").fetchone()
        assert row == ("postgres", "test") and dsn.startswith("postgresql://postgres@127.0.0.1:")
    finally:
        server.stop()
    assert not server.root.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, connect_timeout=3)
