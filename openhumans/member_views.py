"""A member's everyday pages: the download link that never goes stale, the reconnect page,
and the ``member_required`` decorator that sends a member who lost access there.

``openhumans:download`` lists the member's files afresh and redirects to the file's new
``download_url`` (its key lives one hour), so a link on a page left open keeps
working. ``openhumans:reconnect`` explains that access ended and offers to log in again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views import View
from django.views.decorators.http import require_GET

from .exceptions import InvalidTokenError, MemberDeauthorizedError
from .models import OpenHumansMember
from .views import MemberRequiredMixin, _error_page, _member_of, _safe_next

__all__ = ["DownloadFile", "login_url", "member_required", "needs_reconnect", "reconnect"]


def login_url(next_url: str | None = None) -> str:
    """The login view's URL, coming back to ``next_url`` (a path on this site) afterwards."""
    url = reverse("openhumans:login")
    return f"{url}?next={quote(next_url, safe='/')}" if next_url else url


def reconnect_url(next_url: str | None = None) -> str:
    """The reconnect page's URL, with the page to come back to."""
    url = reverse("openhumans:reconnect")
    return f"{url}?next={quote(next_url, safe='/')}" if next_url else url


def needs_reconnect(member: OpenHumansMember) -> bool:
    """Whether the member must authorize again: they left, or Open Humans refused a token."""
    return bool(member.oh_deauth or getattr(member, "needs_reauthorization", False))


def member_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a view for members: ``request.openhumans_member`` is theirs.

    A visitor without a member is sent to log in with Open Humans (coming back here); a
    member who left, or whose token Open Humans revoked or refused (also during the view:
    MemberDeauthorizedError, InvalidTokenError), is sent to ``openhumans:reconnect``.
    """

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        here = request.get_full_path()
        member = _member_of(request.user)
        if member is None:
            return HttpResponseRedirect(login_url(here))
        if needs_reconnect(member):
            return HttpResponseRedirect(reconnect_url(here))
        request.openhumans_member = member  # type: ignore[attr-defined]
        try:
            return view(request, *args, **kwargs)
        except (MemberDeauthorizedError, InvalidTokenError):
            return HttpResponseRedirect(reconnect_url(here))

    return wrapper


@require_GET
def reconnect(request: HttpRequest) -> HttpResponse:
    """Say that Open Humans access ended, with a link to log in again (and come back)."""
    next_url = _safe_next(request, request.GET.get("next"))
    context = {"login_url": login_url(next_url), "member": _member_of(request.user)}
    return render(request, "openhumans/reconnect.html", context)


class DownloadFile(MemberRequiredMixin, View):
    """Redirect to a fresh ``download_url`` of one of the member's files (404 if not theirs)."""

    def get(self, request: HttpRequest, file_id: int) -> HttpResponse:
        """Look the file up in a fresh listing and redirect to its new download link."""
        for datafile in self.member.list_files():
            if datafile.get("id") == file_id:
                url = str(datafile.get("download_url") or "")
                # Only http(s): the URL comes from Open Humans, never a javascript: link.
                if url.lower().startswith(("https://", "http://")):
                    return HttpResponseRedirect(url)
                break
        return _error_page(
            request, 404, "File not found", "This file is not among your Open Humans files."
        )
