# The schema of django-open-humans 0.2.0's 0001_initial, unchanged: databases created by
# 0.2.0 already recorded this migration as applied.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="OpenHumansMember",
            fields=[
                (
                    "oh_id",
                    models.CharField(max_length=16, primary_key=True, serialize=False, unique=True),
                ),
                ("access_token", models.CharField(max_length=256)),
                ("refresh_token", models.CharField(max_length=256)),
                ("token_expires", models.DateTimeField()),
                ("public", models.BooleanField(default=False)),
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
        ),
    ]
