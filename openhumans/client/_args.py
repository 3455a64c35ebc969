"""Checking arguments before any request, and preparing upload streams (constant memory).

Private: the checks are re-exported by ``openhumans.client`` for the app's forms and models.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from typing import IO, Any

from openhumans.exceptions import FileTooLargeError, InvalidArgumentError

CHUNK_SIZE = 1024 * 1024
#: spec §2.6 step 2: S3 accepts at most 5 GiB in a single PUT.
MAX_UPLOAD_SIZE = 5 * 1024**3
#: Open Humans' file ids are positive 64-bit integers; a larger one is a 500 on its database.
MAX_FILE_ID = 2**63 - 1
SPOOL_MAX = 8 * 1024 * 1024  # bytes kept in memory before a spooled stream goes to disk

#: What ``upload()`` takes: bytes, a binary or text file object, or a path to a file.
Stream = bytes | bytearray | memoryview | IO[bytes] | IO[str] | str | os.PathLike[str]

_MD5 = re.compile(r"\A[0-9a-fA-F]{32}\Z")
_DATE_KEYS = ("creation_date", "start_date", "end_date")


def member_ids(value: object) -> list[str]:
    # A str is refused: iterating it would send one "id" per character.
    if not isinstance(value, list | tuple) or not value:
        raise InvalidArgumentError("project_member_ids", "must be a non-empty list of strings")
    if not all(isinstance(v, str) and v for v in value):
        raise InvalidArgumentError("project_member_ids", "every id must be a non-empty string")
    # Sent once each: a repeated id makes the server's count check fail with an empty
    # "Invalid project member ID(s): " error.
    return list(dict.fromkeys(value))


def optional_member_id(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError("project_member_id", "must be a non-empty string")
    return {"project_member_id": value}


def check_upload_args(filename: object, metadata: object, datatypes: object = None) -> None:
    """Raise InvalidArgumentError unless ``upload()`` would accept these arguments."""
    if not isinstance(filename, str) or not filename.strip():
        raise InvalidArgumentError("filename", "must be a non-empty string")
    # spec §2.6: used verbatim as the last segment of the storage key.
    if "/" in filename or "\\" in filename or "\x00" in filename or filename in (".", ".."):
        raise InvalidArgumentError("filename", "must be a plain file name without '/'")
    # spec §4.3: the rules the server applies, checked before any request.
    if not isinstance(metadata, Mapping):
        raise InvalidArgumentError("metadata", "must be a dict")
    if not isinstance(metadata.get("description"), str):
        raise InvalidArgumentError("metadata", '"description" must be present and a string')
    tags = metadata.get("tags")
    if not isinstance(tags, list | tuple) or not all(isinstance(t, str) for t in tags):
        raise InvalidArgumentError("metadata", '"tags" must be present and a list of strings')
    check_optional_metadata(metadata)
    try:
        json.dumps(metadata)
    except (TypeError, ValueError) as err:
        raise InvalidArgumentError("metadata", "must be JSON-serialisable") from err
    if datatypes is not None and (
        not isinstance(datatypes, list | tuple)
        or not all(isinstance(d, str | int) and not isinstance(d, bool) for d in datatypes)
    ):
        raise InvalidArgumentError("datatypes", "must be a list of datatype ids or names")


def _iso_8601(value: object) -> bool:
    if not isinstance(value, str):
        return False
    for parse in (datetime.fromisoformat, date.fromisoformat):
        try:
            parse(value)
            return True
        except ValueError:
            continue
    return False


def check_optional_metadata(metadata: Mapping[str, Any]) -> None:
    """Raise InvalidArgumentError for an optional metadata key the server refuses.

    The dates must be ISO 8601 strings (a ``null`` date is a 500 on the server), ``md5`` 32 hex
    digits. The description's length is not checked: the server does not either.
    """
    for key in _DATE_KEYS:
        if key in metadata and not _iso_8601(metadata[key]):
            raise InvalidArgumentError(
                "metadata", f'"{key}" must be an ISO 8601 date string such as "2026-11-30"'
            )
    if "md5" in metadata and not (isinstance(metadata["md5"], str) and _MD5.match(metadata["md5"])):
        raise InvalidArgumentError("metadata", '"md5" must be 32 hexadecimal digits')


def check_max_bytes(max_bytes: object) -> int | None:
    """Return ``max_bytes`` (None: no cap); raise InvalidArgumentError unless an int >= 0."""
    if max_bytes is None:
        return None
    if not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes < 0:
        raise InvalidArgumentError("max_bytes", "must be a whole number of bytes (>= 0) or None")
    return max_bytes


def check_message_args(subject: object, message: object) -> None:
    """Raise InvalidArgumentError unless ``subject`` and ``message`` are strings to send."""
    if not isinstance(subject, str):
        raise InvalidArgumentError("subject", "must be a string")
    if not isinstance(message, str) or not message:
        raise InvalidArgumentError("message", "must be a non-empty string")


def check_file_selector(
    file_id: object = None, file_basename: object = None, all_files: object = False
) -> dict[str, Any]:
    """Return the delete body for exactly one selector; raise InvalidArgumentError otherwise."""
    chosen = [file_id is not None, file_basename is not None, all_files is True]
    if sum(chosen) != 1:
        raise InvalidArgumentError(
            "file_id", "give exactly one of file_id, file_basename or all_files=True"
        )
    if file_id is not None:
        if not isinstance(file_id, int) or isinstance(file_id, bool):
            raise InvalidArgumentError("file_id", "must be an integer")
        if not 1 <= file_id <= MAX_FILE_ID:
            raise InvalidArgumentError("file_id", "must be a positive 64-bit integer")
        return {"file_id": file_id}
    if file_basename is not None:
        if not isinstance(file_basename, str) or not file_basename:
            raise InvalidArgumentError("file_basename", "must be a non-empty string")
        return {"file_basename": file_basename}
    return {"all_files": True}


def _too_big(size: int) -> InvalidArgumentError:
    return InvalidArgumentError(
        "stream",
        f"is {size} bytes; Open Humans (S3) accepts at most 5 GiB ({MAX_UPLOAD_SIZE} bytes) "
        "in one upload",
    )


def _check_size(size: int, max_bytes: int | None, *, known: bool = True) -> None:
    """Refuse a size above ``max_bytes`` (FileTooLargeError) or above S3's limit."""
    if max_bytes is not None and size > max_bytes:
        raise FileTooLargeError("the upload", size if known else None, max_bytes)
    if size > MAX_UPLOAD_SIZE:
        raise _too_big(size)


