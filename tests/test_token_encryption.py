"""Tokens encrypted at rest: what a copy of the database holds, key rotation, and migration."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from tempfile import NamedTemporaryFile

import pytest
from django.core.exceptions import FieldError
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from openhumans.checks import check_settings
from openhumans.db import compare_and_update
from openhumans.fields import PREFIX, TokenDecryptionError
from openhumans.models import OpenHumansMember, PendingDeauthNotice

KEY_A, KEY_B, KEY_C = "a" * 40, "b" * 40, "c" * 40


def raw_tokens(oh_id: str) -> tuple[str, str]:
    """The token columns as the database holds them (what a dump or a backup shows)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT access_token, refresh_token FROM openhumans_openhumansmember WHERE oh_id = %s",
            [oh_id],
        )
        return cursor.fetchone()


@pytest.fixture
def member(sandbox, member_factory):
    return member_factory("alice")


@pytest.mark.django_db
def test_the_database_holds_no_token_in_plain_text(member, sandbox):
    access, refresh = member.access_token, member.refresh_token
    stored = raw_tokens(member.oh_id)
    assert all(value.startswith(PREFIX) for value in stored)
    assert access not in "".join(stored) and refresh not in "".join(stored)
    # Randomized: the same token stored twice does not give the same text.
    OpenHumansMember.objects.filter(pk=member.pk).update(access_token=access)
    assert raw_tokens(member.oh_id)[0] != stored[0]
    fresh = OpenHumansMember.objects.get(pk=member.pk)
    assert (fresh.access_token, fresh.refresh_token) == (access, refresh)
    assert fresh.list_files() == []  # the decrypted token works on Open Humans


@pytest.mark.django_db
def test_a_refresh_stores_the_new_pair_encrypted(member, sandbox):
    old = member.access_token
    member.refresh_tokens()
    new = OpenHumansMember.objects.get(pk=member.pk)
    assert new.access_token == member.access_token != old
    assert member.access_token not in "".join(raw_tokens(member.oh_id))


@pytest.mark.django_db
def test_token_lookups_are_refused_but_isnull_works(member):
    for lookup in ("access_token", "refresh_token__startswith", "access_token__regex"):
        with pytest.raises(FieldError, match="encrypted"):
            list(OpenHumansMember.objects.filter(**{lookup: member.access_token[:3]}))
    assert OpenHumansMember.objects.filter(access_token__isnull=False).count() == 1


@pytest.mark.django_db
def test_rotating_keys_with_reencrypt(member, member_factory, settings):
    settings.OPENHUMANS_TOKEN_KEYS = [KEY_A]
    OpenHumansMember.objects.filter(pk=member.pk).update(
        access_token=member.access_token, refresh_token=member.refresh_token
    )
    other = member_factory("bob")
    other.delete()  # no commit here: its deauthorization notice stays owed, with its pair
    settings.OPENHUMANS_TOKEN_KEYS = [KEY_B, KEY_A]  # the new key first, the old one kept
    assert OpenHumansMember.objects.get().access_token == member.access_token
    out = io.StringIO()
    call_command("openhumans_reencrypt_tokens", "--dry-run", stdout=out)
    assert "Open Humans members: 1 row(s) to re-encrypt" in out.getvalue()
    assert "outbox: 1 row(s) to re-encrypt" in out.getvalue()
    call_command("openhumans_reencrypt_tokens", stdout=out)
    assert "2 row(s) re-encrypted" in out.getvalue()
    settings.OPENHUMANS_TOKEN_KEYS = [KEY_B]  # the old key dropped: still readable
    row = OpenHumansMember.objects.get()
    assert (row.access_token, row.refresh_token) == (member.access_token, member.refresh_token)
    assert PendingDeauthNotice.objects.get().refresh_token == other.refresh_token
    call_command("openhumans_reencrypt_tokens", stdout=(out := io.StringIO()))
    assert "0 row(s) re-encrypted" in out.getvalue()


@pytest.mark.django_db
def test_a_dropped_key_is_a_clear_error_that_shows_no_token(member, settings):
    settings.OPENHUMANS_TOKEN_KEYS = [KEY_C]
    with pytest.raises(TokenDecryptionError, match="OPENHUMANS_TOKEN_KEYS") as caught:
        OpenHumansMember.objects.get()
    assert member.access_token not in str(caught.value)
    assert not any(stored in str(caught.value) for stored in raw_tokens(member.oh_id))


