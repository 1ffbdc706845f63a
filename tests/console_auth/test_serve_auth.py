"""``afk serve``'s authentication options as a person runs them: a real server on 127.0.0.1,
a proxy header from (and not from) a trusted address, an OIDC login over real sockets."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from oidc_standin import CLIENT_ID, CLIENT_SECRET, free_port, running

from afk.cli.main import main as afk_main
from afk.store import open_store

REPO = Path(__file__).resolve().parents[2]
USER = "X-Forwarded-User"


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'runs.db'}"

    async def make() -> None:
        store = open_store(url)
        await store.setup()
        await store.close()

    asyncio.run(make())
    return url


@contextmanager
def serving(store_url: str, *flags: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """``afk serve`` with ``flags`` on a free port; its base URL once it answers."""
    port = free_port()
    argv = [sys.executable, "-m", "afk", "serve", "--store", store_url, "--port", str(port)]
    proc = subprocess.Popen(
        [*argv, *flags],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{base}/api/v1/openapi.json", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(proc.communicate()[1].decode()) from None
                time.sleep(0.05)
        yield base
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_the_proxy_header_over_a_real_socket(store_url: str) -> None:
    flags = ("--proxy-header", USER, "--trusted-proxy", "127.0.0.1/32")
    with serving(store_url, *flags) as base:
        assert httpx.get(f"{base}/api/v1/requests", headers={USER: "alice"}).status_code == 200
        assert httpx.get(f"{base}/api/v1/requests").status_code == 401
        with httpx.Client(base_url=base) as browser:
            assert browser.get("/login/proxy", headers={USER: "alice"}).status_code == 303
            assert browser.get("/").status_code == 200  # the inbox, on the session alone


def test_an_untrusted_peer_cannot_borrow_a_trusted_address(store_url: str) -> None:
    # The proxy is elsewhere: a local caller's header is ignored, and X-Forwarded-For does
    # not make it the proxy (uvicorn's own proxy headers are off).
    flags = ("--proxy-header", USER, "--trusted-proxy", "10.9.9.9/32")
    with serving(store_url, *flags) as base:
        spoof = {USER: "alice", "X-Forwarded-For": "10.9.9.9", "X-Real-IP": "10.9.9.9"}
        assert httpx.get(f"{base}/api/v1/requests", headers=spoof).status_code == 401


def test_the_oidc_login_over_real_sockets(store_url: str) -> None:
    with running() as provider:
        flags = ("--oidc-issuer", provider.base, "--oidc-client-id", CLIENT_ID)
        env = {"AFK_OIDC_CLIENT_SECRET": CLIENT_SECRET}
        with serving(store_url, *flags, env=env) as base, httpx.Client(base_url=base) as browser:
            login = browser.get("/login?next=/requests/x")
            assert 'href="/login/oidc?next=/requests/x"' in login.text
            assert "Log in with your identity provider" in login.text
            start = browser.get("/login/oidc")
            assert start.status_code == 302
            authorized = httpx.get(start.headers["location"])
            back = authorized.headers["location"]
            assert back.startswith(f"{base}/login/oidc/callback?")
            done = browser.get(back)
            assert done.status_code == 303 and "afk_session" in browser.cookies
            page = browser.get("/")
            assert page.status_code == 200 and "alice@example.com" in page.text
            assert provider.pkce_checked == 1


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--proxy-header", USER], "needs --trusted-proxy"),
        (["--trusted-proxy", "127.0.0.1"], "needs --proxy-header"),
        (["--proxy-header", USER, "--trusted-proxy", "localhost"], "IP networks"),
        (["--oidc-client-id", "x"], "need --oidc-issuer"),
        (["--oidc-issuer", "https://idp.example"], "needs --oidc-client-id"),
        (["--oidc-issuer", "http://idp.example", "--oidc-client-id", "x"], "https://"),
        (
            ["--host", "0.0.0.0", "--oidc-issuer", "https://idp.example", "--oidc-client-id", "x"],
            "redirect_url",  # no default callback URL off loopback: it must be registered
        ),
    ],
)
def test_bad_options_are_refused_before_serving(
    store_url: str, flags: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert afk_main(["serve", "--store", store_url, *flags]) == 2
    assert says in capsys.readouterr().err


def test_help_documents_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        afk_main(["serve", "--help"])
    out = capsys.readouterr().out
    for flag in ("--proxy-header", "--trusted-proxy", "--oidc-issuer", "--oidc-allow-domain"):
        assert flag in out
    assert "AFK_OIDC_CLIENT_SECRET" in out
