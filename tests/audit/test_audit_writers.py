"""The chain links across transactions, across every kind of write, around refused and
rolled-back writes, and across two processes appending at once: on both backends."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import sys
from pathlib import Path

import pytest
from audit_support import KEY, Where, entry, run

from afk.audit import checkpoint, verify
from afk.errors import AlreadyDecidedError, StoreError
from afk.store.store import EventRow, ExecutionRecord, RequestRecord, RunStore

WRITER = Path(__file__).with_name("ledger_writer.py")
PER_WRITER = 200


def request(request_id: str) -> RequestRecord:
    return RequestRecord(
        request_id=request_id, run_id="run-1", kind="approval", request="{}",
        args_digest="d" * 64, status="pending", created_at=100.0, expires_at=4e9,
    )  # fmt: skip


async def test_every_kind_of_write_extends_one_chain(store: RunStore) -> None:
    await store.save_run(run(), requests=[request("q1")], log=[entry(1, "request_opened")])
    await store.decide(
        "q1", decision='{"kind":"allow"}', decided_by="human", approver="alice",
        bound_digest="d" * 64, now=150.0, log=[entry(2, "decided")],
    )  # fmt: skip
    with pytest.raises(AlreadyDecidedError):  # refused: writes nothing, breaks nothing
        await store.decide(
            "q1", decision='{"kind":"deny"}', decided_by="human", approver="bob",
            bound_digest="d" * 64, now=151.0, log=[entry(99, "decided")],
        )  # fmt: skip
    await store.log_refusal(entry(3, "refused"))
    execution = ExecutionRecord(
        key="q1", run_id="run-1", tool_call_id="c1", args_digest="d" * 64,
        status="executing", started_at=160.0,
    )  # fmt: skip
    await store.begin_execution(execution, log=[entry(4, "execution_started")])
    event = EventRow(run_id="run-1", seq=1, type="step", payload="{}", ts=1.0)
    await store.save_run(run(), events=[event])
    with pytest.raises(StoreError):  # rolled back: its log entry never lands
        await store.save_run(run(), events=[event], log=[entry(98, "request_opened")])
    await store.finish_execution("q1", result="{}", now=170.0, log=[entry(5, "execution_finished")])
    log = await store.list_log()
    assert [(e.id, e.kind) for e in log] == [
        (1, "request_opened"),
        (2, "decided"),
        (3, "refused"),
        (4, "execution_started"),
        (5, "execution_finished"),
    ]
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(log))
    report = await verify(store)
    assert report.ok and report.entries == 5


async def test_caller_supplied_ids_and_hashes_are_ignored(store: RunStore) -> None:
    forged = [
        dataclasses.replace(entry(i), id=77, hash="f" * 64, prev_hash="e" * 64) for i in (0, 1)
    ]
    await store.log_refusal(forged[0])
    await store.save_run(run(), log=forged[1:])
    log = await store.list_log()
    assert [e.id for e in log] == [1, 2]
    assert "f" * 64 not in {e.hash for e in log}
    assert (await verify(store)).ok


async def test_two_stores_in_one_process_share_the_chain(store: RunStore, where: Where) -> None:
    other = where.open()
    try:
        writes = [store.log_refusal(entry(i)) for i in range(40)]
        writes += [other.save_run(run("run-2"), log=[entry(i, run_id="run-2")]) for i in range(40)]
        await asyncio.gather(*writes)
        report = await verify(other, checkpoint_keys=KEY)
        assert report.ok and report.entries == 80
        await checkpoint(other, KEY)
        assert (await verify(store, checkpoint_keys=KEY)).ok
    finally:
        await other.close()


@pytest.mark.slow
async def test_two_writer_processes_keep_one_chain(
    store: RunStore, where: Where, tmp_path: Path
) -> None:
    procs = []
    for name in ("w1", "w2"):
        with open(tmp_path / f"{name}.err", "wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(WRITER), where.url, name, str(PER_WRITER),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err,
            )  # fmt: skip
            procs.append(proc)

    async def line(proc: asyncio.subprocess.Process) -> str:
        assert proc.stdout is not None
        return (await asyncio.wait_for(proc.stdout.readline(), 60)).decode().strip()

    for proc in procs:
        assert await line(proc) == "ready", (tmp_path / "w1.err").read_text()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
    for proc, name in zip(procs, ("w1", "w2"), strict=True):
        assert await line(proc) == "done", (tmp_path / f"{name}.err").read_text()
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    report = await verify(store)
    assert report.ok, report.summary()
    assert report.entries == 2 * PER_WRITER
    log = await store.list_log()
    assert [e.id for e in log] == list(range(1, 2 * PER_WRITER + 1))
    for name in ("w1", "w2"):
        mine = [e.request_id for e in log if e.run_id == name]
        assert mine == [f"{name}:{i}" for i in range(PER_WRITER)]  # each writer's own order
    assert json.loads(log[0].payload) == {}
    switches = sum(a.run_id != b.run_id for a, b in itertools.pairwise(log))
    assert switches >= 2, "the writers did not overlap; the race was not exercised"
