"""Compare Open Humans' member list with the local members; flag those who left unnoticed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from openhumans.conf import get_setting
from openhumans.exceptions import OpenHumansError
from openhumans.management.progress import Progress
from openhumans.models import OpenHumansMember
from openhumans.project import Project
from openhumans.signals import member_deauth


class Command(BaseCommand):
    help = (
        "List the project's members on Open Humans (master token), mark local members who "
        "left while a webhook was missed as deauthorized, and report members unknown here. "
        "Exits 1 if Open Humans could not be listed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Report what would change; change nothing."
        )

    def handle(self, *args: Any, dry_run: bool = False, **options: Any) -> None:
        progress = Progress(self.stdout, None, "members listed on Open Humans")
        remote: set[str] = set()
        try:
            for member in Project().iter_members():
                remote.add(member.project_member_id)
                progress.advance()
        except OpenHumansError as err:
            raise CommandError(f"could not list the members on Open Humans: {err}") from err
        progress.finish()
        local = set(
            OpenHumansMember.objects.filter(oh_deauth=False).values_list("oh_id", flat=True)
        )
        left = sorted(local - remote)
        unknown = sorted(remote - set(OpenHumansMember.objects.values_list("oh_id", flat=True)))
        verb = "would mark" if dry_run else "marked"
        for pmid in left:
            if not dry_run:
                _mark_left(pmid)
            self.stdout.write(f"{verb} member {pmid} deauthorized (left Open Humans unnoticed)")
        for pmid in unknown:
            self.stdout.write(f"member {pmid} is on Open Humans but unknown here")
        self.stdout.write(
            f"{len(remote)} on Open Humans, {len(local)} authorized here; "
            f"{len(left)} left unnoticed ({verb}), {len(unknown)} unknown here"
        )


def _mark_left(pmid: str) -> None:
    """Do what the deauth webhook would have done (erasure unknown, so not requested)."""
    with transaction.atomic():
        member = (
            OpenHumansMember.objects.select_for_update().filter(pk=pmid, oh_deauth=False).first()
        )
        if member is None:
            return  # the webhook arrived meanwhile
        # Marked first: deleting a member who left owes Open Humans no notice.
        OpenHumansMember.objects.filter(pk=pmid).update(oh_deauth=True)
        member.oh_deauth = True
        member_deauth.send(
            sender=OpenHumansMember, open_humans_member=member, erasure_requested=False
        )
        if get_setting("OPENHUMANS_DELETE_ON_DEAUTH"):
            OpenHumansMember.objects.filter(pk=pmid).delete()
