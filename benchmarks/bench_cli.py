"""Command-line start-up benchmark: what an approver waits for. Run: python benchmarks/bench_cli.py

Creates a SQLite store (in a temp dir) holding paused runs of a refund agent whose one tool
call needs an approval (external mode, through the public Runner API), then times, each in a
fresh subprocess, wall clock from spawn to exit (median and max of N, default 15):

- ``python -c pass``: the interpreter alone, the floor;
- ``afk --version``: the CLI's own start-up;
- ``afk approvals list``: open the store and list the pending requests;
- ``afk approvals approve REQ``: decide a fresh pending request each time (as the OS account;
  the store's key is the key file beside the SQLite file, as an operator's would be).

Children compile to .pyc (in a temp PYTHONPYCACHEPREFIX, filled by the untimed warm-up runs)
even where PYTHONDONTWRITEBYTECODE is set, since an installed afk runs from bytecode.

Optional argument: N.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time

from bench_durable import POLICY, agent  # the same refund agent and policy

from afk.core import Runner, RunnerConfig

WARMUP = 2  # untimed runs of each command first: the OS file cache, .pyc files


async def paused_requests(url: str, n: int) -> list[str]:
    """Start ``n`` runs that pause on their refund; the ids of the requests they wait on."""
    config = RunnerConfig(interaction_mode="external")
    async with Runner(POLICY, config=config, store=url) as runner:
        ids = []
        for i in range(n):
            paused = await runner.run(agent(), user_message=f"order-{i}")
            assert paused.state == "paused", paused
            ids.append(paused.pending_requests[0].request_id)
        return ids


def afk_command() -> list[str]:
    """The installed ``afk`` script when there is one (what people run), else ``-m afk``."""
    script = os.path.join(sysconfig.get_path("scripts"), "afk")
    if os.path.exists(script):
        return [script]
    found = shutil.which("afk")
    return [found] if found else [sys.executable, "-m", "afk"]


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return elapsed


def sample(argvs: list[list[str]], env: dict[str, str]) -> list[float]:
    for argv in argvs[:WARMUP]:
        timed(argv, env)
    return [timed(argv, env) for argv in argvs[WARMUP:]]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    afk = afk_command()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{os.path.join(tmp, 'runs.db')}"
        requests = asyncio.run(paused_requests(url, n + WARMUP))
        drop = ("AFK_SECRET_KEY", "PYTHONDONTWRITEBYTECODE")
        env = {k: v for k, v in os.environ.items() if k not in drop}
        env["AFK_STORE"] = url
        # Installed code runs from .pyc files; keep the compiled ones out of the source tree.
        env["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pycache")
        runs = {
            "python -c pass": sample([[sys.executable, "-c", "pass"]] * (n + WARMUP), env),
            "afk --version": sample([[*afk, "--version"]] * (n + WARMUP), env),
            "afk approvals list": sample([[*afk, "approvals", "list"]] * (n + WARMUP), env),
            "afk approvals approve REQ": sample(
                [[*afk, "approvals", "approve", r] for r in requests], env
            ),
        }
    report(runs, n)


def report(runs: dict[str, list[float]], n: int) -> None:
    version = statistics.median(runs["afk --version"])
    targets = {
        "afk --version": ("< 60 ms", version < 0.060),
        "afk approvals approve REQ": (
            f"< --version + 60 ms (< {(version + 0.060) * 1e3:.0f} ms)",
            statistics.median(runs["afk approvals approve REQ"]) < version + 0.060,
        ),
    }
    head = ("command (fresh process, wall)", "median", "max", "target", "met")
    rows = [head]
    for label, samples in runs.items():
        target, met = targets.get(label, ("", None))
        rows.append(
            (
                label,
                f"{statistics.median(samples) * 1e3:.1f} ms",
                f"{max(samples) * 1e3:.1f} ms",
                target,
                "" if met is None else ("yes" if met else "NO"),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    rows.insert(1, tuple("-" * w for w in widths))
    for row in rows:
        cells = [f"{c:>{w}}" if i in (1, 2) else f"{c:<{w}}"
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]  # fmt: skip
        print("  ".join(cells).rstrip())
    print(f"{n} timed runs of each after {WARMUP} untimed; SQLite store, external mode")


if __name__ == "__main__":
    main()
