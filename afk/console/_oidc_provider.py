"""The OpenID provider as the console's OIDC login talks to it: discovery, the JWKS, the
authorization URL (PKCE S256), the code exchange and the ID token's verification.

Authlib does the OAuth 2.0 half (its httpx client builds the authorization URL with the
S256 code challenge and exchanges the code with the verifier and the client's credentials)
and lends its OpenID Connect claim rules (``CodeIDToken``: nonce, azp, at_hash); joserfc, its
JOSE library, checks the signature against the provider's JWKS. Issuer, audience, expiry and
issued-at are made essential here: Authlib's own ``parse_id_token`` checks the audience only
through ``azp``, which a token with a foreign audience and a matching ``azp`` would pass.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import httpx
import httpx2
from authlib.integrations.base_client import OAuthError  # type: ignore[import-untyped]
from authlib.integrations.httpx_client import AsyncOAuth2Client  # type: ignore[import-untyped]
from authlib.oidc.core import CodeIDToken  # type: ignore[import-untyped]
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

if TYPE_CHECKING:
    from afk.console.oidc import OIDCConfig

# Only public-key signatures: "none" proves nothing, and an HMAC under the client secret
# would let anyone holding the secret mint logins.
ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
LEEWAY_S = 60  # clock skew between this host and the provider
JWKS_REFRESH_S = 60  # an unknown key id refetches the JWKS at most this often
# Authlib speaks httpx2, or httpx where httpx2 is missing (an older install).
_HTTP_ERRORS = (httpx2.HTTPError, httpx.HTTPError)


class _ProviderError(Exception):
    """The provider could not be used or refused (``reason`` for the log): control flow,
    caught by the login, which answers a page and starts no session."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class Provider:
    """One OpenID provider, its discovery document and keys cached after first use."""

    def __init__(self, config: OIDCConfig) -> None:
        self.config = config
        self._metadata: dict[str, Any] | None = None
        self._jwks: KeySet | None = None
        self._refreshed_at = float("-inf")  # the last refetch an unknown key id caused

    def _client(self) -> Any:
        metadata = self._metadata or {}
        method = "none" if self.config.client_secret is None else "client_secret_basic"
        supported = metadata.get("token_endpoint_auth_methods_supported") or []
        if method == "client_secret_basic" and supported and method not in supported:
            method = "client_secret_post"
        return AsyncOAuth2Client(
            client_id=self.config.client_id,
            client_secret=self.config.client_secret,
            token_endpoint_auth_method=method,
            scope=" ".join(self.config.scopes),
            redirect_uri=self.config.redirect_url,
            code_challenge_method="S256",
            timeout=self.config.timeout_s,
            follow_redirects=False,
        )

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with self._client() as client:
                response = await client.request("GET", url, withhold_token=True)
        except _HTTP_ERRORS as exc:
            raise _ProviderError(f"GET {url} failed: {exc!r}") from None
        if response.status_code != 200:
            raise _ProviderError(f"GET {url} answered {response.status_code}")
        try:
            data = response.json()
        except ValueError:
            raise _ProviderError(f"GET {url} did not answer JSON") from None
        if not isinstance(data, dict):
            raise _ProviderError(f"GET {url} did not answer a JSON object")
        return data

    async def metadata(self) -> dict[str, Any]:
        """The discovery document, checked: its issuer is the configured one, exactly (OIDC
        Discovery 1.0, section 4.3), and it names the endpoints a code flow needs."""
        if self._metadata is not None:
            return self._metadata
        url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        data = await self._get_json(url)
        if data.get("issuer") != self.config.issuer:
            raise _ProviderError(
                f"the discovery document names issuer {data.get('issuer')!r}, "
                f"not {self.config.issuer!r}"
            )
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(data.get(name), str):
                raise _ProviderError(f"the discovery document has no {name}")
        self._metadata = data
        return data

    def algorithms(self) -> list[str]:
        """The signing algorithms an ID token may use: the provider's, public-key only."""
        offered = (self._metadata or {}).get("id_token_signing_alg_values_supported")
        if not isinstance(offered, list) or not offered:
            offered = ["RS256"]  # the default OIDC Discovery names
        return sorted(a for a in offered if a in ASYMMETRIC)

    async def _keys(self, *, refresh: bool = False) -> KeySet:
        if self._jwks is not None and not refresh:
            return self._jwks
        if self._jwks is not None:  # an unknown key id: refetch, but not on every forged token
            now = time.monotonic()
            if now - self._refreshed_at < JWKS_REFRESH_S:
                return self._jwks
            self._refreshed_at = now
        metadata = await self.metadata()
        data = await self._get_json(metadata["jwks_uri"])
        try:
            self._jwks = KeySet.import_key_set(data)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise _ProviderError(f"the provider's JWKS does not load: {exc!r}") from None
        return self._jwks

    async def authorization_url(self, *, state: str, nonce: str, verifier: str) -> str:
        """Where to send the browser: the authorization endpoint with the code flow's
        parameters, ``state``, ``nonce`` and the S256 challenge of ``verifier``."""
        metadata = await self.metadata()
        async with self._client() as client:
            url, _ = client.create_authorization_url(
                metadata["authorization_endpoint"],
                state=state,
                code_verifier=verifier,
                nonce=nonce,
                response_type="code",
            )
        return str(url)

    async def exchange(self, code: str, verifier: str) -> dict[str, Any]:
        """The token response for ``code`` (sent with the PKCE ``verifier``)."""
        metadata = await self.metadata()
        try:
            async with self._client() as client:
                token = await client.fetch_token(
                    metadata["token_endpoint"],
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=verifier,
                )
        except OAuthError as exc:
            raise _ProviderError(f"the token endpoint refused the code: {exc}") from None
        except _HTTP_ERRORS as exc:
            raise _ProviderError(f"the token endpoint failed: {exc!r}") from None
        except ValueError as exc:  # a body that is not a token response
            raise _ProviderError(f"the token endpoint answered no token: {exc}") from None
        return dict(token)

    async def verify(
        self, id_token: str, *, nonce: str, access_token: str | None
    ) -> dict[str, Any]:
        """The ID token's claims, once its signature (a JWKS key), issuer, audience, expiry,
        issued-at and nonce (and azp, at_hash where present) all check out."""
        algorithms = self.algorithms()
        if not algorithms:
            raise _ProviderError("the provider signs ID tokens with no public-key algorithm")
        try:
            try:
                token = jwt.decode(id_token, await self._keys(), algorithms=algorithms)
            except InvalidKeyIdError:  # the provider may have rotated its keys
                token = jwt.decode(id_token, await self._keys(refresh=True), algorithms=algorithms)
            options = {
                "iss": {"essential": True, "value": self.config.issuer},
                "aud": {"essential": True, "value": self.config.client_id},
                "sub": {"essential": True},
                "exp": {"essential": True},
                "iat": {"essential": True},
            }
            params: dict[str, Any] = {"nonce": nonce, "client_id": self.config.client_id}
            if access_token:
                params["access_token"] = access_token
            claims = CodeIDToken(token.claims, token.header, options, params)
            claims.validate(leeway=LEEWAY_S)
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise _ProviderError(f"the ID token does not verify: {exc!r}") from None
        return dict(claims)


__all__ = ["ASYMMETRIC", "Provider"]
