"""The Open Humans client over real sockets against the sandbox (``oh_sandbox`` fixture).

Round trips are counted from the sandbox's own request log, so they are what a server saw.
"""

from __future__ import annotations

import io
import math
from typing import Any

import pytest

from openhumans.client import (
    OpenHumansClient,
    code_challenge_s256,
    exchange_code,
    make_code_verifier,
    refresh,
)
from openhumans.exceptions import (
    BadRequestError,
    InvalidGrantError,
    InvalidTokenError,
    OAuthError,
    OpenHumansConnectionError,
    ServerError,
)

META = {"description": "Survey answers", "tags": ["survey"]}


def api_requests(oh: Any) -> list[dict[str, Any]]:
    """The sandbox's request log without its own control-plane calls."""
    return [r for r in oh.request_log()["requests"] if not r["path"].startswith("/_sandbox/")]


class Counter:
    """Counts the API requests the sandbox receives inside a ``with`` block."""

    def __init__(self, oh: Any) -> None:
        self.oh = oh
        self.requests: list[dict[str, Any]] = []

    def __enter__(self) -> Counter:
        self._start = len(api_requests(self.oh))
        return self

    def __exit__(self, *exc: object) -> None:
        self.requests = api_requests(self.oh)[self._start :]

    @property
    def count(self) -> int:
        return len(self.requests)

    def calls(self) -> list[tuple[str, str]]:
        return [(r["method"], r["path"]) for r in self.requests]


@pytest.fixture
def member(oh_sandbox: Any) -> dict[str, Any]:
    created = oh_sandbox.create_member(username="alice")
    return created | {"tokens": oh_sandbox.issue_tokens(created["project_member_id"])}


@pytest.fixture
def client(oh_sandbox: Any, member: dict[str, Any]) -> Any:
    with OpenHumansClient(member["tokens"]["access_token"], base_url=oh_sandbox.base_url) as api:
        api.retry_backoff = 0.0
        yield api


@pytest.fixture
def master(oh_sandbox: Any) -> Any:
    with OpenHumansClient(oh_sandbox.master_token, base_url=oh_sandbox.base_url) as api:
        api.retry_backoff = 0.0
        yield api


def test_project_describes_the_sandbox_project(client):
    project = client.project()
    assert project["id_label"].startswith("direct-sharing-")
    assert project["type"] == "oauth2"


def test_exchange_member_is_one_request(oh_sandbox, client, member):
    oh_sandbox.add_files(member["project_member_id"], count=3)
    with Counter(oh_sandbox) as counter:
        got = client.exchange_member()
    assert got.project_member_id == member["project_member_id"]
    assert got.file_count == 3 and len(got.files) == 3
    assert counter.count == 1


def test_upload_is_3_round_trips_and_the_file_is_listed(oh_sandbox, client, member):
    body = b"a,b\n1,2\n" * 1000
    with Counter(oh_sandbox) as counter:
        result = client.upload(io.BytesIO(body), "answers.csv", META)
    assert counter.count == 3
    methods = [method for method, _path in counter.calls()]
    assert methods == ["POST", "PUT", "POST"]
    assert result.size == len(body) and result.basename == "answers.csv"
    listed = {f.id: f for f in client.list_files()}
    assert listed[result.id].basename == "answers.csv"
    assert listed[result.id].metadata == META
    stored = [f for f in oh_sandbox.files(member["project_member_id"]) if f["id"] == result.id]
    assert len(stored) == 1


def test_upload_text_stream_stores_utf8(oh_sandbox, client):
    result = client.upload(io.StringIO("naïve café\n"), "notes.txt", META)
    assert result.size == len("naïve café\n".encode())


def test_upload_with_master_token_for_a_member(oh_sandbox, master, member):
    pmid = member["project_member_id"]
    result = master.upload(b"hello", "hello.txt", META, project_member_id=pmid)
    assert [f["id"] for f in oh_sandbox.files(pmid)] == [result.id]


@pytest.mark.parametrize("n", [0, 1, 100, 250])
def test_listing_n_files_takes_ceil_n_over_100_round_trips(oh_sandbox, client, member, n):
    if n:
        oh_sandbox.add_files(member["project_member_id"], count=n)
    with Counter(oh_sandbox) as counter:
        files = client.list_files()
    assert len(files) == n == len({f.id for f in files})
    assert counter.count == max(1, math.ceil(n / 100))


