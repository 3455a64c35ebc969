"""``OpenHumansClient``: the project API, with a member's or the master token.

Over 400 lines on purpose: one class, one method per Open Humans call, which reads better
whole than split across mixins; argument checks live in ``_args``, file reading in ``_files``.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import IO, Any

import httpx

from openhumans.exceptions import (
    InvalidArgumentError,
    OpenHumansAPIResponseError,
    redact_url,
)

from ._args import (
    Stream,
    body_chunks,
    check_file_selector,
    check_max_bytes,
    check_message_args,
    check_stream,
    check_upload_args,
    member_ids,
    optional_member_id,
    prepare_stream,
)
from ._files import (
    DEFAULT_MAX_READ_SIZE,
    Downloader,
    FileRef,
    basename_of,
    check_filters,
    match_files,
    newest,
    to_destination,
)
from ._http import (
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT,
    Requester,
    join_url,
    new_http_client,
    parse_base_url,
    same_origin,
    storage_error_for,
)
from ._pool import SharedPool, shared_pool
from ._results import DataFile, Member, Replacement, UploadResult, UploadTarget

API = "api/direct-sharing/project/"
PAGE_SIZE = 100  # spec §2.2: the server's default page; ceil(N/100) requests for N files.

_TOKEN_CHARS = re.compile(r"\A[\x21-\x7e]+\Z")


def _json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise OpenHumansAPIResponseError(
            "response is not JSON",
            status_code=response.status_code,
            body=response.text[:200],
            url=response.request.url,
        ) from err


def _check_token(access_token: object) -> str:
    # Printable ASCII only: anything else fails inside httpx/h11 with the whole
    # Authorization header, token included, in the error message.
    if not isinstance(access_token, str) or not _TOKEN_CHARS.match(access_token):
        raise InvalidArgumentError(
            "access_token", "must be a non-empty string of printable ASCII without spaces"
        )
    return access_token


def json_bytes(obj: Any) -> bytes:
    """Serialise ``obj`` as UTF-8 JSON; raise InvalidArgumentError (``obj``) if it cannot be."""
    try:
        return json.dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as err:
        raise InvalidArgumentError("obj", f"cannot be serialised as JSON: {err}") from err


def check_replace_match(match: object, metadata: object) -> None:
    """Raise InvalidArgumentError unless ``match`` is "basename" or a tag the metadata has."""
    if not isinstance(match, str) or not match:
        raise InvalidArgumentError("match", 'must be "basename" or a tag')
    if match != "basename":
        tags = metadata.get("tags") if isinstance(metadata, Mapping) else None
        if not isinstance(tags, list | tuple) or match not in tags:
            raise InvalidArgumentError(
                "match", f"the new file's metadata must carry the tag {match!r} it replaces"
            )


def direct_body(
    member: Mapping[str, str],
    filename: str,
    metadata: Mapping[str, Any],
    datatypes: Sequence[str | int] | None,
) -> dict[str, Any]:
    """The body of upload/direct/ (step 1)."""
    body: dict[str, Any] = {
        **member,
        "filename": filename,
        # spec §A.4/§2.6: metadata and datatypes are JSON *strings*, even in JSON.
        "metadata": json.dumps(metadata),
    }
    if datatypes is not None:
        body["datatypes"] = json.dumps(list(datatypes))
    return body


def parse_direct(direct: Any) -> tuple[int, httpx.URL]:
    """The new file's id and its presigned PUT URL; raise if the answer is malformed."""
    try:
        file_id, put_url = int(direct["id"]), httpx.URL(str(direct["url"]))
    except (KeyError, TypeError, ValueError, httpx.InvalidURL) as err:
        raise OpenHumansAPIResponseError("malformed upload/direct response") from err
    if put_url.scheme not in ("http", "https"):
        raise OpenHumansAPIResponseError("upload URL is not http(s)")
    return file_id, put_url


def upload_result(done: Any, file_id: int, size: int, filename: str) -> UploadResult:
    """The UploadResult of a completed upload (the size Open Humans stored, if it says)."""
    stored = done.get("size") if isinstance(done, dict) else None
    return UploadResult(
        id=file_id, size=int(stored) if isinstance(stored, int) else size, basename=filename
    )


