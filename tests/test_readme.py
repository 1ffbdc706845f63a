"""What the README shows must work as shown: every code block is run, loaded or parsed here."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from afk.agents import PolicyEngine, PolicyEvent
from afk.cli.main import build_parser
from afk.core import Runner, RunnerConfig

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
TEXT = README.read_text()
BLOCKS = [(m[1], m[2]) for m in re.finditer(r"^```(\w*)\n(.*?)^```$", TEXT, re.S | re.M)]
CONTINUES = "# Continues the example above"


def _section(heading: str) -> str:
    start = TEXT.index(f"\n{heading}\n")
    end = TEXT.find("\n## ", start + len(heading) + 2)
    return TEXT[start : end if end != -1 else None]


def _blocks(lang: str) -> list[str]:
    return [code for kind, code in BLOCKS if kind == lang]


def test_every_code_block_is_one_these_tests_run() -> None:
    assert BLOCKS, "no code blocks found"
    assert {kind for kind, _ in BLOCKS} <= {"python", "sh", "yaml"}, "unlabelled or other blocks"
    assert TEXT.count("\n```") == 2 * len(BLOCKS), "a fence the block pattern did not match"


def test_the_readme_policy_file_loads_and_uses_every_feature(tmp_path: Path) -> None:
    [yaml_text] = _blocks("yaml")
    path = tmp_path / "policy.yaml"
    path.write_text(yaml_text)
    engine = PolicyEngine.from_file(path)
    Runner(engine)  # its approver groups resolve
    rules = {r.rule_id: r for r in engine.rules}
    big = rules["big-refunds"]
    assert (big.quorum, big.approvers, big.escalate_to) == (2, ("group:finance",), ("group:cfo",))
    assert rules["no-prod-drops"].stop_run and rules["try-new-email-rule"].shadow
    assert rules["ask-why"].input_target_arg == "note"
    refund = PolicyEvent(
        tool_name="refund_order",
        agent_name="billing-eu",
        tool_args={"amount": 250, "currency": "USD"},
    )
    assert engine.evaluate(refund).action == "request_approval"
    small = PolicyEvent(tool_name="refund_order", agent_name="billing-eu", tool_args={"amount": 5})
    assert engine.evaluate(small).action == "allow"
    drop = PolicyEvent(tool_name="drop_table", tool_args={"database": "prod"})
    assert engine.evaluate(drop).action == "deny"
    model_call = PolicyEvent(event_type="llm_before_execute", context={"incident": True})
    assert engine.evaluate(model_call).action == "request_approval"
    calm = PolicyEvent(event_type="llm_before_execute", context={"incident": False})
    assert engine.evaluate(calm).action == "allow"
    email = PolicyEvent(tool_name="send_email", tool_args={"to": "x@competitor.com"})
    decision = engine.evaluate(email)
    assert decision.action == "allow" and decision.shadow[0].action == "deny"


# -- python blocks: each runs as a script (a block starting with CONTINUES runs after the one
# before it), in a fresh process and an empty directory holding the README's policy.yaml.
def _scripts() -> list[str]:
    scripts: list[str] = []
    for code in _blocks("python"):
        scripts.append(scripts[-1] + "\n" + code if code.startswith(CONTINUES) else code)
    return scripts


# What each script prints, found by its last line; each pattern must match a whole line.
EXPECTED = {
    "asyncio.run(main())": [
        re.escape("approval needed: drop_table {'name': 'old_logs'} (gate-destructive-ops)"),
        re.escape("completed ['dropped old_logs'] Done."),
    ],
    "asyncio.run(pause_then_finish())": [r"paused req_\w+", "completed Done."],
    "asyncio.run(chat())": [
        re.escape("Hello! Which order?"),
        "asked: refunds need a human",
        "asked: A-1 was refunded last week",
        re.escape("Done: refunded 80 on A-1."),
        "9 You're welcome.",
    ],
    "asyncio.run(main_tree())": ["approve[?] refund billing", "Billing refunded it."],
    "asyncio.run(main_mcp())": [
        re.escape("notes__read_note {'result': 'note a: buy milk'}"),
        "notes__delete_note denied: headless mode: approval_fallback=deny",
    ],
    "print(policy.evaluate(refund).action)": [
        r"\s+big-refunds\s+10\s+request_approval\s+DECIDED",
        "request_approval",
    ],
}


@pytest.mark.parametrize("script", _scripts(), ids=lambda s: s.split("\n")[0][:40])
def test_python_block_runs_as_written(script: str, tmp_path: Path) -> None:
    [yaml_text] = _blocks("yaml")
    (tmp_path / "policy.yaml").write_text(yaml_text)
    env = {k: v for k, v in os.environ.items() if k != "AFK_STORE"}
    # The timeout is the proof that the first example finishes on its own (nothing waits for
    # a decision no one sends).
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for pattern in _expected(script):
        assert any(re.fullmatch(pattern, line) for line in lines), (pattern, lines)


def _expected(script: str) -> list[str]:
    last = script.rstrip().splitlines()[-1]
    return next((patterns for key, patterns in EXPECTED.items() if key in last), [])


def test_every_python_block_that_prints_has_its_output_checked() -> None:
    for script in _scripts():
        assert "print(" not in script or _expected(script), script.splitlines()[0]


# -- shell blocks: bash syntax; every command is one afk parses, an existing file or extra.
def _commands() -> list[list[str]]:
    commands = []
    for code in _blocks("sh"):
        for line in code.splitlines():
            for part in line.split(" && "):
                argv = shlex.split(part, comments=True)
                if argv:
                    commands.append(argv)
    return commands


def _extras() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return set(project["optional-dependencies"])


def _check_pip(argv: list[str]) -> None:
    assert argv[:2] == ["pip", "install"], argv
    target = argv[-1]
    assert argv[2:-1] in ([], ["-e"]), f"{argv}: install from a checkout: pip install [-e] ."
    match = re.fullmatch(r"\.(?:\[([\w,]+)\])?", target)
    assert match, f"{argv}: expected . or .[extras]"
    assert set((match[1] or "").split(",")) - {""} <= _extras(), argv


def _check_afk(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser([argv[1]])
    try:
        args = parser.parse_args(argv[1:])
    except SystemExit:
        pytest.fail(f"afk does not parse {shlex.join(argv)}: {capsys.readouterr().err}")
    assert getattr(args, "func", None) is not None, argv


def test_shell_blocks_are_valid_bash() -> None:
    for code in _blocks("sh"):
        done = subprocess.run(["bash", "-n"], input=code, capture_output=True, text=True)
        assert done.returncode == 0, (code, done.stderr)


def test_every_shell_command_is_one_that_exists(capsys: pytest.CaptureFixture[str]) -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "afk").rglob("*.py"))
    for argv in _commands():
        if argv[0] == "afk":
            _check_afk(argv, capsys)
        elif argv[0] == "pip":
            _check_pip(argv)
        elif argv[0] == "export":
            name = argv[1].split("=", 1)[0]
            assert f'"{name}"' in source, f"afk never reads {name}"
        elif argv[:3] == ["python", "-m", "pytest"]:
            continue
        else:
            pytest.fail(f"README shell command of an unknown kind: {shlex.join(argv)}")


# -- set-up and install instructions ---------------------------------------------------------
def test_the_readme_has_exactly_the_two_setup_commands() -> None:
    assert "pip install . && afk demo" in TEXT
    assert 'pip install -e ".[dev]" && python -m pytest' in TEXT
    setup = _section("## Set up").split("\n### ")[0]
    blocks = re.findall(r"^```sh\n(.*?)^```$", setup, re.S | re.M)
    demo, tests = "pip install . && afk demo\n", 'pip install -e ".[dev]" && python -m pytest\n'
    assert blocks == [demo, tests]


def test_the_setup_demo_runs_end_to_end(tmp_path: Path) -> None:
    """The first set-up command's ``afk demo``, answered at its prompts as a newcomer would."""
    demo = next(c for c in _commands() if c[:2] == ["afk", "demo"])
    done = subprocess.run(
        [sys.executable, "-m", "afk", *demo[1:]],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "AFK_STORE"},
        input="y\nn\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("APPROVAL NEEDED") == 2 and "State: completed" in done.stdout
    # One table approved and dropped, one denied and kept; the run is in the SQLite file.
    assert "tables ['customers', 'old_sessions']" in done.stdout.splitlines()[-2]
    assert (tmp_path / ".afk-demo" / "runs.db").exists()


def test_the_extras_table_names_every_extra_with_a_checkout_install_line() -> None:
    rows = re.findall(r"^\| `(\w+)` \| (.+?) \| `(.+?)` \|$", _section("### Extras"), re.M)
    assert {name for name, _, _ in rows} == _extras()
    for name, purpose, install in rows:
        assert install == f'pip install -e ".[{name}]"' and purpose.strip(), name
    assert "yaml" in {name for name, purpose, _ in rows if "policy files" in purpose}


def test_the_examples_table_lists_every_example() -> None:
    listed = set(re.findall(r"\[`examples/(\w+\.py)`\]", _section("## Examples")))
    assert listed == {p.name for p in (ROOT / "examples").glob("*.py")}


def test_defaults_the_readme_states_are_the_defaults() -> None:
    [days] = re.findall(r"external mode default: (\d+) days", TEXT)
    external = RunnerConfig(interaction_mode="external")
    assert external.approval_timeout_s == int(days) * 86_400
    assert "policy_timeout_s`\n  (default 5 s" in TEXT and RunnerConfig().policy_timeout_s == 5
    assert "max_open_requests` (default 50)" in TEXT and RunnerConfig().max_open_requests == 50
