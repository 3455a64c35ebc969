"""The async client and the members' ``a``-methods, against the sandbox (anyio's plugin)."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from openhumans import client as oh_client
from openhumans.client import AsyncOpenHumansClient
from openhumans.exceptions import (
    FileTooLargeError,
    InvalidArgumentError,
    MemberDeauthorizedError,
    ReauthorizationRequiredError,
    ServerError,
    UnknownFileError,
)
from openhumans.models import OpenHumansMember

pytestmark = pytest.mark.anyio

META = {"description": "Daily summary", "tags": ["summary"]}


@pytest.fixture
def anyio_backend():
    return "asyncio"


class Recording(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
def pmid(oh_sandbox: Any) -> str:
    return oh_sandbox.create_member(username="alice")["project_member_id"]


async def test_async_client_lists_reads_and_replaces(oh_sandbox, pmid, tmp_path):
    token = oh_sandbox.issue_tokens(pmid)["access_token"]
    transport = Recording()
    async with AsyncOpenHumansClient(
        token, base_url=oh_sandbox.base_url, transport=transport
    ) as oh:
        old = (await oh.upload_json({"day": 1}, "summary.json", META)).id
        oh_sandbox.add_files(pmid, count=120, basename="f{i}.csv")  # two pages
        assert len(await oh.list_files()) == 121
        assert (await oh.latest_file(basename="summary.json")).id == old
        new, deleted = await oh.replace_file(b'{"day": 2}', "summary.json", META)
        assert deleted == [old]
        assert await oh.read_json(new.id) == {"day": 2}
        path = tmp_path / "s.json"
        assert await oh.download(new.id, path) == 10 and path.read_bytes() == b'{"day": 2}'
        with pytest.raises(FileTooLargeError):
            await oh.read_bytes(new.id, max_bytes=3)
        with pytest.raises(UnknownFileError):
            await oh.read_bytes(999_999)
        storage = [r for r in transport.requests if "/_storage/" in r.url.path]
        downloads = [r for r in transport.requests if "datafile-download" in r.url.path]
        assert storage and downloads
        assert all("authorization" not in r.headers for r in storage + downloads)


async def test_async_client_retries_an_expired_link(oh_sandbox, pmid):
    token = oh_sandbox.issue_tokens(pmid)["access_token"]
    oh_sandbox.add_files(pmid, basename="a.txt", content=b"kept")
    async with AsyncOpenHumansClient(token, base_url=oh_sandbox.base_url) as oh:
        [listed] = await oh.list_files()
        oh_sandbox.advance_clock(2 * 3600)
        assert await oh.read_bytes(listed) == b"kept"


async def test_async_client_refuses_bad_input_before_any_request(oh_sandbox, pmid):
    transport = Recording()
    async with AsyncOpenHumansClient(
        "token", base_url=oh_sandbox.base_url, transport=transport
    ) as oh:
        with pytest.raises(InvalidArgumentError):
            await oh.upload_json({1, 2}, "x.json", META)
        with pytest.raises(InvalidArgumentError):
            await oh.upload(b"x", "x.txt", {"description": 1, "tags": []})
        with pytest.raises(InvalidArgumentError):
            await oh.list_files(tag=5)
        with pytest.raises(InvalidArgumentError):
            await oh.read_bytes("not-an-id")
    assert transport.requests == []


@pytest.fixture
async def amember(sandbox, transactional_db):
    pmid = sandbox.create_member(username="alice")["project_member_id"]
    member = await sync_to_async(OpenHumansMember.create)(pmid, sandbox.issue_tokens(pmid))
    yield member
    # sync_to_async ran in asgiref's thread: close its connection, or the test database
    # cannot be dropped at the end of the run.
    await sync_to_async(connections.close_all)()


async def test_member_a_methods(sandbox, amember, tmp_path):
    result = await amember.aupload_json({"steps": 1}, "summary.json", META)
    assert await amember.aread_json(result.id) == {"steps": 1}
    latest = await amember.alatest_file(tag="summary")
    assert latest["id"] == result.id
    assert await amember.aread_text(latest) == '{"steps": 1}'
    assert [f["id"] for f in await amember.alist_files(basename="summary.json")] == [result.id]
    up = await amember.aupload(io.BytesIO(b"abc"), "abc.txt", META, datatypes=[1])
    assert await amember.adownload(up.id, tmp_path / "abc.txt") == 3
    new, deleted = await amember.areplace_file(b'{"steps": 2}', "summary.json", META)
    assert deleted == [result.id]
    assert await amember.aread_bytes(new.id) == b'{"steps": 2}'


async def test_member_a_methods_refresh_a_refused_token(sandbox, amember):
    before = amember.access_token
    sandbox.expire_access_tokens(amember.oh_id)  # Open Humans now answers 401
    await amember.aupload(b"x", "x.txt", META)  # refreshed in the sync thread, then retried
    stored = await sync_to_async(OpenHumansMember.objects.get)(pk=amember.pk)
    assert stored.access_token != before
    assert [f["basename"] for f in await amember.alist_files()] == ["x.txt"]


async def test_member_a_methods_after_the_member_left(sandbox, amember):
    sandbox.leave(amember.oh_id)
    with pytest.raises(MemberDeauthorizedError):
        await amember.alist_files()
    stored = await sync_to_async(OpenHumansMember.objects.get)(pk=amember.pk)
    # Issue 10: without the master token a refused refresh is "log in again", not "left".
    assert stored.needs_reauthorization and not stored.oh_deauth


async def test_member_areplace_file_whose_upload_fails_deletes_nothing(sandbox, amember):
    old = (await amember.aupload_json({"day": 1}, "summary.json", META)).id
    sandbox.set_fault("/_storage/", status=500, error_rate=1.0)
    with pytest.raises(ServerError):
        await amember.areplace_file(b"{}", "summary.json", META)
    sandbox.clear_faults()
    assert [f["id"] for f in await amember.alist_files()] == [old]


async def test_member_a_delete_message_and_token(sandbox, amember):
    token = await amember.aget_access_token()
    assert token == (await sync_to_async(OpenHumansMember.objects.get)(pk=amember.pk)).access_token
    first = (await amember.aupload(b"one", "a.txt", META)).id
    await amember.aupload(b"two", "b.txt", META)
    await amember.aupload(b"three", "b.txt", META)
    assert await amember.adelete_single_file(file_id=str(first)) == [first]
    assert len(await amember.adelete_single_file(file_basename="b.txt")) == 2
    await amember.aupload(b"four", "c.txt", META)
    assert len(await amember.adelete_all_files()) == 1
    assert sandbox.files(amember.oh_id) == []
    await amember.amessage("Hello", "Your summary is ready.")
    assert [m["project_subject"] for m in sandbox.inbox(amember.oh_id)] == ["Hello"]
    # Bad input is refused before any request, as by the sync methods.
    with pytest.raises(InvalidArgumentError):
        await amember.adelete_single_file()
    with pytest.raises(InvalidArgumentError):
        await amember.adelete_single_file(file_id="x.csv")
    with pytest.raises(InvalidArgumentError):
        await amember.amessage("Hi", "")


# -- issue 10: a member whose tokens were lost, served with the master token -----------------


def lose_tokens(sandbox: Any, member: OpenHumansMember) -> None:
    """Their pair dies on Open Humans' side (a refresh whose answer we never got, spec §1.4)."""
    oh_client.refresh(
        refresh_token=member.refresh_token,
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
        base_url=sandbox.base_url,
    )


