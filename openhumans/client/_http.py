"""HTTP plumbing shared by the client and the OAuth2 functions (private: use ``openhumans.client``).

URL joining under a base URL that may carry a path prefix, the process's one TLS context,
the two maps from an error response to an exception class (API and OAuth2 token endpoint),
bounded retries for GETs, and token redaction in httpx's log lines: the one layer every
request passes through, kept whole.
"""

from __future__ import annotations

import contextvars
import encodings.idna  # noqa: F401 (socket encodes host names with it on the first connect)
import json
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, cast

# httpcore (with h11) first: httpx defers importing it to the first transport it builds, which
# put ~46 module imports and ~20 ms of CPU on a process's first call to Open Humans.
import httpcore
import httpcore._sync.connection_pool  # noqa: F401
import httpcore._sync.http11  # noqa: F401
import httpx

from openhumans import __version__
from openhumans.exceptions import (
    BadRequestError,
    InvalidArgumentError,
    InvalidGrantError,
    InvalidTokenError,
    NotFoundError,
    OAuthError,
    OpenHumansAPIResponseError,
    OpenHumansConnectionError,
    ServerError,
    redact_url,
)

DEFAULT_BASE_URL = "https://www.openhumans.org"
#: Seconds one API call may take in all (well below gunicorn's 30 s worker timeout).
DEFAULT_TIMEOUT = 10.0
#: Seconds a token-endpoint call may take: longer, since a refresh given up too early may
#: have rotated the pair on the server with the answer lost (spec §1.4).
DEFAULT_TOKEN_TIMEOUT = 20.0
USER_AGENT = f"django-open-humans/{__version__}"

_DEFAULT_PORTS = {"http": 80, "https": 443}


class _RedactTokensFilter(logging.Filter):
    """Redact token-like query values in httpx's own request log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(
                redact_url(a) if isinstance(a, httpx.URL | str) else a for a in record.args
            )
        return True


def _install_log_filter() -> None:
    # httpx logs every request URL at INFO level; pagination links carry the token.
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactTokensFilter) for f in logger.filters):
        logger.addFilter(_RedactTokensFilter())


_install_log_filter()


def parse_base_url(base_url: str) -> httpx.URL:
    """Return ``base_url`` as an ``httpx.URL``; raise InvalidArgumentError unless http(s)."""
    if not isinstance(base_url, str) or not base_url:
        raise InvalidArgumentError("base_url", "must be a non-empty string")
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL as err:
        raise InvalidArgumentError("base_url", "is not a valid URL") from err
    if url.scheme not in _DEFAULT_PORTS or not url.host:
        raise InvalidArgumentError("base_url", "must be an absolute http(s) URL")
    if url.query or url.fragment:
        raise InvalidArgumentError("base_url", "must not carry a query or fragment")
    return url


def join_url(base: httpx.URL, path: str) -> httpx.URL:
    """Join ``path`` (relative, with a trailing slash) under ``base``, keeping its path prefix."""
    prefix = base.path.rstrip("/")
    return base.copy_with(path=f"{prefix}/{path.lstrip('/')}")


def origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """Return (scheme, host, port) with the default port filled in."""
    return (url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme))


def same_origin(url: httpx.URL, base: httpx.URL) -> bool:
    """Whether ``url`` has the scheme, host and port of ``base``."""
    return origin(url) == origin(base)


class _ProcessTLSContext:
    """The process's one TLS context, built on the first https connection.

    httpx builds (and loads the CA bundle into) a new ``ssl.SSLContext`` for every transport,
    even one that only ever talks plain http: about 30 ms of CPU each time. httpcore only
    calls ``set_alpn_protocols`` and ``wrap_socket``/``wrap_bio`` on it, so this stand-in
    hands those to one context per process, made when a TLS connection first needs it (the
    upload PUT may go to an https storage host even when the API base URL is http).
    """

    _lock = threading.Lock()
    _context: ssl.SSLContext | None = None

    @classmethod
    def get(cls) -> ssl.SSLContext:
        """Return the process's TLS context, building it on first use."""
        context = cls._context
        if context is None:
            with cls._lock:
                if cls._context is None:
                    # httpx's own defaults: certifi's bundle, or SSL_CERT_FILE/SSL_CERT_DIR.
                    cls._context = httpx.create_ssl_context()
                context = cls._context
        return context

    @classmethod
    def built(cls) -> bool:
        """Whether the TLS context has been built in this process."""
        return cls._context is not None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)


#: Shared by every transport this package builds; an SSL context is safe across fork.
PROCESS_TLS = cast(ssl.SSLContext, _ProcessTLSContext())


def check_timeout(timeout: object) -> float:
    """Return ``timeout`` as a float; raise InvalidArgumentError unless it is positive."""
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
        raise InvalidArgumentError("timeout", "must be a positive number of seconds")
    return float(timeout)


