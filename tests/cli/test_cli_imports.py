"""``afk`` start-up imports only what the command being run uses (timing lives in
benchmarks/bench_cli.py; these check the imports, which do not depend on the machine)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from cli_probe import loaded, run
from durable_app import make_env, request_id, start

from afk.cli.main import COMMANDS, build_parser

HEAVY = ("pydantic", "pydantic_core", "httpx", "psycopg", "sqlite3", "jsonschema", "yaml")
COMMAND_MODULES = sorted({module for module, _ in COMMANDS.values()})


@pytest.mark.parametrize("argv", [["--version"], ["--help"], []])
def test_version_and_help_import_no_command_or_heavy_module(argv: list[str]) -> None:
    code, modules, _ = run(*argv)
    assert code in (0, 2)
    forbidden = [*HEAVY, *COMMAND_MODULES, "afk.store", "afk.core", "afk.approvals", "asyncio"]
    assert loaded(modules, forbidden) == []


def test_a_command_imports_only_its_own_module() -> None:
    code, modules, _ = run("approvals", "approve", "--help")
    assert code == 0
    assert "afk.cli.approvals_cmd" in modules
    others = [m for m in COMMAND_MODULES if m not in ("afk.cli.approvals_cmd", "afk.cli.runs_cmd")]
    assert loaded(modules, others) == []


def test_approve_skips_the_run_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path, monkeypatch)
    rid = request_id(start(env))
    code, modules, _ = run("approvals", "approve", rid)
    assert code == 0
    # Deciding needs the store and the decision rule, not the runner, its events or models.
    unused = ["afk.core.runner", "afk.core.events", "afk.core._run", "afk.cli._render"]
    assert loaded(modules, [*unused, "httpx", "psycopg", "jsonschema"]) == []


def _command_help(parser: argparse.ArgumentParser) -> dict[str, str | None]:
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {action.dest: action.help for action in sub._choices_actions}


def test_command_table_matches_what_the_modules_register() -> None:
    full = _command_help(build_parser())
    listed = _command_help(build_parser([]))
    assert list(full) == list(COMMANDS)  # same commands, same order as before
    assert listed == full == {name: help_text for name, (_, help_text) in COMMANDS.items()}
