"""Uploads straight from the browser to storage; the member's token stays on the server.

Three steps: the page asks :class:`StartUpload` for a signed storage URL (our
server checks the name, size and metadata, then calls ``files/upload/direct/``); the browser
PUTs the bytes to that URL; :class:`CompleteUpload` calls ``files/upload/complete/``. Every
answer is JSON, errors included: ``{"error": <code>, "message": <sentence>}`` with a 4xx
(5xx only when Open Humans itself fails). Each started upload is a :class:`DirectUpload` row
until it is completed; :func:`clean_up` removes one that never will be.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from django import forms
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from . import client as oh_client
from .conf import get_setting
from .exceptions import (
    BadRequestError,
    InvalidArgumentError,
    MemberDeauthorizedError,
    OpenHumansConfigurationError,
    OpenHumansConnectionError,
    OpenHumansError,
    ServerError,
)
from .models import DirectUpload, OpenHumansMember

__all__ = ["STALE_AFTER", "CancelUpload", "CompleteUpload", "StartUpload", "clean_up"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: An upload still open after this is abandoned: the signed URL lives 6 h (spec §1.6), and a
#: PUT begun just before it expired gets an hour to finish.
STALE_AFTER = timedelta(hours=7)
#: Uploads one member may have open at once (each is a file record on Open Humans).
MAX_OPEN_UPLOADS = 10
#: S3's single-PUT limit, as the client's (spec §2.6 step 2).
MAX_PUT_SIZE = 5 * 1024**3
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ApiError(Exception):
    """An answer for the browser: HTTP ``status``, a machine ``code``, a sentence."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra

    def response(self) -> JsonResponse:
        """This error as the JSON answer."""
        body = {"error": self.code, "message": self.message, **self.extra}
        return JsonResponse(body, status=self.status)


def _detail(err: BadRequestError) -> object:
    return err.body.get("detail") if isinstance(err.body, dict) else None


def _not_in_storage(err: BadRequestError) -> bool:
    """Spec §2.6 step 3: ``{"detail": "file not present"}`` when the bytes never arrived."""
    return _detail(err) == "file not present"


class StartForm(forms.Form):
    """What the page sends to start an upload; tags as a list or one comma/space string."""

    filename = forms.CharField(max_length=255, strip=False)
    size = forms.IntegerField(
        min_value=1, error_messages={"min_value": gettext_lazy("The file is empty.")}
    )
    description = forms.CharField(max_length=100)
    tags = forms.CharField(max_length=500, required=False)

    def clean_filename(self) -> str:
        name = self.cleaned_data["filename"]
        # spec §2.6: the name is the last segment of the storage key, used verbatim.
        if (
            not name.strip()
            or "/" in name
            or "\\" in name
            or _CONTROL.search(name)
            or name in (".", "..")
        ):
            raise forms.ValidationError(_("Give a plain file name, without '/' or control codes."))
        return name

    @staticmethod
    def size_limit() -> int:
        """OPENHUMANS_MAX_UPLOAD_SIZE, and storage's own 5 GiB when it is larger."""
        limit = get_setting("OPENHUMANS_MAX_UPLOAD_SIZE")
        return MAX_PUT_SIZE if limit is None else min(limit, MAX_PUT_SIZE)

    def clean_size(self) -> int:
        size: int = self.cleaned_data["size"]
        limit = self.size_limit()
        if size > limit:
            raise forms.ValidationError(
                _("This file is too large: %(size)s bytes; the limit is %(limit)s bytes."),
                code="too_large",
                params={"size": size, "limit": limit},
            )
        return size

    def clean_tags(self) -> list[str]:
        raw = self.cleaned_data.get("tags") or ""
        return [tag for tag in re.split(r"[,\s]+", raw) if tag]


def _read_json(request: HttpRequest) -> dict[str, Any]:
    """The request's JSON object (or, for ``sendBeacon``, its form fields); ApiError if not."""
    content_type = request.content_type or ""
    try:
        if content_type != "application/json":
            if request.POST:  # a form post, e.g. navigator.sendBeacon(url, FormData)
                return {k: request.POST.get(k) for k in request.POST}
            raise ApiError(415, "unsupported_media_type", _("Send a JSON object."))
        data = json.loads(request.body)
    except RequestDataTooBig:
        raise ApiError(413, "request_too_large", _("The request body is too large.")) from None
    except (ValueError, RecursionError):
        raise ApiError(400, "invalid_json", _("The body is not valid JSON.")) from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", _("Send a JSON object."))
    if isinstance(data.get("tags"), list) and all(isinstance(t, str) for t in data["tags"]):
        data["tags"] = ",".join(data["tags"])
    for key, value in data.items():  # Django's fields would str() a dict or a list
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise ApiError(
                400,
                "invalid",
                _("%(field)s: give a string or a whole number.") % {"field": key},
                field=key,
            )
    return data