# -- the total deadline of one call ----------------------------------------------------------
#
# httpx's timeouts bound each read and write, not a call: a server sending a byte a second
# keeps a 2-second-timeout call alive for as long as it likes. Every socket operation of a
# call made through ``Requester.send`` is bounded by the time left before its deadline, so
# the whole call (connect, TLS, request, headers, body, GET retries) ends by then.

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "openhumans_call_deadline", default=None
)


def _bounded(timeout: float | None, expired: type[Exception]) -> float | None:
    """Return ``timeout`` cut to the time left before the current call's deadline."""
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise expired("the call to Open Humans passed its deadline")
    return remaining if timeout is None else min(timeout, remaining)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every read and write ends by the current call's deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, bounded))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's socket backend with :class:`_DeadlineStream` streams."""

    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        stream = self._backend.connect_tcp(host, port, bounded, local_address, socket_options)
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:  # pragma: no cover - we only speak TCP
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_unix_socket(path, bounded, socket_options))

    def sleep(self, seconds: float) -> None:  # pragma: no cover - used by httpcore retries only
        self._backend.sleep(seconds)


def deadline_transport() -> httpx.HTTPTransport:
    """httpx's transport (with the process's TLS context), every socket operation bounded by
    the current call's deadline."""
    transport = httpx.HTTPTransport(verify=PROCESS_TLS)
    pool = getattr(transport, "_pool", None)
    if isinstance(pool, httpcore.ConnectionPool):
        pool._network_backend = _DeadlineBackend(pool._network_backend)
    return transport


def new_http_client(timeout: float, transport: httpx.BaseTransport | None) -> httpx.Client:
    """Return a pooled, thread-safe httpx client (no redirects followed).

    Without ``transport``, connections go through httpx's own transport with the process's
    TLS context (:data:`PROCESS_TLS`), so a client for a plain-http base URL builds none,
    and its sockets honour the total deadline of :class:`Requester`.
    """
    check_timeout(timeout)
    return httpx.Client(
        timeout=httpx.Timeout(timeout),
        transport=transport if transport is not None else deadline_transport(),
        # A pool is shared by every member's calls: no cookie set for one goes with another's.
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        headers={"User-Agent": USER_AGENT},
        # spec §A.4: a redirect from the API turns POST into GET; never follow one.
        follow_redirects=False,
    )


def parse_body(response: httpx.Response) -> Any:
    """Return the JSON body, or the text when it is not JSON (error bodies may be HTML)."""
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return response.text


def normalise_errors(body: Any) -> dict[str, list[str]]:
    """Turn either of Open Humans' two 400 error envelopes into one ``{field: [messages]}`` map."""
    if isinstance(body, Mapping) and isinstance(body.get("errors"), Mapping):
        body = body["errors"]
    if not isinstance(body, Mapping):
        # Not a field map (an HTML page, a bare string): keep a readable excerpt.
        return {"__all__": [str(body)[:200]]} if body else {}
    errors: dict[str, list[str]] = {}
    for field, value in body.items():
        if isinstance(value, list | tuple):
            errors[str(field)] = [v if isinstance(v, str) else json.dumps(v) for v in value]
        elif isinstance(value, str):
            errors[str(field)] = [value]
        else:
            errors[str(field)] = [json.dumps(value)]
    return errors


def _summary(errors: Mapping[str, list[str]]) -> str:
    return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in errors.items())


def _response_error_args(response: httpx.Response, url: object) -> tuple[Any, dict[str, Any]]:
    body = parse_body(response)
    where = url if url is not None else response.request.url
    return body, {"status_code": response.status_code, "body": body, "url": where}


def api_error_for(response: httpx.Response, *, url: object = None) -> OpenHumansAPIResponseError:
    """Map an error response of the project API to the exception a caller handles.

    ``url`` overrides the URL reported (e.g. a presigned URL without its credentials).
    """
    status = response.status_code
    body, kw = _response_error_args(response, url)
    detail = body.get("detail") if isinstance(body, Mapping) else None
    if status >= 500:
        return ServerError("Open Humans server error", **kw)
    if status == 400:
        errors = normalise_errors(body)
        return BadRequestError(f"bad request: {_summary(errors)}", errors=errors, **kw)
    if status == 401:
        return InvalidTokenError(f"token refused: {detail or 'unauthorized'}", **kw)
    if status == 404:
        return NotFoundError("not found", **kw)
    if 300 <= status < 400:
        return OpenHumansAPIResponseError("unexpected redirect (not followed)", **kw)
    return OpenHumansAPIResponseError(detail if isinstance(detail, str) else "request failed", **kw)


def storage_error_for(
    response: httpx.Response, *, url: object = None
) -> OpenHumansAPIResponseError:
    """Map an error response of the storage host (the upload PUT) to an exception.

    As :func:`api_error_for`, except that a 401 there says nothing about the member's token.
    """
    if response.status_code == 401:
        _body, kw = _response_error_args(response, url)
        return OpenHumansAPIResponseError("upload to storage refused", **kw)
    return api_error_for(response, url=url)


