"""The `afk` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from afk.approvals.display import escape
from afk.errors import AfkError


def build_parser() -> argparse.ArgumentParser:
    from afk.cli import approvals_cmd, audit_cmd, demo, grants_cmd, policy_cmd, runs_cmd, worker_cmd

    parser = argparse.ArgumentParser(
        prog="afk", description="Run LLM agents whose risky actions wait for a human."
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo.register(sub)
    policy_cmd.register(sub)
    runs_cmd.register(sub)
    approvals_cmd.register(sub)
    worker_cmd.register(sub)
    grants_cmd.register(sub)
    audit_cmd.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
        # Messages quote stored and typed text: hidden characters are shown, line by line.
        text = "\n".join(escape(line) for line in str(exc).splitlines())
        print(f"afk: {text}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
