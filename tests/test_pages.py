"""The app's default pages as a person meets them: look, notices, next steps, languages."""

from __future__ import annotations

import os
import re
import shutil
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.utils import timezone, translation

from openhumans.models import OpenHumansMember
from openhumans.templatetags.openhumans_tags import oh_when

from .helpers import authorize, log_in

pytestmark = pytest.mark.django_db

METADATA = {"description": "a file", "tags": ["t"]}


def notices(response):
    from django.contrib.messages import get_messages

    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def member_client(client, member_factory):
    member = member_factory()
    client.force_login(member.user)
    client.member = member
    return client


# -- look ------------------------------------------------------------------------------------


def test_pages_link_the_apps_stylesheet_and_it_is_shipped(member_client, sandbox):
    from django.contrib.staticfiles import finders

    html = member_client.get("/openhumans/list/").content.decode()
    assert 'href="/static/openhumans/openhumans.css"' in html
    css = finders.find("openhumans/openhumans.css")
    assert css and ".oh-page" in open(css).read()


def test_signed_in_user_is_named_with_a_logout_button(member_client, sandbox):
    html = member_client.get("/openhumans/list/").content.decode()
    assert f"Signed in as {member_client.member.user.get_username()}" in html
    assert re.search(r'<form method="post" action="/openhumans/logout/">.*?Log out', html)


def test_anonymous_visitor_sees_no_logout(client, sandbox):
    html = client.get("/openhumans/list/").content.decode()
    assert "Signed in as" not in html and "/openhumans/logout/" not in html


def test_file_dates_are_for_people_not_iso(member_client, sandbox):
    sandbox.add_files(member_client.member.oh_id, basename="today.csv", metadata=METADATA)
    html = member_client.get("/openhumans/list/").content.decode()
    created = sandbox.files(member_client.member.oh_id)[0]["created"]
    assert f">{created}<" not in html  # the raw timestamp is only a tooltip / machine value
    assert re.search(r"<time datetime=\"[^\"]+\" title=\"[^\"]+\">(just now|\d+.minute)", html)


def test_humanized_dates():
    now = timezone.now()
    assert oh_when(now) == "just now"
    assert oh_when(now - timedelta(hours=3)) == "3\xa0hours ago"
    assert oh_when("2021-03-04T10:00:00Z") == "March 4, 2021"
    assert oh_when(datetime(2021, 3, 4, 23, 30, tzinfo=UTC)) == "March 4, 2021"
    assert oh_when("not a date") == "not a date" and oh_when(None) == ""


def test_delete_all_asks_first_without_javascript(member_client, sandbox):
    sandbox.add_files(member_client.member.oh_id, count=2, metadata=METADATA)
    html = member_client.get("/openhumans/list/").content.decode()
    # The button sits inside a closed <details>: one click opens, a second one deletes.
    confirm = re.search(r'<details class="oh-confirm">(.*?)</details>', html, re.S)
    assert confirm and "/openhumans/delete_all_files" in confirm.group(1)
    assert "cannot be undone" in confirm.group(1)
    assert html.count("/openhumans/delete_all_files") == 1


# -- notices name the file -------------------------------------------------------------------


def test_deleting_a_file_names_it(member_client, sandbox):
    (file_id,) = sandbox.add_files(member_client.member.oh_id, basename="report.csv")
    page = member_client.get("/openhumans/list/").content.decode()
    assert 'name="file_name" value="report.csv"' in page
    response = member_client.post(
        "/openhumans/delete_file", {"file_id": file_id, "file_name": "report.csv"}
    )
    assert notices(response) == ["Deleted report.csv."]


def test_deleting_by_basename_names_it_and_counts(member_client, sandbox):
    sandbox.add_files(member_client.member.oh_id, count=2, basename="x.csv")
    response = member_client.post("/openhumans/delete_file", {"file_basename": "x.csv"})
    assert notices(response) == ["Deleted 2 files named x.csv."]


def test_deleting_a_file_already_gone_says_so(member_client, sandbox):
    response = member_client.post("/openhumans/delete_file", {"file_id": "424242"})
    assert notices(response) == ["Nothing was deleted: the file is already gone."]


def test_delete_all_says_how_many(member_client, sandbox):
    sandbox.add_files(member_client.member.oh_id, count=3)
    response = member_client.post("/openhumans/delete_all_files")
    assert notices(response) == ["Deleted all 3 files this project uploaded."]
    response = member_client.post("/openhumans/delete_all_files")
    assert notices(response)[-1] == "There were no files of this project to delete."


def test_upload_names_the_file(member_client, sandbox):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("notes.txt", b"hello")
    response = member_client.post(
        "/openhumans/upload/", {"data_file": upload, "description": "d", "tags": ""}
    )
    assert notices(response) == ["Uploaded notes.txt."]


# -- the next step for who is looking ---------------------------------------------------------


