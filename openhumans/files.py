"""A member's files in one call each: filters, downloads, reads, uploads and safe replaces.

The :class:`~openhumans.models.OpenHumansMember` methods of the same names delegate here.
Each runs the client's operation (:class:`openhumans.client.OpenHumansClient`) with a fresh
token and retries it once after a 401, which is safe: a 401 comes from the listing or the
first upload step, before any byte is written or stored.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, cast

from asgiref.sync import sync_to_async
from django.views.decorators.debug import sensitive_variables

from .client import (
    AsyncOpenHumansClient,
    OpenHumansClient,
    Replacement,
    UploadResult,
    check_download_args,
    check_filters,
    check_max_bytes,
    check_replace_match,
    check_stream,
    check_upload_args,
    file_id_of,
    json_bytes,
)
from .conf import get_setting
from .exceptions import InvalidTokenError, ReauthorizationRequiredError

if TYPE_CHECKING:
    from .models import OpenHumansMember

__all__ = [
    "DEFAULT",
    "adownload",
    "alatest_file",
    "alist_files",
    "aread_bytes",
    "aread_json",
    "aread_text",
    "areplace_file",
    "aupload",
    "aupload_json",
    "download",
    "latest_file",
    "list_files",
    "read_bytes",
    "read_json",
    "read_text",
    "replace_file",
    "upload",
    "upload_json",
]

logger = logging.getLogger(__name__)


class _Default:
    def __repr__(self) -> str:
        return "OPENHUMANS_MAX_READ_SIZE"


#: ``max_bytes`` of the read helpers when not given: the OPENHUMANS_MAX_READ_SIZE setting.
DEFAULT: Any = _Default()


def _read_cap(max_bytes: object) -> int | None:
    if max_bytes is DEFAULT:
        return get_setting("OPENHUMANS_MAX_READ_SIZE")
    return check_max_bytes(max_bytes)


def list_files(member: OpenHumansMember, **filters: Any) -> list[dict[str, Any]]:
    """The member's files matching ``filters`` (``source``, ``basename``, ``tag``, ``datatype``)."""
    check_filters(**filters)
    return [f.as_dict() for f in member._call(lambda api: api.list_files(**filters))]


def latest_file(member: OpenHumansMember, **filters: Any) -> dict[str, Any] | None:
    """The newest of the member's files matching ``filters``, or None."""
    check_filters(**filters)
    found = member._call(lambda api: api.latest_file(**filters))
    return found.as_dict() if found is not None else None


def download(
    member: OpenHumansMember,
    file: Any,
    destination: str | os.PathLike[str] | IO[bytes],
    *,
    max_bytes: int | None = None,
) -> int:
    """Stream one of the member's files to ``destination``; see OpenHumansClient.download."""
    check_download_args(file, destination, max_bytes)
    return member._call(lambda api: api.download(file, destination, max_bytes=max_bytes))


def read_bytes(member: OpenHumansMember, file: Any, *, max_bytes: Any = DEFAULT) -> bytes:
    """One of the member's files, in memory (at most ``max_bytes``)."""
    file_id_of(file)
    cap = _read_cap(max_bytes)
    return member._call(lambda api: api.read_bytes(file, max_bytes=cap))


def read_text(
    member: OpenHumansMember, file: Any, *, encoding: str = "utf-8", max_bytes: Any = DEFAULT
) -> str:
    """One of the member's files, decoded."""
    return read_bytes(member, file, max_bytes=max_bytes).decode(encoding)


def read_json(member: OpenHumansMember, file: Any, *, max_bytes: Any = DEFAULT) -> Any:
    """One of the member's files, parsed as JSON (ValueError if it is not JSON)."""
    return json.loads(read_bytes(member, file, max_bytes=max_bytes))


def _rewindable(stream: object) -> tuple[bool, int]:
    """Whether ``stream`` can be sent twice (for the retry after a 401), and from where."""
    if isinstance(stream, bytes | bytearray | memoryview | str | os.PathLike):
        return True, 0
    try:
        if stream.seekable():  # type: ignore[attr-defined]
            return True, stream.tell()  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        pass
    return False, 0


