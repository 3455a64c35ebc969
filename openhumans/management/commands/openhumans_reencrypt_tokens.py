"""Re-encrypt every stored token with the first key of OPENHUMANS_TOKEN_KEYS.

Run it after putting a new key first, so the old ones can be dropped; it also encrypts any
token still stored in plain text. Each row is rewritten under its lock, so a refresh that
stores a new pair at the same time is never undone.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connection

from openhumans.db import compare_and_update
from openhumans.fields import EncryptedTokenField, needs_reencryption

from ..progress import Progress


def _token_models() -> list[tuple[Any, list[str]]]:
    from django.apps import apps

    found = []
    for model in apps.get_app_config("openhumans").get_models():
        if model._meta.proxy:
            continue  # its table is its concrete model's (PendingDeauthNotice: the outbox)
        names = [f.name for f in model._meta.fields if isinstance(f, EncryptedTokenField)]
        if names:
            found.append((model, names))
    return found


def _stale_rows(model: Any, names: list[str]) -> list[Any]:
    """Primary keys of rows with a token not encrypted under the first key (read raw)."""
    table = connection.ops.quote_name(model._meta.db_table)
    pk = connection.ops.quote_name(model._meta.pk.column)
    columns = ", ".join(connection.ops.quote_name(model._meta.get_field(n).column) for n in names)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {pk}, {columns} FROM {table}")  # noqa: S608
        return [row[0] for row in cursor.fetchall() if any(map(needs_reencryption, row[1:]))]


class Command(BaseCommand):
    help = (
        "Re-encrypt the stored Open Humans tokens with the first key of OPENHUMANS_TOKEN_KEYS "
        "(after a key rotation, before dropping the old key)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Count the rows to re-encrypt; change nothing."
        )

    def handle(self, *args: Any, dry_run: bool = False, **options: Any) -> None:
        total = 0
        for model, names in _token_models():
            stale = _stale_rows(model, names)
            total += len(stale)
            label = model._meta.verbose_name_plural
            if dry_run:
                self.stdout.write(f"{label}: {len(stale)} row(s) to re-encrypt")
                continue
            progress = Progress(self.stdout, len(stale), f"Re-encrypting {label}")
            for pk in stale:
                row = model._default_manager.filter(pk=pk).values(*names).first()
                if row is not None:
                    # Rewritten only if unchanged since read (a refresh may store a new pair).
                    compare_and_update(model, pk, names[0], row[names[0]], **row)
                progress.advance()
            progress.finish()
        verb = "to re-encrypt" if dry_run else "re-encrypted"
        self.stdout.write(f"{total} row(s) {verb} with the first key.")