def test_outage_offers_a_logged_in_member_to_retry_or_log_out(member_client, sandbox):
    sandbox.set_fault(
        endpoint="/api/direct-sharing/project/exchange-member/", error_rate=1.0, status=503
    )
    html = member_client.get("/openhumans/list/?page=2").content.decode()
    assert 'href="/openhumans/list/?page=2">Try again' in html
    assert "Log in with Open Humans" not in html
    assert "Log out" in html


def test_outage_during_login_offers_a_new_login(client, sandbox):
    pmid = sandbox.create_member(username="alice")["project_member_id"]
    from .helpers import start_login

    path = authorize(sandbox, pmid, start_login(client))
    sandbox.set_fault(endpoint="/oauth2/token/", error_rate=1.0, status=503)
    html = client.get(path).content.decode()
    assert 'href="/openhumans/login/">Try again' in html
    assert "Log out" not in html


def test_access_ended_page_offers_reconnect_and_logout(member_client, sandbox):
    OpenHumansMember.objects.update(oh_deauth=True)
    html = member_client.get("/openhumans/list/").content.decode()
    assert "Reconnect Open Humans" in html
    assert "/openhumans/logout/" in html
    # Or straight to another account: log out, then a login that comes back to this page.
    switch = re.search(
        r'name="next" value="([^"]+)">\s*<button type="submit">Log out and use', html
    )
    assert switch and switch.group(1).startswith("/openhumans/login/?next=/openhumans/list/")


# -- the restart loop ------------------------------------------------------------------------


def test_a_restarted_sandbox_never_traps_a_logged_in_person(client, sandbox):
    """Logged in, then Open Humans forgets everyone (an in-memory sandbox restarted)."""
    first = sandbox.create_member(username="alice")["project_member_id"]
    log_in(client, sandbox, first)
    old_user = OpenHumansMember.objects.get(oh_id=first).user
    sandbox.reset()

    page = client.get("/openhumans/list/")
    # Without the master token nobody can tell "left" from "tokens lost": asked to reconnect.
    assert page.status_code == 403 and b"Please reconnect Open Humans" in page.content
    assert b"Open Humans access ended" not in page.content  # not in the title either

    # Reconnecting brings back a new Open Humans account: it is not linked to this user...
    second = sandbox.create_member(username="alice")["project_member_id"]
    response = log_in(client, sandbox, second, next="/openhumans/list/")
    assert response.status_code == 302
    assert response["Location"] == "/openhumans/account-conflict/?next=/openhumans/list/"
    conflict = client.get(response["Location"])
    assert conflict.status_code == 409
    html = conflict.content.decode()
    assert "already connected to another Open Humans account" in html
    assert "Nothing was changed" in html
    assert f"connected to Open Humans member {first}. That connection has ended." in html
    # ...and the page offers the way out: log out and continue as the account just chosen.
    switch = re.search(
        r'<form method="post" action="/openhumans/logout/">.*?name="next" value="([^"]+)"',
        html,
        re.S,
    )
    assert switch
    response = client.post("/openhumans/logout/", {"next": switch.group(1).replace("&amp;", "&")})
    assert SESSION_KEY not in client.session
    assert urlsplit(response["Location"]).path == "/openhumans/login/"
    login = client.get(response["Location"])
    assert login.status_code == 302  # to Open Humans' authorize page
    from urllib.parse import parse_qs

    query = {k: v[0] for k, v in parse_qs(urlsplit(login["Location"]).query).items()}
    done = client.get(authorize(sandbox, second, query))
    assert done["Location"] == "/openhumans/list/"
    assert client.get("/openhumans/list/").status_code == 200

    # Nothing moved between the two: the old user keeps the old (ended) member.
    new_member = OpenHumansMember.objects.get(oh_id=second)
    assert new_member.user != old_user
    assert OpenHumansMember.objects.get(oh_id=first).user == old_user


def test_logout_follows_only_a_same_host_next(member_client):
    response = member_client.post("/openhumans/logout/", {"next": "https://evil.example/"})
    assert response["Location"] == "/"
    member_client.force_login(member_client.member.user)
    response = member_client.post("/openhumans/logout/", {"next": "/openhumans/login/"})
    assert response["Location"] == "/openhumans/login/"


def test_conflict_page_sends_a_visitor_to_log_in(client):
    response = client.get("/openhumans/account-conflict/")
    assert response["Location"] == "/openhumans/login/"


def test_a_second_browser_keeps_its_own_user(client, sandbox):
    # Another user holding the Open Humans account gets the same way out, not a link.
    pmid = sandbox.create_member(username="alice")["project_member_id"]
    log_in(Client(), sandbox, pmid)
    from django.contrib.auth import get_user_model

    someone = get_user_model().objects.create_user("someone")
    client.force_login(someone)
    response = log_in(client, sandbox, pmid)
    assert response["Location"] == "/openhumans/account-conflict/"
    html = client.get(response["Location"]).content.decode()
    assert "already connected to another user" in html
    assert "Log out and continue with that Open Humans account" in html


# -- translations ----------------------------------------------------------------------------


