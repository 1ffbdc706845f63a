"""`afk approvals list` and `afk runs list` print one page (--limit, --cursor) and, when there
is more, a last line with the command for the next page (on stderr with --json)."""

from __future__ import annotations

import asyncio
import json
import shlex

from durable_app import afk

from afk.store import RequestRecord, RunRecord, open_store

FAR = 4_000_000_000.0


def _fill(url: str, runs: int) -> None:
    """``runs`` paused runs, one pending request each; r0's request is the oldest."""

    async def go() -> None:
        store = open_store(url)
        await store.setup()
        try:
            for i in range(runs):
                run_id = f"r{i}"
                body = {"request_id": f"q{i}", "tool_args": {"n": i}, "rule_id": "rule"}
                await store.save_run(
                    RunRecord(
                        run_id=run_id,
                        agent_name="billing",
                        status="paused",
                        snapshot="{}",
                        schema_version=1,
                        created_at=100.0,
                        updated_at=100.0 + i,
                    ),
                    requests=[
                        RequestRecord(
                            request_id=f"q{i}",
                            run_id=run_id,
                            kind="approval",
                            request=json.dumps(body),
                            args_digest="d" * 64,
                            status="pending",
                            created_at=100.0 + i,
                            expires_at=FAR,
                            tool_name="refund",
                        )
                    ],
                )
        finally:
            await store.close()

    asyncio.run(go())


def _follow(first: list[str], *, json_mode: bool = False) -> tuple[list[list[str]], int]:
    """Every page's first column (or ids, with --json), following the 'more:' lines."""
    pages: list[list[str]] = []
    argv, commands = first, 0
    while True:
        result = afk(*argv)
        assert result.code == 0, result.err
        commands += 1
        if json_mode:
            listed = json.loads(result.out)
            assert isinstance(listed, list)  # --json stays a list; the cursor goes to stderr
            pages.append([r.get("request_id") or r["run_id"] for r in listed])
            more = [line for line in result.err.splitlines() if line.startswith("more: ")]
        else:
            lines = result.out.splitlines()
            more = [line for line in lines if line.startswith("more: ")]
            assert not more or lines[-1] == more[0]  # the last line
            pages.append([line.split()[0] for line in lines[1 : len(lines) - len(more)]])
        if not more:
            return pages, commands
        words = shlex.split(more[0].removeprefix("more: "))
        assert words[0] == "afk"
        argv = words[1:]


def test_approvals_list_pages_with_next_commands(store_url: str) -> None:
    _fill(store_url, 5)
    pages, commands = _follow(["approvals", "list", "--store", store_url, "--limit", "2"])
    assert pages == [["q0", "q1"], ["q2", "q3"], ["q4"]] and commands == 3
    assert afk("approvals", "list", "--store", store_url).out.count("\n") == 6  # one page, no more


def test_approvals_list_json_pages_and_all(store_url: str) -> None:
    _fill(store_url, 3)
    argv = ["approvals", "list", "--all", "--json", "--store", store_url, "--limit", "2"]
    pages, _ = _follow(argv, json_mode=True)
    assert pages == [["q0", "q1"], ["q2"]]
    first = afk(*argv)
    [more] = first.err.splitlines()
    assert "--all" in more and "--json" in more


def test_runs_list_pages_newest_first(store_url: str) -> None:
    _fill(store_url, 3)
    argv = ["runs", "list", "--store", store_url, "--status", "paused", "--limit", "2"]
    pages, _ = _follow(argv)
    assert pages == [["r2", "r1"], ["r0"]]
    listed = afk("runs", "list", "--json", "--store", store_url, "--limit", "1")
    assert [r["pending_requests"] for r in json.loads(listed.out)] == [1]
    assert "more: afk runs list" in listed.err


def test_a_bad_cursor_or_limit_is_a_usage_error(store_url: str) -> None:
    _fill(store_url, 1)
    bad = afk("approvals", "list", "--store", store_url, "--cursor", "nope!")
    assert bad.code == 2 and "invalid cursor" in bad.err
    runs_cursor = afk("runs", "list", "--store", store_url, "--limit", "1", "--cursor", "e30")
    assert runs_cursor.code == 2 and "invalid cursor" in runs_cursor.err
    assert afk("approvals", "list", "--store", store_url, "--limit", "0").code == 2
    too_many = afk("approvals", "list", "--store", store_url, "--limit", "1001")
    assert too_many.code == 2 and "1 to 1000" in too_many.err


def test_the_next_command_leaves_out_a_store_password() -> None:
    import argparse

    from afk.cli.runs_cmd import next_page_line
    from afk.store import Page

    args = argparse.Namespace(store="postgresql://u:secret@db/x", limit=50, json=False)
    line = next_page_line(args, ["runs", "list"], Page([], next_cursor="abc"))
    assert line == "more: afk runs list --cursor abc"
    args.store = "sqlite:///runs.db"
    assert next_page_line(args, ["runs", "list"], Page([], next_cursor=None)) is None
    line = next_page_line(args, ["runs", "list"], Page([], next_cursor="abc"))
    assert line == "more: afk runs list --store sqlite:///runs.db --cursor abc"
