"""OutboxEntry: a side effect owed to Open Humans, kept until delivered.

An upload, a message, a file deletion, or the deauthorization notice owed for a member
deleted here (``OPENHUMANS_DEAUTH_ON_DELETE``; shown by
:class:`openhumans.models.PendingDeauthNotice`). A transactional outbox:
:func:`queue_upload`, :func:`queue_message`, :func:`queue_delete` and :func:`queue_deauth`
write the entry in the caller's database transaction, so it exists exactly when the change
that caused it was committed. It is delivered after the commit (by a task when Django's
tasks framework is installed, otherwise inline), and ``manage.py openhumans_deliver``
delivers whatever is still pending (run it from cron). A transient failure (connection
error, 5xx, 429) is retried with exponential backoff and jitter; a permanent one (the member
left, a refused request) or too many attempts gives the entry up, with the error kept on it.

Delivery claims an entry before calling Open Humans (a conditional UPDATE), so two workers
never send the same entry; a claim left by a crashed worker expires after :data:`LEASE`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import DEFAULT_DB_ALIAS, models, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from .exceptions import (
    InvalidArgumentError,
    OpenHumansAPIResponseError,
    OpenHumansConnectionError,
    OpenHumansError,
    ServerError,
)
from .fields import EncryptedTokenField

__all__ = [
    "LEASE",
    "OutboxEntry",
    "deliver",
    "deliver_due",
    "is_transient",
    "queue_deauth",
    "queue_delete",
    "queue_message",
    "queue_upload",
]

logger = logging.getLogger(__name__)

#: How long a delivery may hold its claim before another worker may take the entry over.
LEASE = timedelta(minutes=10)
#: Attempts before an entry failing transiently is given up.
MAX_ATTEMPTS = 12
#: Base and cap of the backoff between attempts, in seconds.
BACKOFF = 5.0
BACKOFF_MAX = 3600.0


def is_transient(err: BaseException) -> bool:
    """Whether ``err`` may go away on its own: connection errors, 5xx and 429."""
    if isinstance(err, OpenHumansConnectionError | ServerError):
        return True
    return isinstance(err, OpenHumansAPIResponseError) and err.status_code == 429


def backoff_delay(attempt: int, base: float = BACKOFF, cap: float = BACKOFF_MAX) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): full jitter, capped."""
    return random.uniform(base / 2, min(cap, base * 2 ** (attempt - 1)))


class OutboxEntry(models.Model):
    """One side effect owed to Open Humans for a member: an upload, a message, a deletion of
    files, or a deauthorization notice (remove-members for a member deleted here)."""

    UPLOAD, MESSAGE, DELETE, DEAUTH = "upload", "message", "delete", "deauth"
    KINDS = [
        (UPLOAD, "upload"),
        (MESSAGE, "message"),
        (DELETE, "delete files"),
        (DEAUTH, "deauthorization notice"),
    ]
    PENDING, SENDING, DELIVERED, FAILED = "pending", "sending", "delivered", "failed"
    STATUSES = [
        (PENDING, "pending"),
        (SENDING, "sending"),
        (DELIVERED, "delivered"),
        (FAILED, "given up"),
    ]

    kind = models.CharField(max_length=16, choices=KINDS)
    project_member_id = models.CharField(max_length=16, db_index=True)
    #: What to send: filename/metadata/datatypes, subject/message, or the file selector.
    payload = models.JSONField(default=dict)
    #: The file's bytes, for an upload.
    content = models.BinaryField(null=True, blank=True, editable=False)
    status = models.CharField(max_length=16, choices=STATUSES, default=PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    result = models.JSONField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now, editable=False)
    delivered = models.DateTimeField(null=True, blank=True)
    #: A deauthorization notice's copy of the deleted member's pair (encrypted, never shown;
    #: wiped once delivered): remove-members is called with the member's own token.
    access_token = EncryptedTokenField(null=True, blank=True, editable=False)
    refresh_token = EncryptedTokenField(null=True, blank=True, editable=False)
    token_expires = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "outbox entry"
        verbose_name_plural = "outbox"
        ordering = ["created", "id"]
        indexes = [models.Index(fields=["status", "next_attempt"])]

    def __str__(self) -> str:
        return f"<OutboxEntry {self.pk} {self.kind} for {self.project_member_id}: {self.status}>"

    def __repr__(self) -> str:
        return str(self)