@pytest.mark.django_db
def test_default_keys_follow_secret_key_and_its_fallbacks(member, settings):
    old_secret = settings.SECRET_KEY
    settings.SECRET_KEY = "a-new-secret-key-" + "x" * 40
    with pytest.raises(TokenDecryptionError):
        OpenHumansMember.objects.get()
    settings.SECRET_KEY_FALLBACKS = [old_secret]  # Django's own rotation
    assert OpenHumansMember.objects.get().access_token == member.access_token


@pytest.mark.django_db
def test_dumps_carry_the_encrypted_form_and_load_back(member):
    out = io.StringIO()
    call_command("dumpdata", "openhumans.openhumansmember", stdout=out)
    assert member.access_token not in out.getvalue()
    fields = json.loads(out.getvalue())[0]["fields"]
    assert fields["access_token"].startswith(PREFIX)
    OpenHumansMember.objects.all().delete()
    with NamedTemporaryFile("w", suffix=".json") as dump:
        dump.write(out.getvalue())
        dump.flush()
        call_command("loaddata", dump.name, verbosity=0)
    loaded = OpenHumansMember.objects.get()
    assert loaded.access_token == member.access_token  # decrypted once, not twice


@pytest.mark.django_db
def test_compare_and_update_compares_the_decrypted_value(member):
    assert not compare_and_update(
        OpenHumansMember, member.pk, "refresh_token", "not-it", oh_username="x"
    )
    assert compare_and_update(
        OpenHumansMember, member.pk, "refresh_token", member.refresh_token, oh_username="y"
    )
    assert OpenHumansMember.objects.get().oh_username == "y"


def test_key_setting_checks(settings):
    settings.OPENHUMANS_TOKEN_KEYS = ["short"]
    errors = [m for m in check_settings() if m.id == "openhumans.E005"]
    assert errors and "short" not in errors[0].msg  # a secret is never repeated
    settings.OPENHUMANS_TOKEN_KEYS = "a" * 40  # a string, not a list
    assert "openhumans.E005" in {m.id for m in check_settings()}
    settings.OPENHUMANS_TOKEN_KEYS = None
    settings.DEBUG = False
    assert "openhumans.W006" in {m.id for m in check_settings()}
    settings.DEBUG = True
    assert "openhumans.W006" not in {m.id for m in check_settings()}
    settings.DEBUG = False
    settings.OPENHUMANS_TOKEN_KEYS = [KEY_A]
    assert not {"openhumans.W006", "openhumans.E005"} & {m.id for m in check_settings()}


@pytest.mark.django_db(transaction=True)
def test_migration_0008_encrypts_plain_tokens_and_reverses(sandbox, django_user_model):
    from django.db.migrations.executor import MigrationExecutor

    def migrate(target):
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(target)

    latest = MigrationExecutor(connection).loader.graph.leaf_nodes("openhumans")
    pmid = sandbox.create_member(username="plain")["project_member_id"]
    tokens = sandbox.issue_tokens(pmid)
    try:
        migrate([("openhumans", "0007_reauthorization_and_replay_guard")])
        user = django_user_model.objects.create(username="plain")
        with connection.cursor() as cursor:  # the row as an earlier version wrote it
            cursor.execute(
                "INSERT INTO openhumans_openhumansmember (oh_id, access_token, refresh_token, "
                "token_expires, public, user_id, oh_deauth, created, updated, oh_username, "
                "needs_reauthorization) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    pmid,
                    tokens["access_token"],
                    tokens["refresh_token"],
                    timezone.now() + timedelta(hours=9),
                    False,
                    user.pk,
                    False,
                    timezone.now(),
                    timezone.now(),
                    "",
                    False,
                ],
            )
        migrate(latest)
        stored = raw_tokens(pmid)
        assert all(value.startswith(PREFIX) for value in stored)
        assert tokens["access_token"] not in "".join(stored)
        assert OpenHumansMember.objects.get().list_files() == []
        migrate([("openhumans", "0007_reauthorization_and_replay_guard")])
        assert raw_tokens(pmid) == (tokens["access_token"], tokens["refresh_token"])
    finally:
        migrate(latest)
