"""The direct upload against canned answers: three requests, argument and stream checks."""

from __future__ import annotations

import io
import json
import logging
import tracemalloc
from datetime import datetime
from typing import Any

import httpx
import pytest

from openhumans.client import (
    OpenHumansClient,
    UploadResult,
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
    S3_URL,
    SECRETS,
    USER_TOKEN,
    Handler,
    Server,
    assert_no_secret,
    flaky,
    make_client,
    resp,
)

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


def test_upload_put_401_is_not_a_token_error():
    """A 401 from the storage host says nothing about the member's token (no refresh)."""
    server = upload_server(put=httpx.Response(401, text="<Error/>"))
    with pytest.raises(OpenHumansAPIResponseError) as info:
        make_client(server).upload(b"data", "data.csv", META)
    assert not isinstance(info.value, InvalidTokenError)
    assert info.value.status_code == 401
    assert not server.sent("POST", f"{API}files/upload/complete/")
