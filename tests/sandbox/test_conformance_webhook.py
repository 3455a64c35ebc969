"""Conformance: the deauthorization webhook (spec §3)."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from urllib.parse import urljoin

import httpx
import pytest

from .conftest import API, _FormParser, bearer, hmac_sha1, multi

REMOVE = API + "remove-members/"
SECRET = "abcdefghijklmnop"
SIGNATURE = "x-openhumans-webhooks-signature"
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00")

EXAMPLE_BODY = (
    b'{"project_member_id": "12345678", "erasure_requested": true, '
    b'"timestamp": "2020-06-30T20:00:00.000000+00:00"}'
)
EXAMPLE_SIGNATURE = "sha1=ebda5c0a38593a4350ad8401b7d8c8f1cd08ec67"


@pytest.fixture
def hooked(oh, webhook_receiver):
    """The sandbox pointed at a local receiver, with the spec's example secret."""
    oh.configure(webhook_url=webhook_receiver.url, webhook_secret=SECRET)
    yield webhook_receiver
    oh.configure(webhook_url="", webhook_secret="")


def assert_payload(body: bytes, pmid: str, erasure: bool) -> datetime:
    """§3.2: exact ``json.dumps`` bytes, keys in order; returns the timestamp."""
    payload = json.loads(body)
    assert list(payload) == ["project_member_id", "erasure_requested", "timestamp"]
    assert payload["project_member_id"] == pmid
    assert payload["erasure_requested"] is erasure
    assert body == json.dumps(payload).encode()
    assert TIMESTAMP.fullmatch(payload["timestamp"]), payload["timestamp"]
    return datetime.fromisoformat(payload["timestamp"])


def test_spec_worked_example_signature():
    """§3.3: the worked example, checked with a plain HMAC (guards this suite's helper)."""
    assert hmac_sha1(SECRET, EXAMPLE_BODY) == EXAMPLE_SIGNATURE


def test_sandbox_signing_function_matches_worked_example():
    """§3.3: the sandbox's own signing function gives the spec's signature."""
    from openhumans.sandbox import webhook_sender as webhook

    assert webhook.signature(SECRET, EXAMPLE_BODY) == EXAMPLE_SIGNATURE


def test_remove_members_master_delivers_signed_webhook(oh, http, new_member, hooked):
    """§3.1/§3.2/§3.3: exact bytes, JSON content type, signature over the raw body."""
    m = new_member()
    before = datetime.now(UTC)
    r = http.post(REMOVE, headers=bearer(oh.master_token), json={"project_member_ids": [m.pmid]})
    assert r.status_code == 200, r.text
    (delivery,) = hooked.deliveries
    assert delivery.method == "POST"
    assert delivery.path == "/openhumans/deauth"
    assert delivery.headers["content-type"] == "application/json"
    assert delivery.headers["user-agent"].startswith("python-requests/")
    assert delivery.headers[SIGNATURE] == hmac_sha1(SECRET, delivery.body)
    stamp = assert_payload(delivery.body, m.pmid, erasure=False)
    # §3.4 choice: no erasure → timestamp is the time of sending.
    assert abs((stamp - before).total_seconds()) < 30


def test_remove_members_user_token_webhook_during_the_call(oh, http, new_member, hooked):
    """§2.5 / §3.1: the webhook arrives while the remove-members request is still open."""
    m = new_member()
    hooked.delay = 0.6
    started = time.monotonic()
    r = http.post(REMOVE, headers=bearer(m.access_token))
    finished = time.monotonic()
    assert r.status_code == 200, r.text
    (delivery,) = hooked.deliveries
    assert started <= delivery.received_at <= finished
    assert finished - delivery.received_at >= 0.5  # the sandbox waited for our answer
    assert_payload(delivery.body, m.pmid, erasure=False)
    assert http.get(API, headers=bearer(m.access_token)).status_code == 401


def test_webhook_handler_can_call_back_into_the_api(oh, http, new_member, hooked):
    """§2.5/§3.1: during the webhook the member is already revoked and their token dead;
    a project that calls the API from its handler is served (no deadlock)."""
    m, other = new_member(), new_member()
    seen = {}

    def call_back(delivery):
        with httpx.Client(base_url=oh.base_url, timeout=10) as c:
            members = c.get(API + "members/", params={"access_token": oh.master_token})
            seen["members"] = [i["project_member_id"] for i in members.json()["results"]]
            seen["own_token"] = c.get(API, headers=bearer(m.access_token)).status_code
            seen["delete"] = c.post(
                API + "files/delete/",
                headers=bearer(oh.master_token),
                data={"project_member_id": m.pmid, "all_files": "true"},
            ).json()

    hooked.on_delivery = call_back
    r = http.post(REMOVE, headers=bearer(m.access_token))
    assert r.status_code == 200, r.text
    assert seen["members"] == [other.pmid]
    assert seen["own_token"] == 401
    assert seen["delete"] == {"project_member_id": "project_member_id is invalid"}


