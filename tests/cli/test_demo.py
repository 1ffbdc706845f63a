import sqlite3
import subprocess
import sys
from pathlib import Path


def _demo(
    tmp_path: Path, *args: str, answers: str = ""
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    db = tmp_path / "prod.db"
    proc = subprocess.run(
        [sys.executable, "-m", "afk.cli.main", "demo", "--database", str(db), *args],
        input=answers,
        capture_output=True,
        text=True,
        timeout=60,
    )
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master ORDER BY name")]
    return proc, tables


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
