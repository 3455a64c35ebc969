"""Property-based tests of the deauth webhook (hypothesis): no 500, no forged change.

Behind the ``reliability`` marker: over 10,000 generated bodies and headers, with and
without a secret. Each test prints how many cases it tried.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openhumans.models import OpenHumansMember

pytestmark = [pytest.mark.reliability, pytest.mark.django_db]

SECRET = "fuzz-secret-0123456789"
URL = "/openhumans/deauth"
EXAMPLES = 3500
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases in every run: CI failures reproduce
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


def member_ids(pmid: str) -> st.SearchStrategy[object]:
    return st.sampled_from([pmid, pmid + " ", "0" + pmid, ""]) | st.text(max_size=20) | json_values


def timestamps() -> st.SearchStrategy[object]:
    now = datetime.now(UTC)
    return (
        st.datetimes(
            min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
        ).map(lambda d: d.isoformat())
        | st.just(now.isoformat())
        | st.just((now - timedelta(days=3)).isoformat())
        | st.text(max_size=30)
        | json_values
    )


def notices(pmid: str) -> st.SearchStrategy[bytes]:
    """Bodies: well-formed notices for the member, near misses, legacy strings and junk."""
    payload = st.fixed_dictionaries(
        {"project_member_id": member_ids(pmid), "erasure_requested": st.booleans() | json_values},
        optional={"timestamp": timestamps(), "extra": json_values},
    )
    # Notices Open Humans could have sent about this member (now, or a replayed old one).
    plausible = st.fixed_dictionaries(
        {"project_member_id": st.just(pmid), "erasure_requested": st.booleans()},
        optional={"timestamp": timestamps()},
    ).map(lambda p: json.dumps(p).encode())
    as_json = payload.map(lambda p: json.dumps(p).encode())
    legacy = payload.map(lambda p: json.dumps(json.dumps(p)).encode())
    return (
        plausible
        | plausible.map(lambda b: json.dumps(b.decode()).encode())  # the legacy fallback
        | plausible
        | as_json
        | legacy
        | json_values.map(lambda v: json.dumps(v).encode())
        | st.binary(max_size=200)
        | st.just(b"[" * 5000)
    )


def headers() -> st.SearchStrategy[dict[str, str]]:
    signature = st.one_of(
        st.none(),
        st.text(max_size=50),
        st.text(alphabet="0123456789abcdef", min_size=40, max_size=40).map(lambda h: "sha1=" + h),
        st.binary(max_size=20).map(
            lambda b: "sha1=" + hmac.new(b"wrong-key", b, "sha1").hexdigest()
        ),
    )
    content_type = st.sampled_from(
        ["application/json", "text/plain", "application/x-www-form-urlencoded", ""]
    )
    return st.fixed_dictionaries({"signature": signature, "content_type": content_type})


def state(pmid: str) -> tuple[bool, bool] | None:
    member = OpenHumansMember.objects.filter(pk=pmid).first()
    return None if member is None else (member.oh_deauth, member.needs_reauthorization)


@pytest.fixture(autouse=True)
def quiet_logs() -> Iterator[None]:
    """Thousands of refused requests log a warning each: formatting them is most of the time."""
    logging.disable(logging.CRITICAL)
    yield
    logging.disable(logging.NOTSET)


@pytest.fixture
def pmid(member_factory):
    return member_factory("fuzz").oh_id


def post(client, body: bytes, head: dict[str, str]):
    extra = {}
    if head["signature"] is not None:
        extra["HTTP_X_OPENHUMANS_WEBHOOKS_SIGNATURE"] = head["signature"]
    return client.generic("POST", URL, body, content_type=head["content_type"], **extra)


@pytest.mark.parametrize("secret", [SECRET, None], ids=["secret", "no-secret"])
def test_no_forged_notice_changes_anything_and_none_is_a_500(
    client, pmid, sandbox, settings, secret
):
    # With a secret: no body without its valid signature changes anything. Without one (the
    # documented default): Open Humans still has the member, so nothing is confirmed.
    settings.OPENHUMANS_WEBHOOK_SECRET = secret
    before = state(pmid)
    statuses: Counter[int] = Counter()

    @FUZZ
    @given(body=notices(pmid), head=headers())
    def check(body: bytes, head: dict[str, str]) -> None:
        response = post(client, body, head)
        statuses[response.status_code] += 1
        assert response.status_code in (200, 400, 403), response.status_code
        assert state(pmid) == before

    check()
    kind = "secret" if secret else "no secret"
    tried = sum(statuses.values())
    print(f"\n[reliability] webhook fuzz ({kind}): {tried} cases, {dict(statuses)}, changes 0")
    assert sum(statuses.values()) >= EXAMPLES * 0.9


def test_validly_signed_arbitrary_bodies_are_never_a_500(client, pmid, settings):
    settings.OPENHUMANS_WEBHOOK_SECRET = SECRET
    statuses: Counter[int] = Counter()

    @FUZZ
    @given(body=notices("99999999"))
    def check(body: bytes) -> None:
        signature = "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
        response = post(client, body, {"signature": signature, "content_type": "application/json"})
        statuses[response.status_code] += 1
        assert response.status_code in (200, 400), response.status_code
        assert state(pmid) == (False, False)  # another member's notices never touch this one

    check()
    tried = sum(statuses.values())
    print(f"\n[reliability] webhook fuzz (validly signed): {tried} cases, {dict(statuses)}")
