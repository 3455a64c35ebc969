# Ours, after 0.2.0's two: tokens without a length limit, bookkeeping, queued deauth notices.

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("openhumans", "0002_openhumansmember_oh_deauth"),
    ]

    operations = [
        migrations.CreateModel(
            name="PendingDeauthNotice",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("project_member_id", models.CharField(db_index=True, max_length=16)),
                ("access_token", models.TextField()),
                ("refresh_token", models.TextField()),
                ("token_expires", models.DateTimeField()),
                (
                    "created",
                    models.DateTimeField(default=django.utils.timezone.now, editable=False),
                ),
                ("attempts", models.PositiveIntegerField(default=0)),
                ("last_attempt", models.DateTimeField(blank=True, null=True)),
                ("last_error", models.TextField(blank=True, default="")),
            ],
            options={
                "verbose_name": "pending deauthorization notice",
                "ordering": ["created"],
            },
        ),
        migrations.AlterModelOptions(
            name="openhumansmember",
            options={"verbose_name": "Open Humans member"},
        ),
        migrations.AddField(
            model_name="openhumansmember",
            name="created",
            field=models.DateTimeField(default=django.utils.timezone.now, editable=False),
        ),
        migrations.AddField(
            model_name="openhumansmember",
            name="updated",
            field=models.DateTimeField(auto_now=True),
        ),
        migrations.AlterField(
            model_name="openhumansmember",
            name="access_token",
            field=models.TextField(),
        ),
        migrations.AlterField(
            model_name="openhumansmember",
            name="refresh_token",
            field=models.TextField(),
        ),
    ]
