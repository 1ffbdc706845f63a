"""Every script in examples/ runs as its docstring says, in real processes."""

from __future__ import annotations

import ast
import asyncio
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from examples_support import EXAMPLES, FakeServer, example, openai_sse_reply, run

from afk.store import open_store

# Each example and the test that runs it; a new example without a test fails here.
TESTED = {
    "refund_agent.py": "test_refund_agent_lets_small_refunds_through_and_asks_finance",
    "external_worker.py": "test_external_run_is_approved_from_the_shell_and_resumed_once",
    "openai_compatible.py": "test_openai_compatible_example_talks_to_the_server_in_the_env",
    "multi_worker_postgres.py": "test_two_postgres_workers_resume_every_run_exactly_once",
    "mcp_gated.py": "test_mcp_gated_example_asks_before_destructive_mcp_tools",
}


def test_every_example_has_a_test_and_a_docstring_saying_how_to_run_it() -> None:
    scripts = sorted(p.name for p in EXAMPLES.glob("*.py"))
    assert scripts == sorted(TESTED)
    for name in scripts:
        assert TESTED[name] in globals(), name
        doc = ast.get_docstring(ast.parse((EXAMPLES / name).read_text())) or ""
        assert f"python examples/{name}" in doc or f"python {name}" in doc, name
        assert re.search(r'pip install -e "?\.', doc), f"{name}: its docstring says how to install"


def test_refund_agent_lets_small_refunds_through_and_asks_finance(tmp_path: Path) -> None:
    done = run("python", example("refund_agent.py"), cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    # Only the big refund was asked about; the requester's own approval was refused.
    assert out.count("approval needed:") == 1 and "'amount': 250" in out
    assert "erin refused:" in out and "may not decide its own request" in out
    assert "A-1001     40  refunded 40 on A-1001" in out
    assert "A-1002    250  refunded 250 on A-1002" in out
    assert "A-1003   5000  not run: denied: Refunds over 1000" in out
    assert "paid: [('A-1001', 40), ('A-1002', 250)]" in out


@pytest.mark.slow
def test_mcp_gated_example_asks_before_destructive_mcp_tools(tmp_path: Path) -> None:
    done = run("python", example("mcp_gated.py"), cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.count("approval needed:") == 2 and "(rule shop-cancellations-by-alice)" in out
    assert "shop__list_orders    {'result': 'ada: A-1001, A-1002'}" in out
    assert "shop__cancel_order   denied: the customer still wants it" in out
    assert "completed Done:" in out


def _store_log(url: str) -> list[Any]:
    async def read() -> list[Any]:
        store = open_store(url)
        try:
            return await store.list_log()
        finally:
            await store.close()

    return asyncio.run(read())


@pytest.mark.slow
def test_external_run_is_approved_from_the_shell_and_resumed_once(
    tmp_path: Path, store_url: str
) -> None:
    env = {"AFK_STORE": store_url}
    started = run("python", example("external_worker.py"), cwd=tmp_path, env=env)
    assert started.returncode == 0, started.stderr
    assert re.search(r"run run_\w+: paused", started.stdout)
    [request_id] = re.findall(r"waiting for request (req_\w+)", started.stdout)
    listed = run("afk", "approvals", "list", "--json", cwd=tmp_path, env=env)
    assert [r["request_id"] for r in json.loads(listed.stdout)] == [request_id]

    approved = run("afk", "approvals", "approve", request_id, "--reason", "invoice checked",
                   cwd=tmp_path, env=env)  # fmt: skip
    assert approved.returncode == 0, approved.stderr
    assert not (tmp_path / "paid.jsonl").exists()  # approving runs nothing by itself

    worker = run("afk", "worker", "--once", "--app", "external_worker:app", cwd=tmp_path, env=env)
    assert worker.returncode == 0, worker.stderr
    assert "completed" in worker.stdout
    again = run("afk", "worker", "--once", "--app", "external_worker:app", cwd=tmp_path, env=env)
    assert again.returncode == 0 and "completed" not in again.stdout, again.stdout

    paid = run("python", example("external_worker.py"), "--paid", cwd=tmp_path, env=env)
    assert paid.stdout.startswith("1 refund(s) paid:"), paid.stdout
    assert (tmp_path / "paid.jsonl").read_text().splitlines() == [
        json.dumps({"order_id": "A-2001", "amount": 250})
    ]
    kinds = Counter(entry.kind for entry in _store_log(store_url))
    assert kinds["execution_started"] == 1 and kinds["execution_finished"] == 1


def _chunk(delta: dict[str, Any]) -> dict[str, Any]:
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]}


def _calls(call_id: str, name: str, args: dict[str, Any]) -> Any:
    call = {
        "index": 0,
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(args)},
    }
    return openai_sse_reply([_chunk({"role": "assistant", "tool_calls": [call]})])


@pytest.mark.parametrize(("answer", "refunded"), [("y\n", True), ("n\n", False)])
def test_openai_compatible_example_talks_to_the_server_in_the_env(
    tmp_path: Path, answer: str, refunded: bool
) -> None:
    with FakeServer() as server:
        server.queue(
            _calls("call_1", "lookup_order", {"order_id": "A-3001"}),
            _calls("call_2", "refund", {"order_id": "A-3001", "amount": 40}),
            openai_sse_reply([_chunk({"content": "All sorted."})]),
        )
        env = {
            "OPENAI_BASE_URL": server.url + "/v1",
            "OPENAI_API_KEY": "sk-local",
            "OPENAI_MODEL": "qwen2.5-7b-instruct",
        }
        done = run("python", example("openai_compatible.py"), cwd=tmp_path, env=env, stdin=answer)
    assert done.returncode == 0, done.stderr
    assert "APPROVAL NEEDED" in done.stdout and "model: All sorted." in done.stdout
    assert [r.path for r in server.requests] == ["/v1/chat/completions"] * 3
    assert server.requests[0].headers["authorization"] == "Bearer sk-local"
    assert {body["model"] for body in server.bodies} == {"qwen2.5-7b-instruct"}
    # What the model was told about each call: the lookup ran unasked; the refund as decided.
    looked_up, refund_result = server.bodies[1]["messages"][-1], server.bodies[2]["messages"][-1]
    assert looked_up["role"] == "tool" and '"status": "delivered"' in looked_up["content"]
    assert refund_result["tool_call_id"] == "call_2"
    if refunded:
        assert refund_result["content"] == "refunded 40 on A-3001"
    else:
        assert refund_result["content"].startswith("Tool call denied:")


@pytest.mark.slow
def test_two_postgres_workers_resume_every_run_exactly_once(tmp_path: Path, pg_schema: Any) -> None:
    paid = tmp_path / "paid.jsonl"
    env = {"AFK_STORE": pg_schema.url, "AFK_EXAMPLE_PAID": str(paid)}
    runs = 12
    done = run("python", example("multi_worker_postgres.py"), "--runs", str(runs),
               cwd=tmp_path, env=env, timeout=240)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "every refund ran exactly once" in done.stdout
    resumed = [int(n) for n in re.findall(r"worker [AB]: resumed (\d+) run", done.stdout)]
    assert len(resumed) == 2 and sum(resumed) == runs, done.stdout
    assert done.stdout.count("exit status 0") == 2
    # Counted here too, independently of the script: the payment file and the store's ledger.
    orders = Counter(json.loads(line)["order_id"] for line in paid.read_text().splitlines())
    assert orders == Counter({f"B-{i:04d}": 1 for i in range(runs)})
    started = Counter(e.run_id for e in _store_log(pg_schema.url) if e.kind == "execution_started")
    assert len(started) == runs and set(started.values()) == {1}
