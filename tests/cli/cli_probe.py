"""``afk``'s main() run in a fresh interpreter, and the modules it loaded: what the start-up
tests of the command line (imports, no event loop) read."""

from __future__ import annotations

import json
import subprocess
import sys

from durable_app import REPO

_PROBE = (
    "import json, sys\n"
    "from afk.cli.main import main\n"
    "try:\n"
    "    code = main(sys.argv[1:])\n"
    "except SystemExit as exc:\n"
    "    code = exc.code\n"
    "print(json.dumps({'code': code, 'modules': sorted(sys.modules)}))\n"
)

# An event loop and what only it brings here (its thread pool, TLS for its streams): a SQLite
# store's commands load none of it (afk.cli._output.with_store).
LOOP = ("asyncio", "concurrent.futures", "ssl")


def run(*argv: str) -> tuple[int, set[str], str]:
    """The exit status, the modules loaded, and what was printed."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.stdout, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    return result["code"], set(result["modules"]), proc.stdout + proc.stderr


def loaded(modules: set[str], names: tuple[str, ...] | list[str]) -> list[str]:
    """Which of ``names`` (packages included) are among ``modules``."""
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))
