# Ours: browser uploads in progress (openhumans.direct_upload), cleaned up if never completed.

import uuid

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("openhumans", "0003_tokens_as_text_and_deauth_notices"),
    ]

    operations = [
        migrations.CreateModel(
            name="DirectUpload",
            fields=[
                (
                    "upload_id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("file_id", models.BigIntegerField()),
                ("filename", models.CharField(max_length=255)),
                ("size", models.BigIntegerField()),
                (
                    "created",
                    models.DateTimeField(
                        db_index=True, default=django.utils.timezone.now, editable=False
                    ),
                ),
                (
                    "member",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="direct_uploads",
                        to="openhumans.openhumansmember",
                    ),
                ),
            ],
            options={
                "verbose_name": "direct upload in progress",
                "ordering": ["created"],
            },
        ),
    ]
