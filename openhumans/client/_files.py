"""Choosing a member's files, and streaming one down (private: use ``openhumans.client``).

Downloads follow the file's ``download_url``: the Open Humans redirector, which
needs no token, then a short-lived storage URL. Neither request carries the member's token.
A refused link (its one-hour key expired) is retried once with the fresh ``download_url`` of
a new listing. The bytes are streamed in chunks: memory stays constant whatever the size.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any

import httpx

from openhumans.exceptions import (
    DownloadExpiredError,
    FileTooLargeError,
    InvalidArgumentError,
    StorageError,
    UnknownFileError,
)

from ._args import CHUNK_SIZE, MAX_FILE_ID, check_max_bytes
from ._http import connection_error, parse_body
from ._results import DataFile

#: What the download calls take to name a file: a listed file (dict or DataFile) or its id.
FileRef = DataFile | Mapping[str, Any] | int | str

#: Default cap of ``read_bytes``/``read_text``/``read_json`` (the Django app's default too).
DEFAULT_MAX_READ_SIZE = 64 * 1024 * 1024

MAX_REDIRECTS = 5


def check_filters(
    source: object = None, basename: object = None, tag: object = None, datatype: object = None
) -> None:
    """Raise InvalidArgumentError for a filter of the wrong type."""
    for name, value in (("source", source), ("basename", basename), ("tag", tag)):
        if value is not None and (not isinstance(value, str) or not value):
            raise InvalidArgumentError(name, "must be a non-empty string")
    if datatype is not None and (
        isinstance(datatype, bool) or not isinstance(datatype, int | str) or datatype == ""
    ):
        raise InvalidArgumentError("datatype", "must be a datatype id or its URL")


def _has_datatype(datafile: DataFile, datatype: int | str) -> bool:
    # spec §4.4: listings give datatypes as absolute URLs ending in /datatype/<id>/.
    wanted = str(datatype)
    for url in datafile.datatypes:
        if url == wanted or url.rstrip("/").rsplit("/", 1)[-1] == wanted:
            return True
    return False


def match_files(
    files: Iterable[DataFile],
    *,
    source: str | None = None,
    basename: str | None = None,
    tag: str | None = None,
    datatype: int | str | None = None,
) -> list[DataFile]:
    """Return the files matching every filter given (exact matches; ``tag`` in the tags)."""
    check_filters(source, basename, tag, datatype)
    chosen = []
    for datafile in files:
        if source is not None and datafile.source != source:
            continue
        if basename is not None and datafile.basename != basename:
            continue
        tags = datafile.metadata.get("tags")
        if tag is not None and not (isinstance(tags, list) and tag in tags):
            continue
        if datatype is not None and not _has_datatype(datafile, datatype):
            continue
        chosen.append(datafile)
    return chosen


def newest(files: Iterable[DataFile]) -> DataFile | None:
    """Return the most recently created file (the highest id among equals), or None."""
    return max(files, key=lambda f: (f.created, f.id), default=None)


def file_id_of(ref: object) -> int:
    """Return the id named by ``ref``; raise InvalidArgumentError if it names none."""
    value: object = ref
    if isinstance(ref, DataFile):
        value = ref.id
    elif isinstance(ref, Mapping):
        value = ref.get("id")
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_FILE_ID:
        raise InvalidArgumentError(
            "file", "must be a file from list_files() or a positive integer file id"
        )
    return value


def known_url(ref: object) -> str | None:
    """The ``download_url`` ``ref`` carries, if it is a listed file."""
    if isinstance(ref, DataFile):
        return ref.download_url or None
    if isinstance(ref, Mapping):
        url = ref.get("download_url")
        return url if isinstance(url, str) and url else None
    return None


class Downloader:
    """Streams one file to a binary writer: redirector, then storage; never with a token.

    ``relist`` returns the member's current files; it is called when only an id is known,
    and once more when a link is refused as expired.
    """

    def __init__(self, http: httpx.Client, relist: Callable[[], list[DataFile]]) -> None:
        self.http = http
        self.relist = relist

    def fresh_url(self, file_id: int) -> str:
        """Return a fresh ``download_url`` for ``file_id``; UnknownFileError if not listed."""
        for datafile in self.relist():
            if datafile.id == file_id:
                if not datafile.download_url:
                    break
                return datafile.download_url
        raise UnknownFileError(file_id)

    def to_writer(self, ref: object, out: IO[bytes], max_bytes: int | None) -> int:
        """Write the file's bytes to ``out``; return how many. Raises the typed errors."""
        max_bytes = check_max_bytes(max_bytes)
        file_id = file_id_of(ref)
        url = known_url(ref) or self.fresh_url(file_id)
        try:
            return self._stream(url, file_id, out, max_bytes)
        except LinkRefused:
            # spec §2.9: the key lives one hour after the listing; a fresh listing mints one.
            pass
        try:
            return self._stream(self.fresh_url(file_id), file_id, out, max_bytes)
        except LinkRefused as refused:
            raise expired(refused) from None

    def _open(self, url: str, file_id: int) -> tuple[httpx.Response, httpx.URL]:
        """Follow the redirector to storage; return the open 200 response (streaming)."""
        target = http_url(url)
        for _hop in range(MAX_REDIRECTS + 1):
            shown = target.copy_with(query=None)  # keys and signatures stay out of reports
            try:
                response = self.http.send(download_request(self.http, target), stream=True)
            except httpx.TransportError as err:
                raise connection_error(err, shown) from err
            if response.status_code == 200:
                return response, shown
            nxt = redirect_target(response, target)
            if nxt is None:
                response.read()
            response.close()
            if nxt is None:
                raise refusal(response, file_id, shown)
            target = nxt
        raise too_many_redirects(target)

    def _stream(self, url: str, file_id: int, out: IO[bytes], max_bytes: int | None) -> int:
        response, shown = self._open(url, file_id)
        try:
            check_length(response, file_id, max_bytes)
            written = 0
            try:
                for chunk in response.iter_bytes(CHUNK_SIZE):
                    written = count_chunk(written, chunk, file_id, max_bytes)
                    out.write(chunk)
            except httpx.TransportError as err:
                raise connection_error(err, shown) from err
        finally:
            response.close()
        return written


