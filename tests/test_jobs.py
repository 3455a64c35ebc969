"""Member jobs (openhumans.jobs) on the default (immediate) task backend, against the sandbox."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model

from openhumans.exceptions import BadRequestError, ServerError
from openhumans.jobs import DONE, SKIPPED, enqueue_for_active_members
from openhumans.models import OpenHumansMember

from . import member_jobs
from .helpers import api_requests

pytestmark = pytest.mark.django_db

EXCHANGE = "/api/direct-sharing/project/exchange-member/"


@pytest.fixture(autouse=True)
def fresh_counts() -> None:
    member_jobs.completed.clear()
    member_jobs.calls.clear()


def test_one_job_per_active_member(member_factory: Any) -> None:
    alice, bob, carol, dave = (member_factory(n) for n in ("alice", "bob", "carol", "dave"))
    OpenHumansMember.objects.filter(pk=bob.oh_id).update(oh_deauth=True)
    get_user_model().objects.filter(pk=carol.user_id).update(is_active=False)

    assert enqueue_for_active_members(member_jobs.import_member) == 2

    assert member_jobs.completed == {alice.oh_id: 1, dave.oh_id: 1}


def test_a_member_who_left_before_the_job_ran_is_skipped(member_factory: Any) -> None:
    alice = member_factory("alice")
    OpenHumansMember.objects.filter(pk=alice.oh_id).update(oh_deauth=True)
    assert member_jobs.import_member.call(alice.oh_id) == SKIPPED
    assert member_jobs.import_member.call("no-such-member") == SKIPPED
    assert not member_jobs.calls


def test_a_member_who_left_on_open_humans_is_skipped_not_failed(
    member_factory: Any, sandbox: Any
) -> None:
    alice = member_factory("alice")
    sandbox.leave(alice.oh_id)  # tokens revoked; the refresh is refused
    OpenHumansMember.objects.filter(pk=alice.oh_id).update(token_expires=alice.created)
    assert member_jobs.import_member.call(alice.oh_id) == SKIPPED
    # Without the master token a refused refresh cannot tell "left" from "pair lost": the
    # member is asked to reconnect, never marked as gone (issue 10).
    row = OpenHumansMember.objects.get(pk=alice.oh_id)
    assert row.needs_reauthorization and not row.oh_deauth
    assert not member_jobs.completed


def test_with_the_master_token_a_member_who_left_is_marked_gone_and_skipped(
    member_factory: Any, sandbox: Any, settings: Any
) -> None:
    settings.OPENHUMANS_MASTER_TOKEN = sandbox.master_token
    alice = member_factory("alice")
    sandbox.leave(alice.oh_id)
    OpenHumansMember.objects.filter(pk=alice.oh_id).update(token_expires=alice.created)
    assert member_jobs.import_member.call(alice.oh_id) == SKIPPED
    assert OpenHumansMember.objects.get(pk=alice.oh_id).oh_deauth
    assert not member_jobs.completed


def test_transient_failures_are_retried_until_done(member_factory: Any, sandbox: Any) -> None:
    alice = member_factory("alice")
    # 3 requests per call (the client retries a GET twice): the first attempt fails.
    sandbox.set_fault(EXCHANGE, error_rate=1.0, status=503, times=4)
    result = member_jobs.import_member.enqueue(alice.oh_id)
    assert result.return_value == DONE
    assert member_jobs.calls[alice.oh_id] == 2
    assert member_jobs.completed[alice.oh_id] == 1


def test_rate_limiting_is_transient_too(member_factory: Any, sandbox: Any) -> None:
    alice = member_factory("alice")
    sandbox.set_fault(EXCHANGE, error_rate=1.0, status=429, times=3)
    assert member_jobs.import_member.call(alice.oh_id) == DONE
    assert member_jobs.completed[alice.oh_id] == 1


def test_transient_failures_give_up_after_max_attempts(member_factory: Any, sandbox: Any) -> None:
    alice = member_factory("alice")
    sandbox.set_fault(
        "/api/direct-sharing/project/files/upload/direct/", error_rate=1.0, status=502
    )
    with pytest.raises(ServerError):
        member_jobs.upload_summary.call(alice.oh_id)
    assert member_jobs.calls[alice.oh_id] == 3  # max_attempts=3
    assert api_requests(sandbox, "files/upload/direct/") == 3  # POSTs are not retried inside


def test_permanent_failures_are_not_retried(member_factory: Any, sandbox: Any) -> None:
    alice = member_factory("alice")
    sandbox.set_fault(
        "/api/direct-sharing/project/files/upload/direct/", error_rate=1.0, status=400
    )
    with pytest.raises(BadRequestError):
        member_jobs.upload_summary.call(alice.oh_id)
    assert member_jobs.calls[alice.oh_id] == 1
    assert api_requests(sandbox, "files/upload/direct/") == 1
