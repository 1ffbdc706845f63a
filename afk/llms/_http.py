"""What the HTTP provider adapters share: the provider error family, retries, SSE parsing.

Errors are chosen from status codes and exception types only. Provider messages change
wording without notice, so matching on them would break silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import json
import random
import ssl
import threading
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, ClassVar, TypeVar

import httpx

from afk.canonical import check_json, strict_loads
from afk.errors import InvalidArgumentsError, ModelError
from afk.llms.messages import ToolCall

T = TypeVar("T")


class ProviderError(ModelError):
    """A provider call failed. ``body`` is the raw response body when there was one."""

    default_retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status_code: int | None = None,
        body: str | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        self.retryable = self.default_retryable if retryable is None else retryable
        self.provider = provider
        self.status_code = status_code
        self.body = body
        self.retry_after = retry_after
        super().__init__(message)


class ProviderAuthError(ProviderError):
    """HTTP 401/403: the key is missing, wrong or lacks access to the model."""


class ProviderRateLimitError(ProviderError):
    """HTTP 429."""

    default_retryable = True


class ProviderServerError(ProviderError):
    """HTTP 5xx (and Anthropic's 529 "overloaded")."""

    default_retryable = True


class ProviderConnectionError(ProviderError):
    """The server could not be reached, dropped the connection, or did not answer in time."""

    default_retryable = True


class ProviderBadRequestError(ProviderError):
    """Any other 4xx: the request itself is wrong, so sending it again cannot help."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``max_retries`` extra attempts; backoff ``base_s * 2**attempt`` with jitter, capped."""

    max_retries: int = 3
    base_s: float = 0.5
    max_backoff_s: float = 30.0
    # A Retry-After beyond this is treated as "give up": waiting minutes inside a run is worse
    # than failing and letting a fallback model take over.
    max_retry_after_s: float = 120.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        ceiling: float = min(self.max_backoff_s, self.base_s * (2**attempt))
        # Half fixed, half random: spreads out clients that failed together without ever
        # retrying immediately.
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _summary(body: str) -> str:
    """The provider's own error message when the body is the usual JSON, else the body head."""
    try:
        data = json.loads(body)
    except ValueError:
        return body[:300]
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    if isinstance(error, str):
        return error
    return body[:300]


def error_for_status(
    provider: str, status: int, body: str, headers: Mapping[str, str]
) -> ProviderError:
    cls: type[ProviderError]
    if status in (401, 403):
        cls = ProviderAuthError
    elif status == 429:
        cls = ProviderRateLimitError
    elif status >= 500:
        cls = ProviderServerError
    else:
        cls = ProviderBadRequestError
    return cls(
        f"{provider} returned HTTP {status}: {_summary(body)}",
        provider=provider,
        status_code=status,
        body=body,
        retry_after=parse_retry_after(headers),
    )


def error_for_transport(provider: str, exc: httpx.TransportError) -> ProviderError:
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection failed"
    detail = str(exc) or type(exc).__name__
    # A bad URL or proxy setting will not fix itself between attempts.
    hopeless = isinstance(exc, httpx.UnsupportedProtocol | httpx.ProxyError)
    return ProviderConnectionError(
        f"{provider} request {kind}: {detail}", provider=provider, retryable=not hopeless
    )


async def call_with_retries(call: Callable[[], Awaitable[T]], policy: RetryPolicy) -> T:
    """Run ``call`` until it succeeds, raises a non-retryable error, or retries run out."""
    attempt = 0
    while True:
        try:
            return await call()
        except ProviderError as exc:
            too_long = exc.retry_after is not None and exc.retry_after > policy.max_retry_after_s
            if not exc.retryable or attempt >= policy.max_retries or too_long:
                raise
            await asyncio.sleep(policy.delay(attempt, exc.retry_after))
            attempt += 1


@dataclass(frozen=True, slots=True)
class SSEEvent:
    event: str | None
    data: str

    def json_or_error(self, provider: str) -> Any:
        try:
            return json.loads(self.data)
        except ValueError as exc:
            raise ProviderError(
                f"{provider} sent a stream event that is not JSON",
                provider=provider,
                body=self.data,
            ) from exc


async def parse_sse(lines: AsyncIterator[str]) -> AsyncIterator[SSEEvent]:
    """Server-sent events from text lines: ``event:``/``data:`` fields, blank line dispatches."""
    event: str | None = None
    data: list[str] = []
    async for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield SSEEvent(event, "\n".join(data))
            event, data = None, []
            continue
        if line.startswith(":"):
            continue  # comment / keep-alive
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
    if data:
        yield SSEEvent(event, "\n".join(data))


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle takes ~20 ms; a client per call must not pay that every time.
    return httpx.create_ssl_context()


def new_client() -> httpx.AsyncClient:
    """A client for provider calls. It keeps no cookies: a pooled client serves every key and
    tenant that posts to one base URL, and a cookie one reply set (a load balancer's, say) must
    not ride along on another caller's request."""
    # A jar itself, not httpx.Cookies(jar): httpx copies a Cookies object into a plain jar,
    # dropping the policy that refuses every cookie.
    jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    return httpx.AsyncClient(verify=_ssl_context(), cookies=jar)


@dataclass(slots=True)
class _Pooled:
    client: httpx.AsyncClient
    users: int = 0
    retired: bool = False


@dataclass(slots=True)
class _LoopClients:
    clients: dict[tuple[str, str], _Pooled] = field(default_factory=dict)
    keeper: AsyncGenerator[None, None] | None = None


class ClientPool:
    """One ``httpx.AsyncClient`` per (provider, base URL), shared by every model that posts there.

    A client belongs to the event loop it first ran in (its connections do), so the pool keeps
    one set per loop: ``asyncio.run`` twice never reuses a dead loop's sockets. :meth:`aclose`
    closes the current loop's clients (``Runner.aclose``); a loop that ends without it closes
    its clients as it shuts down (``asyncio.run`` closes async generators, and the pool parks
    one per loop for that). A client still serving a call when it is closed is closed when
    that call ends; the next call gets a new one.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # loops in different threads share the pool
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClients] = (
            weakref.WeakKeyDictionary()
        )

    async def _clients(self) -> _LoopClients:
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._loops.get(loop)
            if entry is None:
                entry = self._loops[loop] = _LoopClients()
        if entry.keeper is None:
            entry.keeper = self._keeper()
            await entry.keeper.__anext__()  # registers it with the loop's shutdown
        return entry

    async def _keeper(self) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            await self.aclose()

    @asynccontextmanager
    async def lease(self, provider: str, base_url: str) -> AsyncIterator[httpx.AsyncClient]:
        """The pooled client for ``(provider, base_url)`` in this loop, for one call."""
        entry = await self._clients()
        key = (provider, base_url)
        pooled = entry.clients.get(key)
        if pooled is None or pooled.retired:
            pooled = entry.clients[key] = _Pooled(new_client())
        pooled.users += 1
        try:
            yield pooled.client
        finally:
            pooled.users -= 1
            if pooled.retired and pooled.users == 0:
                await pooled.client.aclose()

    def size(self) -> int:
        """How many clients the current loop has open (for tests and benchmarks)."""
        with self._lock:
            entry = self._loops.get(asyncio.get_running_loop())
        return 0 if entry is None else len(entry.clients)

    async def aclose(self) -> None:
        """Close the current loop's clients; later calls open new ones."""
        with self._lock:
            entry = self._loops.get(asyncio.get_running_loop())
        if entry is None:
            return
        pooled, entry.clients = list(entry.clients.values()), {}
        for item in pooled:
            item.retired = True
            if item.users == 0:
                await item.client.aclose()


_SHARED = ClientPool()


def shared_pool() -> ClientPool:
    """The pool models built from names (``"gpt-4o"``, ``"anthropic:..."``) post through."""
    return _SHARED


async def close_pools() -> None:
    """Close the shared pool's clients in the running loop (what ``Runner.aclose`` calls)."""
    await _SHARED.aclose()


class HttpTransport:
    """POSTs JSON to one provider with retries, per-attempt timeouts and error mapping.

    With a ``pool``, calls lease its client for this provider and base URL, so connections
    (and TLS sessions) are reused across calls and runs. With neither a pool nor an
    ``http_client`` each call opens and closes its own client: a model object can then be
    shared across event loops without leaking sockets. An ``http_client``'s owner closes it.
    """

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        headers: Mapping[str, str],
        timeout_s: float,
        retry: RetryPolicy,
        http_client: httpx.AsyncClient | None = None,
        pool: ClientPool | None = None,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers)
        self.timeout = httpx.Timeout(timeout_s)
        self.retry = retry
        self._client = http_client
        self._pool = pool

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[httpx.AsyncClient]:
        if self._client is not None:
            yield self._client
        elif self._pool is not None:
            async with self._pool.lease(self.provider, self.base_url) as client:
                yield client
        else:
            async with new_client() as client:
                yield client

    @property
    def reuses_connections(self) -> bool:
        """Whether calls share a client (a pool or an ``http_client``), so a connection left in
        a clean state serves the next call."""
        return self._client is not None or self._pool is not None

    def _request(self, client: httpx.AsyncClient, path: str, body: Any) -> httpx.Request:
        return client.build_request(
            "POST", self.base_url + path, json=body, headers=self.headers, timeout=self.timeout
        )

    async def post_json(
        self, path: str, body: Any, *, loads: Callable[[str], Any] = json.loads
    ) -> Any:
        """POST ``body``; the reply parsed by ``loads`` (Anthropic marks what strict JSON
        refuses, so tool arguments inside the reply can be read strictly)."""
        async with self._session() as client:

            async def attempt() -> Any:
                try:
                    response = await client.send(self._request(client, path, body))
                except httpx.TransportError as exc:
                    raise error_for_transport(self.provider, exc) from exc
                if response.status_code >= 400:
                    raise error_for_status(
                        self.provider, response.status_code, response.text, response.headers
                    )
                try:
                    return loads(response.text)
                except ValueError as exc:
                    raise ProviderError(
                        f"{self.provider} returned a response that is not JSON",
                        provider=self.provider,
                        status_code=response.status_code,
                        body=response.text,
                    ) from exc

            return await call_with_retries(attempt, self.retry)

    async def post_sse(self, path: str, body: Any) -> AsyncGenerator[SSEEvent, None]:
        """Stream events. Only opening the stream is retried: once events have been handed
        out, replaying the request would repeat text the caller has already shown."""
        async with self._session() as client:

            async def open_stream() -> httpx.Response:
                try:
                    response = await client.send(self._request(client, path, body), stream=True)
                except httpx.TransportError as exc:
                    raise error_for_transport(self.provider, exc) from exc
                if response.status_code >= 400:
                    try:
                        text = (await response.aread()).decode("utf-8", "replace")
                    finally:
                        await response.aclose()
                    raise error_for_status(
                        self.provider, response.status_code, text, response.headers
                    )
                return response

            response = await call_with_retries(open_stream, self.retry)
            try:
                async for event in parse_sse(response.aiter_lines()):
                    yield event
            except httpx.TransportError as exc:
                raise error_for_transport(self.provider, exc) from exc
            finally:
                await response.aclose()


