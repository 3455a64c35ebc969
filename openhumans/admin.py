"""Admin for members: tokens are never shown; actions refresh tokens, deauthorize, message."""

from __future__ import annotations

import time
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from .conf import get_setting
from .exceptions import OpenHumansError
from .models import OpenHumansMember, PendingDeauthNotice
from .outbox import OutboxEntry, deliver

TOKEN_FIELDS = ("access_token", "refresh_token")


def _touches_a_token(lookup: str) -> bool:
    """Whether a changelist lookup (``refresh_token__regex``...) reads a token field."""
    return any(part in TOKEN_FIELDS for part in lookup.split("__"))


class _NoTokenLookups:
    """Refuse changelist filters on token fields (a 400), whoever asks; never load tokens.

    Django allows any lookup on a model's own fields by URL: with ``?refresh_token__regex=^a``
    a staff member with only the view permission rebuilt a token character by character.
    The token fields are deferred too: never decrypted for a page, and a saved change form
    writes only the fields it loaded, so it cannot put back a pair a refresh just replaced.
    """

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).defer(*TOKEN_FIELDS)  # type: ignore[misc]

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        if _touches_a_token(lookup):
            return False
        return super().lookup_allowed(lookup, value, request)  # type: ignore[misc]


class AccessEndedFilter(admin.BooleanFieldListFilter):
    """The ``oh_deauth`` filter, titled for people (same ``oh_deauth__exact`` parameter)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.title = gettext("Open Humans access ended")


class MessageForm(forms.Form):
    """The message the "message selected members" action sends."""

    subject = forms.CharField(label=_("Subject"), max_length=200)
    message = forms.CharField(label=_("Message"), widget=forms.Textarea(attrs={"rows": 8}))


@admin.register(OpenHumansMember)
class OpenHumansMemberAdmin(_NoTokenLookups, admin.ModelAdmin):
    """Members, without their tokens."""

    list_display = (
        "member_id",
        "oh_username",
        "user",
        "token_expires",
        "access_ended",
        "needs_reauthorization",
        "updated",
    )
    list_filter = (("oh_deauth", AccessEndedFilter), "needs_reauthorization")
    # "public" is unused (kept for 0.2.0's schema); the deauthorized flag is read-only:
    # only Open Humans (the webhook, a refused refresh) or the deauthorize action set it.
    exclude = (*TOKEN_FIELDS, "oh_id", "oh_deauth", "public", "refresh_lease")
    readonly_fields = (
        "member_id",
        "oh_username",
        "access_ended",
        "needs_reauthorization",
        "file_count",
        "token_expires",
        "authorized_at",
        "created",
        "updated",
    )
    raw_id_fields = ("user",)
    actions = ("refresh_tokens", "deauthorize", "message_members")

    @admin.display(description=_("Open Humans member ID"), ordering="oh_id")
    def member_id(self, member: OpenHumansMember) -> str:
        return member.oh_id

    @admin.display(description=_("access ended"), boolean=True, ordering="oh_deauth")
    def access_ended(self, member: OpenHumansMember) -> bool:
        return member.oh_deauth

    @admin.display(description=_("files on Open Humans"))
    def file_count(self, member: OpenHumansMember) -> str:
        """Asked of Open Humans only here, on the member's own page (never in the list)."""
        if member.pk is None or member.oh_deauth:
            return "—"
        try:
            return str(len(member.list_files()))
        except OpenHumansError as err:
            return gettext("unknown: Open Humans did not answer (%(error)s)") % {
                "error": type(err).__name__
            }

    def get_search_fields(self, request: HttpRequest) -> tuple[str, ...]:
        return ("oh_id", "oh_username", f"user__{get_user_model().USERNAME_FIELD}")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # members come from an OAuth2 login, with tokens

    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Any:
        # oh_id is a text primary key: a NUL in the URL is a DataError on PostgreSQL (a
        # 500), so anything but printable ASCII is simply "no such member".
        if not (object_id.isascii() and object_id.isprintable()):
            return None
        return super().get_object(request, object_id, from_field)

    #: Seconds an action may spend on Open Humans before it stops starting calls: gunicorn
    #: kills a worker at 30 s by default, and one killed during a refresh loses the new pair.
    action_time_budget: float = 25.0

    def _each(self, request: HttpRequest, queryset: QuerySet[Any], verb: str, method: str) -> None:
        done = 0
        members = list(queryset)
        started = time.monotonic()
        # A call may take its whole deadline: start one only if that still fits the budget.
        worst = max(get_setting("OPENHUMANS_TIMEOUT"), get_setting("OPENHUMANS_TOKEN_TIMEOUT"))
        for index, member in enumerate(members):
            if time.monotonic() - started + worst > self.action_time_budget:
                self.message_user(
                    request,
                    f"Stopped to stay within the request's time: {len(members) - index} "
                    f"member(s) not done yet; run the action again for them.",
                    level=messages.WARNING,
                )
                break
            try:
                getattr(member, method)()
            except OpenHumansError as err:
                self.message_user(
                    request,
                    gettext("%(member)s: could not %(verb)s: %(error)s")
                    % {"member": member, "verb": verb, "error": err},
                    level=messages.ERROR,
                )
            else:
                done += 1
        if done:
            self.message_user(
                request,
                ngettext("%(verb)s: %(count)d member.", "%(verb)s: %(count)d members.", done)
                % {"verb": verb.capitalize(), "count": done},
            )

    @admin.action(description=_("Message the selected members on Open Humans"))
    def message_members(self, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        """Ask for a subject and message (an intermediate page), then send it to each."""
        form = MessageForm(request.POST if "send" in request.POST else None)
        if not form.is_valid():
            context = {
                **self.admin_site.each_context(request),
                "title": gettext("Message the selected members"),
                "opts": self.model._meta,
                "form": form,
                "members": queryset,
                "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "openhumans/admin/message_members.html", context)
        sent = 0
        for member in queryset:
            if member.oh_deauth:
                self.message_user(
                    request,
                    gettext("%(member)s: not sent, their Open Humans access ended.")
                    % {"member": member},
                    level=messages.WARNING,
                )
                continue
            try:
                member.message(form.cleaned_data["subject"], form.cleaned_data["message"])
            except OpenHumansError as err:
                self.message_user(
                    request,
                    gettext("%(member)s: could not send: %(error)s")
                    % {"member": member, "error": err},
                    level=messages.ERROR,
                )
            else:
                sent += 1
        if sent:
            self.message_user(
                request,
                ngettext(
                    "Message sent to %(count)d member.", "Message sent to %(count)d members.", sent
                )
                % {"count": sent},
            )
        return None

    @admin.action(description=_("Refresh tokens of the selected members"))
    def refresh_tokens(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._each(request, queryset, gettext("refresh tokens"), "refresh_tokens")

    @admin.action(description=_("Deauthorize the selected members on Open Humans"))
    def deauthorize(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._each(request, queryset, gettext("deauthorize"), "deauth")


@admin.register(PendingDeauthNotice)
class PendingDeauthNoticeAdmin(_NoTokenLookups, admin.ModelAdmin):
    """Deauthorization notices still owed to Open Humans (outbox entries), without tokens."""

    list_display = (
        "project_member_id",
        "created",
        "status",
        "attempts",
        "next_attempt",
        "last_error",
    )
    list_filter = ("status",)
    search_fields = ("project_member_id",)
    fields = readonly_fields = (
        "project_member_id",
        "created",
        "status",
        "attempts",
        "next_attempt",
        "last_error",
    )
    actions = ("retry",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description=_("Send the selected notices now"))
    def retry(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        sent = sum(1 for notice in queryset if notice.send())
        self.message_user(
            request,
            ngettext(
                "Sent %(sent)d of %(count)d notice.",
                "Sent %(sent)d of %(count)d notices.",
                len(queryset),
            )
            % {"sent": sent, "count": len(queryset)},
        )


@admin.register(OutboxEntry)
class OutboxEntryAdmin(_NoTokenLookups, admin.ModelAdmin):
    """What is owed to Open Humans (uploads, messages, deletions, deauthorization notices):
    pending, delivered or given up; never the files' bytes or the members' tokens."""

    list_display = (
        "id",
        "kind",
        "project_member_id",
        "status",
        "attempts",
        "next_attempt",
        "created",
        "delivered",
        "last_error",
    )
    list_filter = ("status", "kind")
    search_fields = ("project_member_id",)
    # A member's data and tokens: not for the admin page.
    exclude = ("content", *TOKEN_FIELDS, "token_expires")
    readonly_fields = (
        "kind",
        "project_member_id",
        "payload",
        "status",
        "attempts",
        "next_attempt",
        "claimed_until",
        "last_error",
        "result",
        "created",
        "delivered",
    )
    actions = ("deliver_now",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description=_("Deliver the selected entries now (given-up ones too)"))
    def deliver_now(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        from django.utils import timezone

        ids = list(queryset.exclude(status=OutboxEntry.DELIVERED).values_list("pk", flat=True))
        OutboxEntry.objects.filter(
            pk__in=ids, status__in=[OutboxEntry.PENDING, OutboxEntry.FAILED]
        ).update(status=OutboxEntry.PENDING, next_attempt=timezone.now(), attempts=0)
        done = sum(1 for pk in ids if deliver(pk) == OutboxEntry.DELIVERED)
        self.message_user(
            request,
            ngettext(
                "Delivered %(done)d of %(count)d entry.",
                "Delivered %(done)d of %(count)d entries.",
                len(ids),
            )
            % {"done": done, "count": len(ids)},
        )