# -- queueing --------------------------------------------------------------------------------


def _member_id(member: Any) -> str:
    pmid = getattr(member, "oh_id", member)
    if not isinstance(pmid, str) or not pmid:
        raise InvalidArgumentError("member", "must be an OpenHumansMember or a project member id")
    return pmid


def _queue(
    kind: str,
    member: Any,
    payload: dict[str, Any],
    content: bytes | None = None,
    *,
    using: str = DEFAULT_DB_ALIAS,
    **fields: Any,
) -> OutboxEntry:
    entry = OutboxEntry.objects.using(using).create(
        kind=kind, project_member_id=_member_id(member), payload=payload, content=content, **fields
    )
    # Sent once the caller's transaction commits (at once outside one); never if it rolls back.
    transaction.on_commit(lambda: _dispatch(entry.pk), using=using, robust=True)
    return entry


def queue_upload(
    member: Any,
    content: bytes,
    filename: str,
    metadata: dict[str, Any],
    *,
    datatypes: list[str | int] | None = None,
) -> OutboxEntry:
    """Queue an upload of ``content`` for ``member`` (an OpenHumansMember or id); return it.

    Replaces any file of the same name once delivered (an upload is delete-then-upload, so a
    redelivery never leaves two). Raises InvalidArgumentError for bad arguments, before
    anything is written.
    """
    from .client import check_upload_args

    check_upload_args(filename, metadata, datatypes)
    if not isinstance(content, bytes):
        raise InvalidArgumentError("content", "must be bytes")
    payload = {"filename": filename, "metadata": metadata, "datatypes": datatypes}
    return _queue(OutboxEntry.UPLOAD, member, payload, content)


def queue_message(member: Any, subject: str, message: str) -> OutboxEntry:
    """Queue a message to ``member``; raises InvalidArgumentError for bad arguments."""
    from .client import check_message_args

    check_message_args(subject, message)
    return _queue(OutboxEntry.MESSAGE, member, {"subject": subject, "message": message})


def queue_delete(
    member: Any,
    *,
    file_id: int | None = None,
    file_basename: str | None = None,
    all_files: bool = False,
) -> OutboxEntry:
    """Queue the deletion of ``member``'s files by id, basename, or all of them."""
    from .client import check_file_selector

    selector = check_file_selector(file_id, file_basename, all_files)
    return _queue(OutboxEntry.DELETE, member, selector)


@sensitive_variables()  # tokens in every frame below: never in error reports
def queue_deauth(member: Any, *, using: str = DEFAULT_DB_ALIAS) -> OutboxEntry:
    """Queue the remove-members call owed for ``member``, being deleted here.

    ``member`` must be the member's current row, read under lock in the deleting
    transaction: its pair is copied (encrypted) so the notice can be sent after the row is
    gone, and a pair another request rotated meanwhile would be dead.
    """
    return _queue(
        OutboxEntry.DEAUTH,
        member,
        {},
        using=using,
        access_token=member.access_token,
        refresh_token=member.refresh_token,
        token_expires=member.token_expires,
    )


def _dispatch(entry_id: int) -> None:
    """Hand a committed entry to the task backend, or deliver it now if there is none."""
    try:
        from .jobs import deliver_outbox_entry
    except ImportError:  # no tasks framework installed: deliver inline, after the commit
        deliver(entry_id)
        return
    deliver_outbox_entry.enqueue(entry_id)


# -- delivery --------------------------------------------------------------------------------


def _claim(entry_id: int) -> OutboxEntry | None:
    """Take the entry for one delivery attempt, or None if it is not due or is taken."""
    now = timezone.now()
    due = Q(status=OutboxEntry.PENDING, next_attempt__lte=now) | Q(
        status=OutboxEntry.SENDING, claimed_until__lt=now
    )
    taken = OutboxEntry.objects.filter(due, pk=entry_id).update(
        status=OutboxEntry.SENDING, claimed_until=now + LEASE, attempts=F("attempts") + 1
    )
    return OutboxEntry.objects.filter(pk=entry_id).first() if taken else None


