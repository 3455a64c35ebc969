"""The Open Humans client against canned server answers (``httpx.MockTransport``).

Each canned body is the one the spec gives for that endpoint and situation.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import math
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

import openhumans
from openhumans.client import (
    DataFile,
    Member,
    OpenHumansClient,
    TokenSet,
    UploadResult,
    authorize_url,
    code_challenge_s256,
    exchange_code,
    make_code_verifier,
    refresh,
)
from openhumans.client.http import Requester
from openhumans.exceptions import (
    BadRequestError,
    InvalidArgumentError,
    InvalidGrantError,
    InvalidTokenError,
    NotFoundError,
    OAuthError,
    OpenHumansAPIResponseError,
    OpenHumansConnectionError,
    OpenHumansError,
    ServerError,
)

BASE = "https://oh.test"
API = "/api/direct-sharing/project/"
USER_TOKEN = "UsErToKeN0123456789abcdefghijk"  # 30 chars, like oauthlib's tokens
MASTER_TOKEN = "MaStEr" + "x" * 58
S3_URL = (
    "https://s3.test/member-files/direct-sharing-128/uuid/data.csv"
    "?Signature=SIGSECRET&Expires=1527445347&AWSAccessKeyId=AKIDSECRET"
)
SECRETS = (USER_TOKEN, MASTER_TOKEN, "SIGSECRET", "AKIDSECRET", "REFRESHSECRET")

Handler = Callable[[httpx.Request], httpx.Response]


class Server:
    """A MockTransport handler that records every request (with its body) and routes it."""

    def __init__(self, routes: dict[tuple[str, str], Handler] | None = None) -> None:
        self.routes = dict(routes or {})
        self.requests: list[httpx.Request] = []
        self.bodies: list[bytes] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.bodies.append(request.read())
        key = (request.method, request.url.path)
        if key not in self.routes:
            return httpx.Response(404, json={"detail": "Not found."})
        return self.routes[key](request)

    def on(self, method: str, path: str, handler: Handler | httpx.Response) -> Server:
        self.routes[(method, path)] = (
            (lambda _r: handler) if isinstance(handler, httpx.Response) else handler
        )
        return self

    def sent(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if (r.method, r.url.path) == (method, path)]

    def json_body(self, index: int = -1) -> Any:
        return json.loads(self.bodies[index])


def resp(status: int, body: Any, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def make_client(server: Server, token: str = USER_TOKEN, **kw: Any) -> OpenHumansClient:
    client = OpenHumansClient(
        token, base_url=kw.pop("base_url", BASE), transport=httpx.MockTransport(server), **kw
    )
    client.retry_backoff = 0.0  # keep retry tests instant
    return client


def file_json(i: int, host: str = BASE) -> dict[str, Any]:
    return {
        "id": i,
        "basename": f"data{i}.csv",
        "created": "2018-05-27T12:22:27.718349Z",
        "datatypes": [f"{host}/api/public/datatype/12/"],
        "download_url": f"{host}/data-management/datafile-download/{i}/?key=3f0c1c5e-{i}",
        "metadata": {"description": "Test data", "tags": ["text"]},
        "source": "direct-sharing-128",
        "source_project": f"{host}/api/public/project/128/",
    }


def exchange_member_server(n_files: int, *, next_host: str = BASE, overlap: int = 0) -> Server:
    """exchange-member as spec §2.2: `data` envelope, absolute `next` with sorted params."""
    ids = list(range(1000, 1000 + n_files))

    def handler(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        limit, offset = int(params.get("limit", 100)), int(params.get("offset", 0))
        start = max(0, offset - overlap)  # `overlap` makes the server repeat files across pages
        page = ids[start : offset + limit]
        nxt = None
        if offset + limit < n_files:
            nparams = {**params, "access_token": USER_TOKEN, "offset": str(offset + limit)}
            query = "&".join(f"{k}={v}" for k, v in sorted(nparams.items()))
            nxt = f"{next_host}{API}exchange-member/?{query}"
        return resp(
            200,
            {
                "count": n_files,
                "next": nxt,
                "previous": None,
                "created": "2019-03-15T17:02:11Z",
                "project_member_id": "01234567",
                "sources_shared": ["direct-sharing-91"],
                "data": [file_json(i) for i in page],
            },
        )

    return Server().on("GET", f"{API}exchange-member/", handler)


def assert_no_secret(exc: BaseException) -> None:
    text = f"{exc} {exc!r} {getattr(exc, 'url', '')}"
    for secret in SECRETS:
        assert secret not in text


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


# -- spec §2.2: exchange-member and file listings ----------------------------------------------


def test_exchange_member_returns_member_and_first_page():
    server = exchange_member_server(3)
    member = make_client(server).exchange_member()
    assert isinstance(member, Member)
    assert member.project_member_id == "01234567"  # a string; leading zero kept
    assert member.username is None  # absent unless the project requests usernames
    assert member.created == datetime(2019, 3, 15, 17, 2, 11, tzinfo=UTC)
    assert member.sources_shared == ("direct-sharing-91",)
    assert member.file_count == 3
    assert [f.id for f in member.files] == [1000, 1001, 1002]
    first = member.files[0]
    assert isinstance(first, DataFile)
    assert first.created == datetime(2018, 5, 27, 12, 22, 27, 718349, tzinfo=UTC)
    assert first.metadata == {"description": "Test data", "tags": ["text"]}
    assert first.datatypes == (f"{BASE}/api/public/datatype/12/",)
    assert first.as_dict() == file_json(1000)
    assert "key=" not in repr(first)  # the download key is a credential
    assert len(server.requests) == 1


def test_exchange_member_with_master_token_sends_project_member_id():
    server = exchange_member_server(1)
    make_client(server, MASTER_TOKEN).exchange_member(project_member_id="01234567")
    assert server.requests[0].url.params["project_member_id"] == "01234567"


def test_exchange_member_invalid_member_is_bad_request_with_normalised_errors():
    body = {"project_member_id": "project_member_id is invalid"}
    server = Server().on("GET", f"{API}exchange-member/", resp(400, body))
    with pytest.raises(BadRequestError) as info:
        make_client(server, MASTER_TOKEN).exchange_member(project_member_id="99999999")
    assert info.value.errors == {"project_member_id": ["project_member_id is invalid"]}
    assert info.value.body == body


def test_250_files_are_listed_once_each_in_3_requests():
    server = exchange_member_server(250)
    files = make_client(server).list_files()
    assert len(files) == 250
    assert len({f.id for f in files}) == 250
    assert len(server.requests) == 3 == math.ceil(250 / 100)


@pytest.mark.parametrize("n", [0, 1, 100, 101, 200])
def test_listing_takes_ceil_n_over_100_requests(n):
    server = exchange_member_server(n)
    assert len(make_client(server).list_files()) == n
    assert len(server.requests) == max(1, math.ceil(n / 100))


def test_files_repeated_across_pages_are_listed_once():
    server = exchange_member_server(250, overlap=5)
    files = make_client(server).list_files()
    assert [f.id for f in files] == list(range(1000, 1250))


def test_next_link_to_another_host_is_not_followed():
    server = exchange_member_server(150, next_host="https://evil.test")
    with pytest.raises(OpenHumansAPIResponseError, match="another origin") as info:
        make_client(server).list_files()
    assert [r.url.host for r in server.requests] == ["oh.test"]
    assert_no_secret(info.value)


@pytest.mark.parametrize("next_host", ["http://oh.test", "https://oh.test:8443"])
def test_next_link_to_another_scheme_or_port_is_not_followed(next_host):
    server = exchange_member_server(150, next_host=next_host)
    with pytest.raises(OpenHumansAPIResponseError):
        make_client(server).list_files()
    assert len(server.requests) == 1


def test_a_next_link_pointing_at_itself_does_not_loop():
    page = {"count": 1, "next": f"{BASE}{API}exchange-member/?limit=100", "previous": None}
    page |= {"project_member_id": "01234567", "data": [file_json(1)]}
    server = Server().on("GET", f"{API}exchange-member/", resp(200, page))
    assert [f.id for f in make_client(server).list_files()] == [1]
    assert len(server.requests) == 1


# -- retries: GETs only ------------------------------------------------------------------------


def flaky(responses: list[httpx.Response | Exception]) -> Handler:
    it = iter(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        item = next(it)
        if isinstance(item, Exception):
            raise item
        return item

    return handler


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


# -- spec §2.3: members (master token) ---------------------------------------------------------


def members_server() -> Server:
    """Two pages of members; the second member has 15 files but only 10 are inlined."""

    def members(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        link = f"{BASE}{API}exchange-member/?project_member_id={{}}&access_token={MASTER_TOKEN}"
        item = {
            "created": "2016-04-11T19:50:49.041825Z",
            "sources_shared": ["direct-sharing-91"],
        }
        if params.get("offset") is None:
            body = {
                "count": 2,
                "next": f"{BASE}{API}members/?access_token={MASTER_TOKEN}&limit=1&offset=1",
                "previous": None,
                "results": [
                    item
                    | {
                        "project_member_id": "11111111",
                        "file_count": 2,
                        "exchange_member": link.format("11111111"),
                        "username": "beau",
                        "data": [file_json(1), file_json(2)],
                    }
                ],
            }
        else:
            body = {
                "count": 2,
                "next": None,
                "previous": None,
                "results": [
                    item
                    | {
                        "project_member_id": "22222222",
                        "file_count": 15,
                        "exchange_member": link.format("22222222"),
                        "data": [file_json(i) for i in range(100, 110)],
                    }
                ],
            }
        return resp(200, body)

    def exchange(request: httpx.Request) -> httpx.Response:
        assert request.url.params["project_member_id"] == "22222222"
        body = {"count": 15, "next": None, "previous": None, "project_member_id": "22222222"}
        return resp(200, body | {"data": [file_json(i) for i in range(100, 115)]})

    return (
        Server().on("GET", f"{API}members/", members).on("GET", f"{API}exchange-member/", exchange)
    )


def test_iter_members_pages_and_completes_file_lists():
    server = members_server()
    members = list(make_client(server, MASTER_TOKEN).iter_members())
    assert [m.project_member_id for m in members] == ["11111111", "22222222"]
    assert members[0].username == "beau"
    assert [f.id for f in members[0].files] == [1, 2]
    assert len(members[1].files) == 15 == members[1].file_count
    # 2 member pages + 1 exchange-member for the member with more files than inlined
    assert [r.url.path for r in server.requests] == [
        f"{API}members/",
        f"{API}members/",
        f"{API}exchange-member/",
    ]
    first = server.requests[0]
    assert first.url.params["access_token"] == MASTER_TOKEN  # spec §A.2: query param required
    assert MASTER_TOKEN not in repr(members[1]) and MASTER_TOKEN not in str(members[1].raw)


def test_members_urls_are_not_logged_with_the_token(caplog):
    caplog.set_level(logging.DEBUG)
    list(make_client(members_server(), MASTER_TOKEN).iter_members())
    assert "members/" in caplog.text
    assert MASTER_TOKEN not in caplog.text


def test_members_with_user_token_is_invalid_token_error_without_the_token():
    server = Server().on("GET", f"{API}members/", resp(401, {"detail": "Invalid token."}))
    with pytest.raises(InvalidTokenError) as info:
        list(make_client(server).iter_members())
    assert "members/" in str(info.value)
    assert_no_secret(info.value)


def test_members_connection_error_hides_the_token():
    server = Server().on("GET", f"{API}members/", flaky([httpx.ConnectError("down")] * 3))
    with pytest.raises(OpenHumansConnectionError) as info:
        list(make_client(server, MASTER_TOKEN).iter_members())
    assert_no_secret(info.value)


# -- spec §2.4: message ------------------------------------------------------------------------


def test_message_to_3_ids_is_one_request_with_a_json_array():
    server = Server().on("POST", f"{API}message/", resp(200, "success"))
    ids = ["11111111", "22222222", "33333333"]
    assert make_client(server, MASTER_TOKEN).message("Hi", "Hello", project_member_ids=ids) is None
    (request,) = server.requests
    assert request.headers["Content-Type"] == "application/json"
    assert server.json_body() == {"subject": "Hi", "message": "Hello", "project_member_ids": ids}


def test_message_sends_a_repeated_id_once():
    server = Server().on("POST", f"{API}message/", resp(200, "success"))
    ids = ["22222222", "11111111", "22222222"]
    make_client(server, MASTER_TOKEN).message("Hi", "Hello", project_member_ids=ids)
    assert server.json_body()["project_member_ids"] == ["22222222", "11111111"]


def test_message_all_members():
    server = Server().on("POST", f"{API}message/", resp(200, "success"))
    make_client(server, MASTER_TOKEN).message("Hi", "Hello", all_members=True)
    assert server.json_body() == {"subject": "Hi", "message": "Hello", "all_members": True}


def test_message_with_a_user_token_sends_neither_selector():
    server = Server().on("POST", f"{API}message/", resp(200, "success"))
    make_client(server).message("Hi", "Hello {{ PROJECT_MEMBER_ID }}")
    assert server.json_body() == {"subject": "Hi", "message": "Hello {{ PROJECT_MEMBER_ID }}"}


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"project_member_ids": ["11111111"], "all_members": True}, "all_members"),
        ({"project_member_ids": "11111111"}, "project_member_ids"),
        ({"project_member_ids": []}, "project_member_ids"),
        ({"project_member_ids": ["11111111", 22222222]}, "project_member_ids"),
        ({"message": ""}, "message"),
    ],
)
def test_message_bad_arguments_are_refused_before_any_request(kwargs, argument):
    server = Server()
    args = {"subject": "Hi", "message": "Hello"} | kwargs
    with pytest.raises(InvalidArgumentError) as info:
        make_client(server, MASTER_TOKEN).message(**args)
    assert info.value.argument == argument
    assert server.requests == []


@pytest.mark.parametrize(
    "errors",
    [
        {"project_member_ids": ["Project member IDs are always 8 digits long."]},
        {"project_member_ids": ["Invalid project member ID(s): 12345678, 87654321"]},
        {"__all__": ["You must specify either all members or provide a list of IDs."]},
        {"__all__": ["You must specify either all members or provide a list of IDs but not both."]},
        {
            "message": ["This field is required."],
            "__all__": ["You must specify either all members or provide a list of IDs."],
        },  # noqa: E501
    ],
)
def test_message_errors_envelope_is_normalised(errors):
    server = Server().on("POST", f"{API}message/", resp(400, {"errors": errors}))
    with pytest.raises(BadRequestError) as info:
        make_client(server, MASTER_TOKEN).message("Hi", "Hello", all_members=True)
    assert info.value.errors == errors
    assert list(errors.values())[0][0] in str(info.value)


# -- spec §2.5: remove-members -----------------------------------------------------------------


def test_remove_members_with_user_token_is_an_empty_post():
    server = Server().on("POST", f"{API}remove-members/", resp(200, "success"))
    make_client(server).remove_members()
    (request,) = server.requests
    assert server.bodies[0] == b""
    assert "Content-Type" not in request.headers


def test_remove_members_with_master_token_sends_a_json_array():
    server = Server().on("POST", f"{API}remove-members/", resp(200, "success"))
    make_client(server, MASTER_TOKEN).remove_members(["11111111", "22222222"])
    assert server.json_body() == {"project_member_ids": ["11111111", "22222222"]}


def test_remove_members_error_envelope():
    errors = {"__all__": ["You must provide a list of project member IDs."]}
    server = Server().on("POST", f"{API}remove-members/", resp(400, {"errors": errors}))
    with pytest.raises(BadRequestError) as info:
        make_client(server, MASTER_TOKEN).remove_members()
    assert info.value.errors == errors


def test_remove_members_500_is_server_error_and_not_retried():
    server = Server().on("POST", f"{API}remove-members/", resp(500, "Server Error"))
    with pytest.raises(ServerError):
        make_client(server, MASTER_TOKEN).remove_members(["11111111"])
    assert len(server.requests) == 1


# -- spec §2.6: direct upload ------------------------------------------------------------------

META = {"description": "Survey answers", "tags": ["survey", "csv"]}


def upload_server(
    *, put: httpx.Response | Handler | None = None, complete: httpx.Response | None = None
) -> Server:
    server = Server()
    server.on("POST", f"{API}files/upload/direct/", resp(201, {"id": 62525, "url": S3_URL}))
    server.on("PUT", "/member-files/direct-sharing-128/uuid/data.csv", put or httpx.Response(200))

    def completed(request: httpx.Request) -> httpx.Response:
        put_body = server.bodies[1]
        return resp(200, {"status": "ok", "size": len(put_body)})

    server.on("POST", f"{API}files/upload/complete/", complete or completed)
    return server


@pytest.mark.parametrize("put_status", [200, 403])
def test_upload_logs_no_presigned_url_credentials(caplog, put_status):
    # The presigned PUT URL lets anyone write the file for 6 h (spec §2.6): httpx logs
    # every request URL at INFO, so its signature must be redacted there too.
    caplog.set_level(logging.DEBUG)
    server = upload_server(put=httpx.Response(put_status))
    try:
        make_client(server).upload(b"a,b\n", "data.csv", META)
    except OpenHumansAPIResponseError as err:
        assert_no_secret(err)
    assert "PUT https://s3.test/" in caplog.text
    for secret in SECRETS:
        assert secret not in caplog.text


def test_upload_is_three_requests_direct_put_complete():
    server = upload_server()
    result = make_client(server).upload(b"a,b\n1,2\n", "data.csv", META, datatypes=[12])
    assert result == UploadResult(id=62525, size=8, basename="data.csv")
    assert [(r.method, r.url.host) for r in server.requests] == [
        ("POST", "oh.test"),
        ("PUT", "s3.test"),
        ("POST", "oh.test"),
    ]
    direct = json.loads(server.bodies[0])
    # spec §A.4: metadata and datatypes are JSON strings even inside a JSON body
    assert direct == {"filename": "data.csv", "metadata": json.dumps(META), "datatypes": "[12]"}
    assert json.loads(server.bodies[2]) == {"file_id": 62525}
    assert server.bodies[1] == b"a,b\n1,2\n"


def test_upload_put_has_content_length_and_no_content_type_chunking_or_token():
    server = upload_server()
    make_client(server).upload(io.BytesIO(b"x" * 5000), "data.csv", META)
    put = server.requests[1]
    assert put.headers["Content-Length"] == "5000"
    assert "Content-Type" not in put.headers
    assert "Transfer-Encoding" not in put.headers
    assert "Authorization" not in put.headers  # the token never goes to S3
    assert put.url == httpx.URL(S3_URL)  # the presigned URL is used verbatim


def test_upload_with_master_token_names_the_member_in_direct_and_complete():
    server = upload_server()
    make_client(server, MASTER_TOKEN).upload(b"x", "data.csv", META, project_member_id="01234567")
    assert json.loads(server.bodies[0])["project_member_id"] == "01234567"
    assert json.loads(server.bodies[2]) == {"project_member_id": "01234567", "file_id": 62525}


def test_upload_text_stream_is_sent_as_utf8_with_its_byte_length():
    server = upload_server()
    result = make_client(server).upload(io.StringIO("naïve café\n"), "notes.txt", META)
    assert server.bodies[1] == "naïve café\n".encode()
    assert server.requests[1].headers["Content-Length"] == str(len("naïve café\n".encode()))
    assert result.size == 13


def test_upload_non_seekable_stream_gets_a_content_length():
    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            chunk = self._data.read(len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    server = upload_server()
    make_client(server).upload(Pipe(b"y" * 3_000_000), "data.csv", META)
    assert server.requests[1].headers["Content-Length"] == "3000000"
    assert server.bodies[1] == b"y" * 3_000_000


def test_upload_sends_from_the_current_position_of_a_seekable_stream():
    stream = io.BytesIO(b"HEADERbody")
    stream.seek(6)
    server = upload_server()
    make_client(server).upload(stream, "data.csv", META)
    assert server.bodies[1] == b"body"


def test_upload_put_403_raises_and_never_completes():
    s3_error = httpx.Response(403, text="<Error><Code>SignatureDoesNotMatch</Code></Error>")
    server = upload_server(put=s3_error)
    with pytest.raises(OpenHumansAPIResponseError) as info:
        make_client(server).upload(b"data", "data.csv", META)
    assert info.value.status_code == 403
    assert "SignatureDoesNotMatch" in str(info.value.body)
    assert server.sent("POST", f"{API}files/upload/complete/") == []
    assert_no_secret(info.value)  # the presigned URL's signature is not echoed


def test_upload_put_connection_failure_raises_and_never_completes():
    server = upload_server(put=flaky([httpx.WriteError("broken pipe")]))
    with pytest.raises(OpenHumansConnectionError):
        make_client(server).upload(b"data", "data.csv", META)
    assert server.sent("POST", f"{API}files/upload/complete/") == []
    assert len(server.sent("PUT", "/member-files/direct-sharing-128/uuid/data.csv")) == 1


def test_upload_metadata_rejected_by_server_stops_before_put():
    errors = {"metadata": ['"description" is a required field of the metadata']}
    server = upload_server()
    server.on("POST", f"{API}files/upload/direct/", resp(400, errors))
    with pytest.raises(BadRequestError) as info:
        make_client(server).upload(b"data", "data.csv", META)
    assert info.value.errors == errors
    assert len(server.requests) == 1


def test_upload_invalid_member_plain_string_error():
    server = upload_server()
    body = {"project_member_id": "project_member_id is invalid"}
    server.on("POST", f"{API}files/upload/direct/", resp(400, body))
    with pytest.raises(BadRequestError) as info:
        make_client(server, MASTER_TOKEN).upload(b"d", "d.csv", META, project_member_id="1234")
    assert info.value.errors == {"project_member_id": ["project_member_id is invalid"]}


@pytest.mark.parametrize(
    ("status", "body", "exc", "errors"),
    [
        (400, {"detail": "file not present"}, BadRequestError, {"detail": ["file not present"]}),
        (
            400,
            {"detail": "file does not exist"},
            BadRequestError,
            {"detail": ["file does not exist"]},
        ),  # noqa: E501
        (
            400,
            {"file_id": ["Enter a whole number."]},
            BadRequestError,
            {"file_id": ["Enter a whole number."]},
        ),  # noqa: E501
        (500, "Server Error (500)", ServerError, None),
    ],
)
def test_upload_complete_failure_raises(status, body, exc, errors):
    server = upload_server(complete=resp(status, body))
    with pytest.raises(exc) as info:
        make_client(server).upload(b"data", "data.csv", META)
    if errors is not None:
        assert info.value.errors == errors
    assert len(server.sent("POST", f"{API}files/upload/complete/")) == 1  # POST: no retry


@pytest.mark.parametrize(
    ("args", "argument"),
    [
        ((b"", "data.csv", META), "stream"),
        ((io.BytesIO(), "data.csv", META), "stream"),
        ((io.StringIO(""), "data.csv", META), "stream"),
        (("not a stream", "data.csv", META), "stream"),
        ((b"x", "", META), "filename"),
        ((b"x", "dir/data.csv", META), "filename"),
        ((b"x", "data.csv", "{}"), "metadata"),
        ((b"x", "data.csv", {"tags": []}), "metadata"),
        ((b"x", "data.csv", {"description": 1, "tags": []}), "metadata"),
        ((b"x", "data.csv", {"description": "d"}), "metadata"),
        ((b"x", "data.csv", {"description": "d", "tags": "csv"}), "metadata"),
        ((b"x", "data.csv", {"description": "d", "tags": [1]}), "metadata"),
        ((b"x", "data.csv", {"description": "d", "tags": [], "when": datetime.now()}), "metadata"),
    ],
)
def test_upload_bad_input_is_refused_before_any_request(args, argument):
    server = upload_server()
    with pytest.raises(InvalidArgumentError) as info:
        make_client(server).upload(*args)
    assert info.value.argument == argument
    assert server.requests == []


def test_upload_datatypes_must_be_a_list():
    server = upload_server()
    with pytest.raises(InvalidArgumentError, match="datatypes"):
        make_client(server).upload(b"x", "d.csv", META, datatypes="12")  # type: ignore[arg-type]
    assert server.requests == []


class ZeroFile(io.RawIOBase):
    """A seekable file of ``size`` zero bytes that exists only as a length."""

    def __init__(self, size: int) -> None:
        self.size, self.pos = size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = {0: offset, 1: self.pos + offset, 2: self.size + offset}[whence]
        return self.pos

    def readinto(self, buffer: Any) -> int:
        n = max(0, min(len(buffer), self.size - self.pos))
        buffer[:n] = bytes(n)
        self.pos += n
        return n


class CountingS3Transport(httpx.BaseTransport):
    """Consumes the PUT body chunk by chunk, as a socket would (MockTransport buffers it)."""

    def __init__(self, api: Server) -> None:
        self.api = httpx.MockTransport(api)
        self.received: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "PUT":
            return self.api.handle_request(request)
        assert isinstance(request.stream, httpx.SyncByteStream)
        self.received.append(sum(len(chunk) for chunk in request.stream))
        return httpx.Response(200)


def test_upload_streams_in_constant_memory():
    size = 64 * 1024 * 1024
    server = Server()
    server.on("POST", f"{API}files/upload/direct/", resp(201, {"id": 1, "url": S3_URL}))
    server.on("POST", f"{API}files/upload/complete/", resp(200, {"status": "ok", "size": size}))
    transport = CountingS3Transport(server)
    client = OpenHumansClient(USER_TOKEN, base_url=BASE, transport=transport)
    tracemalloc.start()
    try:
        result = client.upload(ZeroFile(size), "big.bin", META)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.size == size and transport.received == [size]
    assert peak < 8 * 1024 * 1024  # a 64 MiB upload never holds more than a few chunks


def test_upload_larger_than_s3_allows_is_refused_before_any_request():
    # spec §2.6 step 2: S3 takes at most 5 GiB in one PUT; a bigger stream would be sent
    # whole and then refused, leaving an incomplete file record behind.
    server = upload_server()
    with pytest.raises(InvalidArgumentError, match="5 GiB") as info:
        make_client(server).upload(ZeroFile(5 * 1024**3 + 1), "huge.bin", META)
    assert info.value.argument == "stream"
    assert server.requests == []


# -- spec §2.8: delete -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "body"),
    [
        ({"file_id": 34188}, {"file_id": 34188}),
        ({"file_basename": "data.csv"}, {"file_basename": "data.csv"}),
        ({"all_files": True}, {"all_files": True}),
        (
            {"all_files": True, "project_member_id": "01234567"},
            {"all_files": True, "project_member_id": "01234567"},
        ),
    ],
)
def test_delete_files_sends_one_selector_and_returns_ids(kwargs, body):
    server = Server().on("POST", f"{API}files/delete/", resp(200, {"ids": [34188]}))
    assert make_client(server).delete_files(**kwargs) == [34188]
    assert server.json_body() == body
    assert len(server.requests) == 1


def test_delete_unknown_file_returns_empty_list():
    server = Server().on("POST", f"{API}files/delete/", resp(200, {"ids": []}))
    assert make_client(server).delete_files(file_id=1) == []


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"file_id": 1, "all_files": True}, {"file_id": 1, "file_basename": "a"}, {"file_id": "1"}],
)
def test_delete_files_needs_exactly_one_selector(kwargs):
    server = Server()
    with pytest.raises(InvalidArgumentError):
        make_client(server).delete_files(**kwargs)
    assert server.requests == []


@pytest.mark.parametrize("body", [{"ids": ["x"]}, {"ids": [None]}, {"ids": 3}, "success"])
def test_delete_malformed_success_is_a_response_error(body):
    server = Server().on("POST", f"{API}files/delete/", resp(200, body))
    with pytest.raises(OpenHumansAPIResponseError, match="malformed"):
        make_client(server).delete_files(file_id=1)


@pytest.mark.parametrize("file_id", [0, -1, 2**63, 10**30, True])
def test_delete_files_refuses_an_impossible_file_id_before_any_request(file_id):
    # Open Humans' ids are positive 64-bit integers; a larger one is a 500 on its database.
    server = Server()
    with pytest.raises(InvalidArgumentError) as info:
        make_client(server).delete_files(file_id=file_id)
    assert info.value.argument == "file_id"
    assert server.requests == []


@pytest.mark.parametrize(
    "body",
    [
        {"missing_field": "one of file_id, file_basename, or all_files is required"},
        {"too_many": "one of file_id, file_basename, or all_files is required"},
        {"file_id": ["Enter a whole number."]},
        {"project_member_id": "project_member_id is invalid"},
    ],
)
def test_delete_errors_are_bad_requests_with_list_values(body):
    server = Server().on("POST", f"{API}files/delete/", resp(400, body))
    with pytest.raises(BadRequestError) as info:
        make_client(server).delete_files(all_files=True)
    assert info.value.errors == {k: v if isinstance(v, list) else [v] for k, v in body.items()}


# -- spec §1.1: authorize URL, PKCE ------------------------------------------------------------


def test_authorize_url_points_at_open_humans_own_view():
    url = httpx.URL(
        authorize_url(
            "client-1",
            "http://localhost:8000/openhumans/complete",
            state="st4te",
            code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            scope=["read", "write"],
        )
    )
    assert str(url).startswith(
        "https://www.openhumans.org/direct-sharing/projects/oauth2/authorize/?"
    )
    assert dict(url.params) == {
        "client_id": "client-1",
        "response_type": "code",
        "redirect_uri": "http://localhost:8000/openhumans/complete",
        "state": "st4te",
        "scope": "read write",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
    }


def test_authorize_url_under_a_prefixed_base_url_without_pkce():
    url = httpx.URL(authorize_url("c", "http://x/cb", state="s", base_url="http://127.0.0.1:9/oh"))
    assert url.path == "/oh/direct-sharing/projects/oauth2/authorize/"
    assert "code_challenge" not in url.params and "scope" not in url.params


def test_authorize_url_requires_state():
    with pytest.raises(InvalidArgumentError) as info:
        authorize_url("c", "http://x/cb", state="")
    assert info.value.argument == "state"


def test_pkce_s256_matches_rfc7636_appendix_b():
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert code_challenge_s256(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_code_verifiers_are_fresh_and_valid():
    first, second = make_code_verifier(), make_code_verifier()
    assert first != second and 43 <= len(first) <= 128
    assert len(code_challenge_s256(first)) == 43
    with pytest.raises(InvalidArgumentError):
        code_challenge_s256("too-short")


# -- spec §1.2–1.4: token endpoint -------------------------------------------------------------

TOKEN_BODY = {
    "access_token": USER_TOKEN,
    "expires_in": 36000,
    "token_type": "Bearer",
    "scope": "american-gut read wildlife open-humans write pgp go-viral",
    "refresh_token": "REFRESHSECRET",
}


def token_server(response: httpx.Response | Handler) -> Server:
    return Server().on("POST", "/oauth2/token/", response)


def test_exchange_code_posts_a_form_with_basic_auth_and_returns_a_tokenset():
    server = token_server(resp(200, TOKEN_BODY, **{"Cache-Control": "no-store"}))
    before = datetime.now(UTC)
    tokens = exchange_code(
        code="c0de",
        client_id="client-1",
        client_secret="s3cret",
        redirect_uri="http://localhost:8000/openhumans/complete",
        code_verifier="v" * 43,
        base_url=BASE,
        transport=httpx.MockTransport(server),
    )
    (request,) = server.requests
    assert (
        request.headers["Authorization"] == "Basic " + base64.b64encode(b"client-1:s3cret").decode()
    )
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(server.bodies[0].decode()) == {
        "grant_type": ["authorization_code"],
        "code": ["c0de"],
        "redirect_uri": ["http://localhost:8000/openhumans/complete"],
        "code_verifier": ["v" * 43],
    }
    assert isinstance(tokens, TokenSet)
    assert tokens.access_token == USER_TOKEN and tokens.refresh_token == "REFRESHSECRET"
    assert tokens.scope == frozenset(
        {"read", "write", "american-gut", "go-viral", "pgp", "wildlife", "open-humans"}
    )
    assert tokens.expires_at.tzinfo is not None
    assert before + timedelta(seconds=35999) <= tokens.expires_at
    assert tokens.expires_at <= datetime.now(UTC) + timedelta(seconds=36000)
    assert 35990 <= tokens.expires_in <= 36000
    assert USER_TOKEN not in repr(tokens) and "REFRESHSECRET" not in repr(tokens)


def test_refresh_posts_the_refresh_grant():
    server = Server().on("POST", "/prefix/oauth2/token/", resp(200, TOKEN_BODY))
    tokens = refresh(
        refresh_token="REFRESHSECRET",
        client_id="client-1",
        client_secret="s3cret",
        base_url=f"{BASE}/prefix",
        transport=httpx.MockTransport(server),
    )
    assert server.requests[0].url.path == "/prefix/oauth2/token/"
    assert parse_qs(server.bodies[0].decode()) == {
        "grant_type": ["refresh_token"],
        "refresh_token": ["REFRESHSECRET"],
    }
    assert tokens.token_type == "Bearer"


@pytest.mark.parametrize(
    ("status", "body", "exc", "error"),
    [
        (401, {"error": "invalid_client"}, OAuthError, "invalid_client"),
        (400, {"error": "invalid_grant"}, InvalidGrantError, "invalid_grant"),
        (401, {"error": "invalid_grant"}, InvalidGrantError, "invalid_grant"),  # 2018 servers
        (400, {"error": "unsupported_grant_type"}, OAuthError, "unsupported_grant_type"),
        (
            400,
            {"error": "invalid_request", "error_description": "Mismatching redirect URI."},
            OAuthError,
            "invalid_request",
        ),
        (
            400,
            {"error": "invalid_request", "error_description": "Code verifier required."},
            OAuthError,
            "invalid_request",
        ),
    ],
)
def test_token_endpoint_errors(status, body, exc, error):
    server = token_server(resp(status, body))
    with pytest.raises(exc) as info:
        refresh(
            refresh_token="REFRESHSECRET",
            client_id="client-1",
            client_secret="s3cret",
            base_url=BASE,
            transport=httpx.MockTransport(server),
        )
    assert type(info.value) is exc
    assert info.value.error == error
    assert info.value.status_code == status
    assert info.value.error_description == body.get("error_description", "")
    assert_no_secret(info.value)
    assert "s3cret" not in str(info.value)


def test_token_endpoint_5xx_is_server_error_and_not_retried():
    server = token_server(resp(503, "Service Unavailable"))
    with pytest.raises(ServerError):
        exchange_code(
            code="c",
            client_id="c",
            client_secret="s",
            redirect_uri="http://x/cb",
            base_url=BASE,
            transport=httpx.MockTransport(server),
        )
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"access_token": "a"},
        {"access_token": "a", "refresh_token": "r", "expires_in": 10**30},
        {"access_token": "", "refresh_token": "r", "expires_in": 36000},
        {"access_token": "a", "refresh_token": None, "expires_in": 36000},
        ["a", "r"],
    ],
    ids=["missing", "huge-expiry", "empty-token", "null-token", "list"],
)
def test_token_endpoint_malformed_success_is_a_response_error(body):
    server = token_server(resp(200, body))
    with pytest.raises(OpenHumansAPIResponseError, match="malformed"):
        refresh(
            refresh_token="r",
            client_id="c",
            client_secret="s",
            base_url=BASE,
            transport=httpx.MockTransport(server),
        )


def test_token_endpoint_unreachable_is_a_connection_error():
    server = token_server(flaky([httpx.ConnectError("refused")]))
    with pytest.raises(OpenHumansConnectionError):
        refresh(
            refresh_token="r",
            client_id="c",
            client_secret="s",
            base_url=BASE,
            transport=httpx.MockTransport(server),
        )


def test_every_error_is_an_open_humans_error():
    for cls in (InvalidTokenError, BadRequestError, OAuthError, OpenHumansConnectionError):
        assert issubclass(cls, OpenHumansError)


def test_results_are_frozen():
    result = UploadResult(id=1, size=2, basename="a")
    with pytest.raises(AttributeError):
        result.id = 3  # type: ignore[misc]
