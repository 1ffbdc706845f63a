"""Where the Postgres tests get a server, decided once per test session.

In order: ``$AFK_TEST_POSTGRES``; else a server already answering at ``DEFAULT_DSN``; else a
throwaway server started from PostgreSQL's binaries (``initdb``/``pg_ctl``) in a temp dir and
removed at session end; else none, and every Postgres test is skipped with ``HINT`` (or, with
``$AFK_REQUIRE_POSTGRES=1``, as CI sets, the session refuses to start).

``choose`` is the pure selection (unit-tested); ``start_session``/``end_session`` act on it.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
DSN_ENV = "AFK_TEST_POSTGRES"
REQUIRE_ENV = "AFK_REQUIRE_POSTGRES"
# Where to look for initdb/pg_ctl instead of PATH and /usr/lib/postgresql/*/bin (os.pathsep
# separated; empty means nowhere): how a test run hides installed binaries.
BINDIRS_ENV = "AFK_TEST_PG_BINDIRS"
HOW = "set AFK_TEST_POSTGRES to a DSN or install PostgreSQL's server binaries (initdb, pg_ctl)"
HINT = f"Postgres tests skipped: no PostgreSQL server found; to run them, {HOW}."
Source = Literal["env", "default", "throwaway", "none"]


class PostgresUnavailable(RuntimeError):
    """No server could be found or started (the message says how to provide one)."""


@dataclass(frozen=True, kw_only=True)
class Choice:
    source: Source
    dsn: str = ""  # set for env/default; a throwaway server's DSN is known once it runs
    bindir: str = ""  # set for throwaway


def choose(
    env: Mapping[str, str],
    *,
    reachable: Callable[[str], bool],
    find_bindir: Callable[[Mapping[str, str]], str | None],
) -> Choice:
    """Which source the session uses. An explicit DSN is trusted as given: if it is wrong the
    tests fail, which is what someone who set it wants to see, not a silent skip."""
    if env.get(DSN_ENV):
        return Choice(source="env", dsn=env[DSN_ENV])
    if reachable(DEFAULT_DSN):
        return Choice(source="default", dsn=DEFAULT_DSN)
    bindir = find_bindir(env)
    if bindir is not None:
        return Choice(source="throwaway", bindir=bindir)
    return Choice(source="none")


def answers(dsn: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def find_bindir(env: Mapping[str, str]) -> str | None:
    """The first directory holding both initdb and pg_ctl (newest /usr/lib version first)."""
    if BINDIRS_ENV in env:
        candidates = [d for d in env[BINDIRS_ENV].split(os.pathsep) if d]
    else:
        on_path = shutil.which("initdb", path=env.get("PATH", os.defpath))
        found = [str(Path(on_path).resolve().parent)] if on_path else []
        versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True)
        candidates = found + versions
    for directory in candidates:
        if all(os.access(Path(directory, b), os.X_OK) for b in ("initdb", "pg_ctl")):
            return directory
    return None


def _version(bindir: str) -> tuple[int, ...]:
    name = Path(bindir).parent.name
    return tuple(int(p) for p in name.split(".") if p.isdigit())


def with_password(dsn: str, password: str) -> str:
    """``dsn`` (a URL) with ``password`` set for its user."""
    parts = urlsplit(dsn)
    user, _, host = parts.netloc.rpartition("@")
    user = user.split(":", 1)[0] or "postgres"
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


class ThrowawayServer:
    """A private cluster in a temp dir on a free 127.0.0.1 port, trusting local connections."""

    def __init__(self, bindir: str) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="afk-pg-"))
        self.data = self.root / "data"
        # initdb refuses to run as root: run the server as an unprivileged account instead.
        self.user = _server_user() if os.geteuid() == 0 else None
        if self.user is not None:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)

    def start(self) -> str:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--locale=C", "--no-sync")  # fmt: skip
        last = ""
        for _ in range(3):  # a free port can be taken between choosing and binding it
            port = _free_port()
            opts = (f"-c listen_addresses=127.0.0.1 -p {port} -k {self.root} "
                    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")  # fmt: skip
            done = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"),
                             "-w", "-t", "60", "-o", opts, "start", check=False)  # fmt: skip
            if done.returncode == 0:
                dsn = f"postgresql://postgres@127.0.0.1:{port}"
                _create_database(f"{dsn}/postgres", "test")
                return f"{dsn}/test"
            last = done.stdout + done.stderr + self._log()
        raise PostgresUnavailable(f"pg_ctl start failed in {self.root}:\n{last}")

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop",
                          check=False)  # fmt: skip
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(Path(self.bindir, tool)), *args]
        if self.user is not None:
            command = ["runuser", "-u", self.user.pw_name, "--", *command]
        # cwd: the server user may not be allowed into the caller's directory (e.g. /root).
        done = subprocess.run(
            command, cwd=self.root, capture_output=True, text=True, timeout=120, check=False
        )
        if check and done.returncode != 0:
            raise PostgresUnavailable(f"{tool} failed ({done.returncode}):\n{done.stderr}")
        return done

    def _log(self) -> str:
        log = self.root / "log"
        return log.read_text(errors="replace") if log.exists() else ""


def _server_user() -> pwd.struct_passwd:
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresUnavailable("running as root and no 'postgres' or 'nobody' account exists")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _create_database(dsn: str, name: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())


@dataclass(frozen=True, kw_only=True)
class Session:
    choice: Choice
    dsn: str  # "" when there is no server
    server: ThrowawayServer | None = None


_session: Session | None = None


def start_session(env: Mapping[str, str] = os.environ) -> Session:
    """Decide (and start a throwaway server if that is the choice); fails closed under
    ``$AFK_REQUIRE_POSTGRES`` when there is no server."""
    global _session
    choice = choose(env, reachable=answers, find_bindir=find_bindir)
    if choice.source == "none" and env.get(REQUIRE_ENV, "") not in ("", "0"):
        raise PostgresUnavailable(
            f"{REQUIRE_ENV} is set but no PostgreSQL server was found: {HOW}."
        )
    server = ThrowawayServer(choice.bindir) if choice.source == "throwaway" else None
    dsn = choice.dsn
    if server is not None:
        try:
            dsn = server.start()
        except BaseException:
            server.stop()  # leave no half-made cluster behind
            raise
    _session = Session(choice=choice, dsn=dsn, server=server)
    return _session


def end_session() -> None:
    global _session
    if _session is not None and _session.server is not None:
        _session.server.stop()
    _session = None


def current() -> Session | None:
    return _session


def dsn() -> str:
    """The session's DSN; ``DEFAULT_DSN`` as a stand-in when there is none (for code that only
    builds store objects; whatever connects goes through the ``pg_dsn`` fixture, which skips)."""
    return _session.dsn if _session is not None and _session.dsn else DEFAULT_DSN


def drop_schema(dsn: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        # A test that left a connection open must fail loudly, not hang the suite.
        conn.execute("SET lock_timeout = '10s'")
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())


@dataclass(frozen=True, kw_only=True)
class PgSchema:
    """One test's fresh schema in the session's database."""

    dsn: str
    schema: str

    @property
    def url(self) -> str:
        return f"{self.dsn}?afk_schema={self.schema}"


def describe(session: Session) -> str:
    """The report-header line: where the Postgres tests run (the DSN shown without password)."""
    parts = urlsplit(session.dsn)
    shown = parts.netloc.rpartition("@")[2] + parts.path if parts.netloc else "(a key=value DSN)"
    return f"postgres tests: {session.choice.source} server at {shown}"
