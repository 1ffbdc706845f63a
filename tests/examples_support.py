"""Running the scripts in examples/ as a newcomer would: each in a fresh process.

The OpenAI-protocol fake server is the one the adapter tests use (tests/llms/fakeserver.py),
imported from there, not copied.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"

sys.path.insert(0, str(Path(__file__).parent / "llms"))
from fakeserver import FakeServer, openai_sse_reply  # noqa: E402

__all__ = ["EXAMPLES", "REPO", "FakeServer", "example", "openai_sse_reply", "run"]


def example(name: str) -> str:
    return str(EXAMPLES / name)


def run(
    *argv: str,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    stdin: str = "",
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """``argv`` in a fresh process; ``afk ...`` runs as ``python -m afk ...`` (the same entry
    point, with no dependence on which ``afk`` is first on PATH). The examples directory is on
    PYTHONPATH, as ``cd examples`` makes it for ``afk worker --app NAME:app``."""
    command = [sys.executable, "-m", "afk", *argv[1:]] if argv[0] == "afk" else list(argv)
    if command[0] == "python":
        command[0] = sys.executable
    full_env = {**os.environ, **(env or {}), "PYTHONPATH": str(EXAMPLES)}
    return subprocess.run(
        command,
        cwd=cwd,
        env=full_env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
