"""Login through Open Humans, and pages to manage a member's files.

The deauth webhook lives in :mod:`openhumans.webhooks`; ``openhumans.views.deauth`` (its
documented name) is the same view. The documented views stay in this one module (their
import paths are promises of the 0.2.0 docs); the newer ones have their own
(:mod:`openhumans.member_views`, :mod:`openhumans.direct_upload`).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views import View
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_POST

from . import oauth
from .backends import OpenHumansBackend
from .checks import BACKEND_PATH
from .conf import get_setting
from .exceptions import (
    InvalidArgumentError,
    InvalidGrantError,
    InvalidTokenError,
    MemberDeauthorizedError,
    MemberLinkError,
    OpenHumansConnectionError,
    OpenHumansError,
)
from .forms import DeleteFileForm, UploadForm
from .models import OpenHumansMember
from .signals import member_authorized
from .uploadhandlers import FORM_OVERHEAD, SizeLimitUploadHandler, declared_length
from .webhooks import deauth

__all__ = [
    "DeleteAllFiles",
    "DeleteFile",
    "MemberRequiredMixin",
    "UploadFile",
    "account_conflict",
    "complete",
    "deauth",
    "list_files",
    "login",
    "logout",
]

logger = logging.getLogger(__name__)


# -- helpers -------------------------------------------------------------------------------


def _safe_next(request: HttpRequest, url: object) -> str | None:
    """Return ``url`` if it is a same-host redirect target, else None."""
    if isinstance(url, str) and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return None


def _login_redirect() -> str:
    return resolve_url(get_setting("OPENHUMANS_LOGIN_REDIRECT_URL"))


def _logout_redirect() -> str:
    return resolve_url(get_setting("OPENHUMANS_LOGOUT_REDIRECT_URL"))


def _error_page(
    request: HttpRequest, status: int, title: str, message: str, retry_url: str | None = None
) -> HttpResponse:
    """The error page; it offers ``retry_url`` (if any) and logging in, or out, as fits."""
    context = {"title": title, "message": message, "retry_url": retry_url}
    return render(request, "openhumans/error.html", context, status=status)


def _retry_url(request: HttpRequest) -> str:
    """Where "Try again" goes: this page for a GET, the file list after a failed POST."""
    if request.method == "GET":
        return request.get_full_path()
    return reverse("openhumans:list")


def _api_error_page(
    request: HttpRequest, err: OpenHumansError, retry_url: str | None = None
) -> HttpResponse:
    """Log an Open Humans failure (our errors never carry tokens) and say so politely."""
    logger.exception("Open Humans request failed: %s", type(err).__name__)
    status = 503 if isinstance(err, OpenHumansConnectionError) else 502
    return _error_page(
        request,
        status,
        _("Open Humans is not answering"),
        _("We could not complete this with Open Humans right now. Please try again later."),
        retry_url or _retry_url(request),
    )


def _login_again_page(request: HttpRequest, message: str) -> HttpResponse:
    """A 400 for a login link that cannot be used; it offers to start a new login."""
    return _error_page(
        request, 400, _("This login link is not valid"), message, reverse("openhumans:login")
    )


def _member_of(user: Any) -> OpenHumansMember | None:
    if not user.is_authenticated:
        return None
    try:
        member: OpenHumansMember = user.openhumansmember
    except ObjectDoesNotExist:
        return None
    return member


def _log_in(request: HttpRequest, member: OpenHumansMember) -> bool:
    """Log the member's user in through OpenHumansBackend; False if they may not log in."""
    if request.user.is_authenticated and request.user.pk == member.user_id:
        return True  # linking to the logged-in user: already in
    user = authenticate(request, open_humans_member=member)
    if user is not None:
        auth_login(request, user)
        return True
    if BACKEND_PATH in settings.AUTHENTICATION_BACKENDS:
        return False  # our backend refused (inactive user)
    # The project did not list our backend (0.2.0 did not need it; check W002 says so):
    # log in through the first configured backend, which can load the user back.
    user = OpenHumansBackend().authenticate(request, open_humans_member=member)
    if user is None:
        return False
    auth_login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])
    return True


# -- login ---------------------------------------------------------------------------------


