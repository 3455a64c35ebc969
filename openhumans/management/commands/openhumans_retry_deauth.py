"""Send the deauthorization notices Open Humans did not accept yet (run it from cron)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from openhumans.models import PendingDeauthNotice


class Command(BaseCommand):
    help = "Retry the remove-members calls owed to Open Humans for members deleted here."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--max-attempts",
            type=int,
            default=None,
            help="Skip notices that already failed this many times.",
        )

    def handle(self, *args: Any, max_attempts: int | None = None, **options: Any) -> None:
        notices = PendingDeauthNotice.objects.all()
        if max_attempts is not None:
            notices = notices.filter(attempts__lt=max_attempts)
        sent = failed = 0
        for notice in notices.iterator():
            if notice.send():
                sent += 1
            else:
                failed += 1
        self.stdout.write(f"{sent} sent, {failed} still pending")
        if failed:
            self.stderr.write("Some notices failed; they stay queued for the next run.")
