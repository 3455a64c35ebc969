"""Conformance: direct upload, multipart upload, download redirector (spec §2.6, §2.7, §2.9)."""

from __future__ import annotations

import json
import socket
import uuid
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from .conftest import API, MEMBER_INVALID, advance_clock, bearer, query, without_query

DIRECT = API + "files/upload/direct/"
COMPLETE = API + "files/upload/complete/"
UPLOAD = API + "files/upload/"
DELETE = API + "files/delete/"
EXCHANGE = API + "exchange-member/"
META = json.dumps({"description": "a file", "tags": ["t"]})

NOT_AUTHORIZED = "<h1>You are not authorized to view this file.</h1>"
UNAVAILABLE = "<h1>This file is unavailable.</h1>"


def listing(http, token):
    r = http.get(EXCHANGE, headers=bearer(token))
    assert r.status_code == 200, r.text
    return r.json()["data"]


def start(http, token, filename="data.bin", metadata=META, **extra):
    r = http.post(
        DIRECT, headers=bearer(token), data={"filename": filename, "metadata": metadata, **extra}
    )
    assert r.status_code == 201, r.text
    return r.json()


def put(url, content: bytes, **kwargs):
    # A fresh client: the storage URL is absolute and needs no auth (spec §2.6 step 2).
    with httpx.Client(timeout=15.0) as s3:
        return s3.put(url, content=content, **kwargs)


def raw_request(url: str, head: str, body: bytes = b"") -> tuple[int, bytes]:
    """Send a hand-made HTTP/1.1 request and return (status, raw response)."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    with socket.create_connection((parts.hostname, parts.port), timeout=15) as sock:
        request = f"{head.format(target=target, host=parts.netloc)}\r\n\r\n".encode() + body
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    raw = b"".join(chunks)
    return int(raw.split(b" ", 2)[1]), raw


def tamper(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    params.update(changes)
    return urlunsplit(parts._replace(query=urlencode(params)))


# --- §2.6 direct upload ---------------------------------------------------------------------


def test_direct_upload_three_steps(oh, http, new_member):
    """§2.6: 201 {id,url}; PUT raw body → 200 + ETag; complete → {"status":"ok","size":N}."""
    m = new_member()
    content = b"x" * 193
    started = start(http, m.access_token, filename="data1.csv")
    assert set(started) == {"id", "url"}
    assert isinstance(started["id"], int)
    assert started["url"].startswith(("http://", "https://"))
    assert "/data1.csv" in urlsplit(started["url"]).path

    r = put(started["url"], content)
    assert r.status_code == 200, r.text
    assert r.content == b""
    assert r.headers.get("etag")

    r = http.post(COMPLETE, headers=bearer(m.access_token), data={"file_id": started["id"]})
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ok", "size": 193}

    (item,) = listing(http, m.access_token)
    assert item["id"] == started["id"]
    assert item["basename"] == "data1.csv"
    assert item["metadata"] == json.loads(META)
    got = httpx.get(item["download_url"], follow_redirects=True, timeout=15)
    assert got.content == content


@pytest.mark.parametrize("filename", ["my data (1).csv", "résumé.txt", "a+b&c=d.json"])
def test_direct_upload_filename_used_verbatim(oh, http, new_member, filename):
    """§2.6: ``filename`` is used verbatim as the last part of the key (and the basename)."""
    m = new_member()
    started = start(http, m.access_token, filename=filename)
    assert put(started["url"], b"abc").status_code == 200
    r = http.post(COMPLETE, headers=bearer(m.access_token), data={"file_id": started["id"]})
    assert r.json() == {"status": "ok", "size": 3}
    (item,) = listing(http, m.access_token)
    assert item["basename"] == filename
    assert httpx.get(item["download_url"], follow_redirects=True, timeout=15).content == b"abc"


def test_direct_upload_json_body(oh, http, new_member):
    """§2.6: step 1 and step 3 also take JSON bodies."""
    m = new_member()
    r = http.post(
        DIRECT, headers=bearer(m.access_token), json={"filename": "j.txt", "metadata": META}
    )
    assert r.status_code == 201, r.text
    assert put(r.json()["url"], b"abc").status_code == 200
    done = http.post(COMPLETE, headers=bearer(m.access_token), json={"file_id": r.json()["id"]})
    assert done.json() == {"status": "ok", "size": 3}


def test_direct_upload_file_invisible_before_complete(oh, http, new_member):
    """§2.6: the record exists with completed=false: invisible to listings and delete."""
    m = new_member()
    started = start(http, m.access_token)
    assert put(started["url"], b"data").status_code == 200
    assert listing(http, m.access_token) == []
    r = http.post(DELETE, headers=bearer(m.access_token), data={"file_id": started["id"]})
    assert r.json() == {"ids": []}
    r = http.post(DELETE, headers=bearer(m.access_token), data={"all_files": "true"})
    assert r.json() == {"ids": []}
    members = http.get(API + "members/", params={"access_token": oh.master_token}).json()
    assert members["results"][0]["file_count"] == 0
    http.post(COMPLETE, headers=bearer(m.access_token), data={"file_id": started["id"]})
    assert [f["id"] for f in listing(http, m.access_token)] == [started["id"]]


def test_direct_upload_master_token(oh, http, new_member):
    """§2.6: master token with project_member_id in steps 1 and 3."""
    m = new_member()
    started = start(http, oh.master_token, project_member_id=m.pmid)
    put(started["url"], b"12345")
    r = http.post(
        COMPLETE,
        headers=bearer(oh.master_token),
        data={"file_id": started["id"], "project_member_id": m.pmid},
    )
    assert r.json() == {"status": "ok", "size": 5}
    assert [f["id"] for f in listing(http, m.access_token)] == [started["id"]]


def test_direct_upload_user_token_overrides_project_member_id(oh, http, new_member):
    """§2.6: with a user token the project_member_id is overwritten by the owner's."""
    alice, bob = new_member(), new_member()
    started = start(http, alice.access_token, project_member_id=bob.pmid)
    put(started["url"], b"x")
    http.post(COMPLETE, headers=bearer(alice.access_token), data={"file_id": started["id"]})
    assert [f["id"] for f in listing(http, alice.access_token)] == [started["id"]]
    assert listing(http, bob.access_token) == []


