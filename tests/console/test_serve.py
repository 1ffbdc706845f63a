"""`afk tokens` and `afk serve` as a person runs them: a real server on 127.0.0.1, a token
from the command line, a decision over the socket, its event on the SSE stream."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from console_support import agent, executed, paused, runner

from afk.cli.main import main as afk_main
from afk.store import RunStore

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def served(store_url: str) -> Iterator[str]:
    """``afk serve`` on a free port; its base URL once it answers."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "afk", "serve", "--store", store_url, "--port", str(port)],
        cwd=REPO,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{base}/api/v1/openapi.json", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(proc.communicate()[1].decode()) from None
                time.sleep(0.05)
        yield base
    finally:
        proc.terminate()
        proc.communicate(timeout=10)  # and close its pipes


async def test_tokens_from_the_cli_then_a_decision_over_a_real_socket(
    store_url: str, store: RunStore, served: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async with runner(store_url) as run:
        request_id = await paused(run)
        code = await asyncio.to_thread(
            afk_main,
            ["tokens", "create", "--for", "Alice", "--expires", "1d", "--store", store_url],
        )
        out = capsys.readouterr()
        assert code == 0
        secret = out.out.strip()
        assert secret.startswith("afk_tok_") and "shown only now" in out.err
        auth = {"Authorization": f"Bearer {secret}"}
        http = httpx.AsyncClient(base_url=served, headers=auth, timeout=10)
        async with http, http.stream("GET", "/api/v1/events?after=0") as events:
            assert events.headers["content-type"].startswith("text/event-stream")
            answer = await http.post(
                f"/api/v1/requests/{request_id}/decision", json={"kind": "allow"}
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["approver"] == "alice"
            seen = await asyncio.wait_for(_events(events, "request_decided"), 10)
        assert seen[0]["event"] == "request_opened" and seen[-1]["request_id"] == request_id
        record = await store.get_request(request_id)
        assert record is not None
        assert (await run.resume(record.run_id, agent())).state == "completed"
        assert executed == ["old_logs"]
        # list never shows a secret or its hash; a revoked token is refused at once.
        assert await asyncio.to_thread(afk_main, ["tokens", "list", "--store", store_url]) == 0
        listed = capsys.readouterr().out
        [token] = await store.list_tokens()
        assert token.token_id in listed and "alice" in listed
        assert secret not in listed and token.secret_hash not in listed
        assert (
            await asyncio.to_thread(afk_main, ["tokens", "list", "--json", "--store", store_url])
            == 0
        )
        listed_json = capsys.readouterr().out
        assert secret not in listed_json and token.secret_hash not in listed_json
        assert json.loads(listed_json)[0]["token_id"] == token.token_id
        code = await asyncio.to_thread(
            afk_main, ["tokens", "revoke", token.token_id, "--store", store_url]
        )
        assert code == 0 and "revoked" in capsys.readouterr().out
        async with httpx.AsyncClient(base_url=served, headers=auth) as http:
            refused = await http.get("/api/v1/requests")
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith(
            "Bearer"
        )
        assert (
            await asyncio.to_thread(
                afk_main, ["tokens", "revoke", "tok_nope", "--store", store_url]
            )
            == 1
        )


async def _events(stream: httpx.Response, until: str) -> list[dict[str, object]]:
    """SSE messages read from ``stream`` until one named ``until``."""
    seen: list[dict[str, object]] = []
    message: dict[str, object] = {}
    async for line in stream.aiter_lines():
        if line.startswith("event: "):
            message["event"] = line.removeprefix("event: ")
        elif line.startswith("data: "):
            message.update(json.loads(line.removeprefix("data: ")))
        elif line == "" and message:
            seen.append(message)
            if message["event"] == until:
                return seen
            message = {}
    return seen


def test_without_the_extra_the_import_and_the_command_say_what_to_install() -> None:
    probe = (
        "import sys\n"
        "sys.modules['starlette'] = None\n"
        "try:\n"
        "    import afk.console\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
        "from afk.cli.main import main\n"
        "sys.exit(main(['serve', '--store', 'sqlite:///nowhere.db']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    hint = 'pip install "afk-agents[console]"'
    assert hint in proc.stdout
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and hint in proc.stderr


def test_expires_spans() -> None:
    from afk.cli.tokens_cmd import expiry
    from afk.errors import ConfigurationError

    assert expiry("30d", 0.0) == 30 * 86400 and expiry("12h", 10.0) == 10 + 12 * 3600
    assert expiry("never", 0.0) is None
    for bad in ("0d", "30", "1y", "-1d", ""):
        with pytest.raises(ConfigurationError, match="--expires"):
            expiry(bad, 0.0)
