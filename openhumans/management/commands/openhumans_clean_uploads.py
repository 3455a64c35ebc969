"""Clean up browser uploads started but never completed (run it from cron, e.g. hourly)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from openhumans.direct_upload import STALE_AFTER, clean_up
from openhumans.models import DirectUpload


class Command(BaseCommand):
    help = (
        "Delete, here and on Open Humans, browser uploads nobody completed (tab closed, PUT "
        "failed) that are older than --older-than seconds (default: the signed URL's 6 h "
        "lifetime plus an hour)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=int,
            default=int(STALE_AFTER.total_seconds()),
            help="Only uploads started at least this many seconds ago.",
        )

    def handle(self, *args: Any, older_than: int, **options: Any) -> None:
        if older_than < 0:
            raise CommandError("--older-than must be a number of seconds, 0 or more.")
        cutoff = timezone.now() - timedelta(seconds=older_than)
        cleaned = failed = 0
        for upload in DirectUpload.objects.filter(created__lt=cutoff).select_related("member"):
            if clean_up(upload):
                cleaned += 1
            else:
                failed += 1
        self.stdout.write(f"{cleaned} cleaned up, {failed} left for the next run")
        if failed:
            self.stderr.write("Open Humans could not be reached for some; run again later.")
