"""``afk audit verify|export|checkpoint``: exit codes and output."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from audit_support import PG_DSN, fill, new_schema, run

from afk.audit import ChainChecker
from afk.cli.main import main
from afk.store import _packed as pk
from afk.store import open_store
from afk.store.store import LogEntry

N = 120
KEY_HEX = "5e" * 32


@dataclass(frozen=True)
class Out:
    code: int
    out: str
    err: str


def afk(*argv: str) -> Out:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
    return Out(code, out.getvalue(), err.getvalue())


async def _build(url: str, n: int) -> str:
    store = open_store(url)
    try:
        await store.setup()
        await fill(store, n, batch=50)
        return (await store.list_log(after_id=n - 1))[0].hash
    finally:
        await store.close()


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A SQLite store named by AFK_STORE, holding N ledger entries; no separate checkpoint
    key in the env (the store's own key is the suite's AFK_SECRET_KEY)."""
    path = tmp_path / "runs.db"
    monkeypatch.setenv("AFK_STORE", f"sqlite:///{path}")
    monkeypatch.delenv("AFK_AUDIT_KEY", raising=False)
    asyncio.run(_build(f"sqlite:///{path}", N))
    return path


def sql(db: Path, statement: str) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(statement)


def _hex(tag: str) -> str:
    return tag.partition(":")[2][:12]


def test_verify_ok(db: Path) -> None:
    result = afk("audit", "verify")
    assert result.code == 0, result.err
    line, hint = result.out.splitlines()
    [(head,)] = sqlite3.connect(db).execute("SELECT hash FROM log WHERE id = ?", (N,)).fetchall()
    # Stored packed since store schema 8 (afk.store._packed); the text is what verify shows.
    assert line == f"ok: {N} entries, head {_hex(pk.unpack_digest(head) or '')}"
    assert hint.startswith("no signed checkpoint yet")
    assert "--expect" in result.err


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        ("UPDATE log SET payload = '{}' WHERE id = 7", "first bad entry: id 7 (altered): "),
        ("DELETE FROM log WHERE id = 50", "first bad entry: id 51 (removed or reordered): "),
    ],
)
def test_verify_names_the_first_bad_entry(db: Path, tamper: str, expected: str) -> None:
    sql(db, tamper)
    result = afk("audit", "verify")
    assert result.code == 1
    assert result.out.startswith(expected), result.out


def test_verify_json(db: Path) -> None:
    sql(db, "DELETE FROM log WHERE id = 50")
    result = afk("audit", "verify", "--json")
    assert result.code == 1
    data = json.loads(result.out)
    assert data["ok"] is False and data["entries"] == 49
    assert data["first_bad"]["id"] == 51 and data["first_bad"]["problem"] == "id gap"
    assert data["first_bad"]["reason"] == "removed or reordered"


def test_checkpoint_then_a_cut_tail_is_truncated(db: Path) -> None:
    signed = afk("audit", "checkpoint")  # signed with the store's own key
    assert signed.code == 0, signed.err
    assert signed.out.startswith(f"checkpoint signed: {N} entries, head id {N} (")
    ok = afk("audit", "verify")
    assert ok.code == 0 and "signed checkpoint of " in ok.out and "matches" in ok.out

    sql(db, f"DELETE FROM log WHERE id > {N - 10}")
    cut = afk("audit", "verify")
    assert cut.code == 1
    assert cut.out.startswith(f"first bad entry: id {N - 9} (truncated): "), cut.out
    again = afk("audit", "checkpoint")
    assert again.code == 1 and again.out.startswith("refused to sign: first bad entry")