def _send(entry: OutboxEntry) -> Any:
    from .models import OpenHumansMember

    if entry.kind == OutboxEntry.DEAUTH:
        from .notices import remove_member

        return {"removed": remove_member(entry.pk)}

    member = OpenHumansMember.objects.filter(pk=entry.project_member_id).first()
    if member is None:
        from .exceptions import MemberDeauthorizedError

        raise MemberDeauthorizedError(f"Open Humans member {entry.project_member_id} is gone.")
    data = entry.payload
    if entry.kind == OutboxEntry.UPLOAD:
        # Delete-then-upload: an attempt whose answer was lost must not leave a duplicate.
        member.delete_single_file(file_basename=data["filename"])
        result = member.upload(bytes(entry.content or b""), data["filename"], data["metadata"])
        return {"id": result.id}
    if entry.kind == OutboxEntry.MESSAGE:
        member.message(data["subject"], data["message"])
        return None
    return {"deleted": member._call(lambda api: api.delete_files(**data))}


def deliver(
    entry_id: int, *, on_retry: Callable[[OutboxEntry, float], object] | None = None
) -> str:
    """Try to deliver one entry; return its status afterwards.

    Returns at once (with the status as it is) if the entry is not due or another worker
    holds it. Never raises an OpenHumansError: a transient failure puts the entry back as
    pending after a backoff (``on_retry(entry, delay)`` is then called, e.g. to schedule a
    task), a permanent one or the last attempt gives it up with the error recorded.
    """
    entry = _claim(entry_id)
    if entry is None:
        current = OutboxEntry.objects.filter(pk=entry_id).values_list("status", flat=True).first()
        return current or "missing"
    row = OutboxEntry.objects.filter(pk=entry.pk, status=OutboxEntry.SENDING)
    try:
        result = _send(entry)
    except OpenHumansError as err:
        error = f"{type(err).__name__}: {err}"[:2000]
        if is_transient(err) and entry.attempts < MAX_ATTEMPTS:
            delay = backoff_delay(entry.attempts)
            row.update(
                status=OutboxEntry.PENDING,
                next_attempt=timezone.now() + timedelta(seconds=delay),
                claimed_until=None,
                last_error=error,
            )
            logger.warning(
                "outbox entry %s (%s for member %s) failed, attempt %d; retrying in %.0f s: %s",
                entry.pk, entry.kind, entry.project_member_id, entry.attempts, delay, error,
            )  # fmt: skip
            if on_retry is not None:
                on_retry(entry, delay)
            return OutboxEntry.PENDING
        row.update(status=OutboxEntry.FAILED, claimed_until=None, last_error=error)
        logger.error(
            "outbox entry %s (%s for member %s) given up after %d attempt(s): %s",
            entry.pk, entry.kind, entry.project_member_id, entry.attempts, error,
        )  # fmt: skip
        return OutboxEntry.FAILED
    row.update(
        status=OutboxEntry.DELIVERED,
        claimed_until=None,
        delivered=timezone.now(),
        result=result,
        content=None,  # delivered: the bytes and the pair are no longer needed
        access_token=None,
        refresh_token=None,
        token_expires=None,
        last_error="",
    )
    logger.info(
        "outbox entry %s (%s for member %s) delivered",
        entry.pk,
        entry.kind,
        entry.project_member_id,
    )
    return OutboxEntry.DELIVERED


def due_entries() -> models.QuerySet[OutboxEntry]:
    """Entries due for an attempt now: pending ones past their backoff, and expired claims."""
    now = timezone.now()
    return OutboxEntry.objects.filter(
        Q(status=OutboxEntry.PENDING, next_attempt__lte=now)
        | Q(status=OutboxEntry.SENDING, claimed_until__lt=now)
    )


def deliver_due(*, now_too: bool = False) -> dict[str, int]:
    """Deliver every due entry once (``now_too``: also those still backing off); count outcomes."""
    entries = OutboxEntry.objects.filter(status=OutboxEntry.PENDING) if now_too else due_entries()
    if now_too:
        entries.update(next_attempt=timezone.now())
    counts = {OutboxEntry.DELIVERED: 0, OutboxEntry.PENDING: 0, OutboxEntry.FAILED: 0}
    for entry_id in list(entries.values_list("pk", flat=True)):
        status = deliver(entry_id)
        counts[status] = counts.get(status, 0) + 1
    return counts