@login_not_required
@require_GET
def login(request: HttpRequest) -> HttpResponse:
    """Start logging in through Open Humans; ``?next=`` says where to come back to."""
    next_url = _safe_next(request, request.GET.get("next"))
    return HttpResponseRedirect(oauth.start_login(request, next_url))


#: Query parameter marking the second, same-site arrival at ``complete`` (SameSite=Strict).
SAME_SITE_MARK = "openhumans_same_site"


def _strict_cookie_withheld(request: HttpRequest) -> bool:
    """Whether the browser withheld a SameSite=Strict session cookie on a cross-site arrival.

    The return from Open Humans is a cross-site navigation: a Strict cookie is not sent with
    it, so the login's state seems missing although this browser started it.
    """
    return (
        str(settings.SESSION_COOKIE_SAMESITE).lower() == "strict"
        and settings.SESSION_COOKIE_NAME not in request.COOKIES
        and SAME_SITE_MARK not in request.GET
    )


def _same_site_bounce(request: HttpRequest) -> HttpResponse:
    """Load ``complete`` again from our own page: a same-site navigation sends the cookie.

    As django-allauth does for SameSite=Strict sessions. Nothing is stored and no cookie set.
    """
    query = request.GET.copy()
    query[SAME_SITE_MARK] = "1"
    target = f"{request.path}?{query.urlencode()}"
    response = render(request, "openhumans/same_site_bounce.html", {"target": target})
    response["Referrer-Policy"] = "no-referrer"  # the URL carries the code
    response["Cache-Control"] = "no-store"
    return response


@login_not_required
@require_GET
def complete(request: HttpRequest) -> HttpResponse:
    """Receive user from Open Humans. Store data, start data upload task.

    Refuses a missing, used or foreign ``state`` (400); ``error=access_denied`` is a cancelled
    login. Links the member to the logged-in user if there is one, else logs its user in.
    """
    stashed = oauth.pop_state(request, request.GET.get("state"))
    if stashed is None and _strict_cookie_withheld(request):
        return _same_site_bounce(request)
    if stashed is None:
        logger.warning("login completion refused: missing, used or unknown state")
        return _login_again_page(
            request,
            _("It has expired, was already used or was not started here. Please log in again."),
        )
    next_url = _safe_next(request, stashed["next"])
    error = request.GET.get("error")
    if error:
        if error == "access_denied":
            messages.info(request, _("Login cancelled: Open Humans access was not granted."))
        else:
            logger.warning("Open Humans refused the login: %r", error[:100])
            messages.error(request, _("Open Humans could not log you in. Please try again."))
        fallback = _login_redirect() if request.user.is_authenticated else _logout_redirect()
        return HttpResponseRedirect(next_url or fallback)
    code = request.GET.get("code")
    if not code:
        return _login_again_page(request, _("Open Humans sent no code."))
    user = request.user if request.user.is_authenticated else None
    try:
        member = OpenHumansMember.oh_code_to_member(
            code, code_verifier=stashed["code_verifier"], user=user
        )
    except MemberLinkError as err:
        # The logged-in user and the Open Humans account that came back belong to different
        # people here (e.g. a sandbox restarted with new member ids). Nothing is moved from
        # one to the other; the conflict page offers to log out and continue as that account.
        messages.error(request, str(err))
        target = reverse("openhumans:account_conflict")
        if next_url:
            target += "?next=" + quote(next_url, safe="/")
        return HttpResponseRedirect(target)
    except InvalidGrantError:
        logger.warning("Open Humans refused the login code (used, expired or wrong verifier)")
        return _login_again_page(
            request,
            _(
                "Open Humans did not accept it (it may have been used already). "
                "Please log in again."
            ),
        )
    except OpenHumansError as err:
        return _api_error_page(request, err, reverse("openhumans:login"))
    logged_in = _log_in(request, member)
    _announce_authorized(request, member)
    if not logged_in:
        messages.error(request, _("This account cannot log in."))
        return HttpResponseRedirect(_logout_redirect())
    if user is not None:
        messages.success(request, _("Your Open Humans account is connected."))
    return HttpResponseRedirect(next_url or _login_redirect())


