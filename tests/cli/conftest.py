from pathlib import Path

import pytest
from identity_support import operator_identities


@pytest.fixture(autouse=True)
def _operator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    operator_identities(tmp_path, monkeypatch)
