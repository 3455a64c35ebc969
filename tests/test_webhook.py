"""The deauth webhook: signature, policy, idempotence, legacy bodies; end to end via the sandbox."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest

from openhumans.models import OpenHumansMember, PendingDeauthNotice
from openhumans.signals import member_deauth

from .helpers import api_requests

pytestmark = pytest.mark.django_db

SECRET = "abcdefghijklmnop"
URL = "/openhumans/deauth"


def body_for(pmid, erasure, when=None):
    # spec §3.2: json.dumps with default separators, keys in this order. Stamped now: a
    # notice older than the member's last login is a replay (issue 10).
    when = when or datetime.now(UTC)
    return json.dumps(
        {
            "project_member_id": pmid,
            "erasure_requested": erasure,
            "timestamp": when.isoformat(timespec="microseconds"),
        }
    ).encode()


def sign(body, secret=SECRET):
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def post(client, body, signature=None, path=URL):
    headers = {"X-OpenHumans-Webhooks-Signature": signature} if signature else {}
    return client.post(path, body, content_type="application/json", headers=headers)


@pytest.fixture
def received():
    calls = []

    def receiver(sender, **kwargs):
        calls.append((sender, kwargs))

    member_deauth.connect(receiver)
    yield calls
    member_deauth.disconnect(receiver)


@pytest.fixture
def member(member_factory):
    return member_factory()


@pytest.fixture
def signed(settings):
    settings.OPENHUMANS_WEBHOOK_SECRET = SECRET


def test_documented_example_signature():
    body = (
        b'{"project_member_id": "12345678", "erasure_requested": true, '
        b'"timestamp": "2020-06-30T20:00:00.000000+00:00"}'
    )
    assert sign(body) == "sha1=ebda5c0a38593a4350ad8401b7d8c8f1cd08ec67"


def test_erasure_deletes_the_member_and_sends_the_signal(client, member, signed, received, sandbox):
    body = body_for(member.oh_id, True)
    response = post(client, body, sign(body))
    assert response.status_code == 200
    assert not OpenHumansMember.objects.exists()
    assert member.user.__class__.objects.filter(pk=member.user_id).exists()  # user kept
    ((sender, kwargs),) = received
    assert sender is OpenHumansMember
    assert kwargs["open_humans_member"].oh_id == member.oh_id
    assert kwargs["erasure_requested"] is True
    # The member already left: no deauth notice goes back to Open Humans.
    assert not PendingDeauthNotice.objects.exists()
    assert api_requests(sandbox, "remove-members/") == 0


def test_without_erasure_the_member_is_flagged(client, member, signed, received):
    body = body_for(member.oh_id, False)
    assert post(client, body, sign(body)).status_code == 200
    assert OpenHumansMember.objects.get().oh_deauth
    assert received[0][1]["erasure_requested"] is False


def test_delete_on_deauth_deletes_even_without_erasure(client, member, signed, settings):
    settings.OPENHUMANS_DELETE_ON_DEAUTH = True
    body = body_for(member.oh_id, False)
    post(client, body, sign(body))
    assert not OpenHumansMember.objects.exists()


def test_delete_on_erasure_off_keeps_the_member(client, member, signed, settings):
    settings.OPENHUMANS_DELETE_ON_ERASURE = False
    body = body_for(member.oh_id, True)
    post(client, body, sign(body))
    assert OpenHumansMember.objects.get().oh_deauth


def test_a_repeated_delivery_changes_nothing(client, member, signed, received):
    body = body_for(member.oh_id, False)
    assert post(client, body, sign(body)).status_code == 200
    assert post(client, body, sign(body), path=URL + "/").status_code == 200
    assert len(received) == 1
    assert OpenHumansMember.objects.get().oh_deauth


def test_a_repeated_erasure_is_a_200(client, member, signed):
    body = body_for(member.oh_id, True)
    post(client, body, sign(body))
    assert post(client, body, sign(body)).status_code == 200


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "sha1=" + "0" * 40,
        "ebda5c0a",
        "sha1=",
        "ü",
        lambda body: sign(body)[len("sha1=") :],  # the right MAC without its prefix
        lambda body: "sha1=" + sign(body)[len("sha1=") :].upper(),  # spec §3.3: lowercase hex
        lambda body: sign(body) + "00",
    ],
    ids=["none", "zeros", "short", "empty", "non-ascii", "no-prefix", "uppercase", "longer"],
)
def test_missing_or_wrong_signature_is_403(client, member, signed, signature, received):
    body = body_for(member.oh_id, True)
    header = signature(body) if callable(signature) else signature
    assert post(client, body, header).status_code == 403
    assert OpenHumansMember.objects.get().oh_deauth is False
    assert received == []


@pytest.mark.parametrize(
    "body", [b"", b"\xff\xfe\x00garbage", b"[" * 100_000], ids=["empty", "not-utf8", "deep"]
)
def test_signed_but_unusable_body_is_400(client, member, signed, body, received):
    assert post(client, body, sign(body)).status_code == 400
    assert OpenHumansMember.objects.get().oh_deauth is False
    assert received == []


def test_oversized_body_is_400_and_changes_nothing(client, member, signed, received):
    body = body_for(member.oh_id, True)[:-1] + b', "pad": "' + b"x" * 3_000_000 + b'"}'
    assert post(client, body, sign(body)).status_code == 400
    assert OpenHumansMember.objects.get().oh_deauth is False
    assert received == []


def test_signature_not_content_type_authenticates(client, member, signed, received):
    body = body_for(member.oh_id, False)
    response = client.post(
        URL,
        body,
        content_type="text/plain",
        headers={"X-OpenHumans-Webhooks-Signature": sign(body)},
    )
    assert response.status_code == 200
    assert OpenHumansMember.objects.get().oh_deauth and len(received) == 1


def test_signature_of_another_secret_is_403(client, member, signed):
    body = body_for(member.oh_id, True)
    assert post(client, body, sign(body, "another-secret-xyz")).status_code == 403


def test_unsigned_delivery_accepted_without_secret(client, member, settings, sandbox):
    settings.OPENHUMANS_WEBHOOK_SECRET = None
    sandbox.leave(member.oh_id)  # confirmed: their token no longer works
    assert post(client, body_for(member.oh_id, False)).status_code == 200
    assert OpenHumansMember.objects.get().oh_deauth


def test_legacy_double_encoded_body_accepted_without_secret(client, member, settings, sandbox):
    settings.OPENHUMANS_WEBHOOK_SECRET = None
    sandbox.leave(member.oh_id, erasure_requested=True)
    legacy = json.dumps(body_for(member.oh_id, True).decode()).encode()
    assert post(client, legacy).status_code == 200
    assert not OpenHumansMember.objects.exists()


# -- issue 10: forged and replayed notices ----------------------------------------------------


@pytest.mark.parametrize("erasure", [False, True])
def test_unsigned_notice_for_a_member_who_did_not_leave_changes_nothing(
    client, member, settings, sandbox, received, erasure
):
    # Bug: without a secret (the documented default) anyone could deauthorize or delete
    # any member. Their token still working means they did not leave.
    settings.OPENHUMANS_WEBHOOK_SECRET = None
    assert post(client, body_for(member.oh_id, erasure)).status_code == 200
    assert OpenHumansMember.objects.get().oh_deauth is False
    assert received == []


def test_unsigned_notice_is_confirmed_with_the_master_token(client, member, settings, sandbox):
    settings.OPENHUMANS_WEBHOOK_SECRET = None
    settings.OPENHUMANS_MASTER_TOKEN = sandbox.master_token
    assert post(client, body_for(member.oh_id, True)).status_code == 200
    assert OpenHumansMember.objects.exists()
    sandbox.leave(member.oh_id, erasure_requested=True)
    assert post(client, body_for(member.oh_id, True)).status_code == 200
    assert not OpenHumansMember.objects.exists()


def test_unsigned_notice_that_cannot_be_confirmed_is_a_503(client, member, settings):
    settings.OPENHUMANS_WEBHOOK_SECRET = None
    settings.OPENHUMANS_OH_BASE_URL = "http://127.0.0.1:9"  # Open Humans unreachable
    assert post(client, body_for(member.oh_id, True)).status_code == 503  # it will come again
    assert OpenHumansMember.objects.get().oh_deauth is False


@pytest.mark.parametrize("erasure", [False, True])
def test_a_replayed_notice_from_before_the_last_login_is_ignored(
    client, member, signed, received, erasure
):
    # Bug: a captured signed notice replayed after the member re-joined removed them.
    old = body_for(member.oh_id, erasure, when=datetime.now(UTC) - timedelta(days=2))
    assert post(client, old, sign(old)).status_code == 200
    assert OpenHumansMember.objects.get().oh_deauth is False
    assert received == []
    fresh = body_for(member.oh_id, erasure)
    assert post(client, fresh, sign(fresh)).status_code == 200
    assert received != []


def test_a_signed_notice_with_a_bad_timestamp_is_400(client, member, signed):
    body = json.dumps(
        {"project_member_id": member.oh_id, "erasure_requested": True, "timestamp": "soon"}
    ).encode()
    assert post(client, body, sign(body)).status_code == 400
    assert OpenHumansMember.objects.exists()


def test_a_notice_without_timestamp_is_still_acted_on(client, member, signed):
    body = json.dumps({"project_member_id": member.oh_id, "erasure_requested": False}).encode()
    assert post(client, body, sign(body)).status_code == 200
    assert OpenHumansMember.objects.get().oh_deauth


def test_webhook_and_login_views_need_no_login_under_login_required_middleware(
    client, member, signed, settings
):
    # Bug: under Django's LoginRequiredMiddleware the webhook answered 302 to the login page,
    # which Open Humans' sender followed to a 200 and counted as delivered.
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE,
        "django.contrib.auth.middleware.LoginRequiredMiddleware",
    ]
    settings.LOGIN_URL = "/accounts/login/"
    body = body_for(member.oh_id, False)
    assert post(client, body, sign(body)).status_code == 200
    assert OpenHumansMember.objects.get().oh_deauth
    assert client.get("/openhumans/login/")["Location"].startswith(settings.OPENHUMANS_OH_BASE_URL)
    assert client.get("/openhumans/complete", {"state": "x"}).status_code == 400  # not a 302
    assert client.get("/openhumans/list/").status_code == 302  # the rest stays private


def test_legacy_unsigned_body_refused_with_secret(client, member, signed):
    legacy = json.dumps(body_for(member.oh_id, True).decode()).encode()
    assert post(client, legacy).status_code == 403


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_other_methods_are_405(client, method):
    assert getattr(client, method)(URL).status_code == 405


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"erasure_requested": true}',
        b'{"project_member_id": "12345678"}',
        b'{"project_member_id": 12345678, "erasure_requested": true}',
        b'{"project_member_id": "12345678", "erasure_requested": "yes"}',
        b"[" * 100_000,  # json.loads raises RecursionError, not ValueError
        b'{"project_member_id": "1234\\u0000", "erasure_requested": true}',  # PostgreSQL: 500
        b'{"project_member_id": "1234 5678", "erasure_requested": true}',
        b"",
    ],
)
def test_malformed_body_is_400(client, body, settings):
    settings.OPENHUMANS_WEBHOOK_SECRET = None
    assert post(client, body).status_code == 400


def test_malformed_signed_body_is_400(client, signed):
    assert post(client, b"garbage", sign(b"garbage")).status_code == 400


def test_unknown_member_is_200(client, signed, db, caplog):
    body = body_for("99999999", True)
    with caplog.at_level("INFO", logger="openhumans.views"):
        assert post(client, body, sign(body)).status_code == 200
    assert "99999999" in caplog.text


def test_a_member_id_with_a_newline_forges_no_log_line(client, db, caplog, settings):
    settings.OPENHUMANS_WEBHOOK_SECRET = None
    body = json.dumps({"project_member_id": "1\nFORGED", "erasure_requested": False})
    with caplog.at_level("INFO", logger="openhumans.views"):
        assert post(client, body.encode()).status_code == 400
    assert caplog.records and all("\n" not in r.getMessage() for r in caplog.records)


def test_no_csrf_token_needed(member, signed):
    from django.test import Client

    body = body_for(member.oh_id, True)
    assert post(Client(enforce_csrf_checks=True), body, sign(body)).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_member_leaving_on_the_sandbox_reaches_the_webhook(live_server, sandbox, settings):
    from openhumans.models import OpenHumansMember as Member

    settings.OPENHUMANS_WEBHOOK_SECRET = SECRET
    sandbox.configure(webhook_url=live_server.url + "/openhumans/deauth", webhook_secret=SECRET)
    pmid = sandbox.create_member(username="erin")["project_member_id"]
    Member.create(pmid, sandbox.issue_tokens(pmid))
    sandbox.leave(pmid, erasure_requested=True)
    (delivery,) = sandbox.webhooks()
    assert delivery["status"] == 200
    assert not Member.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_explicit_deauth_survives_its_own_webhook(live_server, sandbox, settings):
    from openhumans.models import OpenHumansMember as Member

    settings.OPENHUMANS_WEBHOOK_SECRET = SECRET
    sandbox.configure(webhook_url=live_server.url + "/openhumans/deauth", webhook_secret=SECRET)
    pmid = sandbox.create_member(username="fay")["project_member_id"]
    member = Member.create(pmid, sandbox.issue_tokens(pmid))
    member.deauth()  # spec §2.5: Open Humans calls the webhook during this request
    assert [d["status"] for d in sandbox.webhooks()] == [200]
    assert Member.objects.get().oh_deauth


def test_the_documented_view_name_is_the_webhook():
    from openhumans import views, webhooks

    assert views.deauth is webhooks.deauth
