"""PendingDeauthNotice: a remove-members call owed to Open Humans, kept until it is accepted.

Written by the deletion policy (:mod:`openhumans.webhooks`), sent after the deleting
transaction commits or by ``manage.py openhumans_retry_deauth``; importable from
``openhumans.models`` as documented.
"""

from __future__ import annotations

import logging

from django.db import models
from django.utils import timezone

from .exceptions import (
    InvalidGrantError,
    InvalidTokenError,
    MemberDeauthorizedError,
    OpenHumansError,
)
from .tokens import REFRESH_MARGIN, client_for, refresh_pair, stored_time

logger = logging.getLogger("openhumans.models")


class PendingDeauthNotice(models.Model):
    """A remove-members call owed to Open Humans for a member deleted here (DEAUTH_ON_DELETE).

    Kept until Open Humans accepted it, so an outage never loses it; the tokens are the
    deleted member's (needed to call remove-members) and are never shown.
    """

    project_member_id = models.CharField(max_length=16, db_index=True)
    access_token = models.TextField()
    refresh_token = models.TextField()
    token_expires = models.DateTimeField()
    created = models.DateTimeField(default=timezone.now, editable=False)
    attempts = models.PositiveIntegerField(default=0)
    last_attempt = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        verbose_name = "pending deauthorization notice"
        ordering = ["created"]

    def __str__(self) -> str:
        return f"<PendingDeauthNotice (project_member_id='{self.project_member_id}')>"

    def __repr__(self) -> str:
        return str(self)

    def send(self) -> bool:
        """Tell Open Humans the member left; return True once done (the notice is deleted).

        Never raises an OpenHumansError: a failure is recorded on the notice for a retry.
        Another process may send the same notice at once; it is never lost for that.
        """
        row = type(self).objects.filter(pk=self.pk)
        used = self.refresh_token
        try:
            token = self.access_token
            if self.token_expires - REFRESH_MARGIN < timezone.now():
                tokens = refresh_pair(self.refresh_token)
                # Keep the rotated pair at once: the old refresh token is dead (spec §1.4).
                self.access_token, self.refresh_token = tokens.access_token, tokens.refresh_token
                self.token_expires = stored_time(tokens.expires_at)
                used = self.refresh_token
                # update(), not save(): the row may be gone (sent by another process).
                row.update(
                    access_token=self.access_token,
                    refresh_token=self.refresh_token,
                    token_expires=self.token_expires,
                )
                token = tokens.access_token
            client_for(token).remove_members()
        except (InvalidGrantError, InvalidTokenError, MemberDeauthorizedError):
            # Dead tokens: the member already left Open Humans' side and nothing is owed,
            # unless another sender rotated this notice's pair meanwhile (which killed ours):
            # then the notice stays, with the live pair, for that sender or the next run.
            if not row.filter(refresh_token=used).delete()[0] and row.exists():
                logger.info(
                    "deauth notice for member %s is being sent elsewhere", self.project_member_id
                )
                return False
            logger.info("member %s already gone from Open Humans", self.project_member_id)
            return True
        except OpenHumansError as err:
            self.attempts += 1
            self.last_attempt = timezone.now()
            self.last_error = f"{type(err).__name__}: {err}"[:1000]
            row.update(
                attempts=self.attempts, last_attempt=self.last_attempt, last_error=self.last_error
            )
            logger.warning(
                "deauth notice for member %s failed (attempt %d); kept for a retry: %s",
                self.project_member_id,
                self.attempts,
                self.last_error,
            )
            return False
        logger.info("told Open Humans that member %s left", self.project_member_id)
        row.delete()
        return True
