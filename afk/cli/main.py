"""The `afk` command line.

Startup is kept cheap: approvers run ``afk approvals approve`` by hand and in scripts, so each
command's module (and what it pulls in: the runner, pydantic, the store drivers) is imported
only when that command runs. The table below names every command and its one-line help, so
``afk --help`` lists them all without importing any; the command being run gets its real
parser from its module's ``register``.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from collections.abc import Sequence

from afk.errors import AfkError  # light: the afk package imports it anyway

# name -> (module whose ``register`` adds it, help shown by ``afk --help``), in help order.
# tests/cli/test_cli_imports.py checks these help strings against the registered ones.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": (
        "afk.cli.demo",
        "run the change-manager scenario: a scripted agent asks to drop tables",
    ),
    "policy": ("afk.cli.policy_cmd", "check policy files"),
    "runs": ("afk.cli.runs_cmd", "list and inspect durable runs in a run store"),
    "approvals": (
        "afk.cli.approvals_cmd",
        "list, inspect and decide the requests paused runs wait for",
    ),
    "input": ("afk.cli.approvals_cmd", "answer a user-input request"),
    "resume": ("afk.cli.worker_cmd", "resume one paused run, or every ready one"),
    "worker": ("afk.cli.worker_cmd", "resume runs as their decisions arrive, until stopped"),
    "grants": ("afk.cli.grants_cmd", "list and revoke standing grants"),
    "tokens": ("afk.cli.tokens_cmd", "create, list and revoke API tokens"),
    "serve": (
        "afk.cli.serve_cmd",
        "serve the decision API over HTTP (the console extra)",
    ),
    "audit": (
        "afk.cli.audit_cmd",
        "verify, export and checkpoint the keyed, chained decision ledger",
    ),
    "completion": (
        "afk.cli.completion_cmd",
        "print a shell completion script (bash, zsh or fish)",
    ),
}


# Commands that do one bounded piece of work and exit (and ``afk``, ``--version``: None). Run as
# the process's command line, they run without the cyclic garbage collector: its collections
# while the command's modules load are a few ms of an approver's wait, and the exit frees
# everything anyway. Whatever runs an agent or serves (demo, resume, worker, serve) or walks a
# whole ledger (audit) keeps it.
_BRIEF: frozenset[str | None] = frozenset(
    {None, "approvals", "input", "grants", "tokens", "runs", "policy", "completion"}
)


def build_parser(
    commands: Sequence[str] | None = None, *, others: bool = True
) -> argparse.ArgumentParser:
    """The ``afk`` parser: full parsers for ``commands`` (default: all) and for the other
    commands their modules register; every other command only carries its help line, or
    is left out with ``others=False`` (a command line that names a known command parses
    with none of them: a parser each is most of what building them costs)."""
    wanted = set(COMMANDS) if commands is None else set(commands)
    modules = {module for name, (module, _) in COMMANDS.items() if name in wanted}
    parser = argparse.ArgumentParser(
        prog="afk", description="Run LLM agents whose risky actions wait for a human."
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        if module not in modules:
            # Enough for the command list and for "invalid choice"; never parsed with.
            if others:
                sub.add_parser(name, help=help_text)
        elif name not in sub.choices:
            # A module registers its commands together (approvals and input; resume and
            # worker), and they sit next to each other in the table, so the order holds.
            importlib.import_module(module).register(sub)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The command ``argv`` runs: its first word, since ``afk`` itself takes only flags
    (``-h``, ``--version``) and none of them a value."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``afk`` command line on ``argv`` (default ``sys.argv[1:]``) and return its exit
    status: an AfkError prints one ``afk: ...`` line and returns 2; Ctrl-C returns 130."""
    args_list = sys.argv[1:] if argv is None else list(argv)
    command = _command(args_list)
    # Only as the command line (argv None): called in-process, the caller's collector is left
    # alone (a cycle among frozen objects is never collected in a process that goes on).
    if argv is not None or command not in _BRIEF or not gc.isenabled():
        return _run(args_list, command)
    gc.disable()
    try:
        return _run(args_list, command)
    finally:
        # The interpreter collects what is tracked on its way out: frozen, that is nothing.
        gc.freeze()
        gc.enable()


def _run(args_list: list[str], command: str | None) -> int:
    parser = build_parser([command] if command else [], others=command not in COMMANDS)
    args = parser.parse_args(args_list)
    if args.version:
        from afk import __version__

        print(__version__)
        return 0
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        code: int = func(args)
    except AfkError as exc:
        print(f"afk: {_error_text(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Never a silent exit: a durable run interrupted here is left as it was stored.
        print("afk: interrupted", file=sys.stderr)
        return 130
    return code


def _error_text(exc: Exception) -> str:
    # Messages quote stored and typed text: hidden characters are shown, line by line.
    from afk.approvals.display import escape

    return "\n".join(escape(line) for line in str(exc).splitlines())


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "COMMANDS",
    "build_parser",
    "main",
]