def _call(member: OpenHumansMember, operation: Callable[[oh_client.OpenHumansClient], T]) -> T:
    """Run one Open Humans call with the member's (refreshed) token."""
    return member._call(operation)


def _complete_or_remove(upload: DirectUpload) -> bool:
    """Settle an upload nobody will complete; True if a file had arrived and was removed.

    Open Humans deletes only completed files, so an upload whose bytes arrived
    is completed and then deleted; one whose bytes never arrived is refused by complete
    ("file not present") and stays an invisible record that Open Humans itself expunges
    after 6 h.
    """
    member = upload.member
    try:
        _call(member, lambda api: api.complete_upload(upload.file_id))
    except BadRequestError as err:
        # The sandbox's "file does not exist": a record already expunged (Open Humans: 500).
        if _not_in_storage(err) or _detail(err) == "file does not exist":
            return False
        raise
    _call(member, lambda api: api.delete_files(file_id=upload.file_id))
    return True


def clean_up(upload: DirectUpload) -> bool:
    """Remove an abandoned upload here and on Open Humans; False if it must be tried again.

    Never raises an OpenHumansError: a failure keeps the row for the next run, except for an
    upload so old that Open Humans has expunged its record (complete then fails).
    """
    try:
        removed = _complete_or_remove(upload)
    except MemberDeauthorizedError:
        removed = False  # the member left: the project can no longer touch their files
    except (OpenHumansConnectionError, OpenHumansConfigurationError) as err:
        logger.warning("upload %s not cleaned up yet: %s", upload.upload_id, type(err).__name__)
        return False
    except OpenHumansError as err:
        # Real Open Humans answers 500 for a file id it expunged (spec §2.6 step 3).
        if not (isinstance(err, ServerError | BadRequestError) and _is_stale(upload)):
            logger.warning("upload %s not cleaned up yet: %s", upload.upload_id, err)
            return False
        removed = False
    DirectUpload.objects.filter(pk=upload.pk).delete()
    logger.info(
        "cleaned up upload of %r for member %s (file %s %s)",
        upload.filename,
        upload.member_id,
        upload.file_id,
        "deleted" if removed else "never arrived",
    )
    return True


def _is_stale(upload: DirectUpload) -> bool:
    return upload.created < timezone.now() - STALE_AFTER


@method_decorator([csrf_exempt, never_cache], name="dispatch")
class _MemberJSONView(View):
    """POST-only, logged-in member only, CSRF-checked, every answer JSON."""

    http_method_names = ["post"]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            if request.method != "POST":
                raise ApiError(405, "method_not_allowed", _("Use POST."))
            # The CSRF check Django's middleware does, answered in JSON instead of a page.
            if CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {}):  # type: ignore[arg-type]
                raise ApiError(
                    403, "csrf_failed", "CSRF check failed: send the X-CSRFToken header."
                )
            member = _connected_member(request)
            return self.handle(request, member, _read_json(request))
        except ApiError as err:
            return err.response()
        except MemberDeauthorizedError:
            return ApiError(
                403, "not_connected", _("Your Open Humans account is not connected. Log in again.")
            ).response()
        except InvalidArgumentError as err:
            return ApiError(400, "invalid", str(err)).response()
        except OpenHumansConfigurationError:
            raise  # the project's settings are wrong: a 500 naming them
        except OpenHumansError as err:
            logger.exception("Open Humans request failed: %s", type(err).__name__)
            status = 503 if isinstance(err, OpenHumansConnectionError) else 502
            return ApiError(
                status,
                "open_humans_unavailable",
                _("Open Humans is not answering. Try again later."),
            ).response()

    def handle(
        self, request: HttpRequest, member: OpenHumansMember, data: dict[str, Any]
    ) -> JsonResponse:
        raise NotImplementedError

    @staticmethod
    def upload_of(member: OpenHumansMember, data: dict[str, Any]) -> DirectUpload:
        """The member's open upload named by ``upload_id``; ApiError 400/404 otherwise."""
        try:
            upload_id = uuid.UUID(str(data.get("upload_id") or ""))
        except ValueError:
            raise ApiError(400, "invalid", "upload_id: give the id start returned.") from None
        upload = DirectUpload.objects.filter(pk=upload_id, member=member).first()
        if upload is None:
            raise ApiError(
                404,
                "no_such_upload",
                _("This upload is not in progress (completed, cancelled or expired)."),
            )
        upload.member = member
        return upload


def _connected_member(request: HttpRequest) -> OpenHumansMember:
    user: Any = request.user
    member = OpenHumansMember.objects.filter(user=user).first() if user.is_authenticated else None
    if member is None or member.oh_deauth:
        raise ApiError(
            403, "not_connected", _("Log in with Open Humans to upload files."), login_required=True
        )
    return member


