# Issue 10: a member whose tokens were lost is not a member who left; when each member last
# authorized (deauth notices from before are replays); a lease for the one caller refreshing a
# member's pair; notices that could not be delivered.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("openhumans", "0006_outbox"),
    ]

    operations = [
        migrations.AddField(
            model_name="openhumansmember",
            name="needs_reauthorization",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="openhumansmember",
            name="authorized_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="openhumansmember",
            name="refresh_lease",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="pendingdeauthnotice",
            name="gave_up",
            field=models.BooleanField(
                default=False,
                help_text="The member's tokens were refused and no OPENHUMANS_MASTER_TOKEN is "
                "set: remove the member on Open Humans by hand, then delete this notice.",
            ),
        ),
    ]
