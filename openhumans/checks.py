"""System checks: ``manage.py check`` says which OPENHUMANS_* setting is missing or wrong.

openhumans.E001  a required setting is missing
openhumans.E002  a base URL setting is not an absolute http(s) URL
openhumans.E003  a numeric setting (timeout, state age, upload size) is not a valid number
openhumans.W001  no OPENHUMANS_WEBHOOK_SECRET while DEBUG is off
openhumans.W002  OpenHumansBackend is not in AUTHENTICATION_BACKENDS
openhumans.W003  an OPENHUMANS_* setting this app does not know (a typo?)
openhumans.W004  a SQLite database configured so that concurrent requests can fail
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from .conf import DEFAULTS, NUMBERS, REQUIRED, number_problem

BACKEND_PATH = "openhumans.backends.OpenHumansBackend"


def _is_base_url(value: object) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in {"http", "https"} and bool(parts.netloc) and not parts.query


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Report missing or malformed OPENHUMANS_* settings."""
    messages: list[CheckMessage] = []
    for name in REQUIRED:
        if not getattr(settings, name, None):
            messages.append(
                Error(
                    f"The {name} setting is required by django-open-humans.",
                    hint=f"Set {name} in your settings (see the Configuration Details docs).",
                    id="openhumans.E001",
                )
            )
    for name in ("OPENHUMANS_APP_BASE_URL", "OPENHUMANS_OH_BASE_URL"):
        value = getattr(settings, name, DEFAULTS[name])
        if value and not _is_base_url(value):
            messages.append(
                Error(
                    f"{name} must be an absolute http(s) URL such as "
                    f"'https://example.org', not {value!r}.",
                    id="openhumans.E002",
                )
            )
    for name in NUMBERS:
        problem = number_problem(name, getattr(settings, name, DEFAULTS[name]))
        if problem:
            messages.append(Error(problem, id="openhumans.E003"))
    if not settings.DEBUG and not getattr(settings, "OPENHUMANS_WEBHOOK_SECRET", None):
        messages.append(
            Warning(
                "OPENHUMANS_WEBHOOK_SECRET is not set: anyone can call the deauth webhook.",
                hint="Set a webhook secret on your Open Humans project page and in "
                "OPENHUMANS_WEBHOOK_SECRET.",
                id="openhumans.W001",
            )
        )
    if BACKEND_PATH not in settings.AUTHENTICATION_BACKENDS:
        messages.append(
            Warning(
                f"{BACKEND_PATH} is not in AUTHENTICATION_BACKENDS.",
                hint="Add it so logins through Open Humans are attributed to it; until then "
                "members are logged in with your first configured backend.",
                id="openhumans.W002",
            )
        )
    for name in dir(settings):
        if name.startswith("OPENHUMANS_") and name not in DEFAULTS:
            messages.append(
                Warning(
                    f"{name} is not a django-open-humans setting; it is ignored.",
                    hint="Known settings: " + ", ".join(DEFAULTS) + ".",
                    id="openhumans.W003",
                )
            )
    return messages


def check_sqlite(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Report SQLite databases (of settings.DATABASES) unsafe under concurrency (W004)."""
    return sqlite_warnings(settings.DATABASES)


def sqlite_warnings(databases: dict[str, dict[str, Any]]) -> list[CheckMessage]:
    """Say what to set where a SQLite database cannot be made safe under concurrency.

    The app takes SQLite's write lock before it reads on every path that writes (see
    ``openhumans.db``) and sets a busy timeout when the project sets none; it cannot help
    when the project chose a shorter timeout, or runs each request in a transaction that
    has already read (ATOMIC_REQUESTS without IMMEDIATE transactions).
    """
    from .db import busy_timeout

    messages: list[CheckMessage] = []
    wanted = busy_timeout()
    fix = f'OPTIONS = {{"transaction_mode": "IMMEDIATE", "timeout": {wanted:g}}}'
    for alias, db in databases.items():
        if not str(db.get("ENGINE", "")).endswith("sqlite3"):
            continue
        options = db.get("OPTIONS") or {}
        timeout = options.get("timeout")
        immediate = str(options.get("transaction_mode", "")).upper() in ("IMMEDIATE", "EXCLUSIVE")
        problems = []
        if isinstance(timeout, int | float) and timeout < wanted:
            problems.append(
                f"its OPTIONS timeout ({timeout:g} s) is shorter than a token refresh may hold "
                f"the write lock ({wanted:g} s)"
            )
        if db.get("ATOMIC_REQUESTS") and not immediate:
            problems.append(
                "ATOMIC_REQUESTS starts every request as a reader, which fails at once with "
                '"database is locked" when it then writes beside another writer'
            )
        if problems:
            messages.append(
                Warning(
                    f"SQLite database {alias!r}: " + "; ".join(problems) + ".",
                    hint=f"Set {fix} in DATABASES[{alias!r}] (Django 5.1+).",
                    id="openhumans.W004",
                )
            )
    return messages
