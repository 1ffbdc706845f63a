"""Let the test's OS account decide ``--as`` anyone, as an operator would be configured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from afk.cli._identity import IDENTITIES_ENV, os_account


def operator_identities(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "identities.json"
    path.write_text(json.dumps({"accounts": {os_account()[1]: {"operator": True}}}))
    path.chmod(0o600)
    monkeypatch.setenv(IDENTITIES_ENV, str(path))
    return path
