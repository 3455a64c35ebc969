"""Runs the code the documentation shows (docs/examples/) against the sandbox.

Each function the docs include with ``literalinclude`` is called here and its effect checked
on the sandbox, so a docs example that stops working fails the suite.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser

from openhumans.exceptions import MemberDeauthorizedError, ServerError
from openhumans.models import OpenHumansMember
from openhumans.signals import member_authorized, member_deauth

from .helpers import log_in

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"
REDIRECT_URI = "http://testserver/openhumans/complete"


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"docs_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def examples():
    return load_example("members")


@pytest.fixture
def oh(settings, oh_sandbox):
    settings.OPENHUMANS_OH_BASE_URL = oh_sandbox.base_url
    settings.OPENHUMANS_CLIENT_ID = oh_sandbox.client_id
    settings.OPENHUMANS_CLIENT_SECRET = oh_sandbox.client_secret
    return oh_sandbox


@pytest.fixture
def member(db, oh):
    pmid = oh.create_member(username="alice")["project_member_id"]
    return OpenHumansMember.create(oh_id=pmid, data=oh.issue_tokens(pmid))


def request_of(rf, user):
    request = rf.get("/")
    request.user = user
    return request


def test_get_member_of_a_user(examples, member, capsys):
    assert examples.get_member_of_a_user() == member
    # Changed in issue 14 (readable admin titles): str() reads as a name, repr() as 0.2.0's.
    assert capsys.readouterr().out.strip() == f"Open Humans member {member.oh_id}"
    assert repr(member) == f"<OpenHumansMember (oh_id='{member.oh_id}')>"


def test_my_view(examples, member, rf):
    assert examples.my_view(request_of(rf, member.user)) == member


def test_show_files(examples, member, oh, capsys):
    oh.add_files(member.oh_id, basename="my_file.json", content=b"{}")
    examples.show_files()
    out = capsys.readouterr().out
    assert "my_file.json" in out
    assert "download (valid one hour): http" in out


def test_delete_files(examples, member, oh):
    [by_id] = oh.add_files(member.oh_id, basename="one.json", content=b"{}")
    oh.add_files(member.oh_id, count=2, basename="my_file.json", content=b"{}")
    oh.add_files(member.oh_id, basename="other.json", content=b"{}")
    examples.delete_files(by_id)
    assert oh.files(member.oh_id) == []


def test_upload_file(examples, member, oh, rf, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "example_file.json").write_text('{"steps": 9000}')
    examples.upload_file(request_of(rf, member.user))
    [f] = oh.files(member.oh_id)
    assert f["basename"] == "example.json"
    assert f["metadata"] == {"description": "foo", "tags": ["test", "example"]}


def test_upload_bytes(examples, member, oh, capsys):
    result = examples.upload_bytes(member)
    assert result.size == len(b"day,steps\n2024-01-01,9000\n")
    assert capsys.readouterr().out.split() == [str(result.id), str(result.size)]
    assert [f["id"] for f in oh.files(member.oh_id)] == [result.id]


def test_send_message(examples, member, oh):
    examples.send_message(member)
    [sent] = oh.inbox()
    assert sent["project_member_id"] == member.oh_id
    assert "Your report is ready" in sent["subject"]
    assert f"Hello {member.oh_id}," in sent["message"]


def test_withdraw(examples, member, oh):
    examples.withdraw(member)
    member.refresh_from_db()
    assert member.oh_deauth
    with pytest.raises(MemberDeauthorizedError):
        member.list_files()


def test_files_or_reconnect(examples, member, oh, rf):
    oh.add_files(member.oh_id, basename="steps.csv", content=b"1")
    response = examples.files_or_reconnect(request_of(rf, member.user))
    assert response.status_code == 200
    assert b"steps.csv" in response.content

    oh.leave(member.oh_id)
    response = examples.files_or_reconnect(request_of(rf, member.user))
    assert response.status_code == 302
    assert response["Location"] == "/openhumans/login/"


def test_call_the_api_directly(examples, member, oh, capsys):
    oh.add_files(member.oh_id, count=2)
    examples.call_the_api_directly(member)
    assert capsys.readouterr().out.split() == [member.oh_id, "2"]


def test_refresh_now(examples, member):
    before = member.access_token
    examples.refresh_now(member)
    member.refresh_from_db()
    assert member.access_token != before
    member.list_files()  # the new token works


def test_store_tokens_from_elsewhere(examples, db, oh):
    pmid = oh.create_member(username="bob")["project_member_id"]
    created = examples.store_tokens_from_elsewhere(oh.issue_tokens(pmid))
    assert created.oh_id == pmid
    assert created.user.get_username() == f"{pmid}_openhumans"
    # Again, for an existing user: the member is updated, no second user.
    again = examples.store_tokens_from_elsewhere(oh.issue_tokens(pmid), user=created.user)
    assert again.pk == created.pk
    assert get_user_model().objects.count() == 1


def test_create_member_for_known_id(examples, db, oh):
    pmid = oh.create_member(username="carol")["project_member_id"]
    created = examples.create_member_for_known_id(pmid, oh.issue_tokens(pmid))
    assert OpenHumansMember.objects.get(oh_id=pmid) == created
    assert created.list_files() == []


@pytest.mark.oh_sandbox(redirect_uri=REDIRECT_URI)
def test_exchange_a_code(examples, db, oh):
    pmid = oh.create_member(username="dana")["project_member_id"]
    code = parse_qs(urlsplit(oh.authorize(pmid, redirect_uri=REDIRECT_URI)).query)["code"][0]
    assert examples.exchange_a_code(code).oh_id == pmid


def test_login_link(examples):
    assert examples.login_link() == "/openhumans/login/?next=/dashboard/"


def test_member_deauth_receiver(member, caplog):
    receivers = load_example("receivers")
    try:
        with caplog.at_level(logging.INFO):
            member_deauth.send(
                sender=OpenHumansMember, open_humans_member=member, erasure_requested=True
            )
    finally:
        member_deauth.disconnect(receivers.forget_member)
    assert f"member {member.oh_id} left the project (erasure requested: True)" in caplog.text


def test_member_required_view(member, oh, rf):
    view = load_example("views").FileCount.as_view()
    oh.add_files(member.oh_id, count=3)
    response = view(request_of(rf, member.user))
    assert response.status_code == 200
    assert response.content == b'{"count": 3}'
    assert view(request_of(rf, AnonymousUser())).status_code == 403


def test_sandbox_walkthrough(capsys):
    load_example("sandbox_usage").sandbox_walkthrough()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("http://127.0.0.1:")
    assert lines[1:3] == ["steps.csv b'day,steps\\n'"] * 2
    assert lines[3:] == ["[Open Humans Project Message] Hello", "2"]


def test_every_example_the_docs_show_is_run_here():
    """Each ``:pyobject:`` the docs include is called by a test in this module."""
    import re

    docs = EXAMPLES.parent
    shown = {
        (source, name)
        for rst in docs.glob("*.rst")
        for source, name in re.findall(
            r"literalinclude:: examples/(\w+)\.py\n\s+:pyobject: (\w+)", rst.read_text()
        )
    }
    assert len(shown) > 15
    this_module = Path(__file__).read_text()
    missing = [f"{s}.{n}" for s, n in sorted(shown) if f".{n}(" not in this_module]
    assert not missing, f"docs examples no test runs: {missing}"


# -- the Recipes page (docs/examples/recipes.py) -----------------------------------------------

recipes = load_example("recipes")


def test_our_project_config_connects_the_import():
    config = recipes.OurProjectConfig("our_project", recipes)
    assert not member_authorized.has_listeners()
    config.ready()
    try:
        # connected: the receiver runs (start_import) when the signal is sent
        assert member_authorized.has_listeners()
    finally:
        member_authorized.disconnect(dispatch_uid="our_project.start_import")


def test_import_steps_uploads_the_steps(sandbox, member_factory):
    member = member_factory()
    recipes.start_import(None, open_humans_member=member, created=True, request=None)
    recipes.import_steps(member)  # a second import adds a second file
    assert len(member.list_files(basename="steps.json")) == 2
    assert member.read_json(member.latest_file(basename="steps.json")) == {
        "2026-11-29": 8123,
        "2026-11-30": 9045,
    }


@pytest.fixture
def connected_import():
    member_authorized.connect(recipes.start_import, dispatch_uid="test.start_import")
    yield
    member_authorized.disconnect(dispatch_uid="test.start_import")


def test_an_import_starts_when_someone_connects(
    sandbox, client, transactional_db, connected_import
):
    pmid = sandbox.create_member(username="alice")["project_member_id"]
    log_in(client, sandbox, pmid)
    [imported] = sandbox.files(pmid)
    assert imported["basename"] == "steps.json"
    assert imported["metadata"]["tags"] == ["steps"]


def test_latest_survey_answers(sandbox, member_factory):
    member = member_factory()
    assert recipes.latest_survey_answers(member) is None
    survey = {"description": "Survey", "tags": ["survey"]}
    member.upload_json({"mood": 3}, "survey-1.json", survey)
    sandbox.advance_clock(60)
    member.upload_json({"mood": 5}, "survey-2.json", survey)
    assert recipes.latest_survey_answers(member) == {"mood": 5}


def test_save_daily_summary_replaces_the_old_one(sandbox, member_factory):
    member = member_factory()
    first, _ = recipes.save_daily_summary(member, {"2026-11-29": 8123})
    second, deleted = recipes.save_daily_summary(member, {"2026-11-30": 9045})
    assert deleted == [first.id]
    [only] = member.list_files()
    assert only["id"] == second.id
    assert member.read_json(only)["steps"] == {"2026-11-30": 9045}


def test_save_daily_summary_keeps_the_old_one_when_the_upload_fails(sandbox, member_factory):
    member = member_factory()
    first, _ = recipes.save_daily_summary(member, {"2026-11-29": 8123})
    sandbox.set_fault("/api/direct-sharing/project/files/upload/direct/", status=503, error_rate=1)
    with pytest.raises(ServerError):
        recipes.save_daily_summary(member, {"2026-11-30": 9045})
    sandbox.clear_faults()
    assert [f["id"] for f in member.list_files()] == [first.id]


# -- docs/sources.rst ------------------------------------------------------------------------


def test_sources_examples_select_by_source(oh, db):
    sources = load_example("sources")
    oh.configure(project={"requested_sources": [sources.FITBIT_SOURCE]})
    pmid = oh.create_member(username="sam")["project_member_id"]
    member = OpenHumansMember.create(oh_id=pmid, data=oh.issue_tokens(pmid))
    oh.add_files(pmid, basename="steps.json", source=sources.FITBIT_SOURCE)
    oh.add_files(pmid, basename="elsewhere.json", source="direct-sharing-7")  # not shared
    member.upload(b"1", "ours.csv", {"description": "ours", "tags": []})

    own, shared = sources.what_this_member_shares(member)
    assert shared == [sources.FITBIT_SOURCE] and own.startswith("direct-sharing-")
    assert [f["basename"] for f in sources.files_from(member, own)] == ["ours.csv"]
    assert [f["basename"] for f in sources.fitbit_or_ask(member)] == ["steps.json"]
    every = {f["basename"] for f in member.list_files()}
    assert every == {"steps.json", "ours.csv"}  # an unshared source is never listed


def test_sources_example_asks_when_the_source_is_not_shared(oh, db):
    sources = load_example("sources")
    pmid = oh.create_member(username="kim")["project_member_id"]
    member = OpenHumansMember.create(oh_id=pmid, data=oh.issue_tokens(pmid))
    assert sources.fitbit_or_ask(member) is None
