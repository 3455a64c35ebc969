"""The authentication backend that logs a user in through their Open Humans member."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest


class OpenHumansBackend(ModelBackend):
    """Authenticates ``authenticate(request, open_humans_member=member)`` as the member's user.

    The member must come from a completed OAuth2 exchange (the ``complete`` view); this
    backend does not check passwords. Permissions work as with ModelBackend.
    """

    def authenticate(  # type: ignore[override]
        self,
        request: HttpRequest | None,
        open_humans_member: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Return the member's user if it may log in, else None."""
        if open_humans_member is None or open_humans_member.oh_deauth:
            return None
        user = open_humans_member.user
        return user if self.user_can_authenticate(user) else None
