"""``afk completion bash|zsh|fish``: the bash script is loaded into a real bash and asked what
TAB offers; the zsh and fish scripts are checked for what those shells load."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from durable_app import afk

from afk.cli.main import COMMANDS

BASH = shutil.which("bash") or "/bin/bash"


def _offers(script: str, *words: str) -> list[str]:
    """What TAB after ``words`` (the last one being completed) offers in bash."""
    quoted = " ".join(f"'{w}'" for w in words)
    program = (
        f"{script}\n"
        "complete -p afk\n"
        f"COMP_WORDS=({quoted}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 )); COMPREPLY=()\n"
        "_afk\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        [BASH, "--norc", "--noprofile"],
        input=program,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    registered, *offers = done.stdout.splitlines()
    assert registered == "complete -o default -F _afk afk"
    return [o for o in offers if o]


@pytest.fixture(scope="module")
def bash_script() -> str:
    out = afk("completion", "bash")
    assert out.code == 0, out.err
    return out.out


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["afk", ""], list(COMMANDS)),
        (["afk", "appr"], ["approvals"]),
        (["afk", "approvals", ""], ["list", "show", "approve", "deny"]),
        (["afk", "approvals", "approve", "--grant-s"], ["--grant-scope"]),
        (["afk", "approvals", "approve", "--grant-scope", ""], ["thread", "agent", "user"]),
        (["afk", "runs", "list", "--status", "pa"], ["paused"]),
        # An option's value is skipped over when finding the command: "x" is not a command.
        (["afk", "runs", "list", "--store", "x", "--w"], ["--wide"]),
        (["afk", "policy", ""], ["check", "test"]),
        (["afk", "completion", ""], ["bash", "zsh", "fish"]),
    ],
)
def test_bash_offers_commands_options_and_values(
    bash_script: str, words: list[str], expected: list[str]
) -> None:
    assert _offers(bash_script, *words) == expected


def test_zsh_loads_the_bash_functions_through_bashcompinit(bash_script: str) -> None:
    out = afk("completion", "zsh")
    assert out.code == 0
    first, _, rest = out.out.partition("\n")
    assert first == "#compdef afk"
    assert "autoload -U +X bashcompinit && bashcompinit" in rest
    assert bash_script.split("\n", 1)[1] in out.out  # the same functions and complete line


def test_fish_completes_every_command_with_its_help() -> None:
    out = afk("completion", "fish")
    assert out.code == 0
    for name, (_, help_text) in COMMANDS.items():
        assert f"complete -c afk -n '__afk_at' -a '{name}' -d '{help_text}'" in out.out
    assert "complete -c afk -n '__afk_at approvals approve' -l 'grant-scope' -x -a" in out.out
    assert "complete -c afk -n '__afk_at policy check' -s 'h' -l 'help'" in out.out


def test_an_unknown_shell_is_a_usage_error() -> None:
    assert afk("completion", "tcsh").code == 2
