"""Template tags: ``{% load openhumans_tags %}``, then ``{% openhumans_login_url %}``."""

from __future__ import annotations

from typing import Any

from django import template

from ..member_views import login_url

register = template.Library()


@register.simple_tag(takes_context=True)
def openhumans_login_url(context: dict[str, Any], next_url: str | None = None) -> str:
    """The login URL, coming back to ``next_url`` or else to the page being rendered."""
    request = context.get("request")
    if next_url is None and request is not None:
        next_url = request.get_full_path()
    return login_url(next_url)