def oauth_error_for(response: httpx.Response, *, url: object = None) -> OpenHumansAPIResponseError:
    """Map an error response of the OAuth2 token endpoint to an exception."""
    status = response.status_code
    body, kw = _response_error_args(response, url)
    if isinstance(body, Mapping) and isinstance(body.get("error"), str):
        error, description = body["error"], str(body.get("error_description") or "")
        message = f"OAuth2 error {error}" + (f": {description}" if description else "")
        # spec §1.3: invalid_grant is 400 today and was 401 in 2018.
        cls = InvalidGrantError if error == "invalid_grant" and status in (400, 401) else OAuthError
        return cls(message, error=error, error_description=description, **kw)
    if status >= 500:
        return ServerError("Open Humans server error", **kw)
    if status == 404:
        return NotFoundError("not found", **kw)
    if 400 <= status < 500:
        return OAuthError(f"OAuth2 error (status {status})", **kw)
    if 300 <= status < 400:
        return OpenHumansAPIResponseError("unexpected redirect (not followed)", **kw)
    return OpenHumansAPIResponseError("request failed", **kw)


ErrorMap = Callable[..., OpenHumansAPIResponseError]


def connection_error(err: httpx.HTTPError, url: object) -> OpenHumansConnectionError:
    """Wrap a transport failure or timeout; the message carries no token."""
    kind = "timed out" if isinstance(err, httpx.TimeoutException) else "connection failed"
    return OpenHumansConnectionError(
        f"Open Humans {kind}: {type(err).__name__}: {redact_url(err)}", url=url
    )


def backoff_delay(attempt: int, response: httpx.Response | None, base: float, cap: float) -> float:
    """Seconds to wait before retry ``attempt``: jittered exponential, at least Retry-After."""
    delay = random.uniform(0, min(cap, base * 2**attempt))
    retry_after = response.headers.get("Retry-After") if response is not None else None
    if retry_after and retry_after.isdigit():
        delay = max(delay, min(float(retry_after), cap))
    return delay


def retryable(method: str, response: httpx.Response) -> bool:
    """Whether a GET's answer is worth another try (429, 5xx)."""
    return response.status_code == 429 or response.status_code >= 500


class Requester:
    """Sends requests through one pooled client; retries GETs only, with backoff and jitter.

    ``deadline``: seconds one call may take in all (connect, every read and write, the GET
    retries and their sleeps); None leaves only httpx's per-operation timeouts.
    """

    #: Base of the exponential backoff, in seconds (attempt n waits up to base * 2**n).
    retry_backoff: float = 0.5
    #: Upper bound of a single backoff sleep, in seconds.
    retry_backoff_max: float = 8.0

    def __init__(
        self,
        http: httpx.Client,
        *,
        max_retries: int,
        sleep: Callable[[float], None] = time.sleep,
        deadline: float | None = None,
    ) -> None:
        if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0:
            raise InvalidArgumentError("max_retries", "must be an integer >= 0")
        self.http = http
        self.max_retries = max_retries
        self.sleep = sleep
        self.deadline = deadline

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        return backoff_delay(attempt, response, self.retry_backoff, self.retry_backoff_max)

    def send(
        self,
        method: str,
        url: httpx.URL,
        *,
        errors: ErrorMap = api_error_for,
        report_url: object = None,
        bounded: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send one request; return a 2xx response or raise the mapped error.

        Raises OpenHumansConnectionError on transport failures and when the call passes its
        deadline (unless ``bounded`` is False: a large upload's PUT takes what it takes), the
        class chosen by ``errors`` (:func:`api_error_for`, :func:`oauth_error_for` or
        :func:`storage_error_for`) on error statuses. Only GETs are retried.
        """
        end = time.monotonic() + self.deadline if bounded and self.deadline else None
        token = _deadline.set(end)
        try:
            return self._send(method, url, errors=errors, report_url=report_url, end=end, **kwargs)
        finally:
            _deadline.reset(token)

    def _send(
        self,
        method: str,
        url: httpx.URL,
        *,
        errors: ErrorMap,
        report_url: object,
        end: float | None,
        **kwargs: Any,
    ) -> httpx.Response:
        attempts = 1 + (self.max_retries if method == "GET" else 0)
        shown = report_url if report_url is not None else url
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self.http.request(method, url, **kwargs)
            except httpx.TransportError as err:
                delay = self._delay(attempt, None)
                if last or (end is not None and time.monotonic() + delay >= end):
                    raise connection_error(err, shown) from err
                self.sleep(delay)
                continue
            except httpx.DecodingError as err:
                # e.g. a body labelled gzip that is not: the server answered, but garbage.
                raise OpenHumansAPIResponseError(
                    f"response body could not be decoded ({type(err).__name__})", url=shown
                ) from err
            if response.is_success:
                return response
            retryable = response.status_code == 429 or response.status_code >= 500
            if not last and retryable:
                delay = self._delay(attempt, response)
                if end is None or time.monotonic() + delay < end:
                    response.close()
                    self.sleep(delay)
                    continue
            raise errors(response, url=shown)
        raise AssertionError("unreachable")  # pragma: no cover
