"""Reading and writing a member's files with the client, against the sandbox: filters,
streaming downloads, read helpers, upload variants, metadata rules and replace_file."""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
import pytest

from openhumans.client import OpenHumansClient
from openhumans.exceptions import (
    DownloadExpiredError,
    FileTooLargeError,
    InvalidArgumentError,
    OpenHumansError,
    ServerError,
    StorageError,
    UnknownFileError,
)

META = {"description": "Daily summary", "tags": ["summary", "daily"]}


class Recording(httpx.BaseTransport):
    """The real transport, keeping every request it sent (to inspect headers)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def pmid(oh_sandbox: Any) -> str:
    return oh_sandbox.create_member(username="alice")["project_member_id"]


@pytest.fixture
def transport() -> Recording:
    return Recording()


@pytest.fixture
def client(oh_sandbox: Any, pmid: str, transport: Recording) -> Any:
    token = oh_sandbox.issue_tokens(pmid)["access_token"]
    with OpenHumansClient(token, base_url=oh_sandbox.base_url, transport=transport) as api:
        api.retry_backoff = 0.0
        yield api


# -- filters ---------------------------------------------------------------------------------


def test_filters_pick_by_basename_tag_source_and_datatype(oh_sandbox, client, pmid):
    [a] = oh_sandbox.add_files(pmid, basename="a.json", metadata={"description": "", "tags": ["x"]})
    [b] = oh_sandbox.add_files(
        pmid, basename="b.json", metadata={"description": "", "tags": ["y"]}, datatypes=[2]
    )
    source = client.project()["id_label"]
    assert [f.id for f in client.list_files(basename="a.json")] == [a]
    assert [f.id for f in client.list_files(tag="y")] == [b]
    assert [f.id for f in client.list_files(datatype=2)] == [b]
    assert {f.id for f in client.list_files(source=source)} == {a, b}
    assert client.list_files(source="direct-sharing-0") == []
    assert client.list_files(basename="a.json", tag="y") == []


def test_latest_file_is_the_newest_match_or_none(oh_sandbox, client, pmid):
    oh_sandbox.add_files(pmid, basename="day.json")
    oh_sandbox.advance_clock(60)
    [newer] = oh_sandbox.add_files(pmid, basename="day.json")
    oh_sandbox.add_files(pmid, basename="other.json")
    assert client.latest_file(basename="day.json").id == newer
    assert client.latest_file(basename="missing.json") is None


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [({"basename": 3}, "basename"), ({"tag": ["x"]}, "tag"), ({"datatype": True}, "datatype")],
)
def test_filters_of_the_wrong_type_are_refused_before_any_request(
    client, transport, kwargs, argument
):
    with pytest.raises(InvalidArgumentError) as caught:
        client.list_files(**kwargs)
    assert caught.value.argument == argument
    assert transport.requests == []


# -- downloads -------------------------------------------------------------------------------


def test_download_streams_to_a_path_without_sending_the_token(
    oh_sandbox, client, pmid, transport, tmp_path
):
    body = bytes(range(256)) * 8192  # 2 MiB: several chunks
    oh_sandbox.add_files(pmid, basename="big.bin", content=body)
    [listed] = client.list_files()
    transport.requests.clear()
    written = client.download(listed, tmp_path / "out.bin")
    assert written == len(body)
    assert (tmp_path / "out.bin").read_bytes() == body
    # the redirector, then storage: neither carries the member's token
    assert len(transport.requests) == 2
    assert all("authorization" not in r.headers for r in transport.requests)
    assert all("access_token" not in str(r.url) for r in transport.requests)
    assert list(tmp_path.iterdir()) == [tmp_path / "out.bin"]  # no temp file left


def test_download_by_id_into_a_directory_and_a_file_object(oh_sandbox, client, pmid, tmp_path):
    [file_id] = oh_sandbox.add_files(pmid, basename="notes.txt", content=b"hello")
    out = io.BytesIO()
    assert client.download(file_id, out) == 5
    assert out.getvalue() == b"hello"
    [listed] = client.list_files()
    client.download(listed.as_dict(), tmp_path)
    assert (tmp_path / "notes.txt").read_bytes() == b"hello"


def test_read_helpers(oh_sandbox, client, pmid):
    oh_sandbox.add_files(pmid, basename="answers.json", content='{"mood": "ça va"}'.encode())
    latest = client.latest_file(basename="answers.json")
    assert client.read_json(latest) == {"mood": "ça va"}
    assert client.read_text(latest) == '{"mood": "ça va"}'
    assert client.read_bytes(latest.id).startswith(b'{"mood"')


def test_an_unknown_file_is_a_typed_error(oh_sandbox, client, pmid, tmp_path):
    oh_sandbox.add_files(pmid)
    with pytest.raises(UnknownFileError) as caught:
        client.read_bytes(999_999)
    assert caught.value.file_id == 999_999
    assert isinstance(caught.value, LookupError)
    with pytest.raises(UnknownFileError):
        client.download(999_999, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_a_file_deleted_since_the_listing_is_unknown(oh_sandbox, client, pmid):
    [file_id] = oh_sandbox.add_files(pmid)
    [listed] = client.list_files()
    client.delete_files(file_id=file_id)
    with pytest.raises(UnknownFileError):
        client.read_bytes(listed)


def test_oversize_is_refused_and_leaves_no_file(oh_sandbox, client, pmid, tmp_path):
    oh_sandbox.add_files(pmid, basename="big.bin", content=b"x" * 5000)
    [listed] = client.list_files()
    with pytest.raises(FileTooLargeError) as caught:
        client.download(listed, tmp_path / "big.bin", max_bytes=4999)
    assert caught.value.size == 5000 and caught.value.max_bytes == 4999
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileTooLargeError):
        client.read_bytes(listed, max_bytes=10)
    assert client.read_bytes(listed, max_bytes=5000) == b"x" * 5000


def test_an_expired_link_is_retried_with_a_fresh_listing(oh_sandbox, client, pmid, transport):
    oh_sandbox.add_files(pmid, basename="a.txt", content=b"still here")
    [listed] = client.list_files()
    oh_sandbox.advance_clock(2 * 3600)  # the listed key lived one hour (spec §2.9)
    oh_sandbox.expire_master_token()  # unrelated; the member's token still lists
    transport.requests.clear()
    assert client.read_bytes(listed) == b"still here"
    paths = [r.url.path for r in transport.requests]
    assert paths[0].startswith("/data-management/datafile-download/")
    assert paths[1].endswith("/exchange-member/")  # re-listed once
    assert len(paths) == 4


def test_a_link_refused_twice_is_download_expired(oh_sandbox, client, pmid):
    [file_id] = oh_sandbox.add_files(pmid)
    stale = {
        "id": file_id,
        "download_url": f"{oh_sandbox.base_url}/data-management/"
        f"datafile-download/{file_id}/?key=wrong",
    }
    assert client.read_bytes(stale)  # fresh from the listing: fine
    oh_sandbox.set_fault("/data-management/datafile-download/", status=403, error_rate=1.0)
    with pytest.raises(DownloadExpiredError) as caught:
        client.read_bytes(stale)
    assert caught.value.status_code == 403
    assert "key=" not in str(caught.value)


def test_a_non_200_from_storage_is_a_storage_error(oh_sandbox, client, pmid):
    oh_sandbox.add_files(pmid)
    [listed] = client.list_files()
    oh_sandbox.set_fault("/_storage/", status=500, error_rate=1.0)
    with pytest.raises(StorageError) as caught:
        client.read_bytes(listed)
    assert caught.value.status_code == 500
    assert "Signature" not in str(caught.value)


@pytest.mark.parametrize("bad", [None, "abc", -1, True, {"no": "id"}])
def test_a_bad_file_reference_is_refused(client, transport, bad):
    with pytest.raises(InvalidArgumentError) as caught:
        client.read_bytes(bad)
    assert caught.value.argument == "file"
    assert transport.requests == []


# -- uploads ---------------------------------------------------------------------------------


def test_upload_from_a_path_and_from_bytes_with_datatypes(oh_sandbox, client, pmid, tmp_path):
    path = tmp_path / "steps.csv"
    path.write_bytes(b"day,steps\n1,9000\n")
    one = client.upload(path, "steps.csv", META, datatypes=[1])
    two = client.upload(str(path), "steps2.csv", META)
    three = client.upload(b"raw", "raw.bin", META, max_bytes=3)
    assert client.read_bytes(one.id) == path.read_bytes() == client.read_bytes(two.id)
    assert client.read_bytes(three.id) == b"raw"
    [listed] = client.list_files(basename="steps.csv")
    assert listed.datatypes and listed.datatypes[0].rstrip("/").endswith("/1")


def test_upload_over_max_bytes_sends_nothing(oh_sandbox, client, transport, tmp_path):
    path = tmp_path / "big.csv"
    path.write_bytes(b"x" * 100)
    for stream in (path, b"x" * 100, io.BytesIO(b"x" * 100)):
        with pytest.raises(FileTooLargeError):
            client.upload(stream, "big.csv", META, max_bytes=99)
    with pytest.raises(InvalidArgumentError, match="no such file"):
        client.upload(tmp_path / "missing.csv", "m.csv", META)
    assert transport.requests == []


def test_upload_json(oh_sandbox, client, pmid):
    result = client.upload_json({"steps": [1, 2], "é": None}, "summary.json", META)
    assert client.read_json(result.id) == {"steps": [1, 2], "é": None}


@pytest.mark.parametrize("obj", [{1, 2}, object(), float("nan")])
def test_upload_json_refuses_what_json_cannot_hold(client, transport, obj):
    with pytest.raises(InvalidArgumentError) as caught:
        client.upload_json(obj, "x.json", META)
    assert caught.value.argument == "obj"
    assert transport.requests == []


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({"description": 5, "tags": []}, '"description"'),
        ({"description": "x", "tags": "a,b"}, '"tags"'),
        ({"description": "x", "tags": [1]}, '"tags"'),
        ({"description": "x", "tags": [], "creation_date": None}, '"creation_date"'),
        ({"description": "x", "tags": [], "start_date": "yesterday"}, '"start_date"'),
        ({"description": "x", "tags": [], "end_date": 20261130}, '"end_date"'),
        ({"description": "x", "tags": [], "md5": "xyz"}, '"md5"'),
    ],
)
def test_metadata_is_checked_before_any_request(client, transport, metadata, field):
    with pytest.raises(InvalidArgumentError) as caught:
        client.upload(b"data", "f.txt", metadata)
    assert field in str(caught.value)
    assert transport.requests == []


def test_metadata_the_server_accepts_is_accepted(client):
    long = "a description well past the hundred characters Open Humans' docs ask for " * 3
    metadata = {
        "description": long,
        "tags": [],
        "creation_date": "2026-11-30T12:00:00Z",
        "start_date": "2026-11-01",
        "md5": "D41D8CD98F00B204E9800998ECF8427E",
    }
    result = client.upload(b"data", "f.txt", metadata)
    assert client.list_files()[0].metadata["description"] == long
    assert result.size == 4


# -- replace_file ----------------------------------------------------------------------------


def test_replace_file_uploads_then_deletes_the_old_ones(oh_sandbox, client, pmid):
    old = client.upload_json({"day": 1}, "summary.json", META).id
    older = client.upload_json({"day": 0}, "summary.json", META).id
    keep = client.upload_json({"x": 1}, "other.json", META).id
    new, deleted = client.replace_file(json.dumps({"day": 2}).encode(), "summary.json", META)
    assert sorted(deleted) == sorted([old, older])
    assert {f.id for f in client.list_files()} == {new.id, keep}
    assert client.read_json(client.latest_file(basename="summary.json")) == {"day": 2}


def test_replace_file_by_tag(oh_sandbox, client, pmid):
    old = client.upload(b"1", "2026-11-29.csv", META).id
    client.upload(b"1", "notes.csv", {"description": "", "tags": ["notes"]})
    new, deleted = client.replace_file(b"2", "2026-11-30.csv", META, match="daily")
    assert deleted == [old]
    assert sorted(f.basename for f in client.list_files()) == ["2026-11-30.csv", "notes.csv"]
    with pytest.raises(InvalidArgumentError) as caught:
        client.replace_file(b"3", "x.csv", META, match="weekly")
    assert caught.value.argument == "match"


def test_replace_file_whose_upload_fails_deletes_nothing(oh_sandbox, client, pmid):
    old = client.upload_json({"day": 1}, "summary.json", META).id
    oh_sandbox.set_fault(
        "/api/direct-sharing/project/files/upload/complete/", status=500, error_rate=1.0
    )
    with pytest.raises(ServerError):
        client.replace_file(b'{"day": 2}', "summary.json", META)
    oh_sandbox.clear_faults()
    assert [f.id for f in client.list_files()] == [old]
    assert client.read_json(old) == {"day": 1}


def test_replace_file_refuses_bad_input_before_any_request(client, transport):
    with pytest.raises(OpenHumansError):
        client.replace_file(b"", "summary.json", META)
    with pytest.raises(InvalidArgumentError):
        client.replace_file(b"x", "summary.json", {"description": 1, "tags": []})
    assert transport.requests == []
