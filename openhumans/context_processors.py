"""Context processors: add ``"openhumans.context_processors.login_url"`` to TEMPLATES."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from .member_views import login_url as _login_url


def login_url(request: HttpRequest) -> dict[str, object]:
    """``openhumans_login_url``: log in with Open Humans and come back to this page."""
    return {"openhumans_login_url": SimpleLazyObject(lambda: _login_url(request.get_full_path()))}
