"""Conformance: the storage answers CORS as an S3 bucket configured for browser uploads.

The rule a project sets on its bucket: the site's origin (here the origin of the registered
redirect URI), methods GET/PUT/HEAD, any header, ``ETag`` exposed. A browser's PUT to a
presigned URL needs the preflight to pass and ``Access-Control-Allow-Origin`` on the answer;
reading the ETag needs ``Access-Control-Expose-Headers``.
"""

from __future__ import annotations

import json

import httpx

from .conftest import API, REDIRECT_URI, advance_clock, bearer

DIRECT = API + "files/upload/direct/"
COMPLETE = API + "files/upload/complete/"
META = json.dumps({"description": "a file", "tags": ["t"]})
SITE = "http://localhost:8000"  # the origin of REDIRECT_URI
assert REDIRECT_URI.startswith(SITE + "/")


def signed_put_url(http, member) -> tuple[int, str]:
    r = http.post(
        DIRECT,
        headers=bearer(member.access_token),
        data={"filename": "export.zip", "metadata": META},
    )
    assert r.status_code == 201, r.text
    return r.json()["id"], r.json()["url"]


def preflight(url: str, origin: str | None, method: str | None = "PUT", headers: str = ""):
    sent = {}
    if origin is not None:
        sent["Origin"] = origin
    if method is not None:
        sent["Access-Control-Request-Method"] = method
    if headers:
        sent["Access-Control-Request-Headers"] = headers
    with httpx.Client(timeout=15.0) as s3:
        return s3.options(url, headers=sent)


def test_preflight_for_a_put_from_the_site_is_allowed_with_s3s_headers(http, new_member):
    _, url = signed_put_url(http, new_member())
    r = preflight(url, SITE, "PUT", "Content-Type, X-Requested-With")
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == SITE
    assert r.headers["access-control-allow-methods"] == "GET, PUT, HEAD"
    assert r.headers["access-control-allow-headers"] == "content-type, x-requested-with"
    assert r.headers["access-control-expose-headers"] == "ETag"
    assert r.headers["access-control-max-age"] == "3000"
    assert r.headers["access-control-allow-credentials"] == "true"
    assert "Origin" in r.headers["vary"]
    assert r.content == b""


def test_preflight_needs_no_signature(http, new_member):
    # A browser's preflight drops the query's meaning: S3 answers it from the rule alone.
    _, url = signed_put_url(http, new_member())
    r = preflight(url.split("?", 1)[0], SITE, "PUT")
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == SITE


def test_preflight_from_another_origin_or_method_is_forbidden(http, new_member):
    _, url = signed_put_url(http, new_member())
    for origin, method in (("https://evil.example", "PUT"), (SITE, "DELETE"), (SITE, "POST")):
        r = preflight(url, origin, method)
        assert r.status_code == 403, (origin, method)
        assert "<Code>AccessForbidden</Code>" in r.text
        assert "CORSResponse: This CORS request is not allowed" in r.text
        assert "access-control-allow-origin" not in r.headers


def test_preflight_without_origin_or_method_is_a_bad_request(http, new_member):
    _, url = signed_put_url(http, new_member())
    no_origin = preflight(url, None)
    assert no_origin.status_code == 400
    assert "Origin request header needed" in no_origin.text
    no_method = preflight(url, SITE, None)
    assert no_method.status_code == 400
    assert "Access-Control-Request-Method" in no_method.text


def test_put_from_the_site_exposes_the_etag_and_completes(http, new_member):
    member = new_member()
    file_id, url = signed_put_url(http, member)
    with httpx.Client(timeout=15.0) as s3:
        r = s3.put(url, content=b"x" * 1000, headers={"Origin": SITE})
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == SITE
    assert r.headers["access-control-expose-headers"] == "ETag"
    assert r.headers["etag"].startswith('"')
    done = http.post(COMPLETE, headers=bearer(member.access_token), data={"file_id": file_id})
    assert done.json() == {"status": "ok", "size": 1000}


def test_an_expired_put_is_a_403_the_browser_can_read(http, oh, new_member):
    # The page tells an expired URL from a lost connection only if the error carries CORS.
    _, url = signed_put_url(http, new_member())
    advance_clock(oh, 7 * 3600)
    with httpx.Client(timeout=15.0) as s3:
        r = s3.put(url, content=b"late", headers={"Origin": SITE})
    assert r.status_code == 403
    assert "Request has expired" in r.text
    assert r.headers["access-control-allow-origin"] == SITE


def test_a_put_from_another_origin_gets_no_cors_headers(http, new_member):
    _, url = signed_put_url(http, new_member())
    with httpx.Client(timeout=15.0) as s3:
        r = s3.put(url, content=b"x", headers={"Origin": "https://evil.example"})
    # S3 still stores it (CORS is the browser's check), but says nothing a browser would honour.
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers


def test_the_api_keeps_its_own_allow_all_cors(http, new_member):
    member = new_member()
    r = http.get(API, headers={**bearer(member.access_token), "Origin": "https://evil.example"})
    assert r.headers["access-control-allow-origin"] == "*"