def superseded(files: list[DataFile], new_id: int, filename: str, match: str) -> list[int]:
    """Ids of this project's files (the new file's source) that the new file replaces."""
    ours = {f.source for f in files if f.id == new_id}
    by = {"basename": filename} if match == "basename" else {"tag": match}
    return [f.id for f in match_files(files, **by) if f.id != new_id and f.source in ours]


def deleted_ids(result: Any) -> list[int]:
    """The ids of a files/delete/ answer; raise if malformed."""
    ids = result.get("ids") if isinstance(result, dict) else None
    try:
        if not isinstance(ids, list):
            raise TypeError("no ids list")
        return [int(i) for i in ids]
    except (TypeError, ValueError) as err:
        raise OpenHumansAPIResponseError("malformed delete response") from err


def message_body(
    subject: str, message: str, project_member_ids: Sequence[str] | None, all_members: bool
) -> dict[str, Any]:
    """The body of message/; raise InvalidArgumentError for bad arguments."""
    check_message_args(subject, message)
    if not isinstance(all_members, bool):
        raise InvalidArgumentError("all_members", "must be a bool")
    body: dict[str, Any] = {"subject": subject, "message": message}
    if project_member_ids is not None:
        if all_members:
            raise InvalidArgumentError(
                "all_members", "give either all_members=True or project_member_ids, not both"
            )
        body["project_member_ids"] = member_ids(project_member_ids)
    elif all_members:
        body["all_members"] = True
    return body


def page_items(body: Any, envelope: str, url: httpx.URL) -> list[Any]:
    """The items of one page (under ``data`` or ``results``); raise if malformed."""
    if not isinstance(body, dict) or not isinstance(body.get(envelope, []), list):
        raise OpenHumansAPIResponseError(
            f"malformed page: no '{envelope}' list", url=url, body=None
        )
    return body.get(envelope) or []


def next_url(link: object, current: httpx.URL, base_url: httpx.URL) -> httpx.URL | None:
    """Resolve a ``next`` link; refuse one that leaves the base URL's origin."""
    if not link:
        return None
    nxt = current.join(str(link))
    if not same_origin(nxt, base_url):
        # The link carries the token (spec §5.2): never send it to another origin. A
        # silent stop would hand back a truncated list, so raise instead.
        raise OpenHumansAPIResponseError(
            "refused to follow a pagination link to another origin", url=nxt
        )
    return nxt


