"""Send the deauthorization notices Open Humans did not accept yet (run it from cron).

They are outbox entries (``openhumans_deliver`` sends them too, while they are due); this
tries every one still owed now, given-up ones included, and fails while any is left.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from openhumans.models import PendingDeauthNotice


class Command(BaseCommand):
    help = (
        "Retry the remove-members calls owed to Open Humans for members deleted here; "
        "exits non-zero while any stay pending."
    )

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
        pending = PendingDeauthNotice.objects.count()
        gave_up = PendingDeauthNotice.objects.filter(status=PendingDeauthNotice.FAILED).count()
        self.stdout.write(f"{sent} sent, {failed} failed, {pending} still pending")
        if pending:
            # Non-zero, so cron and monitoring notice: a notice owed is a member still in.
            raise CommandError(
                f"{pending} deauthorization notice(s) still pending ({gave_up} given up: their "
                "last error in the admin says why; when the member's tokens can no longer "
                "deliver them, set OPENHUMANS_MASTER_TOKEN, or remove those members on Open "
                "Humans and delete their notices)."
            )