def api_calls(sandbox: Any) -> int:
    """How many requests reached the Open Humans API (not the token endpoint, not storage)."""
    return sum(1 for r in sandbox.request_log()["requests"] if r["path"].startswith("/api/"))


async def flag_needs_reauthorization(member: OpenHumansMember) -> None:
    await sync_to_async(OpenHumansMember.objects.filter(pk=member.pk).update)(
        needs_reauthorization=True
    )


async def test_member_a_methods_with_lost_tokens_use_the_master_token(
    sandbox, amember, settings, tmp_path
):
    settings.OPENHUMANS_MASTER_TOKEN = sandbox.master_token
    lose_tokens(sandbox, amember)
    await flag_needs_reauthorization(amember)
    pmid = amember.oh_id
    up = await amember.aupload(b"hello", "later.txt", META)
    assert [f["id"] for f in sandbox.files(pmid)] == [up.id]  # stored for that member
    assert [f["id"] for f in await amember.alist_files()] == [up.id]
    assert (await amember.alatest_file(basename="later.txt"))["id"] == up.id
    assert await amember.aread_text(up.id) == "hello"
    assert await amember.adownload(up.id, tmp_path / "later.txt") == 5
    new, deleted = await amember.areplace_file(b"again", "later.txt", META)
    assert deleted == [up.id] and [f["id"] for f in sandbox.files(pmid)] == [new.id]
    await amember.amessage("Hello", "still here")
    assert [m["project_subject"] for m in sandbox.inbox(pmid)] == ["Hello"]
    assert await amember.adelete_single_file(file_id=new.id) == [new.id]
    await amember.aupload_json({"a": 1}, "a.json", META)
    assert len(await amember.adelete_all_files()) == 1
    assert sandbox.files(pmid) == []
    stored = await sync_to_async(OpenHumansMember.objects.get)(pk=amember.pk)
    assert stored.needs_reauthorization and not stored.oh_deauth  # still owes a login