def _is_path(stream: object) -> bool:
    return isinstance(stream, str | os.PathLike)


def _open_path(stream: str | os.PathLike[str]) -> IO[bytes]:
    # A str is a path; text to upload goes as bytes or a file object. Long "paths" are cut.
    shown = repr(os.fspath(stream))
    shown = shown if len(shown) <= 100 else shown[:97] + "..."
    try:
        return open(stream, "rb")  # noqa: SIM115 - closed by the caller (prepare_stream's third item)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as err:
        raise InvalidArgumentError(
            "stream", f"no such file: {shown} (a str is a path; pass text as bytes)"
        ) from err
    except (PermissionError, ValueError, OSError) as err:
        raise InvalidArgumentError(
            "stream", f"cannot read {shown} (a str is a path; pass text as bytes)"
        ) from err


def _spool(
    read: Any, encode: bool, max_bytes: int | None = None
) -> tuple[IO[bytes], int, IO[bytes]]:
    """Copy a stream into a spooled temp file (UTF-8 for text); refuse empty or too big."""
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX)
    while chunk := read(CHUNK_SIZE):
        spool.write(chunk.encode("utf-8") if encode else chunk)
        if spool.tell() > MAX_UPLOAD_SIZE or (max_bytes is not None and spool.tell() > max_bytes):
            size = spool.tell()
            spool.close()
            _check_size(size, max_bytes, known=False)
    size = spool.tell()
    spool.seek(0)
    if not size:
        spool.close()
        raise InvalidArgumentError("stream", "is empty")
    return spool, size, spool


