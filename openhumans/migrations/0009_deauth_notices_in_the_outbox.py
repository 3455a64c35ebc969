# Issue 12: the deauthorization notice owed for a member deleted here is an outbox entry
# (kind "deauth", with the member's pair encrypted), delivered and retried like every other
# side effect; PendingDeauthNotice becomes a proxy showing those not delivered yet. The
# notices pending at upgrade are copied into the outbox first, and back when reversed.

from django.db import migrations, models
from django.utils import timezone

import openhumans.fields

COPIED = ("project_member_id", "access_token", "refresh_token", "token_expires", "created")


def notices_to_outbox(apps, schema_editor):
    alias = schema_editor.connection.alias
    notices = apps.get_model("openhumans", "PendingDeauthNotice").objects.using(alias)
    outbox = apps.get_model("openhumans", "OutboxEntry").objects.using(alias)
    for notice in notices.order_by("created", "pk").iterator():
        outbox.create(
            kind="deauth",
            payload={},
            status="failed" if notice.gave_up else "pending",
            attempts=notice.attempts,
            last_error=notice.last_error,
            next_attempt=timezone.now(),
            **{name: getattr(notice, name) for name in COPIED},
        )


def outbox_to_notices(apps, schema_editor):
    alias = schema_editor.connection.alias
    notices = apps.get_model("openhumans", "PendingDeauthNotice").objects.using(alias)
    outbox = apps.get_model("openhumans", "OutboxEntry").objects.using(alias)
    owed = outbox.filter(kind="deauth").exclude(status="delivered")
    for entry in owed.order_by("created", "pk").iterator():
        notices.create(
            gave_up=entry.status == "failed",
            attempts=entry.attempts,
            last_error=entry.last_error,
            **{name: getattr(entry, name) for name in COPIED},
        )
    outbox.filter(kind="deauth").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("openhumans", "0008_encrypt_tokens"),
    ]

    operations = [
        migrations.AddField(
            model_name="outboxentry",
            name="access_token",
            field=openhumans.fields.EncryptedTokenField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="outboxentry",
            name="refresh_token",
            field=openhumans.fields.EncryptedTokenField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="outboxentry",
            name="token_expires",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AlterField(
            model_name="outboxentry",
            name="kind",
            field=models.CharField(
                choices=[
                    ("upload", "upload"),
                    ("message", "message"),
                    ("delete", "delete files"),
                    ("deauth", "deauthorization notice"),
                ],
                max_length=16,
            ),
        ),
        migrations.RunPython(notices_to_outbox, outbox_to_notices),
        migrations.DeleteModel(
            name="PendingDeauthNotice",
        ),
        migrations.CreateModel(
            name="PendingDeauthNotice",
            fields=[],
            options={
                "verbose_name": "pending deauthorization notice",
                "proxy": True,
                "indexes": [],
                "constraints": [],
            },
            bases=("openhumans.outboxentry",),
        ),
    ]
