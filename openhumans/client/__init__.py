"""The Open Humans HTTP client: no Django models, usable from a plain script or a worker.

::

    from openhumans.client import OpenHumansClient
    with OpenHumansClient(access_token) as oh:
        for datafile in oh.iter_files():
            ...

``OpenHumansClient.shared(token)`` returns a client over the process's one connection pool
(what the Django app uses). OAuth2 (authorize URL, code exchange, refresh, PKCE) is in
module-level functions. Errors are those of :mod:`openhumans.exceptions`.

This module is the client's public face; its rooms are private::

    _api.py      OpenHumansClient: the project API calls
    _async.py    AsyncOpenHumansClient: the member calls as coroutines, same code paths
    _args.py     argument checks made before any request, upload stream preparation
    _files.py    file filters, and streaming a file down from storage
    _oauth.py    the authorize URL, the token endpoint, PKCE
    _http.py     URLs, the process's TLS context, error mapping, retries
    _pool.py     the shared per-process connection pools
    _results.py  the frozen dataclasses returned
"""

from __future__ import annotations

from ._api import OpenHumansClient, check_replace_match, json_bytes
from ._args import (
    MAX_FILE_ID,
    MAX_UPLOAD_SIZE,
    check_file_selector,
    check_max_bytes,
    check_message_args,
    check_stream,
    check_upload_args,
)
from ._async import AsyncOpenHumansClient
from ._files import DEFAULT_MAX_READ_SIZE, check_download_args, check_filters, file_id_of
from ._http import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, USER_AGENT
from ._oauth import authorize_url, code_challenge_s256, exchange_code, make_code_verifier, refresh
from ._pool import close_shared_pools
from ._results import DataFile, Member, Replacement, TokenSet, UploadResult, UploadTarget

__all__ = [
    "AsyncOpenHumansClient",
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_READ_SIZE",
    "DEFAULT_TIMEOUT",
    "MAX_FILE_ID",
    "MAX_UPLOAD_SIZE",
    "USER_AGENT",
    "DataFile",
    "Member",
    "OpenHumansClient",
    "Replacement",
    "TokenSet",
    "UploadResult",
    "UploadTarget",
    "authorize_url",
    "check_download_args",
    "check_file_selector",
    "check_filters",
    "check_max_bytes",
    "check_message_args",
    "check_stream",
    "check_replace_match",
    "check_upload_args",
    "close_shared_pools",
    "code_challenge_s256",
    "exchange_code",
    "file_id_of",
    "json_bytes",
    "make_code_verifier",
    "refresh",
]
