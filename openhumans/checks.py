"""System checks: ``manage.py check`` says which OPENHUMANS_* setting is missing or wrong.

openhumans.E001  a required setting is missing
openhumans.E002  a base URL setting is not an absolute http(s) URL
openhumans.E003  a numeric setting (timeout, state age, upload or read size) is not a valid number
openhumans.E004  OPENHUMANS_MASTER_TOKEN is not a usable token
openhumans.E005  OPENHUMANS_TOKEN_KEYS is not a list of long secret strings
openhumans.W001  no OPENHUMANS_WEBHOOK_SECRET while DEBUG is off
openhumans.W002  OpenHumansBackend is not in AUTHENTICATION_BACKENDS
openhumans.W003  an OPENHUMANS_* setting this app does not know but nearly matches (a typo?)
openhumans.W004  OPENHUMANS_CLIENT_ID or _SECRET still holds a placeholder from the docs
openhumans.W005  a SQLite database configured so that concurrent requests can fail
openhumans.W006  no OPENHUMANS_TOKEN_KEYS while DEBUG is off: tokens encrypted with SECRET_KEY
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from .conf import DEFAULTS, SETTINGS, problem

BACKEND_PATH = "openhumans.backends.OpenHumansBackend"

#: Values copied from examples that no Open Humans project has as its credentials.
_PLACEHOLDER = re.compile(
    r"\A\s*(?:<.*>|\.\.\.|x+|changeme|change[-_ ]me|todo|(?:your|my)[-_ ]?client[-_ ]?"
    r"(?:id|secret)|client[-_ ]?(?:id|secret))\s*\Z",
    re.IGNORECASE,
)


def _looks_like_a_typo(name: str) -> list[str]:
    """The known settings ``name`` nearly matches (a project's own OPENHUMANS_FOO is not one)."""
    return difflib.get_close_matches(name, list(DEFAULTS), n=1, cutoff=0.9)


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Report missing or malformed OPENHUMANS_* settings."""
    messages: list[CheckMessage] = []
    for name, setting in SETTINGS.items():
        value = getattr(settings, name, setting.default)
        if setting.required and not value:
            messages.append(
                Error(
                    f"The {name} setting is required by django-open-humans.",
                    hint=f"Set {name} in your settings (see the Configuration Details docs).",
                    id="openhumans.E001",
                )
            )
        elif wrong := problem(name, value):
            messages.append(Error(wrong, id=setting.check_id))
    if not settings.DEBUG and not getattr(settings, "OPENHUMANS_WEBHOOK_SECRET", None):
        messages.append(
            Warning(
                "OPENHUMANS_WEBHOOK_SECRET is not set: anyone can call the deauth webhook.",
                hint="Set a webhook secret on your Open Humans project page and in "
                "OPENHUMANS_WEBHOOK_SECRET.",
                id="openhumans.W001",
            )
        )
    if not settings.DEBUG and not getattr(settings, "OPENHUMANS_TOKEN_KEYS", None):
        messages.append(
            Warning(
                "OPENHUMANS_TOKEN_KEYS is not set: the members' tokens are encrypted with a key "
                "derived from SECRET_KEY, so changing SECRET_KEY without keeping the old one in "
                "SECRET_KEY_FALLBACKS makes every member log in again.",
                hint="Set OPENHUMANS_TOKEN_KEYS = [<a new long random secret>, SECRET_KEY] "
                "(python -c 'import secrets; print(secrets.token_urlsafe(48))'), keep the new "
                "secret apart from SECRET_KEY, run manage.py openhumans_reencrypt_tokens, then "
                "drop SECRET_KEY from the list.",
                id="openhumans.W006",
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
    for name in ("OPENHUMANS_CLIENT_ID", "OPENHUMANS_CLIENT_SECRET"):
        value = getattr(settings, name, None)
        if isinstance(value, str) and _PLACEHOLDER.match(value):
            messages.append(
                Warning(
                    f"{name} looks like a placeholder ({value!r}); Open Humans will refuse it.",
                    hint="Copy the value from your project's page on Open Humans "
                    "(https://www.openhumans.org/direct-sharing/projects/manage/), or use the "
                    "sandbox's client id and secret.",
                    id="openhumans.W004",
                )
            )
    for name in dir(settings):
        if name.startswith("OPENHUMANS_") and name not in DEFAULTS:
            if matches := _looks_like_a_typo(name):
                messages.append(
                    Warning(
                        f"{name} is not a django-open-humans setting; it is ignored.",
                        hint=f"Did you mean {matches[0]}?",
                        id="openhumans.W003",
                    )
                )
    return messages


def check_sqlite(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Report SQLite databases (of settings.DATABASES) unsafe under concurrency (W005)."""
    return sqlite_warnings(settings.DATABASES)


def sqlite_warnings(databases: dict[str, dict[str, Any]]) -> list[CheckMessage]:
    """Say what to set where a SQLite database cannot be made safe under concurrency.

    The app takes SQLite's write lock before it reads on every path that writes (see
    ``openhumans.db``), holds it across no network call, and sets a busy timeout when the
    project sets none; it cannot help
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
                f"its OPTIONS timeout ({timeout:g} s) is shorter than the {wanted:g} s a "
                "request may wait for the write lock under load"
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
                    id="openhumans.W005",
                )
            )
    return messages