async def drain(events: AsyncIterator[SSEEvent], timeout_s: float = 0.25) -> None:
    """Read what is left of a stream whose last event came (``[DONE]``, ``message_stop``): a
    response read to its end hands its connection back to the pool, one closed early does
    not. Bounded, so a server that keeps the stream open costs at most ``timeout_s``."""
    with contextlib.suppress(TimeoutError, ProviderError):
        async with asyncio.timeout(timeout_s):
            async for _ in events:
                pass


def parse_arguments(raw: object) -> tuple[dict[str, Any], str | None]:
    """Tool-call arguments from the JSON text a model produced, read strictly.

    Returns ``(arguments, None)``, or ``({}, why)`` naming the argument and the problem (NaN,
    ±Infinity, a repeated key, not JSON, not an object). A bad call is the model's mistake to
    answer, not a failed model call: the run tells the model and runs nothing. Empty text
    means no arguments.
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}, None
    if not isinstance(raw, str):
        return {}, f"arguments must be JSON text, got {type(raw).__name__}"
    try:
        value = strict_loads(raw, what="tool-call arguments")
    except InvalidArgumentsError as exc:
        return {}, exc.detail
    return _object(value)


def checked_arguments(value: Any) -> tuple[dict[str, Any], str | None]:
    """Like :func:`parse_arguments`, for arguments a provider sends as an object inside its
    reply, read with :func:`afk.canonical.marked_loads` so refused values are still seen."""
    if value is None:
        return {}, None
    try:
        check_json(value)
    except InvalidArgumentsError as exc:
        return {}, exc.detail
    return _object(value)


def _object(value: Any) -> tuple[dict[str, Any], str | None]:
    if not isinstance(value, dict):
        kind = "an array" if isinstance(value, list) else f"a {type(value).__name__}"
        return {}, f"arguments must be a JSON object, got {kind}"
    return value, None


def tool_call(name: str, raw: object, call_id: str | None) -> ToolCall:
    arguments, error = parse_arguments(raw)
    return ToolCall(name, arguments, call_id, error=error)


def cost_usd(
    prices: Mapping[str, tuple[float, float]], model: str, input_tokens: int, output_tokens: int
) -> float | None:
    """Cost from a USD-per-million-tokens table, longest matching model prefix wins."""
    best = max((p for p in prices if model.startswith(p)), key=len, default=None)
    if best is None:
        return None
    per_in, per_out = prices[best]
    return (input_tokens * per_in + output_tokens * per_out) / 1_000_000
