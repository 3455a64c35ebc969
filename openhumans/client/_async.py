"""``AsyncOpenHumansClient``: the client's member operations as coroutines (httpx.AsyncClient).

Only the I/O differs from :class:`~openhumans.client.OpenHumansClient`: argument checks,
request bodies, response parsing, error mapping, retry delays, file filters and download
decisions are the same functions (``_api``, ``_args``, ``_http``, ``_files``). Over 400
lines on purpose: it mirrors the sync client method for method, and reads best whole.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx

from openhumans.exceptions import InvalidArgumentError

from ._api import (
    API,
    PAGE_SIZE,
    _check_token,
    _json,
    check_replace_match,
    deleted_ids,
    direct_body,
    json_bytes,
    message_body,
    next_url,
    page_items,
    parse_direct,
    superseded,
    upload_result,
)
from ._args import (
    CHUNK_SIZE,
    Stream,
    body_chunks,
    check_file_selector,
    check_max_bytes,
    check_stream,
    check_upload_args,
    optional_member_id,
    prepare_stream,
)
from ._files import (
    DEFAULT_MAX_READ_SIZE,
    MAX_REDIRECTS,
    FileRef,
    LinkRefused,
    basename_of,
    check_filters,
    check_length,
    count_chunk,
    download_request,
    expired,
    file_id_of,
    http_url,
    known_url,
    match_files,
    newest,
    part_file,
    redirect_target,
    refusal,
    resolve_path,
    too_many_redirects,
)
from ._http import (
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT,
    PROCESS_TLS,
    USER_AGENT,
    ErrorMap,
    api_error_for,
    backoff_delay,
    check_timeout,
    connection_error,
    join_url,
    parse_base_url,
    retryable,
    storage_error_for,
)
from ._results import DataFile, Member, Replacement, UploadResult

__all__ = ["AsyncOpenHumansClient"]


def new_async_http_client(
    timeout: float, transport: httpx.AsyncBaseTransport | None
) -> httpx.AsyncClient:
    """An httpx.AsyncClient configured as the sync pool is (no redirects, no cookies kept)."""
    from http.cookiejar import CookieJar, DefaultCookiePolicy

    check_timeout(timeout)
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        transport=transport
        if transport is not None
        else httpx.AsyncHTTPTransport(verify=PROCESS_TLS),
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
    )


# An AsyncClient belongs to the event loop it first ran on: one shared pool per loop.
_loop_pools: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, float], httpx.AsyncClient]
] = weakref.WeakKeyDictionary()


def _shared_async_http(base_url: str, timeout: float) -> httpx.AsyncClient:
    pools = _loop_pools.setdefault(asyncio.get_running_loop(), {})
    key = (base_url, timeout)
    http = pools.get(key)
    if http is None or http.is_closed:
        http = pools[key] = new_async_http_client(timeout, None)
    return http


class AsyncRequester:
    """Sends requests through one async pool; retries GETs only (as the sync Requester)."""

    retry_backoff: float = 0.5
    retry_backoff_max: float = 8.0

    def __init__(self, http: httpx.AsyncClient, *, max_retries: int) -> None:
        if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0:
            raise InvalidArgumentError("max_retries", "must be an integer >= 0")
        self.http = http
        self.max_retries = max_retries

    async def send(
        self,
        method: str,
        url: httpx.URL,
        *,
        errors: ErrorMap = api_error_for,
        report_url: object = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send one request; return a 2xx response or raise the mapped error."""
        attempts = 1 + (self.max_retries if method == "GET" else 0)
        shown = report_url if report_url is not None else url
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = await self.http.request(method, url, **kwargs)
            except httpx.TransportError as err:
                if last:
                    raise connection_error(err, shown) from err
                await asyncio.sleep(
                    backoff_delay(attempt, None, self.retry_backoff, self.retry_backoff_max)
                )
                continue
            if response.is_success:
                return response
            if not last and retryable(method, response):
                await response.aclose()
                await asyncio.sleep(
                    backoff_delay(attempt, response, self.retry_backoff, self.retry_backoff_max)
                )
                continue
            raise errors(response, url=shown)
        raise AssertionError("unreachable")  # pragma: no cover


