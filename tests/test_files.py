"""OpenHumansMember's file operations (openhumans/files.py), the member_authorized signal,
``objects.active()`` and ``oh_username``, against the sandbox."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from openhumans.exceptions import (
    FileTooLargeError,
    InvalidArgumentError,
    OpenHumansConfigurationError,
    ServerError,
    UnknownFileError,
)
from openhumans.models import OpenHumansMember
from openhumans.signals import member_authorized

from .helpers import api_requests, log_in

META = {"description": "Daily summary", "tags": ["summary"]}


def test_filters_and_latest_keep_the_documented_dict_shape(sandbox, member_factory):
    member = member_factory()
    sandbox.add_files(member.oh_id, basename="a.json", metadata={"description": "", "tags": ["t"]})
    sandbox.advance_clock(5)
    [b] = sandbox.add_files(member.oh_id, basename="a.json")
    assert [f["basename"] for f in member.list_files(tag="t")] == ["a.json"]
    assert len(member.list_files(basename="a.json")) == 2
    latest = member.latest_file(basename="a.json")
    assert isinstance(latest, dict) and latest["id"] == b and "download_url" in latest
    assert member.latest_file(tag="none") is None
    with pytest.raises(InvalidArgumentError):
        member.list_files(source=7)


def test_read_json_and_download(sandbox, member_factory, tmp_path):
    member = member_factory()
    member.upload_json({"steps": 9000}, "day.json", META)
    latest = member.latest_file(basename="day.json")
    assert member.read_json(latest) == {"steps": 9000}
    assert member.read_text(latest["id"]) == '{"steps": 9000}'
    assert member.download(latest, tmp_path / "day.json") == 15
    assert (tmp_path / "day.json").read_bytes() == b'{"steps": 9000}'
    with pytest.raises(UnknownFileError):
        member.read_json(123456789)


def test_read_size_cap_comes_from_the_setting(sandbox, member_factory, settings):
    member = member_factory()
    [file_id] = sandbox.add_files(member.oh_id, content=b"x" * 100)
    settings.OPENHUMANS_MAX_READ_SIZE = 99
    with pytest.raises(FileTooLargeError):
        member.read_bytes(file_id)
    assert member.read_bytes(file_id, max_bytes=None) == b"x" * 100
    settings.OPENHUMANS_MAX_READ_SIZE = None
    assert len(member.read_bytes(file_id)) == 100
    settings.OPENHUMANS_MAX_READ_SIZE = "big"
    with pytest.raises(OpenHumansConfigurationError, match="OPENHUMANS_MAX_READ_SIZE"):
        member.read_bytes(file_id)


def test_upload_from_a_path_with_datatypes_and_max_bytes(sandbox, member_factory, tmp_path):
    member = member_factory()
    path = tmp_path / "steps.csv"
    path.write_bytes(b"day,steps\n")
    result = member.upload(path, "steps.csv", META, datatypes=[1], max_bytes=100)
    assert member.read_bytes(result.id) == b"day,steps\n"
    with pytest.raises(FileTooLargeError):
        member.upload(path, "steps.csv", META, max_bytes=5)
    assert len(member.list_files()) == 1


def test_upload_json_refuses_a_non_serialisable_object_before_any_request(sandbox, member_factory):
    member = member_factory()
    before = api_requests(sandbox, "files/upload/direct/")
    with pytest.raises(InvalidArgumentError, match="obj"):
        member.upload_json({"when": object()}, "x.json", META)
    assert api_requests(sandbox, "files/upload/direct/") == before


@pytest.mark.parametrize(
    "metadata", [{"description": ["x"], "tags": []}, {"description": "x", "tags": "daily"}]
)
def test_bad_metadata_is_refused_before_any_request(sandbox, member_factory, metadata):
    member = member_factory()
    with pytest.raises(InvalidArgumentError, match="metadata"):
        member.upload(b"x", "x.txt", metadata)
    assert api_requests(sandbox, "files/upload/direct/") == 0


def test_replace_file_safely(sandbox, member_factory):
    member = member_factory()
    old = member.upload_json({"day": 1}, "summary.json", META).id
    new, deleted = member.replace_file(io.BytesIO(b'{"day": 2}'), "summary.json", META)
    assert deleted == [old]
    assert [f["id"] for f in member.list_files()] == [new.id]


def test_replace_file_whose_upload_fails_keeps_the_old_file(sandbox, member_factory):
    member = member_factory()
    old = member.upload_json({"day": 1}, "summary.json", META).id
    sandbox.set_fault("/_storage/", status=500, error_rate=1.0)
    with pytest.raises(ServerError):
        member.replace_file(b'{"day": 2}', "summary.json", META)
    sandbox.clear_faults()
    assert [f["id"] for f in member.list_files()] == [old]
    assert member.read_json(old) == {"day": 1}


def test_active_members(sandbox, member_factory):
    alice, bob, carol = member_factory("alice"), member_factory("bob"), member_factory("carol")
    bob.deauth()
    carol.user.is_active = False
    carol.user.save()
    assert list(OpenHumansMember.objects.active()) == [alice]


@pytest.fixture
def received():
    calls: list[dict[str, Any]] = []

    def receiver(sender, **kwargs):
        calls.append(kwargs)

    member_authorized.connect(receiver)
    yield calls
    member_authorized.disconnect(receiver)


def test_member_authorized_on_first_login_and_again(sandbox, client, received, transactional_db):
    pmid = sandbox.create_member(username="alice")["project_member_id"]
    log_in(client, sandbox, pmid)
    [first] = received
    member = first["open_humans_member"]
    assert first["created"] is True and member.oh_id == pmid
    assert first["request"].path == "/openhumans/complete"
    assert member.oh_username == "alice"
    member.deauth()
    log_in(client, sandbox, pmid)
    second = received[1]
    assert second["created"] is False
    assert OpenHumansMember.objects.get(oh_id=pmid).oh_deauth is False


def test_oh_username_follows_open_humans(sandbox, client, db):
    pmid = sandbox.create_member(username="alice")["project_member_id"]
    log_in(client, sandbox, pmid)
    assert OpenHumansMember.objects.get(oh_id=pmid).oh_username == "alice"
    sandbox.configure(project={"request_username_access": False})
    other = sandbox.create_member(username="bob")["project_member_id"]
    client.logout()
    log_in(client, sandbox, other)
    assert OpenHumansMember.objects.get(oh_id=other).oh_username == ""
    assert get_user_model().objects.count() == 2


def test_link_sends_member_authorized_with_the_logged_in_user(
    sandbox, client, received, transactional_db
):
    user = get_user_model().objects.create_user("existing")
    client.force_login(user)
    pmid = sandbox.create_member(username="linked")["project_member_id"]
    log_in(client, sandbox, pmid)
    [call] = received
    assert call["created"] is True
    assert call["open_humans_member"].user == user


@pytest.mark.parametrize("destination", [42, "/no/such/dir/file.bin"])
def test_download_to_a_bad_destination_is_refused_before_any_request(
    sandbox, member_factory, destination
):
    member = member_factory()
    [file_id] = sandbox.add_files(member.oh_id)
    sandbox.clear_request_log()
    with pytest.raises(InvalidArgumentError) as caught:
        member.download(file_id, destination)
    assert caught.value.argument == "destination"
    assert sandbox.request_log()["requests"] == []


def test_a_str_that_is_not_a_path_says_so(sandbox, member_factory):
    member = member_factory()
    with pytest.raises(InvalidArgumentError, match="a str is a path"):
        member.upload("day,steps\n" * 50, "steps.csv", META)
