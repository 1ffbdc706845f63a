"""``afk completion bash|zsh|fish``: a shell completion script for every command, sub-command,
option and option value.

Hand-written from the parser, not a completion library: a library that completes at each
TAB (argcomplete) would run ``afk`` and import every command module per key press, against
the lazy command table that keeps start-up cheap. Instead this command (run once, when the
shell starts) builds the whole parser and prints a static script; pressing TAB then runs
only the shell. The zsh script is the bash one through zsh's ``bashcompinit``.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

SHELLS = ("bash", "zsh", "fish")
_FILE_METAVARS = {"FILE", "POLICY", "PATH", "DIR"}
_FILE = "@file"  # an option whose value is a file name


@dataclass(frozen=True, slots=True, kw_only=True)
class Option:
    """One option of a command: its flags, help, the values it completes to, and whether it takes a
    value."""

    flags: tuple[str, ...]
    help: str
    values: tuple[str, ...] = ()  # the choices, or (_FILE,)
    takes_value: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """One command (``()`` is ``afk`` itself) and what may follow it."""

    path: tuple[str, ...]
    commands: tuple[tuple[str, str], ...]  # (name, help)
    options: tuple[Option, ...]
    words: tuple[str, ...]  # choices of its positional arguments (e.g. the shells here)


def register(subparsers: Any) -> None:
    """Add ``completion`` to the ``afk`` command's sub-parsers."""
    p = subparsers.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh or fish)",
        description="Print a completion script for SHELL. Load it from the shell's start-up "
        'file: bash: eval "$(afk completion bash)" in ~/.bashrc; zsh: eval "$(afk '
        'completion zsh)" in ~/.zshrc, after compinit; fish: afk completion fish > '
        "~/.config/fish/completions/afk.fish",
    )
    p.add_argument("shell", choices=SHELLS, metavar="SHELL", help="bash, zsh or fish")
    p.set_defaults(func=completion_command)


def completion_command(args: argparse.Namespace) -> int:
    """``afk completion SHELL``: print the completion script for SHELL. Returns 0."""
    from afk.cli.main import build_parser

    nodes = list(walk(build_parser(), ()))
    print({"bash": bash_script, "zsh": zsh_script, "fish": fish_script}[args.shell](nodes))
    return 0


# -- the parser as a tree ------------------------------------------------------------------
def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> Iterator[Node]:
    """Every command node of ``parser``, depth first, starting with the one at ``path``."""
    commands: list[tuple[str, str]] = []
    children: list[tuple[str, argparse.ArgumentParser]] = []
    options: list[Option] = []
    words: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, child in action.choices.items():
                commands.append((name, helps.get(name, "")))
                children.append((name, child))
        elif action.option_strings:
            options.append(_option(action))
        elif action.choices:
            words.extend(str(c) for c in action.choices)
    yield Node(path=path, commands=tuple(commands), options=tuple(options), words=tuple(words))
    for name, child in children:
        yield from walk(child, (*path, name))


def _option(action: argparse.Action) -> Option:
    takes_value = action.nargs != 0
    values: tuple[str, ...] = ()
    if action.choices:
        values = tuple(str(c) for c in action.choices)
    elif takes_value and str(action.metavar or "").upper() in _FILE_METAVARS:
        values = (_FILE,)
    return Option(
        flags=tuple(action.option_strings),
        help=_one_line(action.help),
        values=values,
        takes_value=takes_value,
    )


def _one_line(text: str | None) -> str:
    return " ".join((text or "").replace("%%", "%").split())


# -- bash and zsh --------------------------------------------------------------------------
_BASH_MAIN = r"""
_afk() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"
    local path="" word subs opts valued words i
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${COMP_WORDS[i]}"
        _afk_node "$path"
        if [[ "$word" == -* ]]; then
            [[ " $valued " == *" $word "* ]] && ((i++))
        elif [[ " $subs " == *" $word "* ]]; then
            path="${path:+$path }$word"
        fi
    done
    _afk_node "$path"
    if [[ $COMP_CWORD -gt 1 && " $valued " == *" $prev "* ]]; then
        local values
        values="$(_afk_values "$path" "$prev")"
        if [[ "$values" == "@file" ]]; then
            COMPREPLY=($(compgen -f -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$values" -- "$cur"))
        fi
        return 0
    fi
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    else
        COMPREPLY=($(compgen -W "$subs $words" -- "$cur"))
    fi
    return 0
}
complete -o default -F _afk afk
"""


