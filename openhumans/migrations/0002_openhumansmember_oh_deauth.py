# The schema of django-open-humans 0.2.0's 0002, unchanged (see 0001_initial).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("openhumans", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="openhumansmember",
            name="oh_deauth",
            field=models.BooleanField(default=False),
        ),
    ]
