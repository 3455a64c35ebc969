"""The client's two server steps of a browser upload, against canned answers (MockTransport)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from openhumans.client import OpenHumansClient, UploadTarget
from openhumans.exceptions import (
    BadRequestError,
    InvalidArgumentError,
    OpenHumansAPIResponseError,
)

BASE = "https://oh.example"
SIGNED = "https://bucket.example/member-files/x/data.csv?Signature=SECRET&Expires=1"


def client_answering(status: int, body: Any, seen: list[httpx.Request]) -> OpenHumansClient:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json=body)

    return OpenHumansClient("a" * 30, base_url=BASE, transport=httpx.MockTransport(handler))


def test_start_upload_sends_metadata_as_a_json_string_and_returns_the_target():
    seen: list[httpx.Request] = []
    with client_answering(201, {"id": 62525, "url": SIGNED}, seen) as api:
        target = api.start_upload("data.csv", {"description": "d", "tags": ["t"]})
    assert target == UploadTarget(id=62525, url=SIGNED)
    assert "SECRET" not in repr(target)  # the signed URL is a credential
    [request] = seen
    assert request.url == BASE + "/api/direct-sharing/project/files/upload/direct/"
    body = json.loads(request.content)
    assert body["filename"] == "data.csv"
    assert json.loads(body["metadata"]) == {"description": "d", "tags": ["t"]}


@pytest.mark.parametrize(
    "answer",
    [{"id": "x", "url": SIGNED}, {"url": SIGNED}, {"id": 1, "url": "javascript:alert(1)"}, []],
)
def test_start_upload_refuses_a_malformed_answer(answer):
    with (
        client_answering(201, answer, []) as api,
        pytest.raises(OpenHumansAPIResponseError, match="upload"),
    ):
        api.start_upload("data.csv", {"description": "d", "tags": []})


def test_start_upload_refuses_bad_arguments_before_any_request():
    seen: list[httpx.Request] = []
    with client_answering(201, {}, seen) as api:
        with pytest.raises(InvalidArgumentError):
            api.start_upload("a/b.csv", {"description": "d", "tags": []})
        with pytest.raises(InvalidArgumentError):
            api.start_upload("b.csv", {"tags": []})
    assert seen == []


def test_complete_upload_returns_the_stored_size():
    seen: list[httpx.Request] = []
    with client_answering(200, {"status": "ok", "size": 193}, seen) as api:
        assert api.complete_upload(62525) == 193
    assert json.loads(seen[0].content) == {"file_id": 62525}


def test_complete_upload_of_bytes_that_never_arrived_is_a_bad_request():
    with client_answering(400, {"detail": "file not present"}, []) as api:
        with pytest.raises(BadRequestError) as caught:
            api.complete_upload(62525)
    assert caught.value.body == {"detail": "file not present"}


@pytest.mark.parametrize("answer", [{"status": "ok"}, {"size": "193"}, {"size": True}])
def test_complete_upload_refuses_an_answer_without_a_size(answer):
    with client_answering(200, answer, []) as api, pytest.raises(OpenHumansAPIResponseError):
        api.complete_upload(1)


@pytest.mark.parametrize("file_id", [0, -1, "1", True, 2**63])
def test_complete_upload_refuses_a_bad_file_id_without_a_request(file_id):
    seen: list[httpx.Request] = []
    with client_answering(200, {}, seen) as api, pytest.raises(InvalidArgumentError):
        api.complete_upload(file_id)
    assert seen == []
