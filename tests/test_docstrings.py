"""Every public class, function and method afk defines says what it is for.

"Public" is what ``tests/test_public_api.py`` locks: every name in the ``__all__`` of every
module whose dotted path has no part starting with ``_``. A class's public methods and
properties count too, when afk defines them (not when they come from pydantic or the standard
library). A dataclass's generated ``Name(field, ...)`` text is not a docstring. An override
of a method that an afk base class documents shares that docstring, as ``help()`` shows it.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from typing import Any

import afk

# Items still to document (empty: every public item has its docstring).
PENDING: set[str] = set()

NOT_IMPORTABLE = {"afk.__main__"}


def _public_modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages(afk.__path__, "afk.")]
    names = [n for n in names if n not in NOT_IMPORTABLE]
    return ["afk", *(n for n in names if not any(p.startswith("_") for p in n.split(".")))]


def _is_afk(obj: object) -> bool:
    return str(getattr(obj, "__module__", "")).split(".")[0] == "afk"


def _own_doc(cls: type) -> str | None:
    doc = vars(cls).get("__doc__")
    if not isinstance(doc, str) or not doc.strip():
        return None
    # dataclasses write "Name(field: type, ...)" when the class has no docstring.
    if doc.startswith(f"{cls.__name__}("):
        return None
    return doc


def _member_doc(member: object) -> str | None:
    if isinstance(member, (staticmethod, classmethod)):
        member = member.__func__
    doc = getattr(member, "__doc__", None)
    return doc if isinstance(doc, str) and doc.strip() else None


def _is_member(member: object) -> bool:
    return isinstance(member, (staticmethod, classmethod, property)) or inspect.isfunction(member)


def _documented_in_afk_base(cls: type, name: str) -> bool:
    for base in cls.__mro__[1:]:
        if _is_afk(base) and name in vars(base) and _member_doc(vars(base)[name]):
            return True
    return False


def _class_items(cls: type) -> Iterator[tuple[str, bool]]:
    """(qualified name, documented) for the class and each public member afk defines."""
    yield f"{cls.__module__}.{cls.__qualname__}", _own_doc(cls) is not None
    for klass in cls.__mro__:
        if not _is_afk(klass):
            continue
        for name, member in vars(klass).items():
            if name.startswith("_") or not _is_member(member):
                continue
            documented = _member_doc(member) is not None or _documented_in_afk_base(klass, name)
            yield f"{klass.__module__}.{klass.__qualname__}.{name}", documented


def _items() -> dict[str, bool]:
    found: dict[str, bool] = {}
    for module_name in _public_modules():
        module: Any = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) and _is_afk(obj):
                found.update(_class_items(obj))
            elif inspect.isfunction(obj) and _is_afk(obj):
                found[f"{obj.__module__}.{obj.__qualname__}"] = _member_doc(obj) is not None
    return found


def test_the_walk_finds_the_public_surface() -> None:
    # Guards the test itself: a walk that found nothing would pass vacuously.
    items = _items()
    assert "afk.core.runner.Runner" in items
    assert "afk.core.runner.Runner.run_sync" in items
    assert "afk.core.result.RunResult" in items
    assert len(items) > 200


def test_every_public_class_function_and_method_has_a_docstring() -> None:
    items = _items()
    missing = sorted(name for name, documented in items.items() if not documented)
    undocumented = [m for m in missing if m not in PENDING]
    assert not undocumented, "public items with no docstring:\n" + "\n".join(undocumented)


def test_pending_only_names_items_still_undocumented() -> None:
    items = _items()
    stale = sorted(name for name in PENDING if items.get(name, True))
    assert not stale, "PENDING names documented or vanished items:\n" + "\n".join(stale)
