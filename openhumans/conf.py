"""Every OPENHUMANS_* setting with its default, read from django.conf.settings at each use.

Nothing here is cached, so ``override_settings`` (and pytest-django's ``settings``) just work.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from .exceptions import OpenHumansConfigurationError

__all__ = ["DEFAULTS", "NUMBERS", "REQUIRED", "get_setting", "number_problem", "redirect_uri"]

#: The documented settings first (docs §4.1), then ours. ``None`` means "not set".
DEFAULTS: dict[str, Any] = {
    "OPENHUMANS_APP_BASE_URL": None,
    "OPENHUMANS_CLIENT_ID": None,
    "OPENHUMANS_CLIENT_SECRET": None,
    "OPENHUMANS_OH_BASE_URL": "https://www.openhumans.org",
    "OPENHUMANS_LOGIN_REDIRECT_URL": "/",
    "OPENHUMANS_LOGOUT_REDIRECT_URL": "/",
    "OPENHUMANS_DEAUTH_ON_DELETE": True,
    "OPENHUMANS_DELETE_ON_ERASURE": True,
    "OPENHUMANS_DELETE_ON_DEAUTH": False,
    "OPENHUMANS_WEBHOOK_SECRET": None,
    # Ours: PKCE S256 on the login (spec §1.1 supports it; turn off only for odd servers).
    "OPENHUMANS_USE_PKCE": True,
    # Seconds one call to Open Humans may take in all (not per read), GET retries included;
    # well below gunicorn's default 30 s worker timeout.
    "OPENHUMANS_TIMEOUT": 10.0,
    # The same for the token endpoint (code exchange, refresh): longer, because a refresh
    # given up early may have rotated the pair on the server with the answer lost (spec §1.4).
    "OPENHUMANS_TOKEN_TIMEOUT": 20.0,
    # The project's master access token (spec §A.1), optional: with it, a member whose token
    # pair was lost is told apart from one who left, and the app keeps acting for them.
    "OPENHUMANS_MASTER_TOKEN": None,
    # Seconds a login attempt (its state) stays valid; codes live 30 min (spec §1.1).
    "OPENHUMANS_STATE_MAX_AGE": 3600,
    # Largest file the upload view accepts, in bytes (413 above it, nothing sent to Open
    # Humans); the 0.2.0 upload's limit. None: only Open Humans' own 5 GiB (spec §2.6).
    "OPENHUMANS_MAX_UPLOAD_SIZE": 128 * 1024 * 1024,
}

#: Settings without which the app cannot talk to Open Humans (docs §4.1.1-4.1.3).
REQUIRED = ("OPENHUMANS_APP_BASE_URL", "OPENHUMANS_CLIENT_ID", "OPENHUMANS_CLIENT_SECRET")


#: Numeric settings: (what they must be, whether None is allowed, whether 0 is allowed).
NUMBERS: dict[str, tuple[str, bool, bool]] = {
    "OPENHUMANS_TIMEOUT": ("a positive number of seconds", False, False),
    "OPENHUMANS_TOKEN_TIMEOUT": ("a positive number of seconds", False, False),
    "OPENHUMANS_STATE_MAX_AGE": ("a positive number of seconds", False, False),
    "OPENHUMANS_MAX_UPLOAD_SIZE": ("a whole number of bytes, or None", True, True),
}


def number_problem(name: str, value: Any) -> str | None:
    """Say what is wrong with numeric setting ``name`` set to ``value``; None if it is fine."""
    what, none_ok, zero_ok = NUMBERS[name]
    if value is None and none_ok:
        return None
    whole = name == "OPENHUMANS_MAX_UPLOAD_SIZE"
    kinds = (int,) if whole else (int, float)
    if (
        not isinstance(value, kinds)
        or isinstance(value, bool)
        or value < 0
        or (value == 0 and not zero_ok)
    ):
        return f"{name} must be {what}, not {value!r}."
    return None


def get_setting(name: str) -> Any:
    """Return setting ``name`` (or its default).

    Raises OpenHumansConfigurationError, naming the setting, if it is required and not set
    or if a numeric setting is not a valid number.
    """
    if name not in DEFAULTS:
        raise KeyError(f"{name} is not an OPENHUMANS_* setting this app knows")
    value = getattr(settings, name, DEFAULTS[name])
    if name in REQUIRED and not value:
        raise OpenHumansConfigurationError(
            f"The {name} setting is required by django-open-humans and is not set."
        )
    if name in NUMBERS and (problem := number_problem(name, value)):
        raise OpenHumansConfigurationError(problem)
    return value


def redirect_uri() -> str:
    """Return the OAuth2 redirect URI, exactly ``<OPENHUMANS_APP_BASE_URL>/openhumans/complete``.

    Existing projects registered this exact URL on Open Humans (docs §2.3), so it does not
    follow where the URLconf is mounted.
    """
    return str(get_setting("OPENHUMANS_APP_BASE_URL")).rstrip("/") + "/openhumans/complete"