def test_put_with_content_type_breaks_the_signature(oh, http, new_member):
    """§2.6 step 2: the URL was signed with an empty content type; sending one → 403."""
    m = new_member()
    started = start(http, m.access_token)
    r = put(started["url"], b"data", headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 403, r.text
    r = put(started["url"], b"data")
    assert r.status_code == 200, r.text


def test_put_chunked_is_501(oh, http, new_member):
    """§2.6 / issue 3: chunked transfer encoding is refused with 501, as S3 does."""
    m = new_member()
    started = start(http, m.access_token)

    def body():
        yield b"part one, "
        yield b"part two"

    r = put(started["url"], body())
    assert r.request.headers.get("transfer-encoding") == "chunked"
    assert r.status_code == 501, r.text
    r = http.post(COMPLETE, headers=bearer(m.access_token), data={"file_id": started["id"]})
    assert r.status_code == 400
    assert r.json() == {"detail": "file not present"}


def test_put_without_content_length_is_refused(oh, http, new_member):
    """§2.6 / §6: Content-Length is required for the PUT."""
    m = new_member()
    started = start(http, m.access_token)
    status, raw = raw_request(
        started["url"], "PUT {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close", b"data"
    )
    assert 400 <= status < 500, raw[:300]
    r = http.post(COMPLETE, headers=bearer(m.access_token), data={"file_id": started["id"]})
    assert r.json() == {"detail": "file not present"}


def _signature_params(url: str) -> list[str]:
    return [k for k, _ in query(url) if k.lower() not in {"expires", "x-amz-expires"}]


def test_put_forged_url_is_403(oh, http, new_member):
    """§2.6: the URL is signed; a tampered signature is refused."""
    m = new_member()
    started = start(http, m.access_token)
    url = started["url"]
    sig_keys = [k for k in _signature_params(url) if "sig" in k.lower()]
    assert sig_keys, f"no signature parameter in {url}"
    params = dict(query(url))
    forged = tamper(url, **{sig_keys[0]: params[sig_keys[0]][:-2] + "xx"})
    assert put(forged, b"data").status_code == 403
    # Another file's path with this file's signature is refused as well.
    other = start(http, m.access_token, filename="other.bin")
    swapped = without_query(other["url"]) + "?" + urlsplit(url).query
    assert put(swapped, b"data").status_code == 403


def test_put_extended_expiry_is_403(oh, http, new_member):
    """§2.6: pushing the expiry parameter forward breaks the signature."""
    m = new_member()
    url = start(http, m.access_token)["url"]
    keys = [k for k, _ in query(url) if k.lower() in {"expires", "x-amz-expires"}]
    assert keys, f"no expiry parameter in {url}"
    params = dict(query(url))
    later = str(int(params[keys[0]]) + 10**6)
    assert put(tamper(url, **{keys[0]: later}), b"data").status_code == 403


def test_put_expired_url_is_403(oh, http, new_member):
    """§1.6: the presigned PUT URL lives 6 h; an expired one is refused."""
    m = new_member()
    early, late = start(http, m.access_token)["url"], start(http, m.access_token)["url"]
    advance_clock(oh, 6 * 3600 - 120)
    assert put(early, b"data").status_code == 200
    advance_clock(oh, 240)
    assert put(late, b"data").status_code == 403


@pytest.mark.parametrize(
    ("data", "status", "body"),
    [
        ({}, 400, {"detail": "file does not exist"}),
        ({"file_id": ""}, 400, {"detail": "file does not exist"}),
        ({"file_id": "abc"}, 400, {"file_id": ["Enter a whole number."]}),
        ({"file_id": "987654321"}, 400, {"detail": "file does not exist"}),
    ],
    ids=["missing", "empty", "not-int", "nonexistent(§6)"],
)
def test_complete_errors(oh, http, new_member, data, status, body):
    """§2.6 step 3: each listed error (the nonexistent id per the §6 choice)."""
    m = new_member()
    r = http.post(COMPLETE, headers=bearer(m.access_token), data=data)
    assert r.status_code == status, r.text
    assert r.json() == body


def test_complete_before_put_then_retry(oh, http, new_member):
    """§2.6: not in storage → 400 file not present; the file stays incomplete, PUT + retry work."""
    m = new_member()
    started = start(http, m.access_token)
    r = http.post(COMPLETE, headers=bearer(m.access_token), data={"file_id": started["id"]})
    assert r.status_code == 400
    assert r.json() == {"detail": "file not present"}
    assert listing(http, m.access_token) == []
    put(started["url"], b"late")
    r = http.post(COMPLETE, headers=bearer(m.access_token), data={"file_id": started["id"]})
    assert r.json() == {"status": "ok", "size": 4}


def test_complete_revoked_member(oh, http, new_member):
    """§2.6 / §A.5: master token for a member who left → invalid."""
    m = new_member()
    started = start(http, oh.master_token, project_member_id=m.pmid)
    oh.leave(m.pmid)
    r = http.post(
        COMPLETE,
        headers=bearer(oh.master_token),
        data={"file_id": started["id"], "project_member_id": m.pmid},
    )
    assert r.status_code == 400
    assert r.json() == MEMBER_INVALID


METADATA_RULES = [
    ("not json", "could not parse the uploaded metadata"),
    ("{}", '"description" is a required field of the metadata'),
    ('{"description": 5, "tags": []}', '"description" must be a string'),
    ('{"description": "d"}', '"tags" is a required field of the metadata'),
    ('{"description": "d", "tags": "t"}', '"tags" must be an array of strings'),
    (
        '{"description": "d", "tags": [], "creation_date": "yesterday-ish"}',
        "Dates must be in ISO 8601 format",
    ),
    ('{"description": "d", "tags": [], "md5": "nothex"}', "Invalid MD5 specified"),
]


@pytest.mark.parametrize(("metadata", "error"), METADATA_RULES)
def test_direct_upload_metadata_rules(oh, http, new_member, metadata, error):
    """§2.6 / §4.3: each metadata rule, as a one-item list under ``metadata``."""
    m = new_member()
    r = http.post(
        DIRECT, headers=bearer(m.access_token), data={"filename": "a.txt", "metadata": metadata}
    )
    assert r.status_code == 400, r.text
    assert r.json() == {"metadata": [error]}


@pytest.mark.parametrize(
    "metadata",
    [
        '{"description": "", "tags": []}',
        '{"description": "d", "tags": [1, 2], "creation_date": "2020-06-30T20:00:00Z"}',
        '{"description": "d", "tags": [], "md5": "' + "A" * 32 + '", "other": {"x": 1}}',
    ],
)
def test_direct_upload_metadata_accepted(oh, http, new_member, metadata):
    """§4.3: empty description, unchecked tag elements, other keys stored unchanged."""
    m = new_member()
    started = start(http, m.access_token, metadata=metadata)
    put(started["url"], b"x")
    http.post(COMPLETE, headers=bearer(m.access_token), data={"file_id": started["id"]})
    (item,) = listing(http, m.access_token)
    assert item["metadata"] == json.loads(metadata)


@pytest.mark.parametrize(
    ("data", "body"),
    [
        ({"metadata": META}, {"filename": ["This field is required."]}),
        (
            {"filename": "a.txt", "metadata": META, "datatypes": "nope"},
            {"datatypes": ["Could not parse the uploaded datatypes from: 'nope'"]},
        ),
    ],
    ids=["filename", "datatypes"],
)
def test_direct_upload_form_errors(oh, http, new_member, data, body):
    """§2.6: form errors as lists, DRF style."""
    m = new_member()
    r = http.post(DIRECT, headers=bearer(m.access_token), data=data)
    assert r.status_code == 400, r.text
    assert r.json() == body


def test_direct_upload_master_errors(oh, http, new_member):
    """§2.6: master token: member required, unknown member invalid, form checked first."""
    new_member()
    master = bearer(oh.master_token)
    r = http.post(DIRECT, headers=master, data={"filename": "a.txt", "metadata": META})
    assert r.status_code == 400
    assert r.json() == {"project_member_id": ["This field is required."]}
    r = http.post(
        DIRECT,
        headers=master,
        data={"filename": "a.txt", "metadata": META, "project_member_id": "99999999"},
    )
    assert r.status_code == 400
    assert r.json() == MEMBER_INVALID
    r = http.post(
        DIRECT,
        headers=master,
        data={"filename": "a.txt", "metadata": "{}", "project_member_id": "99999999"},
    )
    assert r.status_code == 400
    assert r.json() == {"metadata": ['"description" is a required field of the metadata']}


# --- §2.7 multipart upload ------------------------------------------------------------------


def test_multipart_upload(oh, http, new_member):
    """§2.7: 201 {"id": n}; the file is completed at once."""
    m = new_member()
    r = http.post(
        UPLOAD,
        headers=bearer(m.access_token),
        data={"metadata": META},
        files={"data_file": ("notes.txt", b"hello world")},
    )
    assert r.status_code == 201, r.text
    assert list(r.json()) == ["id"]
    (item,) = listing(http, m.access_token)
    assert item["id"] == r.json()["id"]
    assert item["basename"] == "notes.txt"
    assert item["metadata"] == json.loads(META)
    got = httpx.get(item["download_url"], follow_redirects=True, timeout=15)
    assert got.content == b"hello world"


def test_multipart_upload_master(oh, http, new_member):
    """§2.7: master token with project_member_id."""
    m = new_member()
    r = http.post(
        UPLOAD,
        headers=bearer(oh.master_token),
        data={"metadata": META, "project_member_id": m.pmid},
        files={"data_file": ("a.txt", b"a")},
    )
    assert r.status_code == 201, r.text
    assert [f["id"] for f in listing(http, m.access_token)] == [r.json()["id"]]


@pytest.mark.parametrize(
    ("data", "files", "body"),
    [
        (
            {"metadata": META},
            {"data_file": ("empty.txt", b"")},
            {"data_file": ["The submitted file is empty."]},
        ),
        (
            {"metadata": META},
            {"other": ("a.txt", b"a")},
            {"data_file": ["This field is required."]},
        ),
        (
            {"metadata": "{}"},
            {"data_file": ("a.txt", b"a")},
            {"metadata": ['"description" is a required field of the metadata']},
        ),
    ],
    ids=["empty", "missing", "metadata"],
)
def test_multipart_upload_errors(oh, http, new_member, data, files, body):
    """§2.7: DRF-style errors; nothing stored."""
    m = new_member()
    r = http.post(UPLOAD, headers=bearer(m.access_token), data=data, files=files)
    assert r.status_code == 400, r.text
    assert r.json() == body
    assert listing(http, m.access_token) == []


def test_multipart_upload_unknown_member(oh, http, new_member):
    """§2.7: master token with an unknown member."""
    r = http.post(
        UPLOAD,
        headers=bearer(oh.master_token),
        data={"metadata": META, "project_member_id": "99999999"},
        files={"data_file": ("a.txt", b"a")},
    )
    assert r.status_code == 400
    assert r.json() == MEMBER_INVALID


# --- §2.9 download redirector ---------------------------------------------------------------


def test_download_redirects_then_serves_bytes(oh, http, new_member):
    """§2.9: 302 to a storage URL with ``x-oh-key`` appended, then the bytes; no token."""
    m = new_member()
    oh.add_files(m.pmid, count=1, basename="d.csv", content=b"col\n1\n")
    (item,) = listing(http, m.access_token)
    with httpx.Client(timeout=15.0) as anonymous:
        r = anonymous.get(item["download_url"])
        assert r.status_code == 302, r.text
        location = r.headers["location"]
        key = dict(query(item["download_url"]))["key"]
        assert query(location)[-1] == ("x-oh-key", key)
        got = anonymous.get(httpx.URL(item["download_url"]).join(location))
        assert got.status_code == 200
        assert got.content == b"col\n1\n"


def test_download_storage_url_lives_ten_minutes(oh, http, new_member):
    """§2.9 / §1.6: the storage URL the redirector points to is valid for 10 minutes."""
    m = new_member()
    oh.add_files(m.pmid, count=2, content=b"abc")
    first, second = listing(http, m.access_token)
    with httpx.Client(timeout=15.0) as anonymous:
        urls = []
        for item in (first, second):
            r = anonymous.get(item["download_url"])
            assert r.status_code == 302
            urls.append(httpx.URL(item["download_url"]).join(r.headers["location"]))
        advance_clock(oh, 600 - 60)
        assert anonymous.get(urls[0]).content == b"abc"
        advance_clock(oh, 120)
        assert anonymous.get(urls[1]).status_code == 403


def _assert_403(r, text):
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert text in r.text


def test_download_without_key(oh, http, new_member):
    """§2.9: key missing → 403 not authorized."""
    m = new_member(files=1)
    (item,) = listing(http, m.access_token)
    _assert_403(http.get(without_query(item["download_url"])), NOT_AUTHORIZED)


def test_download_wrong_key(oh, http, new_member):
    """§2.9: a wrong key, or the key of another file → 403 not authorized."""
    m = new_member(files=2)
    first, second = listing(http, m.access_token)
    url = without_query(first["download_url"])
    _assert_403(http.get(url, params={"key": str(uuid.uuid4())}), NOT_AUTHORIZED)
    _assert_403(http.get(url, params={"key": "not-a-uuid"}), NOT_AUTHORIZED)
    other_key = dict(query(second["download_url"]))["key"]
    _assert_403(http.get(url, params={"key": other_key}), NOT_AUTHORIZED)


def test_download_missing_file(oh, http, new_member):
    """§2.9: a file that does not exist (or was deleted) → 403 unavailable."""
    m = new_member(files=1)
    (item,) = listing(http, m.access_token)
    http.post(DELETE, headers=bearer(m.access_token), data={"file_id": item["id"]})
    _assert_403(http.get(item["download_url"]), UNAVAILABLE)
    _assert_403(
        http.get(
            "/data-management/datafile-download/987654321/", params={"key": str(uuid.uuid4())}
        ),
        UNAVAILABLE,
    )


def test_download_incomplete_file(oh, http, new_member):
    """§2.9: a file that is not completed → 403 unavailable."""
    m = new_member()
    started = start(http, m.access_token)
    r = http.get(
        f"/data-management/datafile-download/{started['id']}/", params={"key": str(uuid.uuid4())}
    )
    _assert_403(r, UNAVAILABLE)


def test_download_expired_key(oh, http, new_member):
    """§2.9: keys are valid for 1 hour after the listing."""
    m = new_member(files=1)
    (item,) = listing(http, m.access_token)
    advance_clock(oh, 3600 - 120)
    assert http.get(item["download_url"]).status_code == 302
    advance_clock(oh, 240)
    _assert_403(http.get(item["download_url"]), NOT_AUTHORIZED)


# --- §4.4 datatypes, and the links a listing carries ----------------------------------------

DATATYPE_FIELDS = {
    "id",
    "name",
    "parent",
    "children",
    "description",
    "details",
    "uploadable",
    "source_projects",
}


def registered_and_unregistered(http, token):
    """IDs of a datatype the project registered and of one it did not (via the public API)."""
    info = http.get(API, headers=bearer(token)).json()
    registered = [int(u.rstrip("/").rsplit("/", 1)[1]) for u in info["registered_datatypes"]]
    public = http.get("/api/public/datatypes/").json()
    assert list(public) == ["count", "next", "previous", "results"]
    others = [d["id"] for d in public["results"] if d["id"] not in registered]
    assert registered and others, (registered, public)
    return registered[0], others[0], public["results"]


def uploaded_datatypes(http, token, datatypes: str | None) -> list[str]:
    extra = {} if datatypes is None else {"datatypes": datatypes}
    started = start(http, token, **extra)
    put(started["url"], b"x")
    http.post(COMPLETE, headers=bearer(token), data={"file_id": started["id"]})
    return next(f for f in listing(http, token) if f["id"] == started["id"])["datatypes"]


def test_datatypes_by_id_and_by_name(oh, http, new_member):
    """§4.4: a JSON list of IDs, or of case-insensitive names; listed as absolute URLs."""
    m = new_member()
    dt, _, table = registered_and_unregistered(http, m.access_token)
    name = next(d["name"] for d in table if d["id"] == dt)
    url = f"{oh.base_url}/api/public/datatype/{dt}/"
    assert uploaded_datatypes(http, m.access_token, json.dumps([dt])) == [url]
    assert uploaded_datatypes(http, m.access_token, json.dumps([name.upper()])) == [url]
    followed = http.get(url)
    assert followed.status_code == 200
    assert set(followed.json()) == DATATYPE_FIELDS


@pytest.mark.parametrize("auto_add", [False, True])
def test_datatypes_omitted(oh, http, new_member, project_settings, auto_add):
    """§4.4: left out → all registered datatypes with auto_add_datatypes, otherwise none."""
    project_settings(auto_add_datatypes=auto_add)
    m = new_member()
    info = http.get(API, headers=bearer(m.access_token)).json()
    expected = [oh.base_url + u for u in info["registered_datatypes"]] if auto_add else []
    assert sorted(uploaded_datatypes(http, m.access_token, None)) == sorted(expected)


def test_datatypes_errors(oh, http, new_member):
    """§4.4: unknown IDs or names, and datatypes the project did not register."""
    m = new_member()
    _, unregistered, _ = registered_and_unregistered(http, m.access_token)

    def error(datatypes):
        r = http.post(
            DIRECT,
            headers=bearer(m.access_token),
            data={"filename": "a.txt", "metadata": META, "datatypes": datatypes},
        )
        assert r.status_code == 400, r.text
        (message,) = r.json()["datatypes"]
        return message

    assert error("[987654]") == (
        "The following datatypes don't match items in our database: [987654]"
    )
    unknown_name = error('["no such type"]')
    assert unknown_name.startswith("The following datatypes don't match items in our database: ")
    assert "no such type" in unknown_name
    assert error(json.dumps([unregistered])).startswith(
        "The following datatypes aren't registered for this project: "
    )


def test_unapproved_project_link_is_404(oh, http, new_member, project_settings):
    """§2.10: ``source_project`` of an unapproved project's file returns 404."""
    project_settings(approved=False)
    m = new_member(files=1)
    (item,) = listing(http, m.access_token)
    assert http.get(item["source_project"]).status_code == 404
