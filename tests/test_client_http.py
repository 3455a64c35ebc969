"""The client's plumbing against canned answers: headers, base URL, the error maps, retries."""

from __future__ import annotations

import httpx
import pytest

import openhumans
from openhumans.client import (
    OpenHumansClient,
    UploadResult,
    refresh,
)
from openhumans.client._http import Requester
from openhumans.exceptions import (
    BadRequestError,
    InvalidArgumentError,
    InvalidTokenError,
    NotFoundError,
    OAuthError,
    OpenHumansAPIResponseError,
    OpenHumansConnectionError,
    OpenHumansError,
    ServerError,
)

from .client_fakes import (
    API,
    BASE,
    USER_TOKEN,
    Server,
    assert_no_secret,
    flaky,
    make_client,
    resp,
    token_server,
)

# -- plumbing: headers, base URL, timeouts ----------------------------------------------------


PROJECT = {"id": 128, "id_label": "direct-sharing-128", "name": "Example Project", "type": "oauth2"}


def test_project_sends_bearer_user_agent_and_trailing_slash():
    server = Server().on("GET", API, resp(200, PROJECT))
    with make_client(server) as client:
        assert client.project() == PROJECT
    (request,) = server.requests
    assert request.url == httpx.URL(f"{BASE}{API}")
    assert request.headers["Authorization"] == f"Bearer {USER_TOKEN}"
    assert request.headers["User-Agent"] == f"django-open-humans/{openhumans.__version__}"
    assert request.extensions["timeout"]["read"] == 10.0  # a default timeout is always set


def test_base_url_path_prefix_is_kept_for_every_call():
    server = Server().on("GET", f"/oh{API}", resp(200, PROJECT))
    server.on("POST", f"/oh{API}files/delete/", resp(200, {"ids": [1]}))
    client = make_client(server, base_url="http://127.0.0.1:8001/oh/")
    client.project()
    client.delete_files(file_id=1)
    assert [r.url.path for r in server.requests] == [f"/oh{API}", f"/oh{API}files/delete/"]
    assert server.requests[0].url.port == 8001


@pytest.mark.parametrize("base_url", ["", "ftp://oh.test", "/relative", "https://oh.test/?x=1"])
def test_bad_base_url_is_refused(base_url):
    with pytest.raises(InvalidArgumentError) as info:
        OpenHumansClient(USER_TOKEN, base_url=base_url)
    assert info.value.argument == "base_url"


def test_client_repr_hides_the_token():
    assert USER_TOKEN not in repr(OpenHumansClient(USER_TOKEN))


@pytest.mark.parametrize("token", [USER_TOKEN + "\n", USER_TOKEN + "\x00", USER_TOKEN + "é", ""])
def test_a_token_that_cannot_be_a_header_is_refused_without_echoing_it(token):
    # h11 would refuse it mid-request with the whole header (the token) in its message.
    with pytest.raises(InvalidArgumentError) as info:
        OpenHumansClient(token, transport=httpx.MockTransport(Server()))
    assert info.value.argument == "access_token"
    assert USER_TOKEN not in str(info.value)


# -- spec §A.3: every authentication error is a 401 --------------------------------------------


@pytest.mark.parametrize(
    "detail",
    [
        "Authentication credentials were not provided.",
        "Expired token.",
        "Invalid token.",
        "Invalid token header. No credentials provided.",
        "Invalid token header. Token string should not contain spaces.",
    ],
)
def test_401_is_invalid_token_error_with_the_detail(detail):
    server = Server().on(
        "GET", API, resp(401, {"detail": detail}, **{"WWW-Authenticate": 'Bearer realm="api"'})
    )
    with pytest.raises(InvalidTokenError) as info:
        make_client(server).project()
    assert info.value.status_code == 401
    assert info.value.body == {"detail": detail}
    assert detail in str(info.value)
    assert len(server.requests) == 1  # a 401 is not retried
    assert_no_secret(info.value)


def test_405_is_a_response_error_not_a_token_error():
    server = Server().on(
        "POST", f"{API}message/", resp(405, {"detail": 'Method "PUT" not allowed.'})
    )
    with pytest.raises(OpenHumansAPIResponseError) as info:
        make_client(server).message("s", "m")
    assert type(info.value) is OpenHumansAPIResponseError
    assert info.value.status_code == 405


def test_redirect_is_not_followed():
    server = Server().on(
        "POST", f"{API}files/delete/", httpx.Response(301, headers={"Location": "/elsewhere/"})
    )
    with pytest.raises(OpenHumansAPIResponseError, match="redirect"):
        make_client(server).delete_files(all_files=True)
    assert len(server.requests) == 1