def _rewinder(stream: Any) -> tuple[bool, Any]:
    """(whether a retry may resend ``stream``, a function rewinding it before each try)."""
    seekable, start = _rewindable(stream)

    def rewind() -> None:
        if seekable and hasattr(stream, "seek"):
            stream.seek(start)  # rewound for the one retry after a 401

    return seekable, rewind


def _log_uploaded(member: OpenHumansMember, name: str, result: UploadResult) -> UploadResult:
    logger.info("uploaded %s for Open Humans member %s as file %s", name, member.oh_id, result.id)
    return result


def _log_replaced(member: OpenHumansMember, filename: str, result: Replacement) -> Replacement:
    logger.info(
        "replaced %s for Open Humans member %s: new file %s, deleted %s",
        filename,
        member.oh_id,
        result.file.id,
        result.deleted,
    )
    return result


def _send(
    member: OpenHumansMember,
    stream: Any,
    run: Any,
) -> Any:
    seekable, rewind = _rewinder(stream)

    def operation(api: OpenHumansClient) -> Any:
        rewind()
        return run(api)

    # A stream that cannot be rewound is not retried: a second try would send less.
    return member._call(operation, retry=seekable)


def upload(
    member: OpenHumansMember,
    stream: Any,
    filename: str,
    metadata: Mapping[str, Any],
    file_identifier: str | None = None,
    *,
    datatypes: Sequence[str | int] | None = None,
    max_bytes: int | None = None,
) -> UploadResult:
    """Upload a file (bytes, a path or a file object) for the member."""
    # Refused before any request, even a token refresh (the client checks again).
    check_upload_args(filename, metadata, datatypes)
    check_stream(stream, max_bytes)
    result: UploadResult = _send(
        member,
        stream,
        lambda api: api.upload(
            stream, filename, metadata, datatypes=datatypes, max_bytes=max_bytes
        ),
    )
    return _log_uploaded(member, file_identifier or filename, result)


def upload_json(
    member: OpenHumansMember,
    obj: Any,
    filename: str,
    metadata: Mapping[str, Any],
    *,
    datatypes: Sequence[str | int] | None = None,
) -> UploadResult:
    """Upload ``obj`` as a JSON file for the member, without a temporary file."""
    check_upload_args(filename, metadata, datatypes)
    return upload(member, json_bytes(obj), filename, metadata, datatypes=datatypes)


def replace_file(
    member: OpenHumansMember,
    source: Any,
    filename: str,
    metadata: Mapping[str, Any],
    *,
    match: str = "basename",
    datatypes: Sequence[str | int] | None = None,
    max_bytes: int | None = None,
) -> Replacement:
    """Upload, then delete the files the upload supersedes; see OpenHumansClient.replace_file."""
    check_replace_match(match, metadata)
    check_upload_args(filename, metadata, datatypes)
    check_stream(source, max_bytes)
    result: Replacement = _send(
        member,
        source,
        lambda api: api.replace_file(
            source, filename, metadata, match=match, datatypes=datatypes, max_bytes=max_bytes
        ),
    )
    return _log_replaced(member, filename, result)


# -- the same, as coroutines (async views and tasks) -----------------------------------------
#
# The token's bookkeeping (a row lock, a refresh) runs in Django's sync thread
# (sync_to_async); the calls to Open Humans run on the event loop, through
# AsyncOpenHumansClient over the loop's shared pool.


def async_client_for(access_token: str) -> AsyncOpenHumansClient:
    """An async client bound to ``access_token`` over the running loop's shared pool."""
    return AsyncOpenHumansClient.shared(
        access_token,
        base_url=get_setting("OPENHUMANS_OH_BASE_URL"),
        timeout=get_setting("OPENHUMANS_TIMEOUT"),
    )


@sensitive_variables()
async def acall(member: OpenHumansMember, operation: Any, *, retry: bool = True) -> Any:
    """Run ``operation(async_client)`` with a fresh token; retry once after a 401.

    As the sync methods do, a member needing re-authorization is served with
    OPENHUMANS_MASTER_TOKEN when it is set, and a member who left (``oh_deauth``) never is.
    """
    try:
        token = await sync_to_async(member.get_access_token)()
    except ReauthorizationRequiredError:
        return await _acall_as_project(member, operation)
    try:
        return await operation(async_client_for(token))
    except InvalidTokenError:
        if not retry:
            raise
        try:
            token = await sync_to_async(member._access_token)(
                None, None, force=False, stale_token=token
            )
        except ReauthorizationRequiredError:
            return await _acall_as_project(member, operation)
        return await operation(async_client_for(token))


