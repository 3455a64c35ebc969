"""openhumans.Project: the master token against the sandbox, over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest

import openhumans
from openhumans.exceptions import (
    InvalidArgumentError,
    InvalidTokenError,
    MasterTokenExpiredError,
    OpenHumansConfigurationError,
)
from openhumans.project import BATCH_SIZE, Project


@pytest.fixture
def project(sandbox: Any, settings: Any) -> Project:
    settings.OPENHUMANS_MASTER_TOKEN = sandbox.master_token
    return Project()


def test_project_is_exported_lazily_from_the_package() -> None:
    assert openhumans.Project is Project


def test_without_a_master_token_the_error_names_the_setting(settings: Any) -> None:
    settings.OPENHUMANS_MASTER_TOKEN = None
    with pytest.raises(OpenHumansConfigurationError, match="OPENHUMANS_MASTER_TOKEN"):
        Project()


def test_the_token_is_never_in_the_repr(project: Project, sandbox: Any) -> None:
    assert sandbox.master_token not in repr(project)


def test_iter_members_gives_every_file_past_the_ten_included(
    project: Project, sandbox: Any
) -> None:
    many = sandbox.create_member(username="many")["project_member_id"]
    few = sandbox.create_member(username="few")["project_member_id"]
    sandbox.add_files(many, count=130, basename="f{i}.csv")
    sandbox.add_files(few, count=2, basename="g{i}.csv")

    members = {m.project_member_id: m for m in project.iter_members()}

    assert set(members) == {many, few}
    assert len(members[many].files) == 130
    assert len({f.id for f in members[many].files}) == 130
    assert len(members[few].files) == 2


def test_expired_master_token_names_the_renewal_page(project: Project, sandbox: Any) -> None:
    sandbox.create_member(username="alice")
    sandbox.expire_master_token()
    with pytest.raises(MasterTokenExpiredError) as info:
        list(project.iter_members())
    assert isinstance(info.value, InvalidTokenError)
    message = str(info.value)
    assert "expired" in message and "24 hours" in message
    assert f"{sandbox.base_url}/direct-sharing/projects/manage/" in message
    assert info.value.renew_url == f"{sandbox.base_url}/direct-sharing/projects/manage/"
    assert sandbox.master_token not in message and sandbox.master_token not in repr(info.value)


def test_message_batches_ids_so_every_member_gets_one(project: Project, sandbox: Any) -> None:
    count = BATCH_SIZE * 2 + 7
    ids = [sandbox.create_member()["project_member_id"] for _ in range(count)]
    sandbox.clear_request_log()
    batches: list[int] = []

    sent = project.message(
        "Hello", "News", project_member_ids=ids, on_batch=lambda b: batches.append(len(b))
    )

    assert sent == count
    assert batches == [BATCH_SIZE, BATCH_SIZE, 7]
    inbox = sandbox.inbox()
    assert sorted(m["project_member_id"] for m in inbox) == sorted(ids)
    posts = [r for r in sandbox.request_log()["requests"] if r["path"].endswith("/message/")]
    assert len(posts) == 3


def test_message_to_all_members(project: Project, sandbox: Any) -> None:
    ids = {sandbox.create_member()["project_member_id"] for _ in range(3)}
    project.message("Hi", "all of you", all_members=True)
    assert {m["project_member_id"] for m in sandbox.inbox()} == ids


def test_bad_message_arguments_send_nothing(project: Project, sandbox: Any) -> None:
    pmid = sandbox.create_member()["project_member_id"]
    with pytest.raises(InvalidArgumentError):
        project.message("subject", "", project_member_ids=[pmid])
    with pytest.raises(InvalidArgumentError):
        project.message("s", "body", project_member_ids=[pmid], all_members=True)
    assert sandbox.inbox() == []


def test_remove_members_deauthorizes_them(project: Project, sandbox: Any) -> None:
    keep = sandbox.create_member(username="keep")["project_member_id"]
    gone = sandbox.create_member(username="gone")["project_member_id"]
    assert project.remove_members([gone]) == 1
    assert sandbox.member(gone)["revoked"] is True
    assert sandbox.member(keep)["revoked"] is False
    assert [m.project_member_id for m in project.iter_members()] == [keep]


def test_upload_list_delete_for_one_member(project: Project, sandbox: Any) -> None:
    pmid = sandbox.create_member()["project_member_id"]
    meta = {"description": "d", "tags": ["t"]}
    result = project.upload(pmid, b"a,b\n", "data.csv", meta)
    assert [f.id for f in project.list_files(pmid)] == [result.id]
    assert project.delete_files(pmid, file_id=result.id) == [result.id]
    assert project.list_files(pmid) == []
