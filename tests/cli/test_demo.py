import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest


def _afk(tmp_path: Path, *args: str, answers: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "afk", *args],
        input=answers,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,  # the demo keeps its files in ./.afk-demo
    )


def _tables(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT name FROM sqlite_master ORDER BY name")]


def _demo(
    tmp_path: Path, *args: str, answers: str = ""
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    db = tmp_path / "prod.db"
    return _afk(tmp_path, "demo", "--database", str(db), *args, answers=answers), _tables(db)


def test_headless_demo_denies_the_drops_and_keeps_the_tables(tmp_path: Path) -> None:
    proc, tables = _demo(tmp_path, "--headless")
    assert proc.returncode == 0, proc.stderr
    assert "State: completed" in proc.stdout
    assert "policy: drop_table -> request_approval by rule gate-destructive-ops" in proc.stdout
    assert "approval_fallback=deny" in proc.stdout
    assert tables == ["customers", "old_logs", "old_sessions"]


def test_interactive_demo_runs_exactly_what_was_approved(tmp_path: Path) -> None:
    proc, tables = _demo(tmp_path, answers="y\nnot today\n")
    assert proc.returncode == 0, proc.stderr
    assert "APPROVAL NEEDED" in proc.stdout
    assert '"name": "old_logs"' in proc.stdout  # the exact arguments are shown
    assert "rule:   gate-destructive-ops" in proc.stdout
    assert "denied: not today" in proc.stdout
    assert tables == ["customers", "old_sessions"]


def test_interactive_demo_with_closed_stdin_fails_closed(tmp_path: Path) -> None:
    proc, tables = _demo(tmp_path, answers="")
    assert proc.returncode == 0, proc.stderr
    assert tables == ["customers", "old_logs", "old_sessions"]
    assert "by error" in proc.stdout


@pytest.mark.slow
def test_external_demo_pauses_and_finishes_from_other_processes(tmp_path: Path) -> None:
    import json

    paused = _afk(tmp_path, "demo", "--external")
    assert paused.returncode == 0, paused.stderr
    assert "nothing is waiting in memory" in paused.stdout
    listed = _afk(tmp_path, "approvals", "list", "--json", "--store", "sqlite:///.afk-demo/runs.db")
    # Both requests open in one step; pick them by their exact arguments, not list position.
    by_table = {
        r["request"]["tool_args"]["name"]: r["request_id"] for r in json.loads(listed.stdout)
    }
    first, second = by_table["old_logs"], by_table["old_sessions"]
    store = ["--store", "sqlite:///.afk-demo/runs.db", "--as", "alice"]
    assert _afk(tmp_path, "approvals", "approve", first, *store).returncode == 0
    assert _afk(tmp_path, "approvals", "deny", second, *store, "--reason", "in use").returncode == 0
    worker = _afk(tmp_path, "worker", "--once", "--app", "afk.cli.demo:app", *store[:2])
    assert "completed" in worker.stdout, worker.stderr
    assert _tables(tmp_path / ".afk-demo" / "production.db") == ["customers", "old_sessions"]
    assert _afk(tmp_path, "audit", "verify", *store[:2]).returncode == 0
