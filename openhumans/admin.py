"""Admin for members: tokens are never shown; actions refresh tokens and deauthorize."""

from __future__ import annotations

import time
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest

from .conf import get_setting
from .exceptions import OpenHumansError
from .models import OpenHumansMember, PendingDeauthNotice

TOKEN_FIELDS = ("access_token", "refresh_token")


def _touches_a_token(lookup: str) -> bool:
    """Whether a changelist lookup (``refresh_token__regex``...) reads a token field."""
    return any(part in TOKEN_FIELDS for part in lookup.split("__"))


class _NoTokenLookups:
    """Refuse changelist filters on token fields (a 400), whoever asks.

    Django allows any lookup on a model's own fields by URL: with ``?refresh_token__regex=^a``
    a staff member with only the view permission rebuilt a token character by character.
    """

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        if _touches_a_token(lookup):
            return False
        return super().lookup_allowed(lookup, value, request)  # type: ignore[misc]


@admin.register(OpenHumansMember)
class OpenHumansMemberAdmin(_NoTokenLookups, admin.ModelAdmin):
    """Members, without their tokens."""

    list_display = (
        "oh_id",
        "oh_username",
        "user",
        "token_expires",
        "oh_deauth",
        "needs_reauthorization",
        "public",
        "updated",
    )
    list_filter = ("oh_deauth", "needs_reauthorization", "public")
    exclude = TOKEN_FIELDS
    readonly_fields = (
        "oh_id",
        "oh_username",
        "token_expires",
        "authorized_at",
        "created",
        "updated",
    )
    raw_id_fields = ("user",)
    actions = ("refresh_tokens", "deauthorize")

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
                    request, f"{member}: could not {verb}: {err}", level=messages.ERROR
                )
            else:
                done += 1
        if done:
            self.message_user(request, f"{verb.capitalize()}: {done} member(s).")

    @admin.action(description="Refresh tokens of the selected members")
    def refresh_tokens(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._each(request, queryset, "refresh tokens", "refresh_tokens")

    @admin.action(description="Deauthorize the selected members on Open Humans")
    def deauthorize(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._each(request, queryset, "deauthorize", "deauth")


@admin.register(PendingDeauthNotice)
class PendingDeauthNoticeAdmin(_NoTokenLookups, admin.ModelAdmin):
    """Deauthorization notices still owed to Open Humans, without their tokens."""

    list_display = (
        "project_member_id",
        "created",
        "attempts",
        "last_attempt",
        "gave_up",
        "last_error",
    )
    list_filter = ("gave_up",)
    search_fields = ("project_member_id",)
    exclude = (*TOKEN_FIELDS, "token_expires")
    readonly_fields = (
        "project_member_id",
        "created",
        "attempts",
        "last_attempt",
        "gave_up",
        "last_error",
    )
    actions = ("retry",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Send the selected notices now")
    def retry(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        sent = sum(1 for notice in queryset if notice.send())
        self.message_user(request, f"Sent {sent} of {len(queryset)} notice(s).")
