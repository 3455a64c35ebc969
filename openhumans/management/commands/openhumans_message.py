"""Email members through Open Humans with the master token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from openhumans.exceptions import OpenHumansError
from openhumans.management.progress import Progress
from openhumans.models import OpenHumansMember
from openhumans.project import Project


class Command(BaseCommand):
    help = (
        "Send a message to --all members, to --member ID (repeatable), or to the --active "
        "local members. Exits 1 unless every message was accepted by Open Humans."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        subject = parser.add_mutually_exclusive_group(required=True)
        subject.add_argument("--subject", help="The subject line.")
        subject.add_argument("--subject-file", type=Path, help="Read the subject from a file.")
        body = parser.add_mutually_exclusive_group(required=True)
        body.add_argument("--message", help="The message (Django template syntax allowed).")
        body.add_argument("--message-file", type=Path, help="Read the message from a file.")
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--all", action="store_true", help="Every member of the project.")
        who.add_argument(
            "--member", action="append", metavar="ID", help="A project member id (repeatable)."
        )
        who.add_argument(
            "--active", action="store_true", help="The local members still authorized."
        )
        parser.add_argument("--dry-run", action="store_true", help="Say who; send nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        subject = _text(options["subject"], options["subject_file"]).strip()
        message = _text(options["message"], options["message_file"])
        if not message.strip():
            raise CommandError("the message is empty")
        ids: list[str] | None = None
        if options["member"]:
            ids = list(dict.fromkeys(options["member"]))
        elif options["active"]:
            ids = list(OpenHumansMember.objects.active().values_list("oh_id", flat=True))
            if not ids:
                self.stdout.write("no active members: nothing to send")
                return
        who = "every member" if ids is None else f"{len(ids)} member(s)"
        if options["dry_run"]:
            self.stdout.write(f"would send {subject!r} to {who}")
            return
        project = Project()
        try:
            if ids is None:
                project.message(subject, message, all_members=True)
            else:
                progress = Progress(self.stdout, len(ids), "members messaged")
                try:
                    project.message(
                        subject,
                        message,
                        project_member_ids=ids,
                        on_batch=lambda batch: progress.advance(len(batch)),
                    )
                finally:
                    progress.finish()
        except OpenHumansError as err:
            raise CommandError(f"Open Humans refused the message: {err}") from err
        self.stdout.write(f"sent {subject!r} to {who}")


def _text(value: str | None, path: Path | None) -> str:
    if path is None:
        return value or ""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise CommandError(f"cannot read {path}: {err}") from err