def check_stream(stream: object, max_bytes: int | None = None) -> None:
    """Raise InvalidArgumentError for a stream known, without reading it, to be unusable.

    Bytes, paths and seekable file objects are measured: missing, empty, or (binary) larger
    than ``max_bytes`` (FileTooLargeError) or than S3 allows. A non-seekable stream is only
    measured when uploaded.
    """
    max_bytes = check_max_bytes(max_bytes)
    if _is_path(stream):
        with _open_path(stream) as handle:  # type: ignore[arg-type]
            size = os.fstat(handle.fileno()).st_size
    elif isinstance(stream, bytes | bytearray | memoryview):
        size = len(stream) if not isinstance(stream, memoryview) else stream.nbytes
    elif callable(getattr(stream, "read", None)):
        try:
            if not stream.seekable():  # type: ignore[attr-defined]
                return
            start = stream.tell()  # type: ignore[attr-defined]
            size = stream.seek(0, io.SEEK_END) - start  # type: ignore[attr-defined]
            stream.seek(start)  # type: ignore[attr-defined]
        except (AttributeError, OSError, ValueError):
            return
        if isinstance(stream, io.TextIOBase):
            size = min(size, 1)  # characters, not bytes: only emptiness is known
    else:
        raise InvalidArgumentError(
            "stream", "must be bytes, a binary or text file object, or a path to a file"
        )
    if size <= 0:
        raise InvalidArgumentError("stream", "is empty")
    _check_size(size, max_bytes)


def prepare_stream(
    stream: object, max_bytes: int | None = None
) -> tuple[IO[bytes], int, IO[bytes] | None]:
    """Return (binary file, size in bytes, file to close) without reading it into memory.

    ``stream`` is bytes, a binary or text file object, or a path (``str``/``os.PathLike``).
    Raises InvalidArgumentError (missing, empty, over 5 GiB) or FileTooLargeError (over
    ``max_bytes``).
    """
    max_bytes = check_max_bytes(max_bytes)
    if _is_path(stream):
        handle = _open_path(stream)  # type: ignore[arg-type]
        size = os.fstat(handle.fileno()).st_size
        try:
            if size <= 0:
                raise InvalidArgumentError("stream", "is empty")
            _check_size(size, max_bytes)
        except Exception:
            handle.close()
            raise
        return handle, size, handle
    if isinstance(stream, bytes | bytearray | memoryview):
        data = bytes(stream)
        if not data:
            raise InvalidArgumentError("stream", "is empty")
        _check_size(len(data), max_bytes)
        return io.BytesIO(data), len(data), None
    read = getattr(stream, "read", None)
    if not callable(read):
        raise InvalidArgumentError(
            "stream", "must be bytes, a binary or text file object, or a path to a file"
        )
    first = read(0)
    if isinstance(first, str):
        # Text: encode as UTF-8 into a spooled file so the byte length is known.
        return _spool(read, encode=True, max_bytes=max_bytes)
    if not isinstance(first, bytes):
        raise InvalidArgumentError("stream", "read() must return bytes or str")
    binary: IO[bytes] = stream  # type: ignore[assignment]
    try:
        seekable = binary.seekable()
    except (AttributeError, ValueError):
        seekable = False
    if seekable:
        start = binary.tell()
        size = binary.seek(0, io.SEEK_END) - start
        binary.seek(start)
        if size <= 0:
            raise InvalidArgumentError("stream", "is empty")
        _check_size(size, max_bytes)
        return binary, size, None
    return _spool(binary.read, encode=False, max_bytes=max_bytes)


def body_chunks(source: IO[bytes], size: int) -> Iterator[bytes]:
    """Yield exactly ``size`` bytes of ``source`` in chunks (constant memory)."""
    remaining = size
    while remaining > 0:
        chunk = source.read(min(CHUNK_SIZE, remaining))
        if not chunk:
            raise InvalidArgumentError("stream", f"ended {remaining} bytes short of {size}")
        remaining -= len(chunk)
        yield chunk
