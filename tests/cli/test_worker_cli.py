"""`afk resume` and `afk worker`: continuing paused runs with the application named by APP."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from durable_app import APP, REPO, Env, afk, afk_process, make_env, request_id, start

from afk.cli.worker_cmd import load_app
from afk.errors import ConfigurationError


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    return make_env(tmp_path, monkeypatch)


def test_approve_then_worker_once_executes_exactly_once_across_processes(env: Env) -> None:
    run = start(env, amount=250)
    assert afk_process("approvals", "approve", request_id(run)).code == 0
    assert env.executions() == []  # deciding never runs the tool
    worker = afk_process("worker", "--once", "--app", APP)
    assert worker.code == 0, worker.err
    assert worker.out.split() == [run.run_id, "completed", "Done."]
    again = afk_process("worker", "--once", "--app", APP, "--store", env.url)
    assert (again.code, again.out) == (0, "no runs ready to resume\n")
    assert env.executions() == [{"amount": 250, "note": ""}]
    assert afk("runs", "list", "--json").json()[0]["status"] == "completed"


def test_resume_one_run(env: Env) -> None:
    run = start(env, amount=250)
    waiting = afk("resume", run.run_id, "--app", APP)
    assert waiting.code == 0
    assert waiting.out.split()[:2] == [run.run_id, "paused"]
    assert f"waiting for 1 request(s): {request_id(run)}" in waiting.out
    assert afk("approvals", "approve", request_id(run)).code == 0
    done = afk("resume", run.run_id, "--app", APP, "--json")
    assert done.json() == [
        {
            "run_id": run.run_id,
            "state": "completed",
            "final_text": "Done.",
            "error": None,
            "pending_requests": [],
            "expired_calls": [],
        }
    ]
    ended = afk("resume", run.run_id, "--app", APP)
    assert ended.code == 1 and "already ended: completed" in ended.err
    assert env.executions() == [{"amount": 250, "note": ""}]


def test_resume_ready_resumes_only_decided_runs(env: Env) -> None:
    decided, waiting = start(env, amount=250), start(env, amount=300)
    assert afk("approvals", "deny", request_id(decided)).code == 0
    result = afk("resume", "--ready", "--app", APP)
    assert result.out.splitlines() == [f"{decided.run_id}  completed  Done."]
    statuses = {r["run_id"]: r["status"] for r in afk("runs", "list", "--json").json()}
    assert statuses == {decided.run_id: "completed", waiting.run_id: "paused"}


def test_resume_refusals(env: Env) -> None:
    start(env, amount=250)
    unknown = afk("resume", "run_nope", "--app", APP)
    assert (unknown.code, unknown.err) == (1, "afk: no stored run with id 'run_nope'\n")
    assert afk("resume", "--app", APP).code == 2  # neither RUN nor --ready
    assert afk("resume", "run_x", "--ready", "--app", APP).code == 2


@pytest.mark.parametrize(
    ("app", "message"),
    [
        ("durable_app", "APP must look like module:attr, got 'durable_app'"),
        ("tests.cli.nowhere:app", "cannot import 'tests.cli.nowhere': ModuleNotFoundError"),
        ("tests.cli.durable_app:nothing", "module 'tests.cli.durable_app' has no 'nothing'"),
        ("tests.cli.durable_app:refund", "is a Tool; expected a Runner"),
        ("tests.cli.durable_app:policy", "is a PolicyEngine; expected a Runner"),
        ("tests.cli.durable_app:billing_agent", "returned an Agent; expected a Runner"),
        ("tests.cli.durable_app:make_env", "callable needing arguments (tmp_path, monkeypatch)"),
    ],
)
def test_bad_app_is_a_one_line_usage_error(env: Env, app: str, message: str) -> None:
    result = afk("resume", "--ready", "--app", app)
    assert result.code == 2
    assert result.err.startswith("afk: ") and result.err.count("\n") == 1
    assert message in result.err


def test_bad_app_from_a_fresh_process(env: Env) -> None:
    result = afk_process("worker", "--once", "--app", "no_such_module:app")
    assert result.code == 2
    assert result.err == (
        "afk: APP 'no_such_module:app': cannot import 'no_such_module': "
        "ModuleNotFoundError: No module named 'no_such_module'\n"
    )


APP_SHAPES = {
    "runner_and_module_agents": "runner = make_runner()\nagents = [billing_agent()]\n",
    "namespace": "app = SimpleNamespace(runner=make_runner(), agents=[billing_agent()])\n",
    "mapping": "app = {'runner': make_runner(), 'agents': (billing_agent(),)}\n",
    "factory": "def app():\n    return {'runner': make_runner(), 'agents': [billing_agent()]}\n",
}


@pytest.mark.parametrize("shape", sorted(APP_SHAPES))
def test_every_documented_app_shape_loads(
    env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: str
) -> None:
    module = f"app_{shape}_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        "from types import SimpleNamespace\n"
        "from afk.core import Runner\n"
        "from durable_app import billing_agent, policy\n"
        "def make_runner():\n    return Runner(policy)\n" + APP_SHAPES[shape]
    )
    monkeypatch.chdir(tmp_path)  # APP modules are found from the current directory
    attr = "runner" if shape == "runner_and_module_agents" else "app"
    loaded = load_app(f"{module}:{attr}")
    assert [a.name for a in loaded.agents] == ["billing"]
    assert loaded.owned == (shape == "factory")
    # The runner's store is AFK_STORE, read when the module built it.
    run = start(env, amount=250)
    assert afk("approvals", "approve", request_id(run)).code == 0
    assert afk("resume", "--ready", "--app", f"{module}:{attr}").out.split()[1] == "completed"


def test_runner_without_agents_next_to_it_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = f"lonely_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text("from afk.core import Runner\nrunner = Runner()\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match=r"is a Runner, but module .* has no `agents`"):
        load_app(f"{module}:runner")


def test_worker_stops_cleanly_on_sigterm(env: Env) -> None:
    run = start(env, amount=250)
    assert afk("approvals", "approve", request_id(run)).code == 0
    worker = subprocess.Popen(
        [sys.executable, "-m", "afk", "worker", "--app", APP, "--poll", "0.05"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None
        line = worker.stdout.readline()  # the resumed run; the loop is then idle
        assert line.split() == [run.run_id, "completed", "Done."]
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=20)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    assert worker.returncode == 0, err
    assert "afk worker: resuming runs of billing" in err
    assert err.rstrip().endswith("afk worker: stopped")
    assert env.executions() == [{"amount": 250, "note": ""}]


def _start_slow(env: Env) -> str:
    import asyncio

    from slow_app import agent
    from slow_app import policy as slow_policy

    from afk.core import Runner, RunnerConfig

    async def go() -> str:
        runner = Runner(
            slow_policy, config=RunnerConfig(interaction_mode="external"), store=env.url
        )
        try:
            paused = await runner.run(agent(), user_message="refund")
            return paused.pending_requests[0].request_id
        finally:
            await runner.aclose()

    return asyncio.run(go())


def _wait_for(path: Path, text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and text in path.read_text()):
        assert time.monotonic() < deadline, f"{text!r} never appeared in {path}"
        time.sleep(0.02)


@pytest.mark.slow
def test_sigterm_during_a_tool_lets_the_body_finish_and_exits_0(env: Env) -> None:
    from slow_app import APP as SLOW_APP

    request = _start_slow(env)
    assert afk("approvals", "approve", request).code == 0
    worker = subprocess.Popen(
        [sys.executable, "-m", "afk", "worker", "--app", SLOW_APP, "--poll", "0.05"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(env.effects, "start 250")
        worker.send_signal(signal.SIGTERM)  # while the tool body sleeps
        out, err = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    assert worker.returncode == 0, err
    assert env.effects.read_text().splitlines() == ["start 250", "end 250"]
    assert "completed" in out
    assert "waiting for the runs in progress to pause or end" in err
    [run] = afk("runs", "list", "--json").json()
    assert run["status"] == "completed"


def test_worker_concurrency_flag_and_bad_values(env: Env) -> None:
    bad = afk("worker", "--app", APP, "--concurrency", "0")
    assert bad.code == 2 and "--concurrency: must be >= 1, got 0" in bad.err
    word = afk("worker", "--app", APP, "--concurrency", "many")
    assert word.code == 2 and "expected a whole number, got 'many'" in word.err
