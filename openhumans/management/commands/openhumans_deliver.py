"""Deliver the outbox: uploads, messages and deletions still owed to Open Humans (cron)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from openhumans.management.progress import Progress
from openhumans.outbox import OutboxEntry, deliver, due_entries


class Command(BaseCommand):
    help = (
        "Deliver the outbox entries that are due (pending past their backoff, or claimed by "
        "a worker that died). Exits 1 while any entry stays pending or was given up."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--now", action="store_true", help="Also try entries still waiting out a backoff."
        )
        parser.add_argument("--dry-run", action="store_true", help="Count; deliver nothing.")

    def handle(self, *args: Any, now: bool = False, dry_run: bool = False, **options: Any) -> None:
        pending = OutboxEntry.objects.filter(status=OutboxEntry.PENDING)
        entries = pending if now else due_entries()
        ids = list(entries.values_list("pk", flat=True))
        if dry_run:
            self.stdout.write(f"would try {len(ids)} entr(ies)")
            return
        if now:
            from django.utils import timezone

            pending.filter(pk__in=ids).update(next_attempt=timezone.now())
        progress = Progress(self.stdout, len(ids), "outbox entries tried")
        counts = {OutboxEntry.DELIVERED: 0, OutboxEntry.PENDING: 0, OutboxEntry.FAILED: 0}
        for pk in ids:
            status = deliver(pk)
            counts[status] = counts.get(status, 0) + 1
            progress.advance()
        progress.finish()
        self.stdout.write(
            f"{counts[OutboxEntry.DELIVERED]} delivered, {counts[OutboxEntry.PENDING]} still "
            f"pending, {counts[OutboxEntry.FAILED]} given up"
        )
        if counts[OutboxEntry.PENDING] or counts[OutboxEntry.FAILED]:
            raise CommandError("some entries were not delivered (see the outbox in the admin)")
