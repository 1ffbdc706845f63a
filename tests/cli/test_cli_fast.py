"""An approver's commands on a SQLite store run without an event loop: the store is inline
(each operation runs in the calling thread) and ``with_store`` drives the command's coroutine
by hand, so asyncio (and the ssl, concurrent.futures, logging... it imports) is never loaded.
Timing lives in benchmarks/bench_cli.py; these lock the property, which does not depend on
the machine, and that the decision still reaches the disk and the ledger."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from cli_probe import LOOP, loaded, run
from durable_app import APP, REPO, Env, make_env, request_id, start

from afk.cli._identity import os_account
from afk.cli._output import run_inline
from afk.store import RequestRecord, SQLiteStore
from afk.store.store import LogEntry

# What a plain decision does not write, so does not build: grants and their ledger kinds, the
# timers' kinds, and the registry of every kind (from_log's).
NOT_DECIDING = (
    "afk.approvals.grants",
    "afk.audit.entries._other_kinds",
    "afk.audit.entries._registry",
)


def stored(env: Env, rid: str) -> tuple[RequestRecord | None, list[LogEntry]]:
    """The request's row and the whole ledger, read back through a store of this process."""

    async def read() -> tuple[RequestRecord | None, list[LogEntry]]:
        store = SQLiteStore(env.db)
        try:
            return await store.get_request(rid), await store.list_log()
        finally:
            await store.close()

    return asyncio.run(read())


@pytest.mark.parametrize(
    ("argv", "kind"),
    [
        (["approvals", "approve", "{rid}", "--reason", "ok"], "allow"),
        (["approvals", "deny", "{rid}", "--stop-run"], "deny"),
    ],
    ids=["approve", "deny"],
)
def test_deciding_on_sqlite_loads_no_event_loop_and_the_decision_is_on_disk(
    argv: list[str], kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = make_env(tmp_path, monkeypatch)
    rid = request_id(start(env))
    code, modules, out = run(*(a.format(rid=rid) for a in argv))
    assert code == 0, out
    assert loaded(modules, LOOP) == []
    assert loaded(modules, NOT_DECIDING) == []
    record, log = stored(env, rid)
    assert record is not None and record.status == "decided", record
    assert record.decision is not None and json.loads(record.decision)["kind"] == kind
    assert record.approver == os_account()[1]
    [entry] = [e for e in log if e.kind == "decided" and e.request_id == rid]
    assert entry.actor == os_account()[1]


def test_a_refusal_on_sqlite_loads_no_event_loop_and_is_in_the_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = make_env(tmp_path, monkeypatch)
    rid = request_id(start(env))
    assert run("approvals", "approve", rid)[0] == 0
    code, modules, out = run("approvals", "deny", rid)
    assert code == 1 and "the first decision stands" in out, out
    assert loaded(modules, LOOP) == []
    assert loaded(modules, NOT_DECIDING) == []
    record, log = stored(env, rid)
    assert record is not None and json.loads(record.decision or "{}")["kind"] == "allow"
    assert [e.kind for e in log if e.request_id == rid][-1] == "refused"


def test_an_inline_store_works_in_the_calling_thread_with_no_event_loop(tmp_path: Path) -> None:
    threads: set[int] = set()

    async def session(store: SQLiteStore) -> list[RequestRecord]:
        try:
            await store.setup()
            threads.add(await store._call(lambda conn: threading.get_ident()))
            return list(await store.list_requests())
        finally:
            await store.close()

    assert run_inline(session(SQLiteStore(tmp_path / "runs.db", inline=True))) == []
    assert threads == {threading.get_ident()}
    # The default store hops to a worker thread: that needs a running loop.
    with pytest.raises(RuntimeError, match="no running event loop"):
        run_inline(session(SQLiteStore(tmp_path / "runs.db")))


def test_run_inline_returns_what_the_coroutine_returns_and_raises_what_it_raises() -> None:
    async def value() -> int:
        return 42

    async def fails() -> None:
        raise ValueError("boom")

    assert run_inline(value()) == 42
    with pytest.raises(ValueError, match="boom"):
        run_inline(fails())


def test_a_coroutine_that_suspends_is_closed_and_refused_loudly() -> None:
    cleaned: list[str] = []

    async def suspends() -> Any:
        try:
            await asyncio.sleep(0)  # yields to a loop that is not there
            cleaned.append("resumed")  # never: nothing resumes it
        finally:
            cleaned.append("finally")

    with pytest.raises(RuntimeError, match=r"internal error: .* suspended"):
        run_inline(suspends())
    assert cleaned == ["finally"]


# -- the collector ---------------------------------------------------------------------------
# main() as the process's command line (argv None, as the `afk` script and `python -m afk` call
# it), counting the collections that ran during it; then the collector's state after it.
_GC_PROBE = (
    "import gc, json, sys\n"
    "from afk.cli.main import main\n"
    "runs = []\n"
    "gc.callbacks.append(lambda phase, info: runs.append(phase) if phase == 'start' else None)\n"
    "in_process = sys.argv[1] == 'in-process'\n"
    "sys.argv = ['afk', *sys.argv[2:]]\n"
    "try:\n"
    "    code = main(sys.argv[1:]) if in_process else main()\n"
    "except SystemExit as exc:\n"
    "    code = exc.code\n"
    "print(json.dumps({'code': code, 'collections': len(runs), 'enabled': gc.isenabled(),\n"
    "                  'frozen': gc.get_freeze_count()}))\n"
)


def collector(how: str, *argv: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", _GC_PROBE, how, *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.stdout, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return result


def test_an_approvers_command_line_runs_without_collections_and_gives_the_collector_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = make_env(tmp_path, monkeypatch)
    rid = request_id(start(env))
    seen = collector("command-line", "approvals", "approve", rid)
    assert seen["code"] == 0, seen
    assert seen["collections"] == 0
    # On again once it returns, what it loaded frozen (the exit's collection skips it).
    assert seen["enabled"] is True and seen["frozen"] > 0
    record, _ = stored(env, rid)
    assert record is not None and record.status == "decided"


def test_called_in_process_main_leaves_the_collector_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = make_env(tmp_path, monkeypatch)
    seen = collector("in-process", "approvals", "approve", request_id(start(env)))
    assert seen["code"] == 0, seen
    assert seen["collections"] > 0 and seen["enabled"] is True and seen["frozen"] == 0


def test_a_command_that_runs_agents_keeps_the_collector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_env(tmp_path, monkeypatch)
    seen = collector("command-line", "worker", "--once", "--app", APP)
    assert seen["code"] == 0, seen
    assert seen["collections"] > 0 and seen["enabled"] is True and seen["frozen"] == 0
