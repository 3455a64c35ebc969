"""The project API calls against canned answers: listings, members, message, remove, delete."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime

import httpx
import pytest

from openhumans.client import (
    DataFile,
    Member,
)
from openhumans.exceptions import (
    BadRequestError,
    InvalidArgumentError,
    InvalidTokenError,
    OpenHumansAPIResponseError,
    OpenHumansConnectionError,
    ServerError,
)

from .client_fakes import (
    API,
    BASE,
    MASTER_TOKEN,
    Server,
    assert_no_secret,
    exchange_member_server,
    file_json,
    flaky,
    make_client,
    resp,
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
