"""Scale benchmark (issue 9): what an approver and a worker pay at 1,000 to 100,000 paused runs.

Run: python benchmarks/bench_scale.py [--quick]   (about 10 minutes on a quiet 2-core machine;
--quick: 1k/10k only, fewer samples, a smoke run)

Stores: SQLite (a temp file) at 1k, 10k and 100k paused runs; Postgres ($AFK_BENCH_POSTGRES,
default postgresql://postgres@127.0.0.1:5432/test, in a fresh schema dropped afterwards; its
tables are never ANALYZEd, so plans cannot lean on statistics) at 1k and 10k. N paused runs
are one real paused run of the refund agent (bench_durable's agent and policy, through the
Runner) cloned N-1 times in bulk with fresh ids and re-sealed rows (see _scale_clone): the
clones carry no ledger rows. Each measurement that consumes paused runs first adds as many
fresh clones, so N runs stay paused throughout. Per (store, N) it measures:

- the first page (50) of ``Runner.pending_requests()``: p50 (and best) of 20;
- ``afk approvals list`` (one page): wall time of a fresh process, median of 5;
- an idle worker's poll: one ``claim_ready`` (nothing ready) + ``next_wake_at``, p50 (and
  best) of 50;
- an idle ``afk worker`` process (default flags): its CPU (utime + stime from /proc) over
  10 s; then decision -> tool start through it: ``Runner.resolve`` here, at random moments,
  until the tool (in the worker) logs its start; p50 of 20;
- resume throughput with 1, 2 and 4 ``afk worker`` processes (default --concurrency 1): M
  runs (400) approved first, the workers started and held at a gate until all are up, then
  M / (last tool start - gate opened); executions are counted per run (double executions);
- decision + resume to tool start in the deciding process (resolve, then resume): p50 of 20;
- ``afk --version`` and ``afk approvals approve REQ`` wall times (median of 5);
- bytes per paused run: the store's growth while the clones were added / their number; and
  once per store, 1,000 real paused runs made through the Runner in a store of their own:
  growth over the empty store, as written and compacted (SQLite VACUUM, Postgres VACUUM
  FULL). SQLite counts used pages (page_count - freelist_count, WAL checkpointed), Postgres
  pg_total_relation_size of the schema's tables (indexes and TOAST included).

Clocks: tool starts are time.monotonic() (CLOCK_MONOTONIC, one clock for all processes).
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import _scale_procs as procs
import _scale_table as table
from _scale_app import TOOL_LOG_ENV, agent
from _scale_clone import Clone, Template
from _scale_stores import Backend, postgres_backend, sqlite_backend
from bench_durable import POLICY

from afk.agents import ApprovalDecision
from afk.core import Runner, RunnerConfig
from afk.store import RunStore

ALLOW = ApprovalDecision(kind="allow", approver="bench")
EXTERNAL = RunnerConfig(interaction_mode="external")
os.environ.setdefault("AFK_SECRET_KEY", secrets.token_hex(32))  # one key for every process


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    sizes: dict[str, list[int]]
    batch: int  # runs approved per throughput sample
    decisions: int  # samples of decision -> tool start
    idle_s: float  # CPU window of the idle worker
    real_runs: int  # real paused runs for bytes per paused run
    cli: int = 5  # timed CLI runs (after one untimed)
    workers: tuple[int, ...] = (1, 2, 4)
    # Throughput samples per worker count, interleaved (1, 2, 4, 1, 2, 4, ...), their median
    # shown: a single 400-run sample moved by about 30% from one run of this bench to the next.
    rounds: int = 3


FULL = Settings(
    sizes={"sqlite": [1_000, 10_000, 100_000], "postgres": [1_000, 10_000]},
    batch=400,
    decisions=20,
    idle_s=10.0,
    real_runs=1_000,
)
QUICK = Settings(
    sizes={"sqlite": [1_000, 10_000], "postgres": [1_000, 10_000]},
    batch=200,
    decisions=10,
    idle_s=5.0,
    real_runs=300,
    rounds=1,
)


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Session:
    """One store under test, filled step by step to each N, and what was measured on it."""

    def __init__(
        self, backend: Backend, runner: Runner, settings: Settings, tmp: str, results: table.Results
    ) -> None:
        self.b, self.runner, self.s, self.results = backend, runner, settings, results
        self.log = procs.ToolLog(os.environ[TOOL_LOG_ENV])
        self.children = procs.Children(tmp, self.log.path)
        self.template: Template | None = None
        self.paused = 0
        self.n = 0
        self.jitter = random.Random(9)
        self.warm: list[str] = []  # runs approved through the CLI: the idle worker's first

    @property
    def store(self) -> RunStore:
        assert self.runner.store is not None
        return self.runner.store

    def put(self, key: str, value: float) -> None:
        self.results.setdefault(key, {})[(self.b.name, self.n)] = value

    async def clones(self, n: int) -> list[Clone]:
        if self.template is None:
            paused = await self.runner.run(agent(), user_message="order-template")
            assert paused.state == "paused", paused
            self.template = await self.b.template(paused.run_id)
            self.paused = 1
            n -= 1
        made = await self.b.clone(self.store.keys, self.template, n) if n > 0 else []
        self.paused += len(made)
        return made

    async def measure(self, n: int) -> None:
        self.n = n
        start, used, had = time.perf_counter(), await self.b.used_bytes(), self.paused
        await self.clones(n - self.paused)
        note(f"{self.b.name} {n:,}: filled in {time.perf_counter() - start:.1f} s")
        self.put("bytes_clone", (await self.b.used_bytes() - used) / (self.paused - had))
        await self.first_page()
        await self.poll()
        await self.cli()
        await self.idle_worker()
        rates: dict[int, list[float]] = {w: [] for w in self.s.workers}
        for _ in range(self.s.rounds):
            for workers in self.s.workers:
                rates[workers].append(await self.throughput(workers))
        for workers, found in rates.items():
            self.put(f"tp{workers}", statistics.median(found))
        await self.in_process()
        self.put("double", float(self.log.doubles()))
        note(f"{self.b.name} {n:,}: done in {time.perf_counter() - start:.0f} s")

    async def first_page(self) -> None:
        await self.runner.pending_requests()
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            page = await self.runner.pending_requests()
            times.append(time.perf_counter() - t0)
        assert len(page) == 50 and page.next_cursor is not None
        self.put("page", statistics.median(times) * 1e3)
        self.put("page_min", min(times) * 1e3)

    async def poll(self) -> None:
        times = []
        for _ in range(51):
            t0 = time.perf_counter()
            claimed = await self.store.claim_ready(
                owner="bench:poll", ttl_s=30.0, now=time.time(), agents=["billing"]
            )
            await self.store.next_wake_at()
            times.append(time.perf_counter() - t0)
            assert claimed is None, f"a run was ready: {claimed.run_id}"
        self.put("poll", statistics.median(times[1:]) * 1e3)
        self.put("poll_min", min(times[1:]) * 1e3)

    async def cli(self) -> None:
        url, k = self.b.url, self.s.cli + 1
        self.put("list", self.children.median_wall_ms([["approvals", "list", "--store", url]] * k))
        self.put("version", self.children.median_wall_ms([["--version"]] * k))
        made = await self.clones(k)
        argvs = [["approvals", "approve", c.request_ids[0], "--store", url] for c in made]
        self.put("approve", self.children.median_wall_ms(argvs))
        self.paused -= k
        self.warm = [c.run_id for c in made]

    async def idle_worker(self) -> None:
        made = await self.clones(self.s.decisions)
        worker = self.children.worker(self.b.url)
        try:
            if not await self.log.wait_all(self.warm, timeout_s=60):
                tail = self.children.stderr_tail(worker)
                raise SystemExit(f"the idle worker did not resume the approved runs: {tail}")
            await asyncio.sleep(1.0)
            used = procs.cpu_s(worker.pid)
            await asyncio.sleep(self.s.idle_s)
            self.put("cpu", (procs.cpu_s(worker.pid) - used) / self.s.idle_s * 100)
            samples = []
            for clone in made:
                # A decision lands at a random point of the worker's wait, as a human's would.
                await asyncio.sleep(self.jitter.uniform(0.05, 0.3))
                t0 = time.monotonic()
                await self.runner.resolve(clone.request_ids[0], ALLOW)
                ran = await self.log.wait_all([clone.run_id], timeout_s=10)
                samples.append(self.log.starts[clone.run_id][0] - t0 if ran else math.inf)
            self.paused -= len(made)
            self.put("wake", statistics.median(samples) * 1e3)
        finally:
            procs.stop([worker])

    async def throughput(self, workers: int) -> float:
        """One sample: ``workers`` gated workers resume a batch of decided runs; runs/s."""
        made = await self.clones(self.s.batch)
        for clone in made:
            await self.runner.resolve(clone.request_ids[0], ALLOW)
        self.paused -= len(made)
        gate = os.path.join(self.children.tmp, f"gate-{uuid.uuid4().hex[:8]}")
        started = [self.children.worker(self.b.url, gate=gate) for _ in range(workers)]
        try:
            go = await procs.open_gate(gate, started)
            ids = [c.run_id for c in made]
            if await self.log.wait_all(ids, timeout_s=180):
                last = max(self.log.starts[r][0] for r in ids)
                return len(ids) / (last - go)
            note(f"throughput: runs left: {self.children.stderr_tail(started[0])}")
            return math.nan
        finally:
            procs.stop(started)

    async def in_process(self) -> None:
        made = await self.clones(self.s.decisions + 2)
        samples = []
        for clone in made:
            t0 = time.monotonic()
            await self.runner.resolve(clone.request_ids[0], ALLOW)
            done = await self.runner.resume(clone.run_id, agent())
            assert done.state == "completed", done.error
            self.log.refresh()
            samples.append(self.log.starts[clone.run_id][0] - t0)
        self.paused -= len(made)
        self.put("inproc", statistics.median(samples[2:]) * 1e3)  # two warm up


async def real_bytes(backend: Backend, runs: int, results: table.Results, n: int) -> None:
    """Bytes per paused run for ``runs`` real paused runs in a store of their own."""
    async with Runner(POLICY, config=EXTERNAL, store=backend.url) as runner:
        await runner.pending_requests()  # the schema
        empty = await backend.used_bytes()
        for i in range(runs):
            paused = await runner.run(agent(), user_message=f"order-{i}")
            assert paused.state == "paused", paused
    col = (backend.name, n)
    results.setdefault("bytes_raw", {})[col] = (await backend.used_bytes() - empty) / runs
    results.setdefault("bytes", {})[col] = (await backend.compacted_bytes() - empty) / runs


async def bench_store(name: str, settings: Settings, tmp: str, results: table.Results) -> bool:
    opened = await (sqlite_backend(tmp, "scale") if name == "sqlite" else postgres_backend())
    if opened is None:
        return False
    sizes = settings.sizes[name]
    try:
        async with Runner(POLICY, config=EXTERNAL, store=opened.url) as runner:
            await runner.pending_requests()  # the schema, so the fill's growth is the runs'
            session = Session(opened, runner, settings, tmp, results)
            for n in sizes:
                await session.measure(n)
    finally:
        await opened.drop()
    sized = await (sqlite_backend(tmp, "bytes") if name == "sqlite" else postgres_backend())
    assert sized is not None
    try:
        await real_bytes(sized, settings.real_runs, results, sizes[0])
    finally:
        await sized.drop()
    return True


async def main(settings: Settings) -> None:
    started, load = time.perf_counter(), _load()
    results: table.Results = {}
    columns: list[table.Column] = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ[TOOL_LOG_ENV] = os.path.join(tmp, "tool-starts.log")
        for name in ("sqlite", "postgres"):
            if await bench_store(name, settings, tmp, results):
                columns += [(name, n) for n in settings.sizes[name]]
    figures = table.build(settings.idle_s, settings.real_runs)
    print(table.render(figures, results, columns))
    print(
        "N paused runs = 1 real paused run cloned N-1 times (fresh ids, re-sealed rows); the "
        "clones carry no ledger rows. Postgres tables not ANALYZEd."
    )
    print(
        "CLI and worker processes run from bytecode: afk compiled (compileall) into a temp "
        "PYTHONPYCACHEPREFIX before the first timed call, as an install has it."
    )
    print(
        f"Throughput: median of {settings.rounds} interleaved samples of {settings.batch} "
        f"approved runs; p50s of {settings.decisions} "
        "decisions. flat = the value at the largest N <= 2x the smallest N + slack; "
        "! = target missed."
    )
    print(f"{time.perf_counter() - started:.0f} s; load average {load} -> {_load()}")


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def _settings(argv: Sequence[str]) -> Settings:
    if set(argv) - {"--quick"}:
        raise SystemExit("usage: python benchmarks/bench_scale.py [--quick]")
    return QUICK if "--quick" in argv else FULL


if __name__ == "__main__":
    asyncio.run(main(_settings(sys.argv[1:])))