def test_delete_one_file_is_one_round_trip(oh_sandbox, client, member):
    pmid = member["project_member_id"]
    keep, drop = oh_sandbox.add_files(pmid, count=2)
    with Counter(oh_sandbox) as counter:
        assert client.delete_files(file_id=drop) == [drop]
    assert counter.count == 1
    assert [f["id"] for f in oh_sandbox.files(pmid)] == [keep]
    assert client.delete_files(file_id=drop) == []  # spec §2.8: not an error


def test_delete_by_basename_and_all(oh_sandbox, client, member):
    pmid = member["project_member_id"]
    oh_sandbox.add_files(pmid, count=2, basename="a.csv")
    (other,) = oh_sandbox.add_files(pmid, count=1, basename="b.csv")
    assert len(client.delete_files(file_basename="a.csv")) == 2
    assert client.delete_files(all_files=True) == [other]
    assert oh_sandbox.files(pmid) == []


def test_message_from_a_user_token_reaches_the_member_in_one_round_trip(oh_sandbox, client, member):
    with Counter(oh_sandbox) as counter:
        client.message("Hello", "Hi {{ PROJECT_MEMBER_ID }}")
    assert counter.count == 1
    (mail,) = oh_sandbox.inbox()
    assert mail["project_member_id"] == member["project_member_id"]
    assert member["project_member_id"] in mail["message"]


def test_message_to_3_members_reaches_3_in_one_round_trip(oh_sandbox, master):
    ids = [oh_sandbox.create_member(username=f"m{i}")["project_member_id"] for i in range(3)]
    for pmid in ids:
        oh_sandbox.issue_tokens(pmid)
    with Counter(oh_sandbox) as counter:
        master.message("Hello", "Hi", project_member_ids=ids)
    assert counter.count == 1
    assert sorted(m["project_member_id"] for m in oh_sandbox.inbox()) == sorted(ids)


def test_message_with_master_token_and_no_selector_is_refused_by_the_server(master):
    with pytest.raises(BadRequestError) as info:
        master.message("Hello", "Hi")
    assert "__all__" in info.value.errors


def test_message_to_an_unknown_id_is_a_bad_request(master):
    with pytest.raises(BadRequestError) as info:
        master.message("Hello", "Hi", project_member_ids=["99999999"])
    assert "project_member_ids" in info.value.errors


def test_remove_members_with_the_user_token_kills_the_token(oh_sandbox, client):
    client.remove_members()
    with pytest.raises(InvalidTokenError):
        client.project()


def test_remove_members_with_the_master_token(oh_sandbox, master, member):
    master.remove_members([member["project_member_id"]])
    assert all(m.project_member_id != member["project_member_id"] for m in master.iter_members())


def test_iter_members_returns_every_file(oh_sandbox, master, member):
    oh_sandbox.add_files(member["project_member_id"], count=15)
    bob = oh_sandbox.create_member(username="bob")["project_member_id"]
    oh_sandbox.issue_tokens(bob)
    oh_sandbox.add_files(bob, count=2)
    members = {m.project_member_id: m for m in master.iter_members()}
    assert len(members[member["project_member_id"]].files) == 15
    assert len(members[bob].files) == 2


def test_members_with_a_user_token_is_refused(client):
    with pytest.raises(InvalidTokenError):
        list(client.iter_members())


def test_expired_token_is_an_invalid_token_error(oh_sandbox, client, member):
    oh_sandbox.expire_access_tokens(member["project_member_id"])
    with pytest.raises(InvalidTokenError, match="Expired token"):
        client.project()


def test_refresh_rotates_both_tokens_and_kills_the_old_access_token(oh_sandbox, member):
    old = member["tokens"]
    tokens = refresh(
        refresh_token=old["refresh_token"],
        client_id=oh_sandbox.client_id,
        client_secret=oh_sandbox.client_secret,
        base_url=oh_sandbox.base_url,
    )
    assert tokens.access_token != old["access_token"]
    assert tokens.refresh_token != old["refresh_token"]
    assert tokens.expires_in > 35000
    with OpenHumansClient(old["access_token"], base_url=oh_sandbox.base_url) as stale:
        with pytest.raises(InvalidTokenError):
            stale.project()
    with OpenHumansClient(tokens.access_token, base_url=oh_sandbox.base_url) as fresh:
        assert fresh.exchange_member().project_member_id == member["project_member_id"]
    with pytest.raises(InvalidGrantError):
        refresh(
            refresh_token=old["refresh_token"],
            client_id=oh_sandbox.client_id,
            client_secret=oh_sandbox.client_secret,
            base_url=oh_sandbox.base_url,
        )


