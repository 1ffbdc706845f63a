"""A decision builds only the entry kinds it writes: ``afk.audit.entries`` loads with the
decision kinds, and the others, the ``Entry`` union and the ``from_log`` registry load on first
use, from whichever name they are asked for by, as the same objects."""

from __future__ import annotations

import json
import subprocess
import sys
import typing
from types import ModuleType

import pytest

import afk.audit
import afk.audit.entries
from afk.audit.entries import _codec, _kinds

LATER = (
    "afk.audit.entries._run_kinds",
    "afk.audit.entries._other_kinds",
    "afk.audit.entries._registry",
)


def fresh(code: str) -> typing.Any:
    """What ``code`` (run in a fresh interpreter) prints as its last line, as JSON."""
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_importing_the_ledger_builds_only_what_a_decision_writes() -> None:
    loaded = fresh(
        "import json, sys\n"
        "import afk.audit.entries\n"
        "from afk.audit.entries import DecisionRefused, RequestDecided, TamperDetected, VoteCast\n"
        f"print(json.dumps([m for m in {LATER!r} if m in sys.modules]))\n"
    )
    assert loaded == []


def test_from_log_reads_every_kind_in_a_process_that_loaded_only_the_decision_kinds() -> None:
    # A grant's row, read where nothing had built the grant kinds: the registry is built then.
    kind, cls, refused = fresh(
        "import json\n"
        "from afk.audit.entries import LedgerEntryError, from_log\n"
        "from afk.store.store import LogEntry\n"
        "entry = from_log(LogEntry(kind='grant_used', run_id='r', payload=json.dumps(\n"
        "    {'grant_id': 'g', 'tool': 't', 'tool_call_id': 'c'})))\n"
        "try:\n"
        "    from_log(LogEntry(kind='nope', run_id='r'))\n"
        "except LedgerEntryError as exc:\n"
        "    refused = str(exc)\n"
        "print(json.dumps([entry.kind, type(entry).__name__, refused]))\n"
    )
    assert (kind, cls) == ("grant_used", "GrantUsed")
    assert "request_opened" in refused and "grant_used" in refused and "decided" in refused


def test_every_name_is_the_same_object_from_every_module_that_exports_it() -> None:
    for name in afk.audit.entries.__all__:
        value = getattr(afk.audit.entries, name)
        if name in _kinds.__all__:
            assert getattr(_kinds, name) is value, name
        if name in _codec.__all__:
            assert getattr(_codec, name) is value, name
        if name in afk.audit.__all__:
            assert getattr(afk.audit, name) is value, name
    assert afk.audit.entries.ENTRY_KINDS is _codec.ENTRY_KINDS
    assert set(afk.audit.entries.ENTRY_KINDS.values()) == set(_kinds.ENTRY_CLASSES)
    assert set(typing.get_args(_kinds.Entry)) == set(_kinds.ENTRY_CLASSES)
    assert set(afk.audit.entries.__all__) <= set(dir(afk.audit.entries))


@pytest.mark.parametrize("module", [afk.audit.entries, _kinds, _codec], ids=lambda m: m.__name__)
def test_a_name_no_module_exports_is_still_an_attribute_error(module: ModuleType) -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        module.Nope  # noqa: B018


def test_verify_and_export_load_on_first_use_and_verify_stays_the_function() -> None:
    """Every store command loads afk.audit (afk.audit.keys is in it); verify and export load
    when first asked for. ``afk.audit.verify`` is the function whichever is imported first,
    the package's name or the module of the same name."""
    assert (
        fresh(
            "import json, sys\n"
            "import afk.audit\n"
            "print(json.dumps([m for m in ('afk.audit.verify', 'afk.audit.export') "
            "if m in sys.modules]))\n"
        )
        == []
    )
    for first in ("import afk.audit.verify", "from afk.audit.verify import VerifyReport", ""):
        kinds = fresh(
            "import json\n"
            f"{first}\n"
            "from afk.audit import verify, export_jsonl\n"
            "import afk.audit\n"
            "print(json.dumps([type(verify).__name__, type(afk.audit.verify).__name__, "
            "type(export_jsonl).__name__]))\n"
        )
        assert kinds == ["function", "function", "function"], first