async def test_member_a_methods_use_the_master_token_after_a_refused_refresh(
    sandbox, amember, settings
):
    # The stored token looks fresh: Open Humans answers 401, the refresh is refused, and the
    # member (still in the project, says the master token) is served with the master token.
    settings.OPENHUMANS_MASTER_TOKEN = sandbox.master_token
    lose_tokens(sandbox, amember)
    up = await amember.aupload(b"hello", "later.txt", META)
    assert [f["id"] for f in sandbox.files(amember.oh_id)] == [up.id]
    stored = await sync_to_async(OpenHumansMember.objects.get)(pk=amember.pk)
    assert stored.needs_reauthorization and not stored.oh_deauth


async def test_member_a_methods_with_lost_tokens_and_no_master_token(sandbox, amember):
    lose_tokens(sandbox, amember)
    with pytest.raises(ReauthorizationRequiredError):
        await amember.aupload(b"hello", "later.txt", META)  # the 401, then a refused refresh
    sandbox.clear_request_log()
    calls = [
        lambda: amember.alist_files(),
        lambda: amember.alatest_file(),
        lambda: amember.aread_bytes(1),
        lambda: amember.aupload(b"hello", "later.txt", META),
        lambda: amember.areplace_file(b"again", "later.txt", META),
        lambda: amember.adelete_single_file(file_id=1),
        lambda: amember.adelete_all_files(),
        lambda: amember.amessage("Hello", "still here"),
    ]
    for call in calls:
        with pytest.raises(ReauthorizationRequiredError):
            await call()
    assert api_calls(sandbox) == 0  # refused before any request
    assert sandbox.files(amember.oh_id) == [] and sandbox.inbox(amember.oh_id) == []


async def test_the_master_token_never_serves_a_member_who_left(sandbox, amember, settings):
    settings.OPENHUMANS_MASTER_TOKEN = sandbox.master_token
    sandbox.leave(amember.oh_id)
    with pytest.raises(MemberDeauthorizedError) as info:
        await amember.aupload(b"hello", "later.txt", META)
    assert not isinstance(info.value, ReauthorizationRequiredError)
    stored = await sync_to_async(OpenHumansMember.objects.get)(pk=amember.pk)
    assert stored.oh_deauth and not stored.needs_reauthorization
    sandbox.clear_request_log()
    with pytest.raises(MemberDeauthorizedError) as info:
        await amember.amessage("Hello", "still here")
    assert not isinstance(info.value, ReauthorizationRequiredError)
    assert api_calls(sandbox) == 0
    assert sandbox.files(amember.oh_id) == [] and sandbox.inbox(amember.oh_id) == []


def test_async_client_methods_take_the_member_id_as_the_sync_ones_do():
    # The master-token client acting for a member binds ``project_member_id(s)`` to each
    # method whose signature names it; one missing here would act for the whole project.
    import inspect

    from openhumans.client import OpenHumansClient

    member_params = {"project_member_id", "project_member_ids"}
    for name, method in inspect.getmembers(AsyncOpenHumansClient, inspect.iscoroutinefunction):
        sync = getattr(OpenHumansClient, name, None)
        if name.startswith("_") or sync is None:
            continue
        wanted = member_params & set(inspect.signature(sync).parameters)
        assert wanted <= set(inspect.signature(method).parameters), name
