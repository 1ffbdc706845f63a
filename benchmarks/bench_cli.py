"""Command-line start-up benchmark: what an approver waits for. Run: python benchmarks/bench_cli.py

Per store (SQLite in a temp dir, its key the key file beside it as an operator's would be;
Postgres at $AFK_BENCH_POSTGRES, default postgresql://postgres@127.0.0.1:5432/test, in a
throwaway schema dropped afterwards, skipped with a note when unreachable), it makes paused
runs of a refund agent whose one tool call needs an approval (external mode, through the
public Runner API), then times, each in a fresh subprocess, wall clock from spawn to exit
(median and max of N, default 15, after 2 untimed runs):

- ``python -c pass``: the interpreter alone, the floor;
- ``python -c 'import asyncio, sqlite3'``: what an event loop costs before any code runs (a
  Postgres-store command pays it; a SQLite-store command runs its store inline, without a
  loop, and does not: see afk.cli._output.with_store);
- ``python -c 'import afk.store.sqlite'``: the SQLite store alone;
- ``afk --version``: the CLI's own start-up;
- ``afk approvals list``: open the store and list the pending requests (one page);
- ``afk approvals show REQ``: one request, everything about it;
- ``afk approvals approve REQ``: decide a fresh pending request each time (as the OS account).

and counts the modules each command imports (the lines ``python -X importtime`` prints).

Bytecode is precompiled first (``compileall`` of afk into a temp PYTHONPYCACHEPREFIX; the
untimed runs compile the standard library's modules there too), even where
PYTHONDONTWRITEBYTECODE is set: an installed afk runs from .pyc files, and without them
every call would time the compiler.

Optional argument: N.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from bench_durable import POLICY, agent  # the same refund agent and policy

import afk
from afk.core import Runner, RunnerConfig

PG_DSN = os.environ.get("AFK_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
WARMUP = 2  # untimed runs of each command first: the OS file cache, stdlib .pyc files
BUDGET_S = 0.060  # the targets: --version under it, approve within it of --version


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


def child_env(pycache: str) -> dict[str, str]:
    """The environment CLI children run in: bytecode read from (and written to) ``pycache``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    # Installed code runs from .pyc files; keep the compiled ones out of the source tree.
    env["PYTHONPYCACHEPREFIX"] = pycache
    return env


def precompile(env: dict[str, str]) -> None:
    """Compile every afk module into the children's pycache, as an install would have."""
    package = os.path.dirname(os.path.abspath(afk.__file__))
    argv = [sys.executable, "-m", "compileall", "-q", package]
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)


