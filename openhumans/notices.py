"""PendingDeauthNotice: the remove-members calls owed to Open Humans, in the outbox.

The deletion policy (:mod:`openhumans.webhooks`) queues one, in the deleting transaction,
for each member deleted here (:func:`openhumans.outbox.queue_deauth`); the outbox delivers
it after the commit (a task, or ``manage.py openhumans_deliver``), retries it with backoff,
and ``manage.py openhumans_retry_deauth`` tries every one still owed, given-up ones too.
:class:`PendingDeauthNotice` is the outbox's deauthorization entries not delivered yet
(importable from ``openhumans.models``); :func:`remove_member` is how one is delivered.
"""

from __future__ import annotations

import logging

from django.db import models
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from .db import compare_and_update
from .exceptions import BadRequestError, InvalidGrantError, InvalidTokenError, OpenHumansError
from .outbox import OutboxEntry, deliver
from .tokens import REFRESH_MARGIN, client_for, master_token, refresh_pair, stored_time

__all__ = ["PendingDeauthNotice", "remove_member"]

logger = logging.getLogger("openhumans.models")


class _Owed(models.Manager["PendingDeauthNotice"]):
    def get_queryset(self) -> models.QuerySet[PendingDeauthNotice]:
        return (
            super()
            .get_queryset()
            .filter(kind=OutboxEntry.DEAUTH)
            .exclude(status=OutboxEntry.DELIVERED)
        )


class PendingDeauthNotice(OutboxEntry):
    """A remove-members call owed to Open Humans for a member deleted here (DEAUTH_ON_DELETE).

    An outbox entry, kept until Open Humans accepted it, so an outage never loses it; the
    tokens are the deleted member's (needed to call remove-members), encrypted and never
    shown. A notice that cannot be delivered (the member's tokens refused and no master
    token, or too many failed attempts) is kept too, given up (``gave_up``), for
    ``openhumans_retry_deauth`` or a person to settle.
    """

    objects = _Owed()  # type: ignore[misc]

    class Meta:
        proxy = True
        verbose_name = "pending deauthorization notice"

    def __str__(self) -> str:
        return f"<PendingDeauthNotice (project_member_id='{self.project_member_id}')>"

    def __repr__(self) -> str:
        return str(self)

    def save(self, *args: object, **kwargs: object) -> None:
        self.kind = OutboxEntry.DEAUTH
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    @property
    def gave_up(self) -> bool:
        """Whether delivery was given up (the last error says why); retried on demand only."""
        return self.status == OutboxEntry.FAILED

    def send(self) -> bool:
        """Try to deliver the notice now, even a given-up one; True once Open Humans has it.

        Never raises an OpenHumansError: a failure is recorded on the notice (its attempts,
        last error and status are updated on this instance too). Another process may send
        the same notice at once; it is never lost or sent twice for that.
        """
        type(self).objects.filter(
            pk=self.pk, status__in=[OutboxEntry.PENDING, OutboxEntry.FAILED]
        ).update(status=OutboxEntry.PENDING, next_attempt=timezone.now())
        status = deliver(self.pk)
        row = OutboxEntry.objects.filter(pk=self.pk).values("status", "attempts", "last_error")
        for name, value in (row.first() or {}).items():
            setattr(self, name, value)
        return status == OutboxEntry.DELIVERED

    @sensitive_variables()  # tokens in every frame below: never in error reports
    def _remove_member(self) -> bool:
        """Call remove-members; True once Open Humans has (or had) removed the member."""
        token: str | None = None
        for _attempt in range(2):
            try:
                token = self._current_token(stale=token)
            except (InvalidGrantError, _NoPair):
                break  # the refresh token is dead: only the master token can still do it
            try:
                client_for(token).remove_members()
            except InvalidTokenError:
                continue  # refreshed elsewhere since we read it, or dead: refresh once
            return True
        return self._remove_as_project()

    @sensitive_variables()
    def _current_token(self, stale: str | None) -> str:
        """The notice's live access token, from its row; refreshed when due or ``stale``.

        No lock is held across the refresh: of two senders refreshing one pair, Open Humans
        accepts one; the other finds the winner's pair in the row and uses it.
        """
        row = type(self).objects.filter(pk=self.pk).first()
        if row is None:
            raise _NoticeGone(f"deauthorization notice {self.pk} no longer exists")
        access, old, expires = row.access_token, row.refresh_token, row.token_expires
        if access is None or old is None or expires is None:
            raise _NoPair
        self.access_token, self.refresh_token, self.token_expires = access, old, expires
        rotated_elsewhere = stale is not None and access != stale
        due = expires - REFRESH_MARGIN < timezone.now()
        if rotated_elsewhere or not (due or stale is not None):
            return access
        try:
            tokens = refresh_pair(old)
        except InvalidGrantError:
            again = type(self).objects.filter(pk=self.pk).first()
            if again is None:
                raise _NoticeGone(f"deauthorization notice {self.pk} no longer exists") from None
            if again.refresh_token == old or again.access_token is None:
                raise
            self.access_token, self.refresh_token = again.access_token, again.refresh_token
            return again.access_token  # another sender rotated it first
        self.access_token, self.refresh_token = tokens.access_token, tokens.refresh_token
        self.token_expires = stored_time(tokens.expires_at)
        # Stored at once, before it is used: the old refresh token is dead (spec §1.4).
        compare_and_update(
            type(self),
            self.pk,
            "refresh_token",
            old,
            access_token=self.access_token,
            refresh_token=self.refresh_token,
            token_expires=self.token_expires,
        )
        return tokens.access_token

    @sensitive_variables()  # tokens in every frame below: never in error reports
    def _remove_as_project(self) -> bool:
        """remove-members with the master token; False without one."""
        master = master_token()
        if master is None:
            return False
        try:
            client_for(master).remove_members([self.project_member_id])
        except BadRequestError:
            # spec §2.4/§2.5: an id that is not an active member is refused: already gone.
            logger.info("member %s already gone from Open Humans", self.project_member_id)
        return True


@sensitive_variables()  # tokens in every frame below: never in error reports
def remove_member(notice_id: int) -> bool:
    """Deliver notice ``notice_id``: remove-members for its member; True once done.

    A 401 is retried once after a refresh, then with OPENHUMANS_MASTER_TOKEN when set.
    Raises an OpenHumansError when it could not be done: transient ones are retried by the
    outbox; :class:`UndeliverableNoticeError` when nothing can deliver it.
    """
    notice = PendingDeauthNotice.objects.filter(pk=notice_id).first()
    if notice is None:
        raise _NoticeGone(f"deauthorization notice {notice_id} no longer exists")
    if notice._remove_member():
        logger.info("told Open Humans that member %s left", notice.project_member_id)
        return True
    logger.error(
        "deauth notice for member %s cannot be delivered with the member's tokens; "
        "kept (given up): set OPENHUMANS_MASTER_TOKEN or remove them on Open Humans",
        notice.project_member_id,
    )
    raise UndeliverableNoticeError(
        "Open Humans refused the member's tokens and no OPENHUMANS_MASTER_TOKEN is set: set "
        "it, or remove the member on Open Humans by hand and delete this notice."
    )


class UndeliverableNoticeError(OpenHumansError):
    """The member's tokens were refused and no master token is set: nothing can deliver it."""


class _NoPair(Exception):
    """The notice holds no token pair (only the master token can deliver it)."""


class _NoticeGone(OpenHumansError):
    """The notice row was deleted meanwhile (by a person, in the admin)."""
