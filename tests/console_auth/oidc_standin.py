"""An OpenID provider stand-in on 127.0.0.1: discovery, JWKS, ``/authorize`` (which logs in
whoever the test says and redirects back with a code) and ``/token`` (which checks the
client's credentials, the code's single use, the redirect URI and the PKCE verifier, and
answers a signed ID token). ``Behaviour`` bends the ID token for the refusal tests."""

from __future__ import annotations

import base64
import hashlib
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import uvicorn
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

CLIENT_ID = "afk-console"
CLIENT_SECRET = "s3cret-of-the-console"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Behaviour:
    """Who logs in at ``/authorize`` and how the next ID tokens are bent."""

    claims: dict[str, Any] = field(
        default_factory=lambda: {
            "sub": "u-123",
            "email": "Alice@Example.com",
            "email_verified": True,
            "name": "Alice",
        }
    )
    aud: Any = None  # None: the client id
    iss: str | None = None  # None: the issuer
    nonce: str | None = None  # None: the one /authorize was given
    exp_in: int = 300
    wrong_key: bool = False  # sign with a key the JWKS does not hold (same kid)
    kid: str = "key-1"
    alg: str = "RS256"


@dataclass
class Provider:
    """The stand-in's state, read by the tests."""

    base: str
    behaviour: Behaviour
    key: RSAKey
    other_key: RSAKey
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    used_codes: set[str] = field(default_factory=set)
    token_calls: list[dict[str, Any]] = field(default_factory=list)
    pkce_checked: int = 0
    issuer_in_metadata: str | None = None
    jwks_kid: str = "key-1"
    jwks_fetches: int = 0

    def id_token(self, grant: dict[str, Any]) -> str:
        b = self.behaviour
        now = int(time.time())
        claims = {
            **b.claims,
            "iss": b.iss if b.iss is not None else self.base,
            "aud": b.aud if b.aud is not None else CLIENT_ID,
            "iat": now,
            "exp": now + b.exp_in,
            "nonce": b.nonce if b.nonce is not None else grant["nonce"],
        }
        key = self.other_key if b.wrong_key else self.key
        return jwt.encode({"alg": b.alg, "kid": b.kid}, claims, key)


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _app(p: Provider) -> Starlette:
    async def discovery(request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": p.issuer_in_metadata or p.base,
                "authorization_endpoint": f"{p.base}/authorize",
                "token_endpoint": f"{p.base}/token",
                "jwks_uri": f"{p.base}/jwks",
                "response_types_supported": ["code"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            }
        )

    async def jwks(request: Request) -> Response:
        p.jwks_fetches += 1
        return JSONResponse({"keys": [p.key.as_dict(private=False, kid=p.jwks_kid)]})

    async def authorize(request: Request) -> Response:
        q = request.query_params
        wanted = {"response_type": "code", "client_id": CLIENT_ID, "code_challenge_method": "S256"}
        for name, value in wanted.items():
            if q.get(name) != value:
                return JSONResponse({"error": "invalid_request", "field": name}, status_code=400)
        if not q.get("code_challenge") or not q.get("state") or not q.get("nonce"):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        if "openid" not in (q.get("scope") or "").split():
            return JSONResponse({"error": "invalid_scope"}, status_code=400)
        code = secrets.token_urlsafe(16)
        p.codes[code] = {
            "challenge": q["code_challenge"],
            "nonce": q["nonce"],
            "redirect_uri": q["redirect_uri"],
        }
        back = q["redirect_uri"] + "?" + urlencode({"code": code, "state": q["state"]})
        return RedirectResponse(back, status_code=302)

    async def token(request: Request) -> Response:
        form = dict(await request.form())
        p.token_calls.append({"form": form, "authorization": request.headers.get("authorization")})
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("authorization") != expected:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        code = str(form.get("code", ""))
        if form.get("grant_type") != "authorization_code" or code not in p.codes:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        if code in p.used_codes:
            return JSONResponse({"error": "invalid_grant", "why": "replayed"}, status_code=400)
        p.used_codes.add(code)
        grant = p.codes[code]
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return JSONResponse({"error": "invalid_grant", "why": "redirect"}, status_code=400)
        verifier = str(form.get("code_verifier", ""))
        if not verifier or _s256(verifier) != grant["challenge"]:
            return JSONResponse({"error": "invalid_grant", "why": "pkce"}, status_code=400)
        p.pkce_checked += 1
        return JSONResponse(
            {
                "access_token": secrets.token_urlsafe(16),
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": p.id_token(grant),
            }
        )

    return Starlette(
        routes=[
            Route("/.well-known/openid-configuration", discovery),
            Route("/jwks", jwks),
            Route("/authorize", authorize),
            Route("/token", token, methods=["POST"]),
        ]
    )


@contextmanager
def running() -> Iterator[Provider]:
    """The stand-in, serving on a free 127.0.0.1 port until the block ends."""
    port = free_port()
    p = Provider(
        base=f"http://127.0.0.1:{port}",
        behaviour=Behaviour(),
        key=RSAKey.generate_key(2048),
        other_key=RSAKey.generate_key(2048),
    )
    server = uvicorn.Server(uvicorn.Config(_app(p), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise AssertionError("the OIDC stand-in did not start")
        time.sleep(0.02)
    try:
        yield p
    finally:
        server.should_exit = True
        thread.join(timeout=10)
