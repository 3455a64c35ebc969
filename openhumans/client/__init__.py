"""The Open Humans HTTP client: no Django models, usable from a plain script or a worker.

::

    from openhumans.client import OpenHumansClient
    with OpenHumansClient(access_token) as oh:
        for datafile in oh.iter_files():
            ...

OAuth2 (authorize URL, code exchange, refresh, PKCE) is in module-level functions.
Errors are those of :mod:`openhumans.exceptions`.
"""

from __future__ import annotations

from .api import OpenHumansClient
from .http import DEFAULT_BASE_URL, USER_AGENT
from .oauth import authorize_url, code_challenge_s256, exchange_code, make_code_verifier, refresh
from .results import DataFile, Member, TokenSet, UploadResult, UploadTarget

__all__ = [
    "DEFAULT_BASE_URL",
    "USER_AGENT",
    "DataFile",
    "Member",
    "OpenHumansClient",
    "TokenSet",
    "UploadResult",
    "UploadTarget",
    "authorize_url",
    "code_challenge_s256",
    "exchange_code",
    "make_code_verifier",
    "refresh",
]
