"""The terminal approval prompt, typed at through a pseudo-terminal as a person would: y, n,
Ctrl-C (ends the prompt at once, exit 130, the run left paused), a deadline (ends the prompt
without Enter, and the next keystrokes answer the next prompt), and log lines printed while
the prompt waits (above it, never over it)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
from pty_support import REPO, Terminal, env_with, lines_with

APP = str(REPO / "tests" / "cli" / "prompt_app.py")
PROMPT = "approve? [y/N] "


@pytest.fixture
def term_factory():
    made: list[Terminal] = []

    def make(*argv: str, **env: str) -> Terminal:
        term = Terminal(*argv, env=env_with(**env))
        made.append(term)
        return term

    yield make
    for term in made:
        term.close()


@pytest.mark.parametrize(
    ("keys", "decided"),
    [("y\r", "allow (None)"), ("n\r", "deny (denied at the console)"), ("\r", "deny (denied")],
)
def test_y_and_n_decide(term_factory, keys: str, decided: str) -> None:
    term = term_factory(APP, "answer")
    term.expect(PROMPT)
    term.type(keys)
    term.expect(f"decision: {decided}")
    assert term.wait() == 0


def test_line_editing_and_arrow_keys(term_factory) -> None:
    term = term_factory(APP, "answer")
    term.expect(PROMPT)
    # "x", erased; an arrow key (ignored, not typed); "nope", killed with Ctrl-U; then "yes".
    term.type("x\x7f\x1b[Anope\x15yes\r")
    term.expect("decision: allow")
    assert term.wait() == 0
    assert f"  {PROMPT}yes" in term.screen()


def test_ctrl_c_ends_the_prompt_at_once_with_how_to_resume(term_factory, tmp_path: Path) -> None:
    mark = tmp_path / "interrupted"
    term = term_factory(APP, "interrupt", MARK=str(mark))
    term.expect(PROMPT)
    started = time.monotonic()
    term.type("\x03")  # no Enter after it
    assert term.wait(timeout=10) == 130
    assert time.monotonic() - started < 5
    screen = term.screen()
    assert f"  {PROMPT}^C" in screen
    assert lines_with(screen, "interrupted: request req_a is still pending")
    assert lines_with(screen, "afk approvals approve req_a")
    assert lines_with(screen, "afk worker --app")
    assert "not reached" not in term.output
    assert mark.read_text() == "req_a"  # on_interrupt ran before the exit


def test_a_deadline_ends_the_prompt_and_the_next_keys_answer_the_next_prompt(
    term_factory,
) -> None:
    term = term_factory(APP, "timeout")
    term.expect(PROMPT)
    term.expect("first: no answer", timeout=10)  # without any key pressed
    term.expect(PROMPT)
    term.type("y\r")  # the old prompt's reader would have swallowed this line
    term.expect("second: allow")
    assert term.wait() == 0
    assert lines_with(term.screen(), "no answer by the deadline: request req_a expired")


def test_log_lines_print_above_the_prompt_not_over_it(term_factory) -> None:
    term = term_factory(APP, "log")
    term.expect(PROMPT)
    term.type("ye")  # typed so far, not yet Enter
    term.expect("READY")
    term.quiet_for(0.3)
    screen = term.screen()
    [log] = lines_with(screen, "LOG run run_prompt still waiting")
    [event] = lines_with(screen, "EVENT a line printed meanwhile")
    assert log == "LOG run run_prompt still waiting"  # its own line, no prompt around it
    assert event == "EVENT a line printed meanwhile"
    # The prompt, with what was typed, is drawn again below the lines.
    assert [line for line in screen if line][-1] == f"  {PROMPT}ye"
    term.type("s\r")
    term.expect("decision: allow")
    assert term.wait() == 0


# -- the demo: a durable run at the terminal ---------------------------------------------------
def _demo(term_factory, tmp_path: Path, *args: str) -> Terminal:
    return term_factory(
        "afk",
        "demo",
        *args,
        "--database",
        str(tmp_path / "prod.db"),
        "--store",
        f"sqlite:///{tmp_path / 'runs.db'}",
    )


def _stored(tmp_path: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str, str | None]]]:
    with sqlite3.connect(tmp_path / "runs.db") as db:
        runs = db.execute("SELECT run_id, status FROM runs").fetchall()
        requests = db.execute(
            "SELECT request_id, status, decision FROM requests ORDER BY created_at, request_id"
        ).fetchall()
    return runs, requests


def _second_prompt(term: Terminal) -> None:
    # Keys typed before a prompt shows are discarded (no answer to an unseen question):
    # wait for the second request's prompt, not a redraw of the first one.
    term.expect("APPROVAL NEEDED")
    term.expect(PROMPT)


def test_demo_ctrl_c_leaves_the_run_paused_for_a_worker(term_factory, tmp_path: Path) -> None:
    term = _demo(term_factory, tmp_path)
    term.expect(PROMPT)
    term.type("y\r")
    _second_prompt(term)
    term.seen(": allow by")  # the first answer is in the store (its event says so)
    term.type("\x03")
    assert term.wait(timeout=15) == 130
    [(_, status)] = _stored(tmp_path)[0]
    assert status == "paused"
    kinds = [(s, json.loads(d)["kind"] if d else None) for _, s, d in _stored(tmp_path)[1]]
    assert sorted(kinds, key=str) == sorted([("decided", "allow"), ("pending", None)], key=str)
    store = f"--store sqlite:///{tmp_path / 'runs.db'}"
    assert lines_with(term.screen(), f"afk worker --app afk.cli.demo:app {store}")


def test_demo_timeout_ends_each_prompt_without_enter(term_factory, tmp_path: Path) -> None:
    term = _demo(term_factory, tmp_path, "--timeout", "1")
    term.expect(PROMPT)
    term.expect("State: completed", timeout=15)  # nobody pressed anything
    assert term.wait() == 0
    assert len(lines_with(term.screen(), "no answer by the deadline")) >= 1
    final = lines_with(term.screen(), "tables [")[-1]  # both drops denied: every table is there
    assert final.endswith("tables ['customers', 'old_logs', 'old_sessions']")


def test_demo_y_then_n_drops_exactly_one_table(term_factory, tmp_path: Path) -> None:
    term = _demo(term_factory, tmp_path)
    # The two prompts come in the order the runner asks, which is not fixed: approve the
    # one for old_logs, deny the other, whichever comes first.
    for _ in range(2):
        term.expect("APPROVAL NEEDED")  # the next request's block (after any redraw)
        shown = term.expect(PROMPT)
        block = shown[shown.rindex("APPROVAL NEEDED") :]
        term.type("y\r" if '"name": "old_logs"' in block else "n\r")
    term.expect("State: completed")
    assert term.wait() == 0
    final = lines_with(term.screen(), "tables [")[-1]
    assert final.endswith("tables ['customers', 'old_sessions']")
