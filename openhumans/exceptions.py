"""The errors django-open-humans raises.

::

    OpenHumansError                      root of every error in using Open Humans
    ├── InvalidArgumentError             bad input refused before any request (also ValueError)
    ├── OpenHumansConnectionError        transport failure or timeout talking to Open Humans
    ├── MemberDeauthorizedError          the member left, or their token refresh was refused
    │   └── ReauthorizationRequiredError the member's token pair was lost, not withdrawn
    ├── MemberLinkError                  the Open Humans account or the Django user is taken
    ├── UnknownFileError                 no such file in the member's listing (also LookupError)
    ├── FileTooLargeError                a download is bigger than its ``max_bytes`` cap
    └── OpenHumansAPIResponseError       Open Humans answered with an error status
        ├── BadRequestError              400 from the project API; ``.errors``: a field map
        ├── InvalidTokenError            401 from the project API: the token is unusable
        │   └── MasterTokenExpiredError  the master token is past its 24 hours: renew it
        ├── NotFoundError                404
        ├── ServerError                  5xx
        ├── DownloadExpiredError         a download link was refused again after a fresh listing
        ├── StorageError                 the storage host (S3) answered a download with non-200
        └── OAuthError                   error from /oauth2/token/; ``.error``: the OAuth2 code
            └── InvalidGrantError        invalid_grant (400 now, 401 in 2018): re-authorize

    ImproperlyConfigured                 (Django's)
    └── OpenHumansConfigurationError     a setting is missing or invalid; names it

A configuration error stands apart, as in django-anymail: ``except OpenHumansError`` never
swallows a misconfiguration, which stays a 500 naming the setting.

Every response error carries ``status_code``, the parsed ``body`` and the ``url`` with any
``access_token`` redacted. No token ever appears in an exception message.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ImproperlyConfigured

__all__ = [
    "BadRequestError",
    "DownloadExpiredError",
    "FileTooLargeError",
    "InvalidArgumentError",
    "InvalidGrantError",
    "InvalidTokenError",
    "MasterTokenExpiredError",
    "MemberDeauthorizedError",
    "MemberLinkError",
    "NotFoundError",
    "OAuthError",
    "OpenHumansAPIResponseError",
    "OpenHumansConfigurationError",
    "OpenHumansConnectionError",
    "OpenHumansError",
    "ReauthorizationRequiredError",
    "ServerError",
    "StorageError",
    "UnknownFileError",
    "redact_url",
]

# Tokens, codes and download keys (spec §5.2, §2.9), and presigned S3 URL credentials (§2.6).
_TOKEN_IN_QUERY = re.compile(
    r"(?i)((?:access_token|refresh_token|code|key|code_verifier|signature|awsaccesskeyid"
    r"|x-amz-credential|x-amz-security-token)=)[^&#\s]*"
)


def redact_url(url: object) -> str:
    """Return ``url`` as a string with token-like query values replaced by ``***``."""
    return _TOKEN_IN_QUERY.sub(r"\1***", str(url))


class OpenHumansError(Exception):
    """Root of every error raised by django-open-humans."""


class OpenHumansConfigurationError(ImproperlyConfigured):
    """A required setting is missing or invalid; the message names it (not an OpenHumansError)."""


class InvalidArgumentError(OpenHumansError, ValueError):
    """An argument was refused before any request was made; ``.argument`` names it."""

    def __init__(self, argument: str, message: str) -> None:
        self.argument = argument
        super().__init__(f"{argument}: {message}")


class OpenHumansConnectionError(OpenHumansError):
    """Open Humans could not be reached (connection failure, dropped connection, timeout)."""

    def __init__(self, message: str, *, url: object = None) -> None:
        self.url = redact_url(url) if url is not None else None
        super().__init__(f"{message} ({self.url})" if self.url else message)


class MemberDeauthorizedError(OpenHumansError):
    """The member is no longer authorized: they left, or their token could not be refreshed."""


class ReauthorizationRequiredError(MemberDeauthorizedError):
    """Open Humans refused the member's refresh token, but the member did not leave.

    A refresh whose answer was lost rotates the pair on the server and leaves us
    a dead one. The member stays in the project; they must log in again (or the app acts
    for them with ``OPENHUMANS_MASTER_TOKEN``).
    """


class MemberLinkError(OpenHumansError):
    """The Open Humans account and the Django user cannot be linked (one of them is taken)."""


class OpenHumansAPIResponseError(OpenHumansError):
    """Open Humans answered with an error status.

    ``status_code`` is the HTTP status, ``body`` the parsed JSON body (or the text when it
    was not JSON), ``url`` the request URL with tokens redacted.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        body: Any = None,
        url: object = None,
    ) -> None:
        self.status_code = status_code
        self.body = body
        self.url = redact_url(url) if url is not None else None
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        where = f" from {self.url}" if self.url else ""
        status = f"{self.status_code} " if self.status_code is not None else ""
        return f"{status}{self.message}{where}"


class BadRequestError(OpenHumansAPIResponseError):
    """Open Humans refused the request's fields (400).

    ``errors`` maps each field (or ``__all__``) to a list of messages, whichever of the two
    error envelopes the endpoint used.
    """

    def __init__(self, message: str, *, errors: dict[str, list[str]] | None = None, **kw: Any):
        self.errors: dict[str, list[str]] = errors or {}
        super().__init__(message, **kw)


class InvalidTokenError(OpenHumansAPIResponseError):
    """The access token is missing, expired, revoked or unknown (401 from the project API)."""


class MasterTokenExpiredError(InvalidTokenError):
    """The project's master token was refused: it lasts 24 hours.

    ``renew_url`` is the project page where a coordinator gets a new one.
    """

    def __init__(self, message: str, *, renew_url: str = "", **kw: Any) -> None:
        self.renew_url = renew_url
        super().__init__(message, **kw)


class NotFoundError(OpenHumansAPIResponseError):
    """The resource does not exist (404)."""


class ServerError(OpenHumansAPIResponseError):
    """Open Humans failed (5xx)."""


class OAuthError(OpenHumansAPIResponseError):
    """The OAuth2 token endpoint refused the request; ``error`` is the OAuth2 error code."""

    def __init__(
        self, message: str, *, error: str = "", error_description: str = "", **kw: Any
    ) -> None:
        self.error = error
        self.error_description = error_description
        super().__init__(message, **kw)


class InvalidGrantError(OAuthError):
    """The code or refresh token is bad, used or revoked: the member must authorize again."""


class UnknownFileError(OpenHumansError, LookupError):
    """The file is not (or no longer) in the member's listing; ``.file_id`` says which."""

    def __init__(self, file_id: object) -> None:
        self.file_id = file_id
        super().__init__(f"file {file_id} is not among the member's files on Open Humans")


class FileTooLargeError(OpenHumansError):
    """A file is bigger than the ``max_bytes`` allowed; nothing more was read or kept."""

    def __init__(self, what: str, size: int | None, max_bytes: int) -> None:
        self.size = size
        self.max_bytes = max_bytes
        known = f"is {size} bytes" if size is not None else "is larger than that"
        super().__init__(f"{what} {known}; the limit (max_bytes) is {max_bytes} bytes")


class DownloadExpiredError(OpenHumansAPIResponseError):
    """The download link was refused (403), and again with the fresh one of a new listing."""


class StorageError(OpenHumansAPIResponseError):
    """The storage host answered a download with an error status."""
