"""Two processes racing on one store: exactly one decision and one lease holder win, and
claimers never get the same ready run."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from store_support import Backend, request, run

from afk.store.store import RunStore

WORKER = Path(__file__).with_name("race_worker.py")
ROUNDS = 12


class Racers:
    def __init__(self, procs: dict[str, asyncio.subprocess.Process]) -> None:
        self.procs = procs

    async def line(self, proc: asyncio.subprocess.Process) -> str:
        assert proc.stdout is not None
        return (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().strip()

    async def race(self, op: str, key: str) -> dict[str, str]:
        """Send the same command to every racer at once; each one's answer."""
        for proc in self.procs.values():
            assert proc.stdin is not None
            proc.stdin.write(f"{op} {key}\n".encode())
        await asyncio.gather(*(p.stdin.drain() for p in self.procs.values() if p.stdin))
        answers = await asyncio.gather(*(self.line(p) for p in self.procs.values()))
        return dict(zip(self.procs, answers, strict=True))


@pytest.fixture
async def racers(backend: Backend, store: RunStore, tmp_path: Path) -> AsyncIterator[Racers]:
    where = [backend.location, backend.schema] if backend.schema else [backend.location]
    procs = {}
    for name in ("p1", "p2"):
        with open(tmp_path / f"{name}.err", "wb") as err:
            procs[name] = await asyncio.create_subprocess_exec(
                sys.executable, str(WORKER), name, backend.name, *where,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err,
            )  # fmt: skip
    racers = Racers(procs)
    try:
        for name, proc in procs.items():
            assert await racers.line(proc) == "ready", (tmp_path / f"{name}.err").read_text()
        yield racers
    finally:
        for proc in procs.values():
            if proc.stdin is not None:
                proc.stdin.close()
        for name, proc in procs.items():
            assert await asyncio.wait_for(proc.wait(), 20) == 0, (
                tmp_path / f"{name}.err"
            ).read_text()


def one_winner(answers: dict[str, str]) -> str:
    assert sorted(answers.values()) == ["lost", "won"], answers
    return next(name for name, answer in answers.items() if answer == "won")


async def test_two_processes_decide_the_same_request(store: RunStore, racers: Racers) -> None:
    for i in range(ROUNDS):
        await store.save_run(run(), requests=[request(f"q{i}")])
        winner = one_winner(await racers.race("decide", f"q{i}"))
        stored = await store.get_request(f"q{i}")
        assert stored is not None and stored.approver == winner


async def test_two_processes_race_for_a_lease(store: RunStore, racers: Racers) -> None:
    for i in range(ROUNDS):
        await store.save_run(run(f"run-{i}"))
        winner = one_winner(await racers.race("lease", f"run-{i}"))
        leased = await store.load_run(f"run-{i}")
        assert leased is not None and leased.lease_owner == winner


async def test_two_processes_claim_ready_runs_each_once(store: RunStore, racers: Racers) -> None:
    for round_ in range(3):
        ids = {f"run-{round_}-{i:02d}" for i in range(30)}
        for run_id in sorted(ids):
            await store.save_run(run(run_id, updated_at=100.0))  # no request: ready
        answers = await racers.race("claim", "1000")
        got = {name: answer.split() for name, answer in answers.items() if answer != "-"}
        claimed = [run_id for runs in got.values() for run_id in runs]
        assert sorted(claimed) == sorted(ids), answers  # every run once, none twice
        for name, runs in got.items():
            for run_id in runs:
                leased = await store.load_run(run_id)
                assert leased is not None and leased.lease_owner == name
