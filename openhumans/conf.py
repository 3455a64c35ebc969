"""Every OPENHUMANS_* setting in one table, read from django.conf.settings at each use.

Nothing here is cached, so ``override_settings`` (and pytest-django's ``settings``) just work.
Each row says the default, whether the setting is required, and which validator checks it;
``manage.py check`` (:mod:`openhumans.checks`) and :func:`get_setting` both use the table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from .exceptions import OpenHumansConfigurationError

__all__ = ["DEFAULTS", "REQUIRED", "SETTINGS", "Setting", "get_setting", "problem", "redirect_uri"]

#: A validator: what is wrong with a value, in words after the setting's name; None if fine.
Validator = Callable[[Any], "str | None"]


def _base_url(value: Any) -> str | None:
    if not value:
        return None  # unset: only a required one is a problem, and that is said apart
    if isinstance(value, str):
        parts = urlsplit(value)
        if parts.scheme in {"http", "https"} and parts.netloc and not parts.query:
            return None
    return f"must be an absolute http(s) URL such as 'https://example.org', not {value!r}."


def _seconds(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return None
    return f"must be a positive number of seconds, not {value!r}."


def _bytes_or_none(value: Any) -> str | None:
    if value is None or isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return None
    return f"must be a whole number of bytes, or None, not {value!r}."


def _token_or_none(value: Any) -> str | None:
    if value is None or isinstance(value, str) and value.isascii() and value.isprintable():
        if value is None or (value and " " not in value):
            return None
    # Never echo the value: it is a credential.
    return "must be the project's master access token (printable ASCII, no spaces), or None."


def _token_keys(value: Any) -> str | None:
    if value is None:
        return None
    if (
        isinstance(value, list | tuple)
        and value
        and all(isinstance(key, str) and len(key) >= 32 for key in value)
    ):
        return None
    # Never echo the value: it is a secret.
    return (
        "must be a non-empty list of secret strings of at least 32 characters (the first "
        "encrypts, every one decrypts), or None to derive the keys from SECRET_KEY."
    )


@dataclass(frozen=True)
class Setting:
    """One setting: its default (None: not set), whether it is required, its validator."""

    default: Any = None
    required: bool = False
    #: Checks any value (required-but-unset is said apart); the check id reporting a failure.
    validator: Validator | None = None
    check_id: str = ""


#: The documented settings first (docs §4.1), then ours.
SETTINGS: dict[str, Setting] = {
    "OPENHUMANS_APP_BASE_URL": Setting(None, True, _base_url, "openhumans.E002"),
    "OPENHUMANS_CLIENT_ID": Setting(None, True),
    "OPENHUMANS_CLIENT_SECRET": Setting(None, True),
    "OPENHUMANS_OH_BASE_URL": Setting(
        "https://www.openhumans.org", False, _base_url, "openhumans.E002"
    ),
    "OPENHUMANS_LOGIN_REDIRECT_URL": Setting("/"),
    "OPENHUMANS_LOGOUT_REDIRECT_URL": Setting("/"),
    "OPENHUMANS_DEAUTH_ON_DELETE": Setting(True),
    "OPENHUMANS_DELETE_ON_ERASURE": Setting(True),
    "OPENHUMANS_DELETE_ON_DEAUTH": Setting(False),
    "OPENHUMANS_WEBHOOK_SECRET": Setting(None),
    # Ours: PKCE S256 on the login (spec §1.1 supports it; turn off only for odd servers).
    "OPENHUMANS_USE_PKCE": Setting(True),
    # Seconds one call to Open Humans may take in all (not per read), GET retries included;
    # well below gunicorn's default 30 s worker timeout.
    "OPENHUMANS_TIMEOUT": Setting(10.0, False, _seconds, "openhumans.E003"),
    # The same for the token endpoint (code exchange, refresh): longer, because a refresh
    # given up early may have rotated the pair on the server with the answer lost (spec §1.4).
    "OPENHUMANS_TOKEN_TIMEOUT": Setting(20.0, False, _seconds, "openhumans.E003"),
    # Seconds a login attempt (its state) stays valid; codes live 30 min (spec §1.1).
    "OPENHUMANS_STATE_MAX_AGE": Setting(3600, False, _seconds, "openhumans.E003"),
    # Largest file the upload view accepts, in bytes (413 above it, nothing sent to Open
    # Humans); the 0.2.0 upload's limit. None: only Open Humans' own 5 GiB (spec §2.6).
    "OPENHUMANS_MAX_UPLOAD_SIZE": Setting(
        128 * 1024 * 1024, False, _bytes_or_none, "openhumans.E003"
    ),
    # Largest file read_bytes/read_text/read_json read into memory unless given max_bytes.
    "OPENHUMANS_MAX_READ_SIZE": Setting(64 * 1024 * 1024, False, _bytes_or_none, "openhumans.E003"),
    # The project's master access token (spec §2.3), optional: for openhumans.Project and the
    # project-wide commands, and to tell a member whose token pair was lost from one who left
    # (and keep acting for them). It lasts 24 hours and is renewed on the project page.
    "OPENHUMANS_MASTER_TOKEN": Setting(None, False, _token_or_none, "openhumans.E004"),
    # Keys encrypting the members' tokens at rest (openhumans.fields): the first encrypts,
    # all decrypt (rotation). None: derived from SECRET_KEY and SECRET_KEY_FALLBACKS.
    "OPENHUMANS_TOKEN_KEYS": Setting(None, False, _token_keys, "openhumans.E005"),
}

#: Views of the table, for the docs' tests and for readers: name -> default, required names.
DEFAULTS: dict[str, Any] = {name: s.default for name, s in SETTINGS.items()}
REQUIRED: tuple[str, ...] = tuple(name for name, s in SETTINGS.items() if s.required)


def problem(name: str, value: Any) -> str | None:
    """Say what is wrong with setting ``name`` set to ``value``; None if it is fine."""
    setting = SETTINGS[name]
    if setting.required and not value:
        return f"The {name} setting is required by django-open-humans and is not set."
    wrong = setting.validator(value) if setting.validator is not None else None
    return f"{name} {wrong}" if wrong else None


def get_setting(name: str) -> Any:
    """Return setting ``name`` (or its default).

    Raises OpenHumansConfigurationError, naming the setting, if it is required and not set
    or its value is invalid; KeyError for a name that is not in the table.
    """
    value = getattr(settings, name, SETTINGS[name].default)
    if wrong := problem(name, value):
        raise OpenHumansConfigurationError(wrong)
    return value


def redirect_uri() -> str:
    """Return the OAuth2 redirect URI, exactly ``<OPENHUMANS_APP_BASE_URL>/openhumans/complete``.

    Existing projects registered this exact URL on Open Humans (docs §2.3), so it does not
    follow where the URLconf is mounted.
    """
    return str(get_setting("OPENHUMANS_APP_BASE_URL")).rstrip("/") + "/openhumans/complete"
