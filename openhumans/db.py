"""SQLite under concurrency: take the write lock before reading, and wait for it when busy.

SQLite starts a transaction as a reader; a reader that then writes while another connection
writes fails at once with "database is locked", whatever the busy timeout. Every path here
that reads and then writes (a refresh, a first login, the webhook, a deauth notice) calls
:func:`lock_for_write` first, so it waits its turn instead. PostgreSQL needs none of this
(``select_for_update`` does the job), so it is a no-op there.
"""

from __future__ import annotations

from typing import Any

from django.db import connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from .conf import get_setting
from .exceptions import OpenHumansConfigurationError

__all__ = ["busy_timeout", "compare_and_update", "lock_for_write", "set_busy_timeout"]


def lock_for_write(model: Any, using: str | None = None) -> None:
    """In an atomic block, take SQLite's write lock now (waiting up to the busy timeout)."""
    alias = using or router.db_for_write(model)
    connection = connections[alias]
    if connection.vendor != "sqlite" or not connection.in_atomic_block:
        return
    options = connection.settings_dict.get("OPTIONS") or {}
    if str(options.get("transaction_mode", "")).upper() in ("IMMEDIATE", "EXCLUSIVE"):
        return  # BEGIN IMMEDIATE already took it
    table = connection.ops.quote_name(model._meta.db_table)
    column = connection.ops.quote_name(model._meta.pk.column)
    with connection.cursor() as cursor:
        # A write that changes nothing still makes SQLite take the write (RESERVED) lock.
        cursor.execute(f"UPDATE {table} SET {column} = {column} WHERE 0")  # noqa: S608


def compare_and_update(model: Any, pk: Any, field: str, expected: Any, **values: Any) -> bool:
    """Update row ``pk`` with ``values`` if its ``field`` still holds ``expected``; say if so.

    For the encrypted token columns, which SQL cannot compare (their encryption is
    randomized): the row is locked, read, and compared in Python.
    """
    manager = model._default_manager
    with transaction.atomic(using=router.db_for_write(model)):
        lock_for_write(model)
        rows = manager.select_for_update().filter(pk=pk)
        current = rows.values_list(field, flat=True).first()
        if current is None or current != expected:
            return False
        return bool(manager.filter(pk=pk).update(**values))


def busy_timeout() -> float:
    """Seconds a SQLite connection waits for the write lock (many short writers queue)."""
    try:
        token_timeout = float(get_setting("OPENHUMANS_TOKEN_TIMEOUT"))
    except OpenHumansConfigurationError:
        token_timeout = 20.0
    return token_timeout + 10.0


def set_busy_timeout(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """On a new SQLite connection without an OPTIONS timeout, wait for locks, not fail."""
    if connection.vendor != "sqlite":
        return
    if "timeout" in (connection.settings_dict.get("OPTIONS") or {}):
        return  # the project chose; check openhumans.W004 says if it is too short
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout() * 1000)}")
