"""``afk`` start-up imports only what the command being run uses (timing lives in
benchmarks/bench_cli.py; these check the imports, which do not depend on the machine)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
from durable_app import REPO, make_env, request_id, start

from afk.cli.main import COMMANDS, build_parser

# Run main() in a fresh interpreter, then print the names of the modules it loaded.
_PROBE = (
    "import json, sys\n"
    "from afk.cli.main import main\n"
    "try:\n"
    "    code = main(sys.argv[1:])\n"
    "except SystemExit as exc:\n"
    "    code = exc.code\n"
    "print(json.dumps({'code': code, 'modules': sorted(sys.modules)}))\n"
)
HEAVY = ("pydantic", "pydantic_core", "httpx", "psycopg", "sqlite3", "jsonschema", "yaml")
COMMAND_MODULES = sorted({module for module, _ in COMMANDS.values()})


def loaded(*argv: str) -> tuple[int, set[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    result = json.loads(proc.stdout.splitlines()[-1])
    return result["code"], set(result["modules"])


def offending(modules: set[str], prefixes: tuple[str, ...] | list[str]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


@pytest.mark.parametrize("argv", [["--version"], ["--help"], []])
def test_version_and_help_import_no_command_or_heavy_module(argv: list[str]) -> None:
    code, modules = loaded(*argv)
    assert code in (0, 2)
    forbidden = [*HEAVY, *COMMAND_MODULES, "afk.store", "afk.core", "afk.approvals", "asyncio"]
    assert offending(modules, forbidden) == []


def test_a_command_imports_only_its_own_module() -> None:
    code, modules = loaded("approvals", "approve", "--help")
    assert code == 0
    assert "afk.cli.approvals_cmd" in modules
    others = [m for m in COMMAND_MODULES if m not in ("afk.cli.approvals_cmd", "afk.cli.runs_cmd")]
    assert offending(modules, others) == []


def test_approve_skips_the_run_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path, monkeypatch)
    rid = request_id(start(env))
    code, modules = loaded("approvals", "approve", rid)
    assert code == 0
    # Deciding needs the store and the decision rule, not the runner, its events or models.
    unused = ["afk.core.runner", "afk.core.events", "afk.core._run", "afk.cli._render"]
    assert offending(modules, [*unused, "httpx", "psycopg", "jsonschema"]) == []


def _command_help(parser: argparse.ArgumentParser) -> dict[str, str | None]:
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {action.dest: action.help for action in sub._choices_actions}


def test_command_table_matches_what_the_modules_register() -> None:
    full = _command_help(build_parser())
    listed = _command_help(build_parser([]))
    assert list(full) == list(COMMANDS)  # same commands, same order as before
    assert listed == full == {name: help_text for name, (_, help_text) in COMMANDS.items()}
