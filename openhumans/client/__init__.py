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
    _args.py     argument checks made before any request, upload stream preparation
    _oauth.py    the authorize URL, the token endpoint, PKCE
    _http.py     URLs, the process's TLS context, error mapping, retries
    _pool.py     the shared per-process connection pools
    _results.py  the frozen dataclasses returned
"""

from __future__ import annotations

from ._api import OpenHumansClient
from ._args import (
    MAX_FILE_ID,
    MAX_UPLOAD_SIZE,
    check_file_selector,
    check_message_args,
    check_stream,
    check_upload_args,
)
from ._http import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, USER_AGENT
from ._oauth import authorize_url, code_challenge_s256, exchange_code, make_code_verifier, refresh
from ._pool import close_shared_pools
from ._results import DataFile, Member, TokenSet, UploadResult

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "MAX_FILE_ID",
    "MAX_UPLOAD_SIZE",
    "USER_AGENT",
    "DataFile",
    "Member",
    "OpenHumansClient",
    "TokenSet",
    "UploadResult",
    "authorize_url",
    "check_file_selector",
    "check_message_args",
    "check_stream",
    "check_upload_args",
    "close_shared_pools",
    "code_challenge_s256",
    "exchange_code",
    "make_code_verifier",
    "refresh",
]
