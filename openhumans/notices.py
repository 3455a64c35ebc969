"""PendingDeauthNotice: a remove-members call owed to Open Humans, kept until it is accepted.

Written by the deletion policy (:mod:`openhumans.webhooks`), sent after the deleting
transaction commits or by ``manage.py openhumans_retry_deauth``; importable from
``openhumans.models`` as documented.
"""

from __future__ import annotations

import logging

from django.db import models
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from .db import compare_and_update
from .exceptions import BadRequestError, InvalidGrantError, InvalidTokenError, OpenHumansError
from .fields import EncryptedTokenField
from .tokens import REFRESH_MARGIN, client_for, master_token, refresh_pair, stored_time

logger = logging.getLogger("openhumans.models")


class PendingDeauthNotice(models.Model):
    """A remove-members call owed to Open Humans for a member deleted here (DEAUTH_ON_DELETE).

    Kept until Open Humans accepted it, so an outage never loses it; the tokens are the
    deleted member's (needed to call remove-members) and are never shown. A notice that can
    no longer be delivered with the member's tokens and no master token is kept too, marked
    ``gave_up``, for a person to settle.
    """

    project_member_id = models.CharField(max_length=16, db_index=True)
    access_token = EncryptedTokenField()
    refresh_token = EncryptedTokenField()
    token_expires = models.DateTimeField()
    created = models.DateTimeField(default=timezone.now, editable=False)
    attempts = models.PositiveIntegerField(default=0)
    last_attempt = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    gave_up = models.BooleanField(
        default=False,
        help_text="The member's tokens were refused and no OPENHUMANS_MASTER_TOKEN is set: "
        "remove the member on Open Humans by hand, then delete this notice.",
    )

    class Meta:
        verbose_name = "pending deauthorization notice"
        ordering = ["created"]

    def __str__(self) -> str:
        return f"<PendingDeauthNotice (project_member_id='{self.project_member_id}')>"

    def __repr__(self) -> str:
        return str(self)

    @sensitive_variables()  # tokens in every frame below: never in error reports
    def send(self) -> bool:
        """Tell Open Humans the member left; return True once done (the notice is deleted).

        Never raises an OpenHumansError: a failure is recorded on the notice for a retry. A
        401 is retried once after a refresh, then with OPENHUMANS_MASTER_TOKEN when set;
        if none works the notice is kept, marked ``gave_up``. Another process may send the
        same notice at once; it is never lost for that.
        """
        row = type(self).objects.filter(pk=self.pk)
        try:
            done = self._remove_member()
        except _NoticeGone:
            logger.info("deauth notice for member %s was sent elsewhere", self.project_member_id)
            return False
        except OpenHumansError as err:
            self._record(row, f"{type(err).__name__}: {err}", gave_up=False)
            logger.warning(
                "deauth notice for member %s failed (attempt %d); kept for a retry: %s",
                self.project_member_id,
                self.attempts,
                self.last_error,
            )
            return False
        if not done:
            self._record(
                row,
                "Open Humans refused the member's tokens and no OPENHUMANS_MASTER_TOKEN is set",
                gave_up=True,
            )
            logger.error(
                "deauth notice for member %s cannot be delivered with the member's tokens; "
                "kept (gave_up): set OPENHUMANS_MASTER_TOKEN or remove them on Open Humans",
                self.project_member_id,
            )
            return False
        logger.info("told Open Humans that member %s left", self.project_member_id)
        row.delete()
        return True

    def _record(self, row: models.QuerySet[PendingDeauthNotice], error: str, gave_up: bool) -> None:
        self.attempts += 1
        self.last_attempt = timezone.now()
        self.last_error = error[:1000]
        self.gave_up = gave_up
        row.update(
            attempts=self.attempts,
            last_attempt=self.last_attempt,
            last_error=self.last_error,
            gave_up=gave_up,
        )

    @sensitive_variables()  # tokens in every frame below: never in error reports
    def _remove_member(self) -> bool:
        """Call remove-members; True once Open Humans has (or had) removed the member."""
        token: str | None = None
        for _attempt in range(2):
            try:
                token = self._current_token(stale=token)
            except InvalidGrantError:
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
            raise _NoticeGone
        self.access_token, self.refresh_token = row.access_token, row.refresh_token
        self.token_expires = row.token_expires
        rotated_elsewhere = stale is not None and row.access_token != stale
        due = self.token_expires - REFRESH_MARGIN < timezone.now()
        if rotated_elsewhere or not (due or stale is not None):
            return self.access_token
        old = self.refresh_token
        try:
            tokens = refresh_pair(old)
        except InvalidGrantError:
            again = type(self).objects.filter(pk=self.pk).first()
            if again is None:
                raise _NoticeGone from None
            if again.refresh_token == old:
                raise
            self.access_token, self.refresh_token = again.access_token, again.refresh_token
            return self.access_token  # another sender rotated it first
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
        return self.access_token

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


class _NoticeGone(Exception):
    """The notice row was deleted by another sender."""
