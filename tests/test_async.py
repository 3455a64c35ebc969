"""The async client and the members' ``a``-methods, against the sandbox (anyio's plugin)."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from openhumans.client import AsyncOpenHumansClient
from openhumans.exceptions import (
    FileTooLargeError,
    InvalidArgumentError,
    MemberDeauthorizedError,
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
