# Ours: the member's Open Humans username, stored on every authorization (issue 11).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("openhumans", "0004_direct_upload"),
    ]

    operations = [
        migrations.AddField(
            model_name="openhumansmember",
            name="oh_username",
            field=models.CharField(
                blank=True, default="", max_length=150, verbose_name="Open Humans username"
            ),
        ),
    ]
