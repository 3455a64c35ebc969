"""The app configuration: registers the system checks and the model signal receivers."""

from __future__ import annotations

from django.apps import AppConfig


class OpenHumansConfig(AppConfig):
    """django-open-humans."""

    name = "openhumans"
    verbose_name = "Open Humans"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks
        from django.db.backends.signals import connection_created

        from . import checks as oh_checks
        from . import webhooks  # noqa: F401  (connects the deauth-on-delete receiver)
        from .db import set_busy_timeout

        checks.register(oh_checks.check_settings, checks.Tags.compatibility)
        checks.register(oh_checks.check_sqlite, checks.Tags.compatibility)
        connection_created.connect(set_busy_timeout, dispatch_uid="openhumans_busy_timeout")
