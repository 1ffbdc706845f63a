"""The deployment secret: keys, keyrings, where they come from, and the SQLite key file."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pg_support
import pytest

from afk.audit.keys import (
    KEY_ENV,
    MAKE_ONE,
    PREVIOUS_ENV,
    Keyring,
    SecretKey,
    keyring_from_env,
    load_key_file,
    parse_secret,
    sqlite_keyring,
)
from afk.errors import ConfigurationError
from afk.store import PostgresStore, SQLiteStore, open_store

SECRET = bytes(range(32))
PG_DSN = pg_support.dsn()  # only builds store objects: needs no server


def test_a_key_names_itself_and_never_shows_its_secret() -> None:
    key = SecretKey(secret=SECRET)
    assert key.key_id == hashlib.sha256(b"afk-key-id" + SECRET).hexdigest()[:12]
    assert SECRET.hex() not in repr(key) and repr(key) == f"SecretKey(key_id={key.key_id!r})"
    assert SECRET.hex() not in repr(Keyring(key)) and str(SECRET) not in repr(Keyring(key))


@pytest.mark.parametrize("secret", [b"", b"x" * 31, "not bytes" * 8])
def test_a_short_or_non_bytes_secret_is_refused(secret: object) -> None:
    with pytest.raises(ConfigurationError, match="at least 32 bytes") as info:
        SecretKey(secret=secret)  # type: ignore[arg-type]
    assert MAKE_ONE in str(info.value)


def test_mac_is_hmac_sha256_of_the_canonical_purpose_and_value() -> None:
    keys = Keyring(SecretKey(secret=SECRET))
    tag = keys.mac("runs", {"b": 1, "a": "é"})
    message = json.dumps(["runs", {"a": "é", "b": 1}], separators=(",", ":"), ensure_ascii=False)
    expected = hmac.new(SECRET, message.encode(), hashlib.sha256).hexdigest()
    assert tag == f"{keys.key_id}:{expected}"
    assert keys.verify("runs", {"a": "é", "b": 1}, tag)
    assert not keys.verify("requests", {"a": "é", "b": 1}, tag)  # another purpose
    assert not keys.verify("runs", {"a": "é", "b": 2}, tag)
    assert not keys.verify("runs", {"a": "é", "b": 1}, "000000000000:" + expected)  # unknown id
    assert not keys.verify("runs", {"a": "é", "b": 1}, expected)  # no key id at all
    assert not keys.verify("runs", {"a": "é", "b": 1}, None)
    assert keys.digest({"amount": 5}) == keys.mac("args", {"amount": 5})


def test_older_keys_verify_but_never_sign() -> None:
    old, new = SecretKey(secret=SECRET), SecretKey(secret=bytes(32))
    before = Keyring(old).mac("runs", {"x": 1})
    rotated = Keyring(new, (old,))
    assert rotated.verify("runs", {"x": 1}, before)
    assert rotated.mac("runs", {"x": 1}).startswith(new.key_id + ":")
    assert not Keyring(new).verify("runs", {"x": 1}, before)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("ab" * 32, bytes.fromhex("ab" * 32)),
        ("  " + "CD" * 40 + "\n", bytes.fromhex("cd" * 40)),
        ("correct horse battery staple, and more", b"correct horse battery staple, and more"),
        ("ab" * 20, b"ab" * 20),  # hex of 20 bytes is too little key: read as 40 characters
    ],
)
def test_parse_secret(text: str, secret: bytes) -> None:
    assert parse_secret(text, "X").secret == secret


def test_a_short_variable_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "too short")
    with pytest.raises(ConfigurationError) as info:
        keyring_from_env()
    message = str(info.value)
    assert message.startswith(f"{KEY_ENV} is too short") and MAKE_ONE in message


def test_previous_keys_come_from_their_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "11" * 32)
    monkeypatch.setenv(PREVIOUS_ENV, f"{'22' * 32}, {'33' * 32}")
    keys = keyring_from_env()
    assert keys is not None
    assert keys.current.secret == bytes.fromhex("11" * 32)
    assert [k.secret for k in keys.previous] == [bytes.fromhex(x * 32) for x in ("22", "33")]
    monkeypatch.setenv(PREVIOUS_ENV, "short")
    with pytest.raises(ConfigurationError, match=f"{PREVIOUS_ENV} item 1 is too short"):
        keyring_from_env()
    monkeypatch.delenv(KEY_ENV)
    monkeypatch.delenv(PREVIOUS_ENV)
    assert keyring_from_env() is None


def test_sqlite_without_the_variable_makes_a_private_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV)
    db = tmp_path / "runs.db"
    store = SQLiteStore(db)
    key_file = tmp_path / "runs.db.key"
    assert not key_file.exists()  # made on first use, not at construction
    keys = store.keys
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert keys.current.secret == bytes.fromhex(key_file.read_text().strip())
    assert SQLiteStore(db).keys == keys  # the next store (and process) reads the same key
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.db.key"]  # no temp file left
    monkeypatch.setenv(KEY_ENV, "ee" * 32)
    assert SQLiteStore(db).keys.current.secret == bytes.fromhex("ee" * 32)  # the variable wins


def test_a_key_file_others_can_read_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV)
    key_file = tmp_path / "runs.db.key"
    key_file.write_text("ab" * 32)
    key_file.chmod(0o640)
    with pytest.raises(ConfigurationError) as info:
        sqlite_keyring(str(tmp_path / "runs.db"))
    assert str(key_file) in str(info.value) and f"chmod 600 {key_file}" in str(info.value)


def test_a_key_file_that_cannot_be_made_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV)
    path = "/proc/afk-no-such-dir/runs.db.key"  # not creatable, even by root
    with pytest.raises(ConfigurationError) as info:
        load_key_file(path)
    assert path in str(info.value) and KEY_ENV in str(info.value)


RACE = """
import sys
from afk.audit.keys import load_key_file
print(load_key_file(sys.argv[1]).key_id)
"""


def test_processes_racing_to_make_the_key_file_agree(tmp_path: Path) -> None:
    path = str(tmp_path / "runs.db.key")
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, path], env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(6)
    ]
    ids = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert ids == {load_key_file(path).key_id}


def test_postgres_needs_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(ConfigurationError, match=KEY_ENV) as info:
        PostgresStore(PG_DSN, schema="afk_nokey")
    assert MAKE_ONE in str(info.value)
    with pytest.raises(ConfigurationError, match=KEY_ENV):
        open_store(f"{PG_DSN}?afk_schema=afk_nokey")
    keys = Keyring(SecretKey(secret=SECRET))
    assert PostgresStore(PG_DSN, schema="afk_nokey", keys=keys).keys is keys


def test_open_store_passes_keys_through(tmp_path: Path) -> None:
    keys = Keyring(SecretKey(secret=SECRET))
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}", keys=keys)
    assert store.keys is keys
    assert open_store(str(tmp_path / "b.db"), keys=keys).keys is keys
    with pytest.raises(ConfigurationError, match="a store object keeps its own"):
        open_store(store, keys=keys)
    with pytest.raises(ConfigurationError, match="must be a Keyring"):
        PostgresStore(PG_DSN, keys="secret")  # type: ignore[arg-type]
