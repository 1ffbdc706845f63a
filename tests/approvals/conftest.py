"""Approval tests: ``store_url`` (SQLite and Postgres) comes from the root conftest."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _operator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from identity_support import operator_identities

    operator_identities(tmp_path, monkeypatch)
