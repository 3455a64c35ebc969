"""Template tags and filters of the app: ``{% load openhumans_tags %}``.

``{% openhumans_login_url %}``, and the ``oh_when``/``oh_iso`` date filters of the default pages.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django import template
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.formats import date_format
from django.utils.timesince import timesince
from django.utils.translation import gettext as _

from ..member_views import login_url

register = template.Library()


@register.simple_tag(takes_context=True)
def openhumans_login_url(context: dict[str, Any], next_url: str | None = None) -> str:
    """The login URL, coming back to ``next_url`` or else to the page being rendered."""
    request = context.get("request")
    if next_url is None and request is not None:
        next_url = request.get_full_path()
    return login_url(next_url)


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            parsed = parse_datetime(value)
        except ValueError:
            return None
        if parsed is None:
            return None
        moment = parsed
    else:
        return None
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    return moment


@register.filter
def oh_when(value: Any) -> str:
    """A date for people: "3 hours ago" within a day, else the localized date.

    Takes a datetime or an ISO 8601 string (what Open Humans sends, e.g. a file's
    ``created``); anything else is shown as it came. Needs no ``django.contrib.humanize``.
    """
    moment = _as_datetime(value)
    if moment is None:
        return "" if value is None else str(value)
    now = timezone.now()
    if timedelta(0) <= now - moment < timedelta(days=1):
        if now - moment < timedelta(minutes=1):
            return _("just now")
        return _("%(delta)s ago") % {"delta": timesince(moment, now, depth=1)}
    local = timezone.localtime(moment) if timezone.is_aware(moment) else moment
    return date_format(local, "DATE_FORMAT")


@register.filter
def oh_iso(value: Any) -> str:
    """The moment in ISO 8601 (for ``<time datetime=...>``), or "" if it is not one."""
    moment = _as_datetime(value)
    return moment.isoformat() if moment else ""
