"""Refusing an oversized upload before it costs memory or disk.

Django's upload handlers write a file to a temporary file as it arrives and the form checks
its size only at the end: a 1 GiB body landed on disk for a 10 MiB limit. The upload view
refuses a request whose ``Content-Length`` is over the limit before reading any of it, and
:class:`SizeLimitUploadHandler`, first in the chain, stops reading a file part the moment it
passes the limit.
"""

from __future__ import annotations

from typing import Any

from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest

__all__ = ["FORM_OVERHEAD", "SizeLimitUploadHandler", "declared_length"]

#: Bytes allowed in a request beyond the file itself: the other fields (description, tags,
#: the CSRF token) and the multipart boundaries and part headers.
FORM_OVERHEAD = 64 * 1024


def declared_length(request: HttpRequest) -> int | None:
    """The request's ``Content-Length``, None if absent or not a number."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None


class SizeLimitUploadHandler(FileUploadHandler):
    """Stop reading the request once a file part passes ``limit`` bytes (``.exceeded``)."""

    def __init__(self, request: HttpRequest, limit: int) -> None:
        super().__init__(request)
        self.limit = limit
        self.exceeded = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        if start + len(raw_data) > self.limit:
            self.exceeded = True
            # connection_reset: Django does not read (and so does not store) the rest.
            raise StopUpload(connection_reset=True)
        return raw_data  # on to the next handler (memory or temporary file)

    def file_complete(self, file_size: int) -> Any:
        return None  # the next handler makes the file