class OpenHumansClient:
    """A client for the Open Humans project API, holding one token and one connection pool.

    Use it as a context manager, or call :meth:`close`. :meth:`shared` returns a client
    over the process's shared pool instead (what the Django app uses). Errors are those of
    ``openhumans.exceptions``; bad arguments raise InvalidArgumentError before any request.
    GETs are retried on connection errors, 429 and 5xx (up to ``max_retries`` times, with
    exponential backoff and jitter); POSTs and the upload PUT never are.
    """

    def __init__(
        self,
        access_token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._token = _check_token(access_token)
        self.base_url = parse_base_url(base_url)
        self._http = new_http_client(timeout, transport)
        self._owns_http = True
        self._requester = Requester(self._http, max_retries=max_retries, deadline=timeout)

    @classmethod
    def shared(
        cls,
        access_token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 2,
    ) -> OpenHumansClient:
        """Return a client bound to ``access_token`` over the process's shared pool.

        One pool per process and (``base_url``, ``timeout``): created on first use, closed at
        exit, never reused by a forked child. :meth:`close` leaves the pool open. Cheap to
        call per request; raises InvalidArgumentError like the constructor.
        """
        return cls._over(shared_pool(base_url, timeout), access_token, max_retries)

    @classmethod
    def _over(cls, pool: SharedPool, access_token: str, max_retries: int) -> OpenHumansClient:
        client = cls.__new__(cls)
        client._token = _check_token(access_token)
        client.base_url = pool.base_url
        client._http = pool.http
        client._owns_http = False
        # The pool's timeout is also each call's total deadline.
        deadline = pool.http.timeout.read
        client._requester = Requester(pool.http, max_retries=max_retries, deadline=deadline)
        return client

    def __repr__(self) -> str:
        return f"<OpenHumansClient {self.base_url}>"

    # Retry tuning, exposed so tests and impatient callers can shrink the sleeps.
    @property
    def retry_backoff(self) -> float:
        """Base of the exponential backoff between GET retries, in seconds."""
        return self._requester.retry_backoff

    @retry_backoff.setter
    def retry_backoff(self, value: float) -> None:
        self._requester.retry_backoff = value

    @property
    def retry_backoff_max(self) -> float:
        """Upper bound of one backoff sleep, in seconds (also caps ``Retry-After``)."""
        return self._requester.retry_backoff_max

    @retry_backoff_max.setter
    def retry_backoff_max(self, value: float) -> None:
        self._requester.retry_backoff_max = value

    def close(self) -> None:
        """Close the connection pool (unless it is the shared one, see :meth:`shared`)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> OpenHumansClient:
        """Return the client; the pool is closed on exit."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the connection pool."""
        self.close()

    # -- plumbing --------------------------------------------------------------------------

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    def _get(self, url: httpx.URL, params: Mapping[str, Any] | None = None) -> Any:
        return _json(self._requester.send("GET", url, params=params, headers=self._auth()))

    def _post(self, path: str, body: Mapping[str, Any] | None) -> Any:
        url = join_url(self.base_url, API + path)
        if body is None:
            # spec §2.5: an empty POST with no Content-Type is what a user token needs.
            response = self._requester.send("POST", url, headers=self._auth())
        else:
            response = self._requester.send("POST", url, json=body, headers=self._auth())
        return _json(response)

    def _next_url(self, link: object, current: httpx.URL) -> httpx.URL | None:
        """Resolve a ``next`` link; refuse one that leaves the base URL's origin."""
        return next_url(link, current, self.base_url)

    def _pages(
        self, path: str, params: Mapping[str, Any], *, envelope: str, token_in_query: bool = False
    ) -> Iterator[tuple[dict[str, Any], list[Any]]]:
        url: httpx.URL | None = join_url(self.base_url, API + path)
        query: Mapping[str, Any] | None = params
        seen: set[str] = set()
        while url is not None:
            key = str(url.copy_merge_params(query or {}))
            if key in seen:  # a server looping its links must not loop us
                return
            seen.add(key)
            if token_in_query:
                # spec §A.2: project/members/ needs ?access_token=; a header-only token is a 500.
                response = self._requester.send(
                    "GET", url, params=query, report_url=redact_url(url)
                )
                body = _json(response)
            else:
                body = self._get(url, query)
            yield body, page_items(body, envelope, url)
            # `next` already carries every query parameter (spec §2.2).
            url, query = self._next_url(body.get("next"), url.copy_merge_params(query or {})), None

    # -- member-token (and master-token) calls ---------------------------------------------

    def project(self) -> dict[str, Any]:
        """Return the project's description; raises the errors of the client."""
        body = self._get(join_url(self.base_url, API))
        if not isinstance(body, dict):
            raise OpenHumansAPIResponseError("malformed project response")
        return body

    def exchange_member(self, *, project_member_id: str | None = None) -> Member:
        """Return the member and their first page of files, in one request.

        ``Member.file_count`` is the total; use :meth:`list_files` for every file. A master
        token needs ``project_member_id``. Raises the errors of the client.
        """
        params = {"limit": PAGE_SIZE, **optional_member_id(project_member_id)}
        body = self._get(join_url(self.base_url, API + "exchange-member/"), params)
        return Member.from_json(body)

    def iter_files(self, *, project_member_id: str | None = None) -> Iterator[DataFile]:
        """Yield every file of the member once, following ``next`` links on the same origin.

        ceil(N/100) requests for N files (at least one). Raises the errors of the client, and
        OpenHumansAPIResponseError if a ``next`` link points at another origin.
        """
        params = {"limit": PAGE_SIZE, **optional_member_id(project_member_id)}
        seen: set[int] = set()
        for _body, items in self._pages("exchange-member/", params, envelope="data"):
            for item in items:
                datafile = DataFile.from_json(item)
                # The old library listed pages twice past 100 files; never yield one twice.
                if datafile.id not in seen:
                    seen.add(datafile.id)
                    yield datafile

    def list_files(
        self,
        *,
        source: str | None = None,
        basename: str | None = None,
        tag: str | None = None,
        datatype: int | str | None = None,
        project_member_id: str | None = None,
    ) -> list[DataFile]:
        """Return the member's files matching every filter given (see :meth:`iter_files`).

        ``source`` (``"direct-sharing-<id>"``) and ``basename`` match exactly, ``tag`` is one
        of the metadata tags, ``datatype`` a datatype id (or its URL). Raises
        InvalidArgumentError for a filter of the wrong type, and the errors of the client.
        """
        check_filters(source, basename, tag, datatype)
        files = self.iter_files(project_member_id=project_member_id)
        return match_files(files, source=source, basename=basename, tag=tag, datatype=datatype)

    def latest_file(
        self,
        *,
        source: str | None = None,
        basename: str | None = None,
        tag: str | None = None,
        datatype: int | str | None = None,
        project_member_id: str | None = None,
    ) -> DataFile | None:
        """Return the newest file matching the filters of :meth:`list_files`, or None."""
        return newest(
            self.list_files(
                source=source,
                basename=basename,
                tag=tag,
                datatype=datatype,
                project_member_id=project_member_id,
            )
        )

    # -- reading files -----------------------------------------------------------------------

    def _downloader(self, project_member_id: str | None) -> Downloader:
        return Downloader(self._http, lambda: self.list_files(project_member_id=project_member_id))

    def download(
        self,
        file: FileRef,
        destination: str | os.PathLike[str] | IO[bytes],
        *,
        max_bytes: int | None = None,
        project_member_id: str | None = None,
    ) -> int:
        """Stream one file to ``destination`` (a path, a directory or a binary file object).

        ``file`` is an item of :meth:`list_files` (dict or DataFile) or a file id. Memory
        stays constant; a path is written whole or not at all. No token goes to the storage
        host. Returns the bytes written. Raises UnknownFileError (not among the member's
        files), FileTooLargeError (over ``max_bytes``), DownloadExpiredError (the link was
        refused even fresh from a new listing), StorageError (another non-200), and the
        errors of the client.
        """
        check_max_bytes(max_bytes)
        downloader = self._downloader(project_member_id)
        return to_destination(
            lambda out: downloader.to_writer(file, out, max_bytes),
            destination,
            basename_of(file),
        )

    def read_bytes(
        self,
        file: FileRef,
        *,
        max_bytes: int | None = DEFAULT_MAX_READ_SIZE,
        project_member_id: str | None = None,
    ) -> bytes:
        """Return a file's contents (at most ``max_bytes``: 64 MiB); see :meth:`download`."""
        buffer = io.BytesIO()
        self.download(file, buffer, max_bytes=max_bytes, project_member_id=project_member_id)
        return buffer.getvalue()

    def read_text(
        self,
        file: FileRef,
        *,
        encoding: str = "utf-8",
        max_bytes: int | None = DEFAULT_MAX_READ_SIZE,
        project_member_id: str | None = None,
    ) -> str:
        """Return a file's contents decoded (UnicodeDecodeError if they are not ``encoding``)."""
        data = self.read_bytes(file, max_bytes=max_bytes, project_member_id=project_member_id)
        return data.decode(encoding)

    def read_json(
        self,
        file: FileRef,
        *,
        max_bytes: int | None = DEFAULT_MAX_READ_SIZE,
        project_member_id: str | None = None,
    ) -> Any:
        """Return a file's contents parsed as JSON (a ValueError if they are not JSON)."""
        return json.loads(
            self.read_bytes(file, max_bytes=max_bytes, project_member_id=project_member_id)
        )

    def upload(
        self,
        stream: Stream,
        filename: str,
        metadata: Mapping[str, Any],
        *,
        datatypes: Sequence[str | int] | None = None,
        max_bytes: int | None = None,
        project_member_id: str | None = None,
    ) -> UploadResult:
        """Upload a file in three requests: direct -> PUT -> complete.

        ``stream`` is bytes, a path (``str``/``os.PathLike``), or a binary or text file object
        (text is encoded as UTF-8); it is streamed with a Content-Length, in constant memory.
        ``datatypes`` are datatype ids or names. Raises InvalidArgumentError for
        bad input and FileTooLargeError above ``max_bytes`` (before any request);
        BadRequestError and the other response errors for a refused step; complete is never
        called after a failed PUT.
        """
        check_upload_args(filename, metadata, datatypes)
        member = optional_member_id(project_member_id)
        source, size, to_close = prepare_stream(stream, max_bytes)
        try:
            target = self.start_upload(
                filename, metadata, datatypes=datatypes, project_member_id=project_member_id
            )
            file_id, put_url = target.id, httpx.URL(target.url)
            # The presigned URL is a credential: report it without its query.
            self._requester.send(
                "PUT",
                put_url,
                # No Authorization (it goes to S3) and no Content-Type (spec §2.6 step 2: the
                # signature covers an empty one). An explicit Content-Length keeps httpx from
                # chunking; the generator keeps memory constant.
                content=body_chunks(source, size),
                headers={"Content-Length": str(size)},
                errors=storage_error_for,
                report_url=put_url.copy_with(query=None),
                # The file's bytes take as long as they take: per-operation timeouts only.
                bounded=False,
            )
            done = self._post("files/upload/complete/", {**member, "file_id": file_id})
        finally:
            if to_close is not None:
                to_close.close()
        return upload_result(done, file_id, size, filename)

    def upload_json(
        self,
        obj: Any,
        filename: str,
        metadata: Mapping[str, Any],
        *,
        datatypes: Sequence[str | int] | None = None,
        max_bytes: int | None = None,
        project_member_id: str | None = None,
    ) -> UploadResult:
        """Upload ``obj`` serialised as UTF-8 JSON (no temporary file); see :meth:`upload`.

        Raises InvalidArgumentError (``obj``) for an object JSON cannot represent.
        """
        check_upload_args(filename, metadata, datatypes)
        return self.upload(
            json_bytes(obj),
            filename,
            metadata,
            datatypes=datatypes,
            max_bytes=max_bytes,
            project_member_id=project_member_id,
        )

    def replace_file(
        self,
        source: Stream,
        filename: str,
        metadata: Mapping[str, Any],
        *,
        match: str = "basename",
        datatypes: Sequence[str | int] | None = None,
        max_bytes: int | None = None,
        project_member_id: str | None = None,
    ) -> Replacement:
        """Upload a new file, then delete the files it supersedes; return both.

        Superseded: this project's other files named ``filename`` (``match="basename"``) or
        carrying the tag ``match`` (which the new metadata must carry too). Nothing is
        deleted unless the upload completed: a failed upload raises and leaves every old file
        in place. A failed delete raises too, leaving the new file and some old ones.
        """
        check_replace_match(match, metadata)
        check_upload_args(filename, metadata, datatypes)
        check_stream(source, max_bytes)
        new = self.upload(
            source,
            filename,
            metadata,
            datatypes=datatypes,
            max_bytes=max_bytes,
            project_member_id=project_member_id,
        )
        files = self.list_files(project_member_id=project_member_id)
        stale = superseded(files, new.id, filename, match)
        deleted: list[int] = []
        for file_id in stale:
            deleted += self.delete_files(file_id=file_id, project_member_id=project_member_id)
        return Replacement(new, deleted)

    def start_upload(
        self,
        filename: str,
        metadata: Mapping[str, Any],
        *,
        datatypes: Sequence[str | int] | None = None,
        project_member_id: str | None = None,
    ) -> UploadTarget:
        """Step 1 of a direct upload: create the file record, get a PUT URL.

        For a caller that PUTs the bytes elsewhere (a browser). Raises InvalidArgumentError
        for bad input (before any request), BadRequestError for a refusal.
        """
        check_upload_args(filename, metadata, datatypes)
        member = optional_member_id(project_member_id)
        direct = self._post(
            "files/upload/direct/", direct_body(member, filename, metadata, datatypes)
        )
        file_id, put_url = parse_direct(direct)
        return UploadTarget(id=file_id, url=str(put_url))

    def complete_upload(self, file_id: int, *, project_member_id: str | None = None) -> int:
        """Step 3 of a direct upload: mark file ``file_id`` complete.

        Returns the size Open Humans stored. Raises BadRequestError (``file not present``)
        when the bytes never arrived in storage.
        """
        check_file_selector(file_id=file_id)
        body = {**optional_member_id(project_member_id), "file_id": file_id}
        done = self._post("files/upload/complete/", body)
        size = done.get("size") if isinstance(done, dict) else None
        if not isinstance(size, int) or isinstance(size, bool):
            raise OpenHumansAPIResponseError("malformed upload/complete response")
        return size

    def delete_files(
        self,
        *,
        file_id: int | None = None,
        file_basename: str | None = None,
        all_files: bool = False,
        project_member_id: str | None = None,
    ) -> list[int]:
        """Delete files by id, by basename, or all of them; return the ids deleted.

        An unknown id deletes nothing and returns ``[]``. Raises InvalidArgumentError unless
        exactly one selector is given, and the errors of the client.
        """
        selector = check_file_selector(file_id, file_basename, all_files)
        body: dict[str, Any] = {**optional_member_id(project_member_id), **selector}
        return deleted_ids(self._post("files/delete/", body))

    def message(
        self,
        subject: str,
        message: str,
        *,
        project_member_ids: Sequence[str] | None = None,
        all_members: bool = False,
    ) -> None:
        """Email members through Open Humans, in one request.

        With a user token give neither ``project_member_ids`` nor ``all_members`` (the member
        is the token's owner). With the master token give exactly one; both are refused here,
        neither is refused by the server (BadRequestError). Ids travel as a JSON array
        (Open Humans reads only the last of repeated form keys). Raises InvalidArgumentError
        and the errors of the client.
        """
        self._post("message/", message_body(subject, message, project_member_ids, all_members))

    def remove_members(self, project_member_ids: Sequence[str] | None = None) -> None:
        """Deauthorize members; their tokens die, the webhook fires.

        With a user token pass nothing (removes the token's owner, empty POST); with the
        master token pass the ids (a JSON array). Raises InvalidArgumentError and the errors
        of the client; a 500 here may still have removed the members.
        """
        body = None
        if project_member_ids is not None:
            body = {"project_member_ids": member_ids(project_member_ids)}
        self._post("remove-members/", body)

    # -- master-token calls ----------------------------------------------------------------

    def iter_members(self) -> Iterator[Member]:
        """Yield every active member with all their files (master token).

        A member whose ``file_count`` exceeds the files included gets their full listing
        through exchange-member. Raises the errors of the client.
        """
        params = {"access_token": self._token, "limit": PAGE_SIZE}
        seen: set[str] = set()
        for _body, items in self._pages(
            "members/", params, envelope="results", token_in_query=True
        ):
            for item in items:
                member = Member.from_json(item)
                # No ORDER BY on the server (spec §2.3): pages may repeat a member.
                if member.project_member_id in seen:
                    continue
                seen.add(member.project_member_id)
                if member.file_count > len(member.files):
                    # The item's exchange_member link is built from the server's configured
                    # domain, not the request's, with the token pasted unencoded (spec §2.3);
                    # the same request built under base_url is equivalent and always allowed.
                    files = tuple(self.iter_files(project_member_id=member.project_member_id))
                    member = Member.from_json(item, files=files, file_count=len(files))
                yield member

    def member_ids(self) -> set[str]:
        """Return the ``project_member_id`` of every active member (master token).

        Lighter than :meth:`iter_members`: no member's full file listing is fetched. A
        member who left is not listed. Raises the errors of the client.
        """
        params = {"access_token": self._token, "limit": PAGE_SIZE}
        ids: set[str] = set()
        for _body, items in self._pages(
            "members/", params, envelope="results", token_in_query=True
        ):
            for item in items:
                pmid = item.get("project_member_id") if isinstance(item, dict) else None
                if not isinstance(pmid, str):
                    raise OpenHumansAPIResponseError("malformed member: no project_member_id")
                ids.add(pmid)
        return ids
