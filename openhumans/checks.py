"""System checks: ``manage.py check`` says which OPENHUMANS_* setting is missing or wrong.

openhumans.E001  a required setting is missing
openhumans.E002  a base URL setting is not an absolute http(s) URL
openhumans.E003  a numeric setting (timeout, state age, upload size) is not a valid number
openhumans.E004  OPENHUMANS_MASTER_TOKEN is not a usable token
openhumans.W001  no OPENHUMANS_WEBHOOK_SECRET while DEBUG is off
openhumans.W002  OpenHumansBackend is not in AUTHENTICATION_BACKENDS
openhumans.W003  an OPENHUMANS_* setting this app does not know (a typo?)
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from .conf import DEFAULTS, SETTINGS, problem

BACKEND_PATH = "openhumans.backends.OpenHumansBackend"


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