def bash_script(nodes: list[Node]) -> str:
    """The bash completion script for ``nodes``."""
    node_cases, value_cases = [], []
    for node in nodes:
        key = shlex.quote(" ".join(node.path)) if node.path else '""'
        subs = " ".join(name for name, _ in node.commands)
        opts = " ".join(f for o in node.options for f in o.flags)
        valued = " ".join(f for o in node.options if o.takes_value for f in o.flags)
        words = " ".join(node.words)
        node_cases.append(
            f"        {key}) subs={shlex.quote(subs)}; opts={shlex.quote(opts)}; "
            f"valued={shlex.quote(valued)}; words={shlex.quote(words)} ;;"
        )
        for option in node.options:
            if option.values:
                pattern = "|".join(
                    shlex.quote(f"{' '.join(node.path)}|{flag}") for flag in option.flags
                )
                value_cases.append(
                    f"        {pattern}) echo {shlex.quote(' '.join(option.values))} ;;"
                )
    return "\n".join(
        [
            '# afk completion for bash; load it with:  eval "$(afk completion bash)"',
            "_afk_node() {",
            '    subs=""; opts=""; valued=""; words=""',
            '    case "$1" in',
            *node_cases,
            "    esac",
            "}",
            "_afk_values() {",
            '    case "$1|$2" in',
            *value_cases,
            "    esac",
            "}",
            _BASH_MAIN.strip(),
        ]
    )


def zsh_script(nodes: list[Node]) -> str:
    """The zsh completion script: the bash one loaded through ``bashcompinit``."""
    return "\n".join(
        [
            "#compdef afk",
            '# afk completion for zsh; load it with:  eval "$(afk completion zsh)" (after '
            "compinit)",
            "autoload -U +X bashcompinit && bashcompinit",
            bash_script(nodes).split("\n", 1)[1],
        ]
    )


# -- fish ----------------------------------------------------------------------------------
_FISH_PATH = r"""
function __afk_path --description 'the afk command words typed so far'
    set -l path
    set -l skip 0
    for word in (commandline -opc)[2..-1]
        if test $skip -eq 1
            set skip 0
        else if string match -q -- '-*' $word
            if contains -- $word (__afk_valued "$path")
                set skip 1
            end
        else if contains -- $word (__afk_subs "$path")
            set path $path $word
        end
    end
    echo "$path"
end

function __afk_at --description 'whether the afk command typed so far is $argv'
    test (__afk_path) = "$argv"
end
"""


def fish_script(nodes: list[Node]) -> str:
    """The fish completion script for ``nodes``."""
    subs_cases, valued_cases, lines = [], [], []
    for node in nodes:
        here = " ".join(node.path)
        names = _fish_words([n for n, _ in node.commands])
        subs_cases.append(f"        case {_fish(here)}\n            printf '%s\\n' {names}")
        valued = _fish_words([f for o in node.options if o.takes_value for f in o.flags])
        valued_cases.append(f"        case {_fish(here)}\n            printf '%s\\n' {valued}")
        at = _fish(f"__afk_at {here}".rstrip())
        for name, help_text in node.commands:
            lines.append(f"complete -c afk -n {at} -a {_fish(name)} -d {_fish(help_text)}")
        for word in node.words:
            lines.append(f"complete -c afk -n {at} -a {_fish(word)}")
        for option in node.options:
            lines.append(_fish_option(at, option))
    return "\n".join(
        [
            "# afk completion for fish; save it with:  afk completion fish > "
            "~/.config/fish/completions/afk.fish",
            'function __afk_subs\n    switch "$argv"',
            *subs_cases,
            "    end\nend",
            'function __afk_valued\n    switch "$argv"',
            *valued_cases,
            "    end\nend",
            _FISH_PATH.strip(),
            "complete -c afk -f",
            *lines,
        ]
    )


def _fish_option(at: str, option: Option) -> str:
    parts = ["complete -c afk -n", at]
    for flag in option.flags:
        parts.append(f"-l {_fish(flag[2:])}" if flag.startswith("--") else f"-s {_fish(flag[1:])}")
    if option.values == (_FILE,):
        parts.append("-r -F")
    elif option.values:
        parts.append(f"-x -a {_fish(' '.join(option.values))}")
    elif option.takes_value:
        parts.append("-x")
    if option.help:
        parts.append(f"-d {_fish(option.help)}")
    return " ".join(parts)


def _fish(text: str) -> str:
    """A fish single-quoted word (fish escapes only \\ and ' inside one)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish_words(words: list[str]) -> str:
    return " ".join(_fish(w) for w in words) or "''"


__all__ = [
    "SHELLS",
    "Node",
    "Option",
    "bash_script",
    "completion_command",
    "fish_script",
    "register",
    "walk",
    "zsh_script",
]