async def _acall_as_project(member: OpenHumansMember, operation: Any) -> Any:
    """``operation`` run with the master-token async client acting for ``member``."""
    acting = member._acting_client(async_client_for)
    return await operation(cast(AsyncOpenHumansClient, acting))


async def alist_files(member: OpenHumansMember, **filters: Any) -> list[dict[str, Any]]:
    """As :func:`list_files`, awaited."""
    check_filters(**filters)
    found = await acall(member, lambda api: api.list_files(**filters))
    return [f.as_dict() for f in found]


async def alatest_file(member: OpenHumansMember, **filters: Any) -> dict[str, Any] | None:
    """As :func:`latest_file`, awaited."""
    check_filters(**filters)
    found = await acall(member, lambda api: api.latest_file(**filters))
    return found.as_dict() if found is not None else None


async def adownload(
    member: OpenHumansMember,
    file: Any,
    destination: str | os.PathLike[str] | IO[bytes],
    *,
    max_bytes: int | None = None,
) -> int:
    """As :func:`download`, awaited."""
    check_download_args(file, destination, max_bytes)
    written: int = await acall(
        member, lambda api: api.download(file, destination, max_bytes=max_bytes)
    )
    return written


async def aread_bytes(member: OpenHumansMember, file: Any, *, max_bytes: Any = DEFAULT) -> bytes:
    """As :func:`read_bytes`, awaited."""
    file_id_of(file)
    cap = _read_cap(max_bytes)
    data: bytes = await acall(member, lambda api: api.read_bytes(file, max_bytes=cap))
    return data


async def aread_text(
    member: OpenHumansMember, file: Any, *, encoding: str = "utf-8", max_bytes: Any = DEFAULT
) -> str:
    """As :func:`read_text`, awaited."""
    return (await aread_bytes(member, file, max_bytes=max_bytes)).decode(encoding)


async def aread_json(member: OpenHumansMember, file: Any, *, max_bytes: Any = DEFAULT) -> Any:
    """As :func:`read_json`, awaited."""
    return json.loads(await aread_bytes(member, file, max_bytes=max_bytes))


async def _asend(member: OpenHumansMember, stream: Any, run: Any) -> Any:
    seekable, rewind = _rewinder(stream)

    async def operation(api: AsyncOpenHumansClient) -> Any:
        rewind()
        return await run(api)

    return await acall(member, operation, retry=seekable)


async def aupload(
    member: OpenHumansMember,
    stream: Any,
    filename: str,
    metadata: Mapping[str, Any],
    file_identifier: str | None = None,
    *,
    datatypes: Sequence[str | int] | None = None,
    max_bytes: int | None = None,
) -> UploadResult:
    """As :func:`upload`, awaited."""
    check_upload_args(filename, metadata, datatypes)
    check_stream(stream, max_bytes)
    result: UploadResult = await _asend(
        member,
        stream,
        lambda api: api.upload(
            stream, filename, metadata, datatypes=datatypes, max_bytes=max_bytes
        ),
    )
    return _log_uploaded(member, file_identifier or filename, result)


async def aupload_json(
    member: OpenHumansMember,
    obj: Any,
    filename: str,
    metadata: Mapping[str, Any],
    *,
    datatypes: Sequence[str | int] | None = None,
) -> UploadResult:
    """As :func:`upload_json`, awaited."""
    check_upload_args(filename, metadata, datatypes)
    return await aupload(member, json_bytes(obj), filename, metadata, datatypes=datatypes)


async def areplace_file(
    member: OpenHumansMember,
    source: Any,
    filename: str,
    metadata: Mapping[str, Any],
    *,
    match: str = "basename",
    datatypes: Sequence[str | int] | None = None,
    max_bytes: int | None = None,
) -> Replacement:
    """As :func:`replace_file`, awaited."""
    check_replace_match(match, metadata)
    check_upload_args(filename, metadata, datatypes)
    check_stream(source, max_bytes)
    result: Replacement = await _asend(
        member,
        source,
        lambda api: api.replace_file(
            source, filename, metadata, match=match, datatypes=datatypes, max_bytes=max_bytes
        ),
    )
    return _log_replaced(member, filename, result)