def write_mo(path, catalog):
    """Write a GNU .mo file (what msgfmt makes) for ``catalog``, a msgid -> msgstr dict."""
    import struct

    entries = {
        "": "Content-Type: text/plain; charset=UTF-8\nPlural-Forms: nplurals=2; plural=(n != 1);\n",
        **catalog,
    }
    keys = sorted(entries)
    ids = [k.encode() for k in keys]
    strs = [entries[k].encode() for k in keys]
    start = 7 * 4 + 16 * len(keys)
    offsets, data = [], b""
    for blob in ids + strs:
        offsets.append((len(blob), start + len(data)))
        data += blob + b"\0"
    header = struct.pack("<7I", 0x950412DE, 0, len(keys), 28, 28 + 8 * len(keys), 0, 0)
    table = b"".join(struct.pack("<2I", *o) for o in offsets)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + table + data)


def test_templates_and_notices_go_through_translation(member_client, sandbox, settings, tmp_path):
    """A catalogue for our msgids changes the pages and notices: the strings are marked."""
    write_mo(
        tmp_path / "de" / "LC_MESSAGES" / "django.mo",
        {
            "Your files on Open Humans": "Deine Dateien bei Open Humans",
            "Upload a file": "Datei hochladen",
            "Log out": "Abmelden",
            "Deleted %(name)s.": "%(name)s gelöscht.",
            "File": "Datei",
        },
    )
    settings.LOCALE_PATHS = [str(tmp_path)]
    (file_id,) = sandbox.add_files(member_client.member.oh_id, basename="a.csv")
    with translation.override("de"):
        html = member_client.get("/openhumans/list/").content.decode()
        response = member_client.post(
            "/openhumans/delete_file", {"file_id": file_id, "file_name": "a.csv"}
        )
        upload_form = member_client.get("/openhumans/upload/").content.decode()
    assert "Deine Dateien bei Open Humans" in html and "Datei hochladen" in html
    assert "Abmelden" in html and '<html lang="de">' in html
    assert notices(response) == ["a.csv gelöscht."]
    assert ">Datei:</label>" in upload_form


def test_the_reconnect_and_bounce_pages_go_through_translation(
    member_client, sandbox, settings, tmp_path
):
    """The pages of issue 10 (tokens lost) and of a SameSite=Strict login are marked too."""
    write_mo(
        tmp_path / "de" / "LC_MESSAGES" / "django.mo",
        {
            "Please reconnect Open Humans": "Bitte Open Humans neu verbinden",
            "Logging you in…": "Anmeldung…",
            'Logging you in… <a href="%(target)s">Continue</a> if nothing happens.': (
                'Anmeldung… <a href="%(target)s">Weiter</a>, falls nichts passiert.'
            ),
        },
    )
    settings.LOCALE_PATHS = [str(tmp_path)]
    settings.SESSION_COOKIE_SAMESITE = "Strict"
    OpenHumansMember.objects.update(needs_reauthorization=True)
    with translation.override("de"):
        reconnect = member_client.get("/openhumans/list/")
        bounce = Client().get("/openhumans/complete", {"state": "x", "code": "y"})
    assert reconnect.status_code == 403
    assert reconnect.content.decode().count("Bitte Open Humans neu verbinden") == 2  # title, h1
    page = bounce.content.decode()
    assert "<title>Anmeldung…</title>" in page and '<html lang="de">' in page
    assert re.search(r'<a href="/openhumans/complete\?[^"]*&amp;[^"]*">Weiter</a>, falls', page)


def test_locale_directory_is_ready_for_translators():
    from pathlib import Path

    import openhumans

    po = Path(openhumans.__file__).parent / "locale" / "en" / "LC_MESSAGES" / "django.po"
    text = po.read_text()
    for msgid in ("Your files on Open Humans", "Deleted %(name)s.", "Log out", "Try again"):
        assert f'msgid "{msgid}"' in text


@pytest.mark.skipif(not shutil.which("xgettext"), reason="needs GNU gettext (xgettext)")
def test_the_shipped_catalogue_has_every_marked_string(tmp_path):
    """makemessages over the package finds no msgid missing from locale/en (rerun it if so)."""
    import subprocess
    import sys
    from pathlib import Path

    import openhumans

    package = Path(openhumans.__file__).parent
    copy = tmp_path / "openhumans"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("sandbox", "starter", "locale"))
    (copy / "locale").mkdir()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    subprocess.run(
        [sys.executable, "-m", "django", "makemessages", "-l", "en", "--no-obsolete"],
        cwd=copy,
        env=env,
        check=True,
        capture_output=True,
    )

    def msgids(po):
        return set(re.findall(r'^msgid "(.+)"$', po.read_text(), re.M))

    fresh = msgids(copy / "locale" / "en" / "LC_MESSAGES" / "django.po")
    shipped = msgids(package / "locale" / "en" / "LC_MESSAGES" / "django.po")
    assert fresh - shipped == set()
    assert len(fresh) > 50