async def _chunks(source: IO[bytes], size: int) -> AsyncIterator[bytes]:
    for chunk in body_chunks(source, size):
        yield chunk


class AsyncOpenHumansClient:
    """The member-token operations of :class:`OpenHumansClient`, as coroutines.

    ``async with AsyncOpenHumansClient(token) as oh: files = await oh.list_files()``.
    :meth:`shared` uses one pool per event loop instead (what the Django app's ``a``-methods
    use). Same arguments, results and errors as the sync client.
    """

    def __init__(
        self,
        access_token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._token = _check_token(access_token)
        self.base_url = parse_base_url(base_url)
        self._http = new_async_http_client(timeout, transport)
        self._owns_http = True
        self._requester = AsyncRequester(self._http, max_retries=max_retries)

    @classmethod
    def shared(
        cls,
        access_token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 2,
    ) -> AsyncOpenHumansClient:
        """A client over the running event loop's shared pool (call inside a coroutine)."""
        client = cls.__new__(cls)
        client._token = _check_token(access_token)
        client.base_url = parse_base_url(base_url)
        client._http = _shared_async_http(base_url, check_timeout(timeout))
        client._owns_http = False
        client._requester = AsyncRequester(client._http, max_retries=max_retries)
        return client

    def __repr__(self) -> str:
        return f"<AsyncOpenHumansClient {self.base_url}>"

    async def aclose(self) -> None:
        """Close the pool (unless it is the shared one)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncOpenHumansClient:
        """Return the client; the pool is closed on exit."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the pool."""
        await self.aclose()

    @property
    def retry_backoff(self) -> float:
        """Base of the exponential backoff between GET retries, in seconds."""
        return self._requester.retry_backoff

    @retry_backoff.setter
    def retry_backoff(self, value: float) -> None:
        self._requester.retry_backoff = value

    # -- plumbing ------------------------------------------------------------------------------

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    async def _get(self, url: httpx.URL, params: Mapping[str, Any] | None = None) -> Any:
        return _json(await self._requester.send("GET", url, params=params, headers=self._auth()))

    async def _post(self, path: str, body: Mapping[str, Any] | None) -> Any:
        url = join_url(self.base_url, API + path)
        if body is None:
            response = await self._requester.send("POST", url, headers=self._auth())
        else:
            response = await self._requester.send("POST", url, json=body, headers=self._auth())
        return _json(response)

    # -- member calls ----------------------------------------------------------------------------

    async def exchange_member(self, *, project_member_id: str | None = None) -> Member:
        """The member and their first page of files."""
        params = {"limit": PAGE_SIZE, **optional_member_id(project_member_id)}
        body = await self._get(join_url(self.base_url, API + "exchange-member/"), params)
        return Member.from_json(body)

    async def iter_files(self, *, project_member_id: str | None = None) -> AsyncIterator[DataFile]:
        """Yield every file of the member once, following ``next`` links on the same origin."""
        url: httpx.URL | None = join_url(self.base_url, API + "exchange-member/")
        query: Mapping[str, Any] | None = {
            "limit": PAGE_SIZE,
            **optional_member_id(project_member_id),
        }
        seen_pages: set[str] = set()
        seen: set[int] = set()
        while url is not None:
            key = str(url.copy_merge_params(query or {}))
            if key in seen_pages:
                return
            seen_pages.add(key)
            body = await self._get(url, query)
            for item in page_items(body, "data", url):
                datafile = DataFile.from_json(item)
                if datafile.id not in seen:
                    seen.add(datafile.id)
                    yield datafile
            url, query = (
                next_url(body.get("next"), url.copy_merge_params(query or {}), self.base_url),
                None,
            )

    async def list_files(
        self,
        *,
        source: str | None = None,
        basename: str | None = None,
        tag: str | None = None,
        datatype: int | str | None = None,
        project_member_id: str | None = None,
    ) -> list[DataFile]:
        """The member's files matching every filter given (see OpenHumansClient.list_files)."""
        check_filters(source, basename, tag, datatype)
        files = [f async for f in self.iter_files(project_member_id=project_member_id)]
        return match_files(files, source=source, basename=basename, tag=tag, datatype=datatype)

    async def latest_file(
        self,
        *,
        source: str | None = None,
        basename: str | None = None,
        tag: str | None = None,
        datatype: int | str | None = None,
        project_member_id: str | None = None,
    ) -> DataFile | None:
        """The newest file matching the filters of :meth:`list_files`, or None."""
        # Named parameters, as the sync client's: the master-token client acting for a
        # member (models._ActingFor) finds ``project_member_id`` in the signature.
        return newest(
            await self.list_files(
                source=source,
                basename=basename,
                tag=tag,
                datatype=datatype,
                project_member_id=project_member_id,
            )
        )

    # -- reading files -------------------------------------------------------------------------

    async def _fresh_url(self, file_id: int, project_member_id: str | None) -> str:
        from openhumans.exceptions import UnknownFileError

        for datafile in await self.list_files(project_member_id=project_member_id):
            if datafile.id == file_id and datafile.download_url:
                return datafile.download_url
        raise UnknownFileError(file_id)

    async def _open(self, url: str, file_id: int) -> tuple[httpx.Response, httpx.URL]:
        target = http_url(url)
        for _hop in range(MAX_REDIRECTS + 1):
            shown = target.copy_with(query=None)
            try:
                response = await self._http.send(download_request(self._http, target), stream=True)
            except httpx.TransportError as err:
                raise connection_error(err, shown) from err
            if response.status_code == 200:
                return response, shown
            nxt = redirect_target(response, target)
            if nxt is None:
                await response.aread()
            await response.aclose()
            if nxt is None:
                raise refusal(response, file_id, shown)
            target = nxt
        raise too_many_redirects(target)

    async def _stream(
        self, url: str, file_id: int, write: Callable[[bytes], Any], max_bytes: int | None
    ) -> int:
        response, shown = await self._open(url, file_id)
        try:
            check_length(response, file_id, max_bytes)
            written = 0
            try:
                async for chunk in response.aiter_bytes(CHUNK_SIZE):
                    written = count_chunk(written, chunk, file_id, max_bytes)
                    write(chunk)
            except httpx.TransportError as err:
                raise connection_error(err, shown) from err
        finally:
            await response.aclose()
        return written

    async def _to_writer(
        self,
        file: FileRef,
        write: Callable[[bytes], Any],
        max_bytes: int | None,
        project_member_id: str | None,
    ) -> int:
        file_id = file_id_of(file)
        url = known_url(file) or await self._fresh_url(file_id, project_member_id)
        try:
            return await self._stream(url, file_id, write, max_bytes)
        except LinkRefused:
            pass  # spec §2.9: the key lived one hour; a fresh listing mints one
        try:
            fresh = await self._fresh_url(file_id, project_member_id)
            return await self._stream(fresh, file_id, write, max_bytes)
        except LinkRefused as refused:
            raise expired(refused) from None

    async def download(
        self,
        file: FileRef,
        destination: str | os.PathLike[str] | IO[bytes],
        *,
        max_bytes: int | None = None,
        project_member_id: str | None = None,
    ) -> int:
        """Stream one file to a path or binary file object; see OpenHumansClient.download."""
        file_id_of(file)
        check_max_bytes(max_bytes)
        path = resolve_path(destination, basename_of(file))
        if path is None:
            out: IO[bytes] = destination  # type: ignore[assignment]
            return await self._to_writer(file, out.write, max_bytes, project_member_id)
        handle = part_file(path)
        try:
            with handle:
                written = await self._to_writer(file, handle.write, max_bytes, project_member_id)
            os.replace(handle.name, path)
        except BaseException:
            Path(handle.name).unlink(missing_ok=True)
            raise
        return written

    async def read_bytes(
        self,
        file: FileRef,
        *,
        max_bytes: int | None = DEFAULT_MAX_READ_SIZE,
        project_member_id: str | None = None,
    ) -> bytes:
        """A file's contents (at most ``max_bytes``: 64 MiB)."""
        buffer = io.BytesIO()
        await self.download(file, buffer, max_bytes=max_bytes, project_member_id=project_member_id)
        return buffer.getvalue()

    async def read_text(
        self,
        file: FileRef,
        *,
        encoding: str = "utf-8",
        max_bytes: int | None = DEFAULT_MAX_READ_SIZE,
        project_member_id: str | None = None,
    ) -> str:
        """A file's contents decoded."""
        data = await self.read_bytes(file, max_bytes=max_bytes, project_member_id=project_member_id)
        return data.decode(encoding)

    async def read_json(
        self,
        file: FileRef,
        *,
        max_bytes: int | None = DEFAULT_MAX_READ_SIZE,
        project_member_id: str | None = None,
    ) -> Any:
        """A file's contents parsed as JSON."""
        return json.loads(
            await self.read_bytes(file, max_bytes=max_bytes, project_member_id=project_member_id)
        )

    # -- writing files -------------------------------------------------------------------------

    async def upload(
        self,
        stream: Stream,
        filename: str,
        metadata: Mapping[str, Any],
        *,
        datatypes: Sequence[str | int] | None = None,
        max_bytes: int | None = None,
        project_member_id: str | None = None,
    ) -> UploadResult:
        """Upload in three requests: direct -> PUT -> complete."""
        check_upload_args(filename, metadata, datatypes)
        member = optional_member_id(project_member_id)
        source, size, to_close = prepare_stream(stream, max_bytes)
        try:
            direct = await self._post(
                "files/upload/direct/", direct_body(member, filename, metadata, datatypes)
            )
            file_id, put_url = parse_direct(direct)
            await self._requester.send(
                "PUT",
                put_url,
                content=_chunks(source, size),
                headers={"Content-Length": str(size)},
                errors=storage_error_for,
                report_url=put_url.copy_with(query=None),
            )
            done = await self._post("files/upload/complete/", {**member, "file_id": file_id})
        finally:
            if to_close is not None:
                to_close.close()
        return upload_result(done, file_id, size, filename)

    async def upload_json(
        self,
        obj: Any,
        filename: str,
        metadata: Mapping[str, Any],
        *,
        datatypes: Sequence[str | int] | None = None,
        project_member_id: str | None = None,
    ) -> UploadResult:
        """Upload ``obj`` serialised as UTF-8 JSON."""
        check_upload_args(filename, metadata, datatypes)
        return await self.upload(
            json_bytes(obj),
            filename,
            metadata,
            datatypes=datatypes,
            project_member_id=project_member_id,
        )

    async def replace_file(
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
        """Upload, then delete the files superseded; nothing is deleted if the upload fails."""
        check_replace_match(match, metadata)
        check_upload_args(filename, metadata, datatypes)
        check_stream(source, max_bytes)
        new = await self.upload(
            source,
            filename,
            metadata,
            datatypes=datatypes,
            max_bytes=max_bytes,
            project_member_id=project_member_id,
        )
        files = await self.list_files(project_member_id=project_member_id)
        deleted: list[int] = []
        for file_id in superseded(files, new.id, filename, match):
            deleted += await self.delete_files(file_id=file_id, project_member_id=project_member_id)
        return Replacement(new, deleted)

    async def delete_files(
        self,
        *,
        file_id: int | None = None,
        file_basename: str | None = None,
        all_files: bool = False,
        project_member_id: str | None = None,
    ) -> list[int]:
        """Delete files by id, by basename, or all; return the ids deleted."""
        selector = check_file_selector(file_id, file_basename, all_files)
        body: dict[str, Any] = {**optional_member_id(project_member_id), **selector}
        return deleted_ids(await self._post("files/delete/", body))

    async def message(
        self,
        subject: str,
        message: str,
        *,
        project_member_ids: Sequence[str] | None = None,
        all_members: bool = False,
    ) -> None:
        """Email members through Open Humans."""
        await self._post(
            "message/", message_body(subject, message, project_member_ids, all_members)
        )


#: What the app's ``a``-methods run: a coroutine function taking the async client.
AsyncOperation = Callable[[AsyncOpenHumansClient], Awaitable[Any]]
