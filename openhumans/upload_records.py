"""DirectUpload: a browser upload started on Open Humans and not yet completed (issue 13).

Importable from ``openhumans.models``; used by :mod:`openhumans.direct_upload`.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class DirectUpload(models.Model):
    """A browser upload started on Open Humans and not yet completed or cleaned up.

    Kept so that an upload nobody completes (tab closed, PUT failed) is found and cleaned up
    (``openhumans.direct_upload.clean_up``), and so that a browser can complete only the
    uploads its member started here. The row is deleted once the upload is completed.
    """

    upload_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    member = models.ForeignKey(
        "openhumans.OpenHumansMember", on_delete=models.CASCADE, related_name="direct_uploads"
    )
    file_id = models.BigIntegerField()
    filename = models.CharField(max_length=255)
    size = models.BigIntegerField()
    created = models.DateTimeField(default=timezone.now, editable=False, db_index=True)

    class Meta:
        verbose_name = "direct upload in progress"
        ordering = ["created"]

    def __str__(self) -> str:
        return f"<DirectUpload {self.filename!r} (file {self.file_id}, member {self.member_id})>"