def _announce_authorized(request: HttpRequest, member: OpenHumansMember) -> None:
    """Send member_authorized once the tokens' transaction committed (at once outside one)."""
    created = member._created_now
    transaction.on_commit(
        lambda: member_authorized.send(
            sender=OpenHumansMember, open_humans_member=member, created=created, request=request
        )
    )


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    """Log out and go to the POSTed same-host ``next``, else OPENHUMANS_LOGOUT_REDIRECT_URL."""
    next_url = _safe_next(request, request.POST.get("next"))
    auth_logout(request)
    return HttpResponseRedirect(next_url or _logout_redirect())


@require_GET
def account_conflict(request: HttpRequest) -> HttpResponse:
    """The way out when the Open Humans account that came back is not this user's.

    Offers to log out, or to log out and log in again (as the Open Humans account chosen
    there, which then gets its own user), or to go back. It links nothing by itself.
    """
    if not request.user.is_authenticated:
        return HttpResponseRedirect(reverse("openhumans:login"))
    next_url = _safe_next(request, request.GET.get("next"))
    login_url = reverse("openhumans:login")
    if next_url:
        login_url += "?next=" + quote(next_url, safe="/")
    context = {
        "member": _member_of(request.user),
        "login_url": login_url,
        "back_url": next_url or _login_redirect(),
    }
    return render(request, "openhumans/account_conflict.html", context, status=409)


# -- pages for a logged-in member ------------------------------------------------------------


class MemberRequiredMixin:
    """Views for a logged-in user with an authorized Open Humans member (``self.member``).

    Others get ``not_connected_template`` (status 403) offering to (re)connect, or a redirect
    to ``not_authorized_url`` when set. Open Humans failures become an error page (502/503).
    """

    not_connected_template = "openhumans/not_connected.html"
    not_authorized_url: str | None = None
    member: OpenHumansMember

    def not_connected(self, request: HttpRequest, member: OpenHumansMember | None) -> HttpResponse:
        """Answer a user who cannot use Open Humans here."""
        if self.not_authorized_url:
            return HttpResponseRedirect(resolve_url(self.not_authorized_url))
        context = {
            "member": member,
            "deauthorized": member is not None,
            "needs_reauthorization": member is not None
            and member.needs_reauthorization
            and not member.oh_deauth,
            "login_url": reverse("openhumans:login")
            + "?next="
            + quote(request.get_full_path(), safe="/"),
        }
        return render(request, self.not_connected_template, context, status=403)

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        view: Any = self
        method = (request.method or "").lower()
        if method not in view.http_method_names or not hasattr(self, method):
            return view.http_method_not_allowed(request, *args, **kwargs)
        member = _member_of(request.user)
        if member is None or member.oh_deauth:
            return self.not_connected(request, member)
        if member.needs_reauthorization and not get_setting("OPENHUMANS_MASTER_TOKEN"):
            return self.not_connected(request, member)
        self.member = member
        try:
            return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        except (MemberDeauthorizedError, InvalidTokenError):
            # Left, revoked or refused (even after a refresh): offer to reconnect. The row
            # says which: they left (oh_deauth), or must log in again (needs_reauthorization).
            member.refresh_from_db(fields=["oh_deauth", "needs_reauthorization"])
            if not member.needs_reauthorization:
                member.oh_deauth = True
            return self.not_connected(request, member)
        except InvalidArgumentError as err:
            return _error_page(request, 400, _("Bad request"), str(err))
        except OpenHumansError as err:
            return _api_error_page(request, err)

    def next_url(self, request: HttpRequest, default: str = "openhumans:list") -> str:
        """The POSTed ``next`` if it is a same-host URL, else ``default``."""
        return _safe_next(request, request.POST.get("next")) or resolve_url(default)


