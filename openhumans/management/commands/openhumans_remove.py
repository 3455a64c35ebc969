"""Remove members from the project on Open Humans with the master token."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from openhumans.exceptions import OpenHumansError
from openhumans.management.progress import Progress
from openhumans.models import OpenHumansMember
from openhumans.project import Project


class Command(BaseCommand):
    help = (
        "Deauthorize the given project members on Open Humans (their tokens die; Open Humans "
        "sends the webhook) and mark them deauthorized here. Exits 1 unless all were removed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("member", nargs="+", metavar="ID", help="Project member ids.")
        parser.add_argument("--dry-run", action="store_true", help="Say who; remove nobody.")

    def handle(self, *args: Any, member: list[str], dry_run: bool = False, **options: Any) -> None:
        ids = list(dict.fromkeys(member))
        if dry_run:
            self.stdout.write(f"would remove {len(ids)} member(s): {' '.join(ids)}")
            return
        progress = Progress(self.stdout, len(ids), "members removed")
        removed: list[str] = []

        def done(batch: list[str]) -> None:
            OpenHumansMember.objects.filter(oh_id__in=batch).update(
                oh_deauth=True, updated=timezone.now()
            )
            removed.extend(batch)
            progress.advance(len(batch))

        try:
            Project().remove_members(ids, on_batch=done)
        except OpenHumansError as err:
            raise CommandError(
                f"removed {len(removed)} of {len(ids)} member(s); Open Humans refused the "
                f"rest: {err}"
            ) from err
        finally:
            progress.finish()
        self.stdout.write(f"removed {len(removed)} member(s)")
