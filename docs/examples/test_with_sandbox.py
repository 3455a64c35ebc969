import pytest

from openhumans.models import OpenHumansMember


@pytest.fixture
def member(db, settings, oh_sandbox):
    settings.OPENHUMANS_OH_BASE_URL = oh_sandbox.base_url
    settings.OPENHUMANS_CLIENT_ID = oh_sandbox.client_id
    settings.OPENHUMANS_CLIENT_SECRET = oh_sandbox.client_secret
    pmid = oh_sandbox.create_member(username="alice")["project_member_id"]
    return OpenHumansMember.create(oh_id=pmid, data=oh_sandbox.issue_tokens(pmid))


def test_upload_then_list(member, oh_sandbox):
    member.upload(b"a,b\n1,2\n", "data.csv", {"description": "numbers", "tags": ["csv"]})
    assert [f["basename"] for f in member.list_files()] == ["data.csv"]
    assert oh_sandbox.files(member.oh_id)[0]["metadata"]["tags"] == ["csv"]


def test_member_who_left_cannot_be_used(member, oh_sandbox):
    from openhumans.exceptions import MemberDeauthorizedError

    oh_sandbox.leave(member.oh_id)
    with pytest.raises(MemberDeauthorizedError):
        member.list_files()


@pytest.mark.oh_sandbox(access_token_lifetime=1)
def test_expired_tokens_are_refreshed(member, oh_sandbox):
    oh_sandbox.expire_access_tokens(member.oh_id)
    member.message("Hi", "Still here?")
    assert len(oh_sandbox.inbox()) == 1


def test_open_humans_down(member, oh_sandbox):
    from openhumans.exceptions import ServerError

    oh_sandbox.set_fault(endpoint="/api/direct-sharing/project/message/", error_rate=1.0)
    with pytest.raises(ServerError):
        member.message("Hi", "Anyone there?")
    assert oh_sandbox.inbox() == []