def timed(argv: Sequence[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return elapsed


def sample(argvs: Sequence[Sequence[str]], env: dict[str, str]) -> list[float]:
    for argv in argvs[:WARMUP]:
        timed(argv, env)
    return [timed(argv, env) for argv in argvs[WARMUP:]]


def imports(argv: Sequence[str], env: dict[str, str]) -> int:
    """How many modules ``argv`` (a Python program) imports: ``-X importtime`` lines."""
    program = list(argv[1:]) if argv[0] == sys.executable else list(argv)
    full = [sys.executable, "-X", "importtime", *program]
    proc = subprocess.run(full, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(full)} exited {proc.returncode}: {proc.stderr.strip()}")
    lines = proc.stderr.splitlines()
    return sum(line.startswith("import time:") and "| imported package" not in line
               for line in lines)  # fmt: skip


Row = tuple[str, str, list[float], int]  # command, store, samples, modules


def measure(
    store: str, requests: list[str], env: dict[str, str], n: int, afk_argv: list[str]
) -> list[Row]:
    """The three store commands on one store (``env`` names it in AFK_STORE)."""
    show = [*afk_argv, "approvals", "show", requests[-1]]
    commands: list[tuple[str, list[list[str]]]] = [
        ("afk approvals list", [[*afk_argv, "approvals", "list"]] * (n + WARMUP)),
        ("afk approvals show REQ", [show] * (n + WARMUP)),
        # A fresh request each time; the last one stays pending for `show` and the count.
        ("afk approvals approve REQ",
         [[*afk_argv, "approvals", "approve", r] for r in requests[: n + WARMUP]]),
    ]  # fmt: skip
    rows = []
    for label, argvs in commands:
        samples = sample(argvs, env)
        count_argv = argvs[0] if "approve" not in label else [*argvs[0][:-1], requests[-2]]
        rows.append((label, store, samples, imports(count_argv, env)))
    return rows


@contextmanager
def postgres_schema() -> Iterator[str | None]:
    """A store URL in a fresh schema of the Postgres database, dropped afterwards; None
    when the database cannot be reached."""
    import psycopg

    schema = f"afk_bench_cli_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(PG_DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        print(f"postgres skipped: {exc}".strip(), file=sys.stderr)
        yield None
        return
    try:
        yield f"{PG_DSN}?afk_schema={schema}"
    finally:
        admin.execute("SET lock_timeout = '10s'")
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())
        admin.close()


@contextmanager
def secret_key(value: str | None) -> Iterator[None]:
    """``AFK_SECRET_KEY`` set to ``value`` (unset for None) here, for the paused runs made
    in this process; restored afterwards."""
    before = os.environ.pop("AFK_SECRET_KEY", None)
    if value is not None:
        os.environ["AFK_SECRET_KEY"] = value
    try:
        yield
    finally:
        os.environ.pop("AFK_SECRET_KEY", None)
        if before is not None:
            os.environ["AFK_SECRET_KEY"] = before


def bench_store(
    store: str, url: str, key: str | None, base_env: dict[str, str], n: int
) -> list[Row]:
    with secret_key(key):
        # Two more than approved: one stays pending for `show`, one for counting imports.
        requests = asyncio.run(paused_requests(url, n + WARMUP + 2))
    env = {k: v for k, v in base_env.items() if k != "AFK_SECRET_KEY"}
    if key is not None:
        env["AFK_SECRET_KEY"] = key
    env["AFK_STORE"] = url
    return measure(store, requests, env, n, afk_command())


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    afk_argv = afk_command()
    with tempfile.TemporaryDirectory() as tmp:
        env = child_env(os.path.join(tmp, "pycache"))
        precompile(env)
        bare = [
            ("python -c pass", [sys.executable, "-c", "pass"]),
            # An event loop's cost (Postgres commands pay it; SQLite ones run inline).
            ("python -c 'import asyncio, sqlite3'",
             [sys.executable, "-c", "import asyncio, sqlite3"]),
            ("python -c 'import afk.store.sqlite'",
             [sys.executable, "-c", "import afk.store.sqlite"]),
            ("afk --version", [*afk_argv, "--version"]),
        ]  # fmt: skip
        rows: list[Row] = [
            (label, "-", sample([argv] * (n + WARMUP), env), imports(argv, env))
            for label, argv in bare
        ]
        url = f"sqlite:///{os.path.join(tmp, 'runs.db')}"
        rows += bench_store("SQLite", url, None, env, n)
        with postgres_schema() as pg_url:
            if pg_url is not None:
                # A Postgres store has no key file: children and this process share one.
                rows += bench_store("Postgres", pg_url, secrets.token_hex(32), env, n)
    report(rows, n)


def report(rows: list[Row], n: int) -> None:
    version = statistics.median(next(r[2] for r in rows if r[0] == "afk --version"))
    targets: dict[str, tuple[str, Callable[[float], bool]]] = {
        "afk --version": (f"< {BUDGET_S * 1e3:.0f} ms", lambda m: m < BUDGET_S),
        "afk approvals approve REQ": (
            f"< --version + {BUDGET_S * 1e3:.0f} ms ({(version + BUDGET_S) * 1e3:.0f} ms)",
            lambda m: m < version + BUDGET_S,
        ),
    }
    head = ("command (fresh process, wall)", "store", "median", "max", "modules", "target", "met")
    table: list[tuple[str, ...]] = [head]
    for label, store, samples, modules in rows:
        median = statistics.median(samples)
        target, met = "", ""
        if label in targets:
            target, check = targets[label]
            met = "yes" if check(median) else "NO"
        table.append((
            label, store, f"{median * 1e3:.1f} ms", f"{max(samples) * 1e3:.1f} ms",
            str(modules), target, met,
        ))  # fmt: skip
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    table.insert(1, tuple("-" * w for w in widths))
    for row in table:
        cells = [f"{c:>{w}}" if i in (2, 3, 4) else f"{c:<{w}}"
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]  # fmt: skip
        print("  ".join(cells).rstrip())
    print(
        f"{n} timed runs of each after {WARMUP} untimed; external mode; bytecode precompiled "
        "(compileall of afk into a temp PYTHONPYCACHEPREFIX); modules: lines of "
        f"python -X importtime; load average {'/'.join(f'{x:.1f}' for x in os.getloadavg())}"
    )


if __name__ == "__main__":
    main()