def download_request(http: httpx.Client | httpx.AsyncClient, target: httpx.URL) -> httpx.Request:
    """A GET of a download or storage URL, carrying no Authorization header."""
    request = http.build_request("GET", target)
    # The pools send no Authorization by default; say so explicitly anyway.
    request.headers.pop("Authorization", None)
    return request


def redirect_target(response: httpx.Response, current: httpx.URL) -> httpx.URL | None:
    """Where a redirect of the redirector or storage points; None if not a redirect."""
    if response.is_redirect and "Location" in response.headers:
        return http_url(str(current.join(response.headers["Location"])))
    return None


def refusal(response: httpx.Response, file_id: int, shown: httpx.URL) -> Exception:
    """The error for a non-200, non-redirect answer (its body read)."""
    if response.status_code == 403 and b"unavailable" in response.content:
        return UnknownFileError(file_id)  # deleted since the listing (spec §2.9)
    if response.status_code == 403:
        return LinkRefused(response, shown)
    return StorageError(
        "storage refused the download",
        status_code=response.status_code,
        body=parse_body(response),
        url=shown,
    )


def too_many_redirects(target: httpx.URL) -> StorageError:
    return StorageError("too many redirects while downloading", url=target.copy_with(query=None))


def expired(refused: LinkRefused) -> DownloadExpiredError:
    """The error when a fresh link was refused too."""
    return DownloadExpiredError(
        "the download link was refused twice, even fresh from a new listing",
        status_code=refused.response.status_code,
        body=parse_body(refused.response),
        url=refused.url,
    )


def check_length(response: httpx.Response, file_id: int, max_bytes: int | None) -> None:
    """Refuse, before reading, a file whose announced length is over ``max_bytes``."""
    length = response.headers.get("Content-Length", "")
    if max_bytes is not None and length.isdigit() and int(length) > max_bytes:
        raise FileTooLargeError(f"file {file_id}", int(length), max_bytes)


def count_chunk(written: int, chunk: bytes, file_id: int, max_bytes: int | None) -> int:
    """Bytes written once ``chunk`` is; refuse going over ``max_bytes`` (a lying length)."""
    written += len(chunk)
    if max_bytes is not None and written > max_bytes:
        raise FileTooLargeError(f"file {file_id}", None, max_bytes)
    return written


class LinkRefused(Exception):
    """A download link refused with 403: expired, or a wrong key."""

    def __init__(self, response: httpx.Response, url: httpx.URL) -> None:
        self.response = response
        self.url = url


def http_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as err:
        raise StorageError("the download URL is not a valid URL") from err
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise StorageError("the download URL is not an absolute http(s) URL")
    return parsed


def resolve_path(destination: object, default_name: str | None) -> Path | None:
    """The file path ``destination`` names (None: it is a file object); check it."""
    if callable(getattr(destination, "write", None)):
        return None
    if not isinstance(destination, str | os.PathLike):
        raise InvalidArgumentError("destination", "must be a path or a binary file object")
    path = Path(destination)
    if path.is_dir():
        if not default_name:
            raise InvalidArgumentError("destination", "is a directory; give a file path")
        path = path / Path(default_name).name
    if not path.parent.is_dir():
        raise InvalidArgumentError("destination", f"no such directory: {str(path.parent)!r}")
    return path


def part_file(path: Path) -> IO[bytes]:
    """A temporary file beside ``path``, renamed into place once complete."""
    return tempfile.NamedTemporaryFile(  # noqa: SIM115 - renamed or removed by the caller
        dir=path.parent, prefix=f".{path.name}.", suffix=".part", delete=False
    )


def to_destination(
    write: Callable[[IO[bytes]], int], destination: object, default_name: str | None
) -> int:
    """Run ``write`` into ``destination``: a binary file object, or a path.

    A path is written through a temporary file beside it, renamed into place only once the
    whole file arrived: a failed download leaves no partial file. A directory receives the
    file under ``default_name``.
    """
    path = resolve_path(destination, default_name)
    if path is None:
        return write(destination)  # type: ignore[arg-type]
    handle = part_file(path)
    try:
        with handle:
            written = write(handle)
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    return written


def check_download_args(file: object, destination: object, max_bytes: object) -> None:
    """Raise InvalidArgumentError for what ``download()`` would refuse, before any request."""
    file_id_of(file)
    check_max_bytes(max_bytes)
    resolve_path(destination, basename_of(file) or "file")


def basename_of(ref: object) -> str | None:
    """The basename ``ref`` carries, if it is a listed file."""
    if isinstance(ref, DataFile):
        return ref.basename
    if isinstance(ref, Mapping) and isinstance(ref.get("basename"), str):
        return str(ref["basename"])
    return None
