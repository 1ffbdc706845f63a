"""Helpers for the durable-run tests (imported by name; conftest stays fixtures only)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
_OPEN: list[Any] = []


def track(runner: Any) -> Any:
    """Close this Runner's store connections when the test ends."""
    _OPEN.append(runner)
    return runner


def lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line]


def run_script(code: str, *, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    """Run python code in a fresh process with tests/durable importable; return stdout."""
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join([str(HERE), full_env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", code], env=full_env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout
