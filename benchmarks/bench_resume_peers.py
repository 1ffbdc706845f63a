"""Decision + resume to tool start, afk against LangGraph, on durable stores.

Run: python benchmarks/bench_resume_peers.py [N] [--fresh K]   (defaults: N=200, K=10)

The scenario (bench_durable.py's): a refund agent, a scripted model asking for one
``refund(order, amount)`` call that a rule gates, a sync tool whose body records
``time.perf_counter()`` when it starts. Stores: SQLite (a file in a temp dir, one per
library) and Postgres (127.0.0.1:5432 db test or $AFK_BENCH_POSTGRES, one throwaway schema
per library, dropped afterwards; skipped with a note when unreachable).

What each side does between "timer starts" and "tool body starts":

- afk: an external-mode run has returned ``paused`` (its snapshot, request and ledger are on
  disk). ``await runner.resolve(request_id, ApprovalDecision(kind="allow", ...))`` records the
  decision durably (request row compare-and-set + a sealed ledger entry); then
  ``await runner.resume(run_id, agent)`` takes the run's lease, reloads the snapshot, re-checks
  the stored decision (seal, bound argument digest) and only then starts the tool (a sync
  ``@tool``, run in a worker thread as afk runs every sync tool). The decision is durable
  before the resume starts: a crash between the two loses nothing, another worker can resume.
- LangGraph (langgraph_durable_peer.py): the same agent as a graph
  model -> gate -> tools -> model, the gate node calling ``interrupt()`` (the docs' human-in-
  the-loop pattern), paused at the interrupt with its checkpoint on disk.
  ``graph.invoke(Command(resume="allow"), config)`` (or ``ainvoke``) loads the checkpoint and
  runs on; the resume value *is* the decision: there is no separate decision record, no
  lease, no re-check. With LangGraph's default ``durability="async"`` the resume value is
  written (one commit) before the gate node runs, and the gate's own checkpoint is written
  while the tool node already runs. Timed three ways: sync ``invoke`` over ``SqliteSaver`` /
  ``PostgresSaver``, ``ainvoke`` over ``AsyncSqliteSaver`` / ``AsyncPostgresSaver`` (both
  default durability), and sync ``invoke(..., durability="sync")`` (each step's checkpoint
  committed before the next step starts: the closest to afk's guarantee). The ratio is
  against the faster of the two default-durability flavours, so it never flatters afk.

Both SQLite stores run in WAL mode with ``synchronous=FULL`` (afk sets it; it is SQLite's
default, which SqliteSaver keeps), so every commit is an fsync on both sides. Postgres runs
with the server's settings (``synchronous_commit=on`` here) for both.

Measures, per store:

- decision + resume to tool start in the deciding process: a warm process, a fresh run /
  thread per sample, paused untimed; median and p90 over N samples; the sides alternate
  sample by sample (rotating which goes first) so machine drift hits all of them. Then,
  untimed, the number of afk store operations (public store methods called) from the
  decision to the tool start, and which;
- first resume in a fresh process: a child interpreter that imports the library, opens the
  store and resumes one paused run (afk: resolve + resume in the child, and in parentheses
  resume alone, decided by the parent beforehand; LangGraph: the resume). Time to tool start
  from the parent's spawn, from just before the store is opened (afk: ``Runner(store=)``;
  LangGraph: the saver), and from just before the first call (afk connects and checks its
  schema inside it, LangGraph's saver is connected already: its tables exist, so the
  children call no ``setup()``); medians over K children per side, the first round dropped.
  ``python -c`` printing perf_counter() gives the interpreter's floor.

Target (issue 9): afk / LangGraph <= 1.0x in the deciding process on both stores.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from _pg import PG_DSN

HERE = Path(__file__).resolve().parent
WARMUP = 20
os.environ.setdefault("AFK_SECRET_KEY", secrets.token_hex(32))  # one key for every process
TOOL_STARTS: list[float] = []  # perf_counter() at the start of each afk refund body
SIDES = ("afk", "LangGraph sync", "LangGraph async", "LangGraph sync, durable")
FASTEST_OF = SIDES[1:3]  # LangGraph's default durability ("async"): the ratio's denominator
Sample = Callable[[int], Awaitable[float]]  # sample i -> seconds from timer start to tool start


# -- afk's side (imported lazily: a child measuring LangGraph must not import afk) -----------
def afk_scenario() -> tuple[Any, Callable[[], Any], Any, Any]:
    """(policy, agent factory, allow decision, external config): bench_durable's refund agent,
    whose tool body appends to TOOL_STARTS (imported here, not at the top, so a child timing
    LangGraph never imports afk)."""
    import bench_durable as d

    global TOOL_STARTS
    TOOL_STARTS = d.TOOL_STARTS  # the list the refund body appends to
    return d.POLICY, d.agent, d.ALLOW, d.EXTERNAL


async def afk_pause(runner: Any, agent: Callable[[], Any], order: str) -> tuple[str, str]:
    paused = await runner.run(agent(), user_message=order)
    assert paused.state == "paused", paused.error
    return paused.run_id, paused.pending_requests[0].request_id


async def afk_decide_resume(runner: Any, agent: Any, allow: Any, ids: tuple[str, str]) -> None:
    await runner.resolve(ids[1], allow)
    done = await runner.resume(ids[0], agent())
    assert done.state == "completed", done.error


def afk_child(mode: str, url: str, run_id: str, request_id: str) -> None:
    from afk.core import Runner

    policy, agent, allow, config = afk_scenario()

    async def main() -> dict[str, float]:
        # "open": before the Runner, which opens the store (it connects on first use), as
        # the LangGraph child marks before opening its saver; "call": just before the first
        # call, which therefore also connects and checks the schema.
        marks = {"open": time.perf_counter()}
        async with Runner(policy, config=config, store=url) as runner:
            marks["call"] = time.perf_counter()
            if mode == "decide":
                await afk_decide_resume(runner, agent, allow, (run_id, request_id))
            else:
                done = await runner.resume(run_id, agent())
                assert done.state == "completed", done.error
        return marks

    marks = asyncio.run(main())
    print(json.dumps({**marks, "tool_start": TOOL_STARTS[0]}))


# -- the deciding process --------------------------------------------------------------------
async def in_process(afk_url: str, lg_store: str, n: int) -> dict[str, list[float]]:
    import langgraph_durable_peer as lg

    from afk.core import Runner

    policy, agent, allow, config = afk_scenario()
    async with Runner(policy, config=config, store=afk_url) as runner:
        with lg.saver(lg_store) as sync_saver:
            async with lg.asaver(lg_store) as async_saver:
                sync_app, async_app = lg.graph(sync_saver), lg.graph(async_saver)

                async def afk_sample(i: int) -> float:
                    ids = await afk_pause(runner, agent, f"order-{i}")
                    start = time.perf_counter()
                    await afk_decide_resume(runner, agent, allow, ids)
                    return TOOL_STARTS[-1] - start

                async def sync_sample(i: int) -> float:
                    thread = lg.pause(sync_app, f"order-{i}")
                    start = time.perf_counter()
                    lg.resume(sync_app, thread)
                    return lg.TOOL_STARTS[-1] - start

                async def async_sample(i: int) -> float:
                    thread = await lg.apause(async_app, f"order-{i}")
                    start = time.perf_counter()
                    await lg.aresume(async_app, thread)
                    return lg.TOOL_STARTS[-1] - start

                async def durable_sample(i: int) -> float:
                    thread = lg.pause(sync_app, f"order-{i}")
                    start = time.perf_counter()
                    lg.resume(sync_app, thread, durability="sync")
                    return lg.TOOL_STARTS[-1] - start

                samplers = [afk_sample, sync_sample, async_sample, durable_sample]
                samples = await alternate(samplers, n)
                counts = await count_store_ops(runner, agent, allow)
    return {**samples, "ops": counts}


async def count_store_ops(runner: Any, agent: Any, allow: Any, runs: int = 20) -> list[float]:
    """afk's store operations (calls of the store's public coroutine methods) from the
    decision to the tool body's start, per run; counted after the timed samples, since the
    counting wrapper costs time. ``OP_NAMES`` is left holding the last run's, in call order."""
    store, calls = runner.store, []
    window = [-1]  # counting while len(TOOL_STARTS) equals this: until the tool starts
    wrapped = []
    for name in dir(type(store)):
        method = getattr(store, name)
        if name.startswith("_") or not asyncio.iscoroutinefunction(method):
            continue

        async def counted(*args: Any, _name: str = name, _inner: Any = method, **kw: Any) -> Any:
            if len(TOOL_STARTS) == window[0]:
                calls.append(_name)
            return await _inner(*args, **kw)

        setattr(store, name, counted)
        wrapped.append(name)
    per_run = []
    try:
        for i in range(runs):
            ids = await afk_pause(runner, agent, f"count-{i}")
            del calls[:]
            window[0] = len(TOOL_STARTS)
            await afk_decide_resume(runner, agent, allow, ids)
            window[0] = -1
            per_run.append(float(len(calls)))
    finally:
        for name in wrapped:
            delattr(store, name)  # the class's own methods again
    OP_NAMES[:] = calls
    return per_run


