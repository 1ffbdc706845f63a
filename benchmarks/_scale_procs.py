"""Child processes for benchmarks/bench_scale.py: `afk worker` processes, CLI wall times, the
tool log the workers write, and a process's CPU time from /proc."""

from __future__ import annotations

import asyncio
import glob
import os
import signal
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Sequence

from _scale_app import GATE_ENV, TOOL_LOG_ENV
from bench_cli import afk_command, child_env, precompile

HERE = os.path.dirname(os.path.abspath(__file__))
CLK_TCK = os.sysconf("SC_CLK_TCK")


class ToolLog:
    """The lines the refund tool appended (see _scale_app), read incrementally."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._offset = 0
        self._partial = ""
        self.starts: dict[str, list[float]] = defaultdict(list)

    def refresh(self) -> None:
        try:
            with open(self.path, encoding="ascii") as f:
                f.seek(self._offset)
                text = f.read()
                self._offset = f.tell()
        except FileNotFoundError:
            return
        text, self._partial = self._partial + text, ""
        lines = text.split("\n")
        self._partial = lines.pop()  # "" after a complete last line
        for line in lines:
            run_id, at, _pid = line.split()
            self.starts[run_id].append(float(at))

    async def wait_all(self, run_ids: Sequence[str], *, timeout_s: float) -> bool:
        """Until every run in ``run_ids`` has started its tool (False on timeout)."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.refresh()
            if all(r in self.starts for r in run_ids):
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.002)

    def doubles(self) -> int:
        """Runs whose tool ran more than once."""
        self.refresh()
        return sum(len(v) > 1 for v in self.starts.values())


class Children:
    """The environment and working directory every child process of the bench gets."""

    def __init__(self, tmp: str, tool_log: str) -> None:
        env = child_env(os.path.join(tmp, "pycache"))
        # Every afk module compiled before the first timed call, as an install has them: a
        # module first imported in a timed call would otherwise time the compiler.
        precompile(env)
        env[TOOL_LOG_ENV] = tool_log
        env.pop(GATE_ENV, None)
        self.env = env
        self.afk = afk_command()
        self.tmp = tmp
        self._stderr: dict[int, str] = {}  # worker pid -> the file its stderr goes to

    def wall_s(self, *argv: str) -> float:
        """Wall time of ``afk ARGV`` from spawn to exit."""
        start = time.perf_counter()
        proc = subprocess.run(
            [*self.afk, *argv], env=self.env, capture_output=True, text=True, check=False
        )
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"afk {' '.join(argv)} exited {proc.returncode}: {proc.stderr}")
        return elapsed

    def median_wall_ms(self, argvs: Sequence[Sequence[str]]) -> float:
        """Median wall time, the first command untimed (OS cache, .pyc files)."""
        self.wall_s(*argvs[0])
        return statistics.median(self.wall_s(*a) for a in argvs[1:]) * 1e3

    def worker(self, url: str, *, gate: str | None = None) -> subprocess.Popen[bytes]:
        env = {**self.env, "AFK_STORE": url}  # the app's Runner opens it
        if gate is not None:
            env[GATE_ENV] = gate
        path = os.path.join(self.tmp, f"worker-{time.monotonic_ns()}.err")
        argv = [*self.afk, "worker", "--app", "_scale_app:app"]
        with open(path, "wb") as err:  # the child keeps its own descriptor
            proc = subprocess.Popen(argv, cwd=HERE, env=env, stdout=subprocess.DEVNULL, stderr=err)
        self._stderr[proc.pid] = path
        return proc

    def stderr_tail(self, proc: subprocess.Popen[bytes], lines: int = 5) -> str:
        """The last lines the worker wrote to stderr, for an error message."""
        with open(self._stderr[proc.pid], encoding="utf-8", errors="replace") as f:
            return " | ".join(f.read().splitlines()[-lines:])


def stop(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each worker (it finishes the runs in progress), then reap; kill a hung one."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            print(f"worker {proc.pid} did not stop; killing it", file=sys.stderr)
            proc.kill()
            proc.wait()


def cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used (/proc/<pid>/stat utime + stime)."""
    with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


async def open_gate(gate: str, procs: Sequence[subprocess.Popen[bytes]]) -> float:
    """Wait until every gated worker is ready, then let them all go; the monotonic go time."""
    deadline = time.monotonic() + 60
    while len(glob.glob(f"{gate}.ready.*")) < len(procs):
        if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
            raise SystemExit(f"a gated worker exited or never got ready (see {gate}*)")
        await asyncio.sleep(0.005)
    go = time.monotonic()
    with open(f"{gate}.go", "w", encoding="ascii"):
        pass
    return go
