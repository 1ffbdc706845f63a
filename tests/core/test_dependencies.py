"""Dependencies point one way: the run loop (afk.core._run) calls the machinery below it,
which gets the run's facts and services as inputs and never a reference back to the run;
and the packages below the core (agents, approvals, llms, tools, store, audit) never
import it. Checked on the source, so a type-only import counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import afk

ROOT = Path(afk.__file__).parent
# Everything afk.core._run drives; each receives RunFacts and its services.
BELOW_THE_LOOP = (
    "_asking",
    "_call",
    "_durable",
    "_emitter",
    "_facts",
    "_fallback",
    "_gate",
    "_records",
    "_setup",
    "_snapshot",
    "_tool_call",
)
BELOW_THE_CORE = ("agents", "approvals", "llms", "tools", "store", "audit")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("name", BELOW_THE_LOOP)
def test_the_machinery_below_the_loop_does_not_import_it(name: str) -> None:
    imported = _imports(ROOT / "core" / f"{name}.py")
    upward = {m for m in imported if m in ("afk.core._run", "afk.core.runner")}
    upward |= {m for m in imported if m.startswith(("afk.core._run.", "afk.core.runner."))}
    assert not upward, f"afk.core.{name} imports {sorted(upward)}"


@pytest.mark.parametrize("name", BELOW_THE_LOOP)
def test_the_machinery_below_the_loop_holds_no_run(name: str) -> None:
    tree = ast.parse((ROOT / "core" / f"{name}.py").read_text())
    held = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr == "run"
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    ]
    assert not held, f"afk.core.{name} keeps self.run (lines {held})"


@pytest.mark.parametrize("package", BELOW_THE_CORE)
def test_packages_below_the_core_never_import_it(package: str) -> None:
    for path in sorted((ROOT / package).rglob("*.py")):
        upward = {m for m in _imports(path) if m.startswith(("afk.core", "afk.cli"))}
        assert not upward, f"{path.relative_to(ROOT.parent)} imports {sorted(upward)}"


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from afk.core._run import Run\n"
    )
    assert "afk.core._run" in _imports(sample)