class StartUpload(_MemberJSONView):
    """Step 1: check the file's name, size and metadata; answer a signed URL to PUT it to.

    Body: ``{"filename", "size", "description", "tags"}``. Answer 201 ``{"upload_id",
    "url"}``; 400 for bad fields, 413 above OPENHUMANS_MAX_UPLOAD_SIZE, 429 with too many
    uploads open. Override :meth:`metadata` to store more with the file, ``form_class`` to
    check the fields otherwise.
    """

    form_class: type[StartForm] = StartForm

    def metadata(self, form: StartForm) -> dict[str, Any]:
        """The Open Humans metadata for a valid form."""
        return {"description": form.cleaned_data["description"], "tags": form.cleaned_data["tags"]}

    def handle(
        self, request: HttpRequest, member: OpenHumansMember, data: dict[str, Any]
    ) -> JsonResponse:
        form = self.form_class(data)
        if not form.is_valid():
            if form.has_error("size", code="too_large"):
                raise ApiError(
                    413,
                    "too_large",
                    str(form.errors["size"][0]),
                    limit=form.size_limit(),
                )
            field, errors = next(iter(form.errors.items()))
            raise ApiError(400, "invalid", f"{field}: {errors[0]}", field=field)
        self.close_stale(member)
        if DirectUpload.objects.filter(member=member).count() >= MAX_OPEN_UPLOADS:
            raise ApiError(
                429, "too_many_uploads", _("Too many uploads in progress; finish or cancel one.")
            )
        filename, metadata = form.cleaned_data["filename"], self.metadata(form)
        target = _call(member, lambda api: api.start_upload(filename, metadata))
        upload = DirectUpload.objects.create(
            member=member, file_id=target.id, filename=filename, size=form.cleaned_data["size"]
        )
        logger.info("member %s started uploading %r as file %s", member.oh_id, filename, target.id)
        return JsonResponse({"upload_id": str(upload.upload_id), "url": target.url}, status=201)

    @staticmethod
    def close_stale(member: OpenHumansMember) -> None:
        """Clean up this member's abandoned uploads before counting their open ones."""
        for upload in DirectUpload.objects.filter(
            member=member, created__lt=timezone.now() - STALE_AFTER
        ):
            upload.member = member
            clean_up(upload)


class CompleteUpload(_MemberJSONView):
    """Step 3: tell Open Humans the bytes are in storage; the file then appears in lists.

    Body: ``{"upload_id"}``. Answer 200 ``{"file_id", "filename", "size"}``; 409
    ``not_in_storage`` when the bytes never arrived (the upload stays open to PUT again);
    400 ``size_mismatch`` (the file is deleted) when storage holds another size than was
    announced; 404 for an upload that is not open.
    """

    def handle(
        self, request: HttpRequest, member: OpenHumansMember, data: dict[str, Any]
    ) -> JsonResponse:
        upload = self.upload_of(member, data)
        try:
            size = _call(member, lambda api: api.complete_upload(upload.file_id))
        except BadRequestError as err:
            if not _not_in_storage(err):
                raise
            raise ApiError(
                409,
                "not_in_storage",
                _("%(name)s never arrived in storage. Upload it again.")
                % {"name": upload.filename},
            ) from None
        if size != upload.size:
            # The signed URL does not bind the length (spec §2.6): the size the page
            # announced, and OPENHUMANS_MAX_UPLOAD_SIZE, are enforced here.
            _call(member, lambda api: api.delete_files(file_id=upload.file_id))
            DirectUpload.objects.filter(pk=upload.pk).delete()
            raise ApiError(
                400,
                "size_mismatch",
                _(
                    "Storage received %(size)s bytes, not the %(announced)s announced; "
                    "the file was removed."
                )
                % {"size": size, "announced": upload.size},
            )
        DirectUpload.objects.filter(pk=upload.pk).delete()
        logger.info("member %s uploaded file %s", member.oh_id, upload.file_id)
        return JsonResponse({"file_id": upload.file_id, "filename": upload.filename, "size": size})


class CancelUpload(_MemberJSONView):
    """Give up an upload: whatever arrived in storage is deleted. Answer 200 ``{"cancelled"}``.

    Also accepts a form post (``upload_id``, ``csrfmiddlewaretoken``), as
    ``navigator.sendBeacon`` sends when a tab closes mid-upload.
    """

    def handle(
        self, request: HttpRequest, member: OpenHumansMember, data: dict[str, Any]
    ) -> JsonResponse:
        upload = self.upload_of(member, data)
        removed = _complete_or_remove(upload)
        DirectUpload.objects.filter(pk=upload.pk).delete()
        return JsonResponse({"cancelled": True, "removed_file": removed})
