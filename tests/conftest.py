"""Suite-wide settings. One fixed deployment key for every test (set at import, so the
subprocesses tests start inherit it too); tests of the key file take it away with
``monkeypatch.delenv``."""

from __future__ import annotations

import os

TEST_SECRET_KEY = "a1" * 32
os.environ.setdefault("AFK_SECRET_KEY", TEST_SECRET_KEY)