def test_a_separate_checkpoint_key_still_works(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFK_AUDIT_KEY", KEY_HEX)
    assert afk("audit", "checkpoint").code == 0
    assert afk("audit", "verify").code == 0
    assert afk("audit", "verify", "--key-env", "UNSET_KEY_VAR").code == 2
    monkeypatch.delenv("AFK_AUDIT_KEY")
    wrong = afk("audit", "verify")  # the store's key did not sign that checkpoint
    assert wrong.code == 1 and "(bad checkpoint)" in wrong.out
    monkeypatch.setenv("LEDGER_KEY", KEY_HEX)
    assert afk("audit", "verify", "--key-env", "LEDGER_KEY").code == 0
    monkeypatch.setenv("SHORT_KEY", "a passphrase")
    short = afk("audit", "checkpoint", "--key-env", "SHORT_KEY")
    assert short.code == 2 and "SHORT_KEY is too short" in short.err


def test_checkpoint_json(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFK_AUDIT_KEY", "a passphrase of thirty-two characters")
    data = json.loads(afk("audit", "checkpoint", "--json").out)
    assert (data["head_id"], data["entries"]) == (N, N)
    key_id, _, mac = data["mac"].partition(":")
    assert len(key_id) == 12 and len(mac) == 64


def test_an_anchor_outside_the_database_catches_a_cut_with_its_checkpoints(
    db: Path, tmp_path: Path
) -> None:
    anchor = tmp_path / "head.json"
    signed = afk("audit", "checkpoint", "--out", str(anchor))
    assert signed.code == 0, signed.err
    data = json.loads(anchor.read_text())
    assert set(data) == {"head_id", "head_hash", "entries", "at", "mac"}
    assert (data["head_id"], data["entries"]) == (N, N)
    ok = afk("audit", "verify", "--expect", str(anchor))
    assert ok.code == 0 and "anchored head" in ok.out

    # Attack: delete the ledger's tail and every signed checkpoint, in one go.
    sql(db, f"DELETE FROM log WHERE id > {N - 10}")
    sql(db, "DELETE FROM ledger_checkpoints")
    assert afk("audit", "verify").code == 0  # nothing left in the database shows it
    cut = afk("audit", "verify", "--expect", str(anchor))
    assert cut.code == 1
    assert cut.out.startswith(f"first bad entry: id {N - 9} (truncated): "), cut.out
    assert f"covers {N} entries up to id {N}" in cut.out and "anchored head" in cut.out


def test_an_anchor_that_does_not_verify_or_match_fails(db: Path, tmp_path: Path) -> None:
    anchor = tmp_path / "head.json"
    assert afk("audit", "checkpoint", "--out", str(anchor)).code == 0
    data = json.loads(anchor.read_text())
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps({**data, "entries": N - 1}))  # MAC no longer matches
    bad = afk("audit", "verify", "--expect", str(forged))
    assert bad.code == 1 and "(bad checkpoint)" in bad.out

    # Entry N deleted and a new entry N appended by afk itself: not the anchored one.
    sql(db, f"DELETE FROM log WHERE id = {N}")
    asyncio.run(_append(f"sqlite:///{db}"))
    moved = afk("audit", "verify", "--expect", str(anchor))
    assert moved.code == 1 and "(truncated)" in moved.out and "rewritten" in moved.out

    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"head_id": 1}))
    refused = afk("audit", "verify", "--expect", str(broken))
    assert refused.code == 2 and "lacks head_hash, entries, at, mac" in refused.err


async def _append(url: str) -> None:
    store = open_store(url)
    try:
        await store.setup()
        await store.save_run(run(), log=[LogEntry(kind="decided", run_id="run-1")])
    finally:
        await store.close()


def _entries(lines: list[str]) -> list[LogEntry]:
    fields = ("id", "kind", "run_id", "request_id", "actor", "payload", "at", "prev_hash", "hash")
    return [LogEntry(**{k: v for k, v in json.loads(x).items() if k in fields}) for x in lines]


def test_export_jsonl_streams_every_field_and_reverifies(db: Path) -> None:
    result = afk("audit", "export", "--jsonl")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert len(lines) == N
    first: dict[str, Any] = json.loads(lines[0])
    assert set(first) == {
        "id", "time", "kind", "run_id", "request_id", "actor", "payload", "details", "at",
        "prev_hash", "hash",
    }  # fmt: skip
    assert first["id"] == 1 and first["details"] == json.loads(first["payload"])
    assert first["time"].startswith("2023-11-14T22:13:20")
    checker = ChainChecker(open_store(f"sqlite:///{db}").keys)
    assert all(checker.feed(e) for e in _entries(lines))  # the export verifies offline
    assert checker.entries == N


def test_export_after_and_out(db: Path, tmp_path: Path) -> None:
    tail = afk("audit", "export", "--after", str(N - 20))
    assert [json.loads(x)["id"] for x in tail.out.splitlines()] == list(range(N - 19, N + 1))
    target = tmp_path / "ledger.jsonl"
    result = afk("audit", "export", "--out", str(target))
    assert result.code == 0 and result.out.strip() == f"exported {N} entries to {target}"
    assert len(target.read_text().splitlines()) == N


def test_a_missing_store_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AFK_STORE", raising=False)
    assert afk("audit", "verify").code == 2
    result = afk("audit", "verify", "--store", f"sqlite:///{tmp_path / 'nope.db'}")
    assert result.code == 2 and "does not exist" in result.err


def test_verify_on_postgres(pg_dsn: str) -> None:
    url = f"{PG_DSN}?afk_schema={new_schema()}"
    head = asyncio.run(_build(url, 30))
    try:
        result = afk("audit", "verify", "--store", url)
        assert result.code == 0 and result.out.startswith(f"ok: 30 entries, head {_hex(head)}")
    finally:
        import psycopg

        schema = url.rsplit("=", 1)[1]
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())