OP_NAMES: list[str] = []


async def alternate(samplers: Sequence[Sample], n: int) -> dict[str, list[float]]:
    """``n`` samples of each side after a warm-up, one of each per round, the order rotating."""
    for i in range(WARMUP):
        for sample in samplers:
            await sample(-1 - i)
    out: dict[str, list[float]] = {side: [] for side in SIDES}
    for i in range(n):
        shift = i % len(samplers)
        for k in (*range(shift, len(samplers)), *range(shift)):
            out[SIDES[k]].append(await samplers[k](i))
    return out


# -- the fresh process -----------------------------------------------------------------------
FRESH_MARKS = (("spawn", "spawn"), ("open", "open store"), ("call", "resume call"))


def spawn(args: list[str]) -> dict[str, float]:
    """Seconds from each mark (spawn, open, call) to tool start, of one child."""
    started = time.perf_counter()  # CLOCK_MONOTONIC: comparable across processes
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=HERE)
    if out.returncode != 0:
        raise RuntimeError(f"child {args[:2]} failed:\n{out.stderr}")
    marks = {"spawn": started, **json.loads(out.stdout.strip().splitlines()[-1])}
    return {mark: marks["tool_start"] - marks[mark] for mark, _ in FRESH_MARKS}


def interpreter_floor() -> float:
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", "import time; print(time.perf_counter())"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(out.stdout) - started


