"""A database made by django-open-humans 0.2.0 migrates forward with its members usable."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)

OLD = [("openhumans", "0002_openhumansmember_oh_deauth")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def latest():
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes("openhumans")


def test_migration_names_of_0_2_0_are_kept():
    names = {
        name
        for app, name in MigrationExecutor(connection).loader.disk_migrations
        if app == "openhumans"
    }
    assert {"0001_initial", "0002_openhumansmember_oh_deauth"} <= names


def test_no_model_change_without_a_migration():
    call_command("makemigrations", "openhumans", "--check", "--dry-run", verbosity=0)


def test_upgrade_from_0_2_0_keeps_members_usable(sandbox, django_user_model):
    pmid = sandbox.create_member(username="legacy")["project_member_id"]
    tokens = sandbox.issue_tokens(pmid)
    try:
        migrate(OLD)
        user = django_user_model.objects.create(username=f"{pmid}_openhumans")
        expires = timezone.now() + timedelta(hours=9)
        with connection.cursor() as cursor:
            # The row exactly as 0.2.0 wrote it.
            cursor.execute(
                "INSERT INTO openhumans_openhumansmember "
                "(oh_id, access_token, refresh_token, token_expires, public, user_id, oh_deauth) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [
                    pmid,
                    tokens["access_token"],
                    tokens["refresh_token"],
                    expires,
                    False,
                    user.pk,
                    False,
                ],
            )
        migrate(latest())
        from openhumans.models import OpenHumansMember

        member = OpenHumansMember.objects.get()
        assert member.user == user and member.created and member.updated
        with connection.cursor() as cursor:  # 0.2.0's plain-text tokens are now encrypted
            cursor.execute("SELECT access_token, refresh_token FROM openhumans_openhumansmember")
            stored = cursor.fetchone()
        assert tokens["access_token"] not in stored[0] and stored[0].startswith("ohenc1:")
        assert tokens["refresh_token"] not in stored[1] and stored[1].startswith("ohenc1:")
        assert member.list_files() == []
        sandbox.expire_access_tokens(pmid)
        OpenHumansMember.objects.update(token_expires=timezone.now())
        member.refresh_from_db()
        assert member.get_access_token() != tokens["access_token"]
        long = "t" * 1000
        OpenHumansMember.objects.update(access_token=long)
        assert OpenHumansMember.objects.get().access_token == long
    finally:
        migrate(latest())


def test_migrating_back_to_0_2_0_works():
    try:
        migrate(OLD)
        with connection.cursor() as cursor:
            tables = connection.introspection.table_names(cursor)
        assert "openhumans_openhumansmember" in tables
        assert "openhumans_pendingdeauthnotice" not in tables
    finally:
        migrate(latest())


def test_pending_notices_move_into_the_outbox_and_back(sandbox):
    before = ("openhumans", "0008_encrypt_tokens")
    pmid = sandbox.create_member(username="owed")["project_member_id"]
    tokens = sandbox.issue_tokens(pmid)
    try:
        migrate([before])
        old_apps = MigrationExecutor(connection).loader.project_state(before).apps
        old_apps.get_model("openhumans", "PendingDeauthNotice").objects.create(
            project_member_id=pmid,
            access_token=tokens["access_token"],
            refresh_token=tokens["refresh_token"],
            token_expires=timezone.now() + timedelta(hours=9),
            attempts=3,
            last_error="ServerError: 503",
        )
        migrate(latest())
        from openhumans.models import PendingDeauthNotice
        from openhumans.outbox import OutboxEntry

        notice = PendingDeauthNotice.objects.get()
        assert (notice.kind, notice.status, notice.attempts) == ("deauth", "pending", 3)
        assert notice.refresh_token == tokens["refresh_token"]
        assert OutboxEntry.objects.count() == 1

        migrate([before])  # and back: the notice is one of the old table's again
        old = old_apps.get_model("openhumans", "PendingDeauthNotice").objects.get()
        assert (old.project_member_id, old.attempts) == (pmid, 3)
        migrate(latest())
        assert PendingDeauthNotice.objects.get().send()  # the pair survived both ways
        assert sandbox.member(pmid)["active"] is False
    finally:
        migrate(latest())
