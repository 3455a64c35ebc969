"""The file methods of :class:`~openhumans.models.OpenHumansMember`, sync and async.

A mixin so that ``models.py`` keeps the member's fields, tokens and lifecycle; each method is
a thin delegation to :mod:`openhumans.files`, which does the work with a fresh access token
(``self._call`` / :func:`openhumans.files.acall`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, cast

from asgiref.sync import sync_to_async

from . import client as oh_client
from . import files
from .client import check_file_selector, check_message_args
from .exceptions import InvalidArgumentError

if TYPE_CHECKING:
    from .models import OpenHumansMember

__all__ = ["MemberFilesMixin", "file_selector"]


def file_selector(file_id: Any, file_basename: Any) -> dict[str, Any]:
    """The delete selector for ``delete_single_file``'s arguments; InvalidArgumentError if bad.

    Exactly one of them; a basename deletes every file of that name, an id must be an integer.
    """
    if (file_id is None or file_id == "") == (not file_basename):
        raise InvalidArgumentError("file_id", "specify exactly one of file_id or file_basename")
    if file_basename:
        return check_file_selector(file_basename=file_basename)
    try:
        number = int(str(file_id))
    except ValueError:
        raise InvalidArgumentError(
            "file_id",
            "should be an integer (did you mean file_basename=...?)",
        ) from None
    return check_file_selector(file_id=number)


def _member(mixin: MemberFilesMixin) -> OpenHumansMember:
    # The mixin is only ever a base of OpenHumansMember.
    return cast("OpenHumansMember", mixin)


class MemberFilesMixin:
    """Reading, writing and listing a member's files; the ``a``-methods are coroutines."""

    def list_files(
        self,
        *,
        source: str | None = None,
        basename: str | None = None,
        tag: str | None = None,
        datatype: int | str | None = None,
    ) -> list[dict[str, Any]]:
        """List files.

        Keyword filters narrow the list: ``source`` (``"direct-sharing-<id>"``) and
        ``basename`` match exactly, ``tag`` is one of the metadata tags, ``datatype`` a
        datatype id. Raises InvalidArgumentError for a filter of the wrong type.
        """
        return files.list_files(
            _member(self), source=source, basename=basename, tag=tag, datatype=datatype
        )

    def latest_file(self, **filters: Any) -> dict[str, Any] | None:
        """Return the newest file matching the filters of :meth:`list_files`, or None."""
        return files.latest_file(_member(self), **filters)

    def download(
        self,
        file: Any,
        destination: str | os.PathLike[str] | IO[bytes],
        *,
        max_bytes: int | None = None,
    ) -> int:
        """Stream a file (an item of :meth:`list_files`, or its id) to a path or binary file.

        Constant memory; a path is written whole or not at all; no token goes to the storage
        host; an expired link is retried once from a fresh listing. Returns the bytes
        written. Raises UnknownFileError, FileTooLargeError, DownloadExpiredError,
        StorageError, and the errors of the client.
        """
        return files.download(_member(self), file, destination, max_bytes=max_bytes)

    def read_bytes(self, file: Any, *, max_bytes: Any = files.DEFAULT) -> bytes:
        """Return a file's contents; at most ``max_bytes`` (OPENHUMANS_MAX_READ_SIZE)."""
        return files.read_bytes(_member(self), file, max_bytes=max_bytes)

    def read_text(
        self,
        file: Any,
        *,
        encoding: str = "utf-8",
        max_bytes: Any = files.DEFAULT,
    ) -> str:
        """Return a file's contents decoded (UnicodeDecodeError if not ``encoding``)."""
        return files.read_text(_member(self), file, encoding=encoding, max_bytes=max_bytes)

    def read_json(self, file: Any, *, max_bytes: Any = files.DEFAULT) -> Any:
        """Return a file's contents parsed as JSON (ValueError if they are not JSON)."""
        return files.read_json(_member(self), file, max_bytes=max_bytes)

    def upload(
        self,
        stream: Any,
        filename: str,
        metadata: dict[str, Any],
        file_identifier: str | None = None,
        *,
        datatypes: Sequence[str | int] | None = None,
        max_bytes: int | None = None,
    ) -> Any:
        """Upload file to Open Humans.

        ``stream`` is a text or binary file object, bytes, or a path (``str`` or
        ``os.PathLike``); ``metadata`` needs ``description`` and ``tags``.
        ``datatypes`` are datatype ids or names; above ``max_bytes`` FileTooLargeError is
        raised before any request. ``file_identifier`` only names the file in log lines.
        Returns the client's UploadResult.
        """
        return files.upload(
            _member(self),
            stream,
            filename,
            metadata,
            file_identifier,
            datatypes=datatypes,
            max_bytes=max_bytes,
        )

    def upload_json(
        self,
        obj: Any,
        filename: str,
        metadata: Mapping[str, Any],
        *,
        datatypes: Sequence[str | int] | None = None,
    ) -> Any:
        """Upload ``obj`` serialised as JSON (no temporary file); InvalidArgumentError if not."""
        return files.upload_json(_member(self), obj, filename, metadata, datatypes=datatypes)

    def replace_file(
        self,
        source: Any,
        filename: str,
        metadata: Mapping[str, Any],
        *,
        match: str = "basename",
        datatypes: Sequence[str | int] | None = None,
        max_bytes: int | None = None,
    ) -> oh_client.Replacement:
        """Upload a file, then delete this project's files it supersedes; return both.

        Superseded: the files named ``filename`` (``match="basename"``), or those tagged
        ``match`` (the new metadata must carry the tag). When the upload fails nothing is
        deleted. Returns ``(file, deleted_ids)``.
        """
        return files.replace_file(
            _member(self),
            source,
            filename,
            metadata,
            match=match,
            datatypes=datatypes,
            max_bytes=max_bytes,
        )

    # -- the same, as coroutines for async views and tasks -----------------------------------

    async def alist_files(self, **filters: Any) -> list[dict[str, Any]]:
        """:meth:`list_files`, awaitable (network on the event loop, DB in a thread)."""
        return await files.alist_files(_member(self), **filters)

    async def alatest_file(self, **filters: Any) -> dict[str, Any] | None:
        """:meth:`latest_file`, awaitable."""
        return await files.alatest_file(_member(self), **filters)

    async def adownload(
        self,
        file: Any,
        destination: str | os.PathLike[str] | IO[bytes],
        *,
        max_bytes: int | None = None,
    ) -> int:
        """:meth:`download`, awaitable."""
        return await files.adownload(_member(self), file, destination, max_bytes=max_bytes)

    async def aread_bytes(self, file: Any, *, max_bytes: Any = files.DEFAULT) -> bytes:
        """:meth:`read_bytes`, awaitable."""
        return await files.aread_bytes(_member(self), file, max_bytes=max_bytes)

    async def aread_text(
        self,
        file: Any,
        *,
        encoding: str = "utf-8",
        max_bytes: Any = files.DEFAULT,
    ) -> str:
        """:meth:`read_text`, awaitable."""
        return await files.aread_text(_member(self), file, encoding=encoding, max_bytes=max_bytes)

    async def aread_json(self, file: Any, *, max_bytes: Any = files.DEFAULT) -> Any:
        """:meth:`read_json`, awaitable."""
        return await files.aread_json(_member(self), file, max_bytes=max_bytes)

    async def aupload(
        self,
        stream: Any,
        filename: str,
        metadata: dict[str, Any],
        file_identifier: str | None = None,
        *,
        datatypes: Sequence[str | int] | None = None,
        max_bytes: int | None = None,
    ) -> Any:
        """:meth:`upload`, awaitable."""
        return await files.aupload(
            _member(self),
            stream,
            filename,
            metadata,
            file_identifier,
            datatypes=datatypes,
            max_bytes=max_bytes,
        )

    async def aupload_json(
        self,
        obj: Any,
        filename: str,
        metadata: Mapping[str, Any],
        *,
        datatypes: Sequence[str | int] | None = None,
    ) -> Any:
        """:meth:`upload_json`, awaitable."""
        return await files.aupload_json(_member(self), obj, filename, metadata, datatypes=datatypes)

    async def areplace_file(
        self,
        source: Any,
        filename: str,
        metadata: Mapping[str, Any],
        *,
        match: str = "basename",
        datatypes: Sequence[str | int] | None = None,
        max_bytes: int | None = None,
    ) -> oh_client.Replacement:
        """:meth:`replace_file`, awaitable."""
        return await files.areplace_file(
            _member(self),
            source,
            filename,
            metadata,
            match=match,
            datatypes=datatypes,
            max_bytes=max_bytes,
        )

    async def aget_access_token(self) -> str:
        """:meth:`~openhumans.models.OpenHumansMember.get_access_token`, awaitable."""
        return await sync_to_async(_member(self).get_access_token)()

    async def adelete_single_file(
        self,
        file_id: int | str | None = None,
        file_basename: str | None = None,
    ) -> list[int]:
        """:meth:`~openhumans.models.OpenHumansMember.delete_single_file`, awaitable."""
        selector = file_selector(file_id, file_basename)
        return await files.acall(_member(self), lambda api: api.delete_files(**selector))

    async def adelete_all_files(self) -> list[int]:
        """:meth:`~openhumans.models.OpenHumansMember.delete_all_files`, awaitable."""
        return await files.acall(_member(self), lambda api: api.delete_files(all_files=True))

    async def amessage(self, subject: str, message: str) -> None:
        """:meth:`~openhumans.models.OpenHumansMember.message`, awaitable."""
        check_message_args(subject, message)
        await files.acall(_member(self), lambda api: api.message(subject, message))