def test_refresh_after_an_access_token_expired(oh_sandbox, member):
    oh_sandbox.expire_access_tokens(member["project_member_id"])
    tokens = refresh(
        refresh_token=member["tokens"]["refresh_token"],
        client_id=oh_sandbox.client_id,
        client_secret=oh_sandbox.client_secret,
        base_url=oh_sandbox.base_url,
    )
    with OpenHumansClient(tokens.access_token, base_url=oh_sandbox.base_url) as api:
        assert api.project()


def test_wrong_client_secret_is_an_oauth_error(oh_sandbox, member):
    with pytest.raises(OAuthError) as info:
        refresh(
            refresh_token=member["tokens"]["refresh_token"],
            client_id=oh_sandbox.client_id,
            client_secret="wrong",
            base_url=oh_sandbox.base_url,
        )
    assert info.value.error == "invalid_client"
    assert not isinstance(info.value, InvalidGrantError)


def test_exchange_code_with_pkce(oh_sandbox):
    pmid = oh_sandbox.create_member(username="carol")["project_member_id"]
    verifier = make_code_verifier()
    redirect = oh_sandbox.authorize(
        pmid, state="s", code_challenge=code_challenge_s256(verifier), code_challenge_method="S256"
    )
    code = dict(p.split("=", 1) for p in redirect.split("?", 1)[1].split("&"))["code"]
    tokens = exchange_code(
        code=code,
        client_id=oh_sandbox.client_id,
        client_secret=oh_sandbox.client_secret,
        redirect_uri=oh_sandbox.redirect_uri,
        code_verifier=verifier,
        base_url=oh_sandbox.base_url,
    )
    with OpenHumansClient(tokens.access_token, base_url=oh_sandbox.base_url) as api:
        assert api.exchange_member().project_member_id == pmid
    with pytest.raises(InvalidGrantError):  # codes are single use
        exchange_code(
            code=code,
            client_id=oh_sandbox.client_id,
            client_secret=oh_sandbox.client_secret,
            redirect_uri=oh_sandbox.redirect_uri,
            code_verifier=verifier,
            base_url=oh_sandbox.base_url,
        )


def test_exchange_code_with_a_wrong_verifier_is_invalid_grant(oh_sandbox):
    pmid = oh_sandbox.create_member(username="dave")["project_member_id"]
    challenge = code_challenge_s256(make_code_verifier())
    redirect = oh_sandbox.authorize(pmid, code_challenge=challenge, code_challenge_method="S256")
    code = dict(p.split("=", 1) for p in redirect.split("?", 1)[1].split("&"))["code"]
    with pytest.raises(InvalidGrantError):
        exchange_code(
            code=code,
            client_id=oh_sandbox.client_id,
            client_secret=oh_sandbox.client_secret,
            redirect_uri=oh_sandbox.redirect_uri,
            code_verifier=make_code_verifier(),
            base_url=oh_sandbox.base_url,
        )


def test_get_503_is_retried_and_post_503_is_not(oh_sandbox, client):
    path = "/api/direct-sharing/project/"
    oh_sandbox.set_fault(endpoint=path, error_rate=1.0, status=503)
    with Counter(oh_sandbox) as counter, pytest.raises(ServerError):
        client.project()
    assert counter.count == 3  # 1 + max_retries
    oh_sandbox.clear_faults()
    oh_sandbox.set_fault(endpoint=f"{path}message/", error_rate=1.0, status=503)
    with Counter(oh_sandbox) as counter, pytest.raises(ServerError):
        client.message("s", "m")
    assert counter.count == 1
    assert oh_sandbox.inbox() == []


def test_a_dropped_connection_is_a_connection_error(oh_sandbox, client):
    oh_sandbox.set_fault(
        endpoint="/api/direct-sharing/project/files/delete/", error_rate=1.0, drop_connection=True
    )
    with pytest.raises(OpenHumansConnectionError):
        client.delete_files(all_files=True)


def test_a_slow_server_times_out(oh_sandbox, member):
    oh_sandbox.set_fault(endpoint="/api/direct-sharing/project/", latency_ms=1500)
    token = member["tokens"]["access_token"]
    with OpenHumansClient(token, base_url=oh_sandbox.base_url, timeout=0.3, max_retries=0) as api:
        with pytest.raises(OpenHumansConnectionError, match="timed out"):
            api.project()