async def fresh_processes(afk_url: str, lg_store: str, k: int) -> dict[str, list[float]]:
    """Children resuming runs paused (and for afk's "resume" mode, decided) here."""
    import langgraph_durable_peer as lg

    from afk.core import Runner

    policy, agent, allow, config = afk_scenario()
    me = str(Path(__file__).resolve())
    peer = str(HERE / "langgraph_durable_peer.py")
    out: dict[str, list[float]] = {}
    async with Runner(policy, config=config, store=afk_url) as runner:
        with lg.saver(lg_store) as checkpointer:
            app = lg.graph(checkpointer)
            for i in range(k + 1):  # the first round warms the OS caches and is dropped
                ids = await afk_pause(runner, agent, f"fresh-{i}")
                decided = await afk_pause(runner, agent, f"fresh-decided-{i}")
                await runner.resolve(decided[1], allow)
                threads = [lg.pause(app, f"fresh-{i}")["configurable"]["thread_id"] for _ in "sa"]
                children = {
                    "afk": [me, "--child", "decide", afk_url, *ids],
                    "afk resume only": [me, "--child", "resume", afk_url, *decided],
                    "LangGraph sync": [peer, "sync", lg_store, threads[0]],
                    "LangGraph async": [peer, "async", lg_store, threads[1]],
                }
                for name, args in children.items():
                    took = spawn(args)
                    for mark, seconds in took.items():
                        if i > 0:
                            out.setdefault(f"{name}|{mark}", []).append(seconds)
                floor = interpreter_floor()
                if i > 0:
                    out.setdefault("floor", []).append(floor)
    return out


# -- stores ----------------------------------------------------------------------------------
Results = dict[str, dict[str, list[float]]]


async def bench(afk_url: str, lg_store: str, n: int, k: int) -> Results:
    return {
        "warm": await in_process(afk_url, lg_store, n),
        "fresh": await fresh_processes(afk_url, lg_store, k),
    }


def run_sqlite(n: int, k: int) -> Results:
    with tempfile.TemporaryDirectory() as tmp:
        afk_url, lg_store = f"sqlite:///{tmp}/afk.db", f"sqlite:{tmp}/langgraph.db"
        return asyncio.run(bench(afk_url, lg_store, n, k))