def test_remove_members_master_form_delivers_one_per_member(oh, http, new_member, hooked):
    """§2.5: master form body with a comma-separated list: one webhook per member."""
    ms = [new_member() for _ in range(2)]
    r = http.post(
        REMOVE,
        headers=bearer(oh.master_token),
        data={"project_member_ids": ",".join(m.pmid for m in ms)},
    )
    assert r.status_code == 200, r.text
    got = sorted(json.loads(d.body)["project_member_id"] for d in hooked.deliveries)
    assert got == sorted(m.pmid for m in ms)
    for d in hooked.deliveries:
        assert d.headers[SIGNATURE] == hmac_sha1(SECRET, d.body)


def test_leave_with_erasure(oh, new_member, hooked):
    """§3.1/§3.2: a member who leaves asking for erasure → ``erasure_requested: true``."""
    m = new_member()
    before = datetime.now(UTC)
    oh.leave(m.pmid, erasure_requested=True)
    (delivery,) = hooked.deliveries
    stamp = assert_payload(delivery.body, m.pmid, erasure=True)
    assert abs((stamp - before).total_seconds()) < 30
    assert delivery.headers[SIGNATURE] == hmac_sha1(SECRET, delivery.body)


def test_leave_through_member_page(oh, http, new_member, hooked):
    """Issue 3 / §3.1: the "Leave project" form with "request erasure" ticked."""
    m = new_member()
    page = http.get(f"/members/{m.pmid}/")
    assert page.status_code == 200
    parser = _FormParser()
    parser.feed(page.text)
    forms = [f for f in parser.forms if "erasure_requested" in f.fields]
    assert len(forms) == 1, "no Leave project form with an erasure_requested checkbox"
    form = forms[0]
    data = [*form.hidden, ("erasure_requested", form.fields["erasure_requested"][0] or "on")]
    data += [(name, value) for name, value, _ in form.buttons if name]
    target = urljoin(str(page.url), form.action) if form.action else str(page.url)
    r = http.post(target, data=multi(data))
    assert r.status_code in (200, 302, 303), r.text
    (delivery,) = hooked.deliveries
    assert_payload(delivery.body, m.pmid, erasure=True)


def test_unsigned_without_secret(oh, http, new_member, webhook_receiver):
    """§3.2: no secret configured → no signature header."""
    oh.configure(webhook_url=webhook_receiver.url, webhook_secret="")
    try:
        m = new_member()
        http.post(REMOVE, headers=bearer(m.access_token))
        (delivery,) = webhook_receiver.deliveries
        assert SIGNATURE not in delivery.headers
        assert_payload(delivery.body, m.pmid, erasure=False)
    finally:
        oh.configure(webhook_url="", webhook_secret="")


@pytest.mark.parametrize("status", [500, 404, 410])
def test_non_2xx_gets_unsigned_double_encoded_second_post(oh, http, new_member, hooked, status):
    """§3.3: after a non-2xx answer, a second POST: JSON string of the payload, unsigned."""
    hooked.statuses = [status, 200]
    m = new_member()
    r = http.post(REMOVE, headers=bearer(m.access_token))
    assert r.status_code == 200, r.text
    first, second = hooked.deliveries
    assert first.headers[SIGNATURE] == hmac_sha1(SECRET, first.body)
    assert second.path == first.path
    assert second.headers["content-type"] == "application/json"
    assert SIGNATURE not in second.headers
    assert second.body == json.dumps(first.body.decode()).encode()
    assert json.loads(json.loads(second.body)) == json.loads(first.body)


@pytest.mark.parametrize("status", [200, 201, 204])
def test_2xx_gets_exactly_one_post(oh, http, new_member, hooked, status):
    """§3.3: a 2xx answer ends it; no second POST."""
    hooked.statuses = [status]
    m = new_member()
    http.post(REMOVE, headers=bearer(m.access_token))
    assert len(hooked.deliveries) == 1


def test_no_webhook_for_token_expiry_or_refresh(oh, http, new_member, hooked):
    """§3.1: not sent for token expiry or refresh; only leaving sends it."""
    m = new_member()
    oh.expire_access_tokens(m.pmid)
    http.post(
        "/oauth2/token/",
        data={"grant_type": "refresh_token", "refresh_token": m.refresh_token},
        auth=(oh.client_id, oh.client_secret),
    )
    assert hooked.deliveries == []