def test_404_is_not_found_error():
    with pytest.raises(NotFoundError):
        make_client(Server()).project()


@pytest.mark.parametrize("status", [200, 400, 401])
def test_a_pathologically_nested_body_is_a_response_error(status):
    # json raises RecursionError (not ValueError) on deep nesting: never let it escape.
    deep = httpx.Response(
        status, content=b"[" * 100_000, headers={"Content-Type": "application/json"}
    )
    server = Server().on("GET", API, deep)
    with pytest.raises(OpenHumansAPIResponseError):
        make_client(server).project()


def test_an_undecodable_body_is_a_response_error():
    # A body that claims gzip but is not: httpx raises DecodingError, not a TransportError.
    def broken(request: httpx.Request) -> httpx.Response:
        gzip = {"Content-Encoding": "gzip"}
        return httpx.Response(200, headers=gzip, stream=httpx.ByteStream(b"not gzip"))

    with pytest.raises(OpenHumansAPIResponseError, match="could not be decoded"):
        make_client(Server().on("GET", API, broken)).project()
    token = token_server(broken)
    with pytest.raises(OpenHumansAPIResponseError, match="could not be decoded"):
        refresh(
            refresh_token="r",
            client_id="c",
            client_secret="s",
            base_url=BASE,
            transport=httpx.MockTransport(token),
        )


# -- retries: GETs only ------------------------------------------------------------------------


def test_get_503_is_retried_then_succeeds():
    server = Server().on("GET", API, flaky([resp(503, {}), resp(429, {}), resp(200, PROJECT)]))
    assert make_client(server).project() == PROJECT
    assert len(server.requests) == 3


def test_get_500_gives_server_error_after_max_retries():
    server = Server().on("GET", API, resp(500, {"detail": "boom"}))
    with pytest.raises(ServerError) as info:
        make_client(server, max_retries=1).project()
    assert info.value.status_code == 500
    assert len(server.requests) == 2


def test_post_503_is_never_retried():
    server = Server().on("POST", f"{API}message/", resp(503, {}))
    with pytest.raises(ServerError):
        make_client(server).message("s", "m")
    assert len(server.requests) == 1


def test_connection_errors_are_retried_for_gets_then_wrapped():
    err = httpx.ConnectError("[Errno 111] Connection refused")
    server = Server().on("GET", API, flaky([err, err, err]))
    with pytest.raises(OpenHumansConnectionError) as info:
        make_client(server).project()
    assert len(server.requests) == 3
    assert isinstance(info.value.__cause__, httpx.ConnectError)


def test_timeout_is_a_connection_error_saying_so():
    server = Server().on("POST", f"{API}files/delete/", flaky([httpx.ReadTimeout("slow")]))
    with pytest.raises(OpenHumansConnectionError, match="timed out"):
        make_client(server).delete_files(all_files=True)
    assert len(server.requests) == 1


def test_retry_backoff_sleeps_are_jittered_and_bounded():
    sleeps: list[float] = []
    server = Server().on("GET", API, resp(503, {}))
    http = httpx.Client(transport=httpx.MockTransport(server))
    requester = Requester(http, max_retries=4, sleep=sleeps.append)
    requester.retry_backoff, requester.retry_backoff_max = 1.0, 3.0
    with pytest.raises(ServerError):
        requester.send("GET", httpx.URL(f"{BASE}{API}"))
    assert len(sleeps) == 4 and len(server.requests) == 5
    assert all(0 <= s <= 3.0 for s in sleeps)


def test_retry_after_is_honoured_within_the_bound():
    sleeps: list[float] = []
    server = Server().on("GET", API, flaky([resp(429, {}, **{"Retry-After": "2"}), resp(200, {})]))
    requester = Requester(
        httpx.Client(transport=httpx.MockTransport(server)), max_retries=1, sleep=sleeps.append
    )
    requester.send("GET", httpx.URL(f"{BASE}{API}"))
    assert sleeps == [2.0]


def test_every_error_is_an_open_humans_error():
    for cls in (InvalidTokenError, BadRequestError, OAuthError, OpenHumansConnectionError):
        assert issubclass(cls, OpenHumansError)


def test_results_are_frozen():
    result = UploadResult(id=1, size=2, basename="a")
    with pytest.raises(AttributeError):
        result.id = 3  # type: ignore[misc]


def test_no_cookie_is_kept_between_calls():
    """A client (and the shared pool) serves many members: a cookie set for one is dropped."""
    server = Server().on(
        "GET", API, resp(200, {"id": 1}, **{"Set-Cookie": "sessionid=abc; Path=/"})
    )
    client = make_client(server)
    client.project()
    client.project()
    assert "cookie" not in server.requests[1].headers