def run_postgres(n: int, k: int) -> Results | None:
    import langgraph_durable_peer as lg
    import psycopg

    suffix = uuid.uuid4().hex[:8]
    afk_schema, lg_schema = f"afk_peer_{suffix}", f"lg_peer_{suffix}"
    try:
        admin = psycopg.connect(PG_DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        print(f"postgres skipped: {exc}".strip(), file=sys.stderr)
        return None
    with admin:
        admin.execute(f'CREATE SCHEMA "{lg_schema}"'.encode())
        try:
            afk_url = f"{PG_DSN}?afk_schema={afk_schema}"
            lg_store = f"postgres:{lg.postgres_url(PG_DSN, lg_schema)}"
            return asyncio.run(bench(afk_url, lg_store, n, k))
        finally:
            admin.execute("SET lock_timeout = '10s'")
            for schema in (afk_schema, lg_schema):
                admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())


# -- the table -------------------------------------------------------------------------------
def ms(samples: list[float], q: float = 0.5) -> float:
    if q == 0.5:
        return statistics.median(samples) * 1e3
    return statistics.quantiles(samples, n=10, method="inclusive")[int(q * 10) - 1] * 1e3


def rows_of(store: str, r: Results) -> list[list[str]]:
    warm, fresh = r["warm"], r["fresh"]
    rows = []
    for label, q in (("p50", 0.5), ("p90", 0.9)):
        cells = {side: ms(warm[side], q) for side in SIDES}
        fastest = min(cells[side] for side in FASTEST_OF)
        rows.append([store, f"decision + resume -> tool start, deciding process, {label}",
                     *(f"{cells[side]:.2f}" for side in SIDES), f"{cells['afk'] / fastest:.2f}x",
                     "<= 1.0x" if q == 0.5 else "-"])  # fmt: skip
    for part, what in FRESH_MARKS:
        cells = {side: ms(fresh[f"{side}|{part}"]) for side in SIDES[:3]}
        only = ms(fresh[f"afk resume only|{part}"])
        fastest = min(cells[side] for side in FASTEST_OF)
        rows.append([store, f"fresh process: {what} -> tool start, p50",
                     f"{cells['afk']:.1f} ({only:.1f})", *(f"{cells[s]:.1f}" for s in SIDES[1:3]),
                     "-", f"{cells['afk'] / fastest:.2f}x", "-"])  # fmt: skip
    ops = statistics.median(warm["ops"])
    rows.append([store, "afk store operations, decision -> tool start", f"{ops:.0f}", "", "", "",
                 "", "-"])  # fmt: skip
    return rows


def ops_line(names: list[str]) -> str:
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{name} x{n}" if n > 1 else name for name, n in counts.items())


def line(row: list[str], widths: list[int]) -> str:
    cells = enumerate(zip(row, widths, strict=True))
    return "  ".join(f"{c:<{w}}" if i < 2 else f"{c:>{w}}" for i, (c, w) in cells).rstrip()


def render(results: dict[str, Results], n: int, k: int) -> str:
    head = ["store", "measure (ms)", *SIDES, "afk/LG", "target"]
    rows = [head]
    for store, r in results.items():
        rows += rows_of(store, r)
    floors = [f for r in results.values() for f in r["fresh"]["floor"]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    rows.insert(1, ["-" * w for w in widths])
    lines = [line(row, widths) for row in rows]
    lines += [
        "afk/LG: afk against the faster of LangGraph sync / async (its default durability, "
        '"async"); "sync, durable" is invoke(..., durability="sync").',
        f"Deciding process: {n} samples per side, alternating. Fresh process: median of {k} "
        "children per side; afk = resolve + resume in the child, (in parentheses) resume only.",
        f"Interpreter floor (python -c, spawn -> first line): {ms(floors):.1f} ms. "
        f"afk's store operations: {ops_line(OP_NAMES)}.",
    ]
    return "\n".join(lines)


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["--child"]:
        afk_child(*args[1:5])
        return
    k = 10
    if "--fresh" in args:
        at = args.index("--fresh")
        k = int(args[at + 1])
        del args[at : at + 2]
    n = int(args[0]) if args else 200
    sys.path.insert(0, str(HERE))
    started = time.perf_counter()
    results = {"sqlite": run_sqlite(n, k)}
    pg = run_postgres(n, k)
    if pg is not None:
        results["postgres"] = pg
    print(render(results, n, k))
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