class list_files(MemberRequiredMixin, View):  # noqa: N801 (the documented name)
    """The member's files on Open Humans."""

    list_template = "openhumans/list_files.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        """List files."""
        files = self.member.list_files()
        context = {"files": files, "member": self.member, "upload_form": UploadForm()}
        return render(request, self.list_template, context)


class DeleteFile(MemberRequiredMixin, View):
    """Delete one file (``file_id``) or every file of a name (``file_basename``)."""

    def post(self, request: HttpRequest) -> HttpResponse:
        """Delete specified file in Open Humans for this project member."""
        form = DeleteFileForm(request.POST)
        if not form.is_valid():
            problems = [str(e) for errors in form.errors.values() for e in errors]
            return _error_page(request, 400, _("Bad request"), " ".join(problems))
        basename = form.cleaned_data["file_basename"]
        deleted = self.member.delete_single_file(
            file_id=form.cleaned_data["file_id"], file_basename=basename or None
        )
        self.say_deleted(request, deleted, basename or form.cleaned_data["file_name"])
        return HttpResponseRedirect(self.next_url(request))

    @staticmethod
    def say_deleted(request: HttpRequest, deleted: list[int], name: str) -> None:
        """Tell the member what went, by name where the page gave one."""
        if not deleted:
            messages.warning(request, _("Nothing was deleted: the file is already gone."))
        elif not name:
            messages.success(
                request,
                ngettext("Deleted %(count)d file.", "Deleted %(count)d files.", len(deleted))
                % {"count": len(deleted)},
            )
        elif len(deleted) == 1:
            messages.success(request, _("Deleted %(name)s.") % {"name": name})
        else:
            messages.success(
                request,
                _("Deleted %(count)d files named %(name)s.")
                % {"count": len(deleted), "name": name},
            )


class DeleteAllFiles(MemberRequiredMixin, View):
    """Delete every file this project uploaded for the member."""

    def post(self, request: HttpRequest) -> HttpResponse:
        """Delete all project files in Open Humans for this project member."""
        deleted = self.member.delete_all_files()
        if deleted:
            messages.success(
                request,
                ngettext(
                    "Deleted the one file this project uploaded.",
                    "Deleted all %(count)d files this project uploaded.",
                    len(deleted),
                )
                % {"count": len(deleted)},
            )
        else:
            messages.info(request, _("There were no files of this project to delete."))
        return HttpResponseRedirect(self.next_url(request))


# csrf_exempt here, csrf_protect inside: the CSRF check reads the body, and the size limit's
# upload handler must be in place before anything does (Django's documented pattern).
@method_decorator(csrf_exempt, name="dispatch")
class UploadFile(MemberRequiredMixin, View):
    """A form to upload a file with a description and tags; streams it to Open Humans.

    A body over OPENHUMANS_MAX_UPLOAD_SIZE is refused (413) before it is read: by its
    ``Content-Length``, else as soon as the file part passes the limit.
    """

    template_name = "openhumans/upload.html"
    _size_limit: SizeLimitUploadHandler | None = None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        limit = get_setting("OPENHUMANS_MAX_UPLOAD_SIZE")
        if request.method == "POST" and limit is not None:
            length = declared_length(request)
            if length is not None and length > limit + FORM_OVERHEAD:
                logger.info("upload refused unread: Content-Length %d over the limit", length)
                return self._too_large(request, limit)
            self._size_limit = SizeLimitUploadHandler(request, limit)
            request.upload_handlers.insert(0, self._size_limit)
        return csrf_protect(super().dispatch)(request, *args, **kwargs)

    def _too_large(self, request: HttpRequest, limit: int) -> HttpResponse:
        form = UploadForm(data={})
        form.is_valid()  # a bound form, to carry the refusal instead of "required" errors
        form.errors.clear()
        form.add_error(None, f"This file is too large: the limit is {limit} bytes.")
        return render(request, self.template_name, {"form": form}, status=413)

    def get(self, request: HttpRequest) -> HttpResponse:
        """Show the upload form."""
        return render(request, self.template_name, {"form": UploadForm()})

    def post(self, request: HttpRequest) -> HttpResponse:
        """Upload the submitted file, from Django's upload handler's file (not re-read)."""
        form = UploadForm(request.POST, request.FILES)
        if self._size_limit is not None and self._size_limit.exceeded:
            return self._too_large(request, self._size_limit.limit)
        if not form.is_valid():
            too_large = form.has_error("data_file", code="too_large")
            return render(
                request, self.template_name, {"form": form}, status=413 if too_large else 400
            )
        uploaded = form.cleaned_data["data_file"]
        result = self.member.upload(uploaded.file, uploaded.name, form.metadata())
        messages.success(request, _("Uploaded %(name)s.") % {"name": result.basename})
        return HttpResponseRedirect(self.next_url(request))
