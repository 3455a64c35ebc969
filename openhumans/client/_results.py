"""The small frozen dataclasses the client returns (private: use ``openhumans.client``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from openhumans.exceptions import OpenHumansAPIResponseError, redact_url


def parse_datetime(value: Any) -> datetime | None:
    """Parse an ISO 8601 datetime as Open Humans sends it (with a ``Z`` suffix)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _malformed(what: str, err: Exception | None = None) -> OpenHumansAPIResponseError:
    reason = f" ({type(err).__name__})" if err else ""
    return OpenHumansAPIResponseError(f"malformed {what} in the response{reason}")


@dataclass(frozen=True)
class DataFile:
    """One completed file, as listed by exchange-member."""

    id: int
    basename: str
    created: datetime
    # download_url carries a one-hour key (spec §2.9): keep it out of reprs.
    download_url: str = field(repr=False)
    metadata: dict[str, Any] = field(hash=False, compare=False)
    source: str
    datatypes: tuple[str, ...]
    raw: dict[str, Any] = field(repr=False, hash=False, compare=False)

    @classmethod
    def from_json(cls, obj: Any) -> DataFile:
        """Build from a file object of the API; raise OpenHumansAPIResponseError if malformed."""
        if not isinstance(obj, Mapping):
            raise _malformed("file object")
        try:
            created = parse_datetime(obj.get("created"))
            return cls(
                id=int(obj["id"]),
                basename=str(obj["basename"]),
                created=created or datetime.min.replace(tzinfo=UTC),
                download_url=str(obj.get("download_url") or ""),
                metadata=dict(obj.get("metadata") or {}),
                source=str(obj.get("source") or ""),
                datatypes=tuple(str(d) for d in obj.get("datatypes") or ()),
                raw=dict(obj),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise _malformed("file object", err) from err

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON object as received (the documented ``list_files()`` item shape)."""
        return dict(self.raw)


@dataclass(frozen=True)
class Member:
    """A project member and their files."""

    project_member_id: str
    created: datetime | None
    username: str | None
    sources_shared: tuple[str, ...]
    file_count: int
    files: tuple[DataFile, ...]
    raw: dict[str, Any] = field(repr=False, hash=False, compare=False)

    @classmethod
    def from_json(
        cls, obj: Any, *, files: tuple[DataFile, ...] | None = None, file_count: int | None = None
    ) -> Member:
        """Build from an exchange-member body or a members item; raise if malformed."""
        if not isinstance(obj, Mapping):
            raise _malformed("member object")
        try:
            if files is None:
                files = tuple(DataFile.from_json(f) for f in obj.get("data") or ())
            if file_count is None:
                count = obj.get("file_count", obj.get("count"))
                file_count = int(count) if count is not None else len(files)
            raw = dict(obj)
            for link in ("exchange_member", "next", "previous"):
                if isinstance(raw.get(link), str):
                    # spec §5.2: these links may embed the token; never keep it around.
                    raw[link] = redact_url(raw[link])
            username = obj.get("username")
            return cls(
                project_member_id=str(obj["project_member_id"]),
                created=parse_datetime(obj.get("created")),
                username=str(username) if username is not None else None,
                sources_shared=tuple(str(s) for s in obj.get("sources_shared") or ()),
                file_count=file_count,
                files=files,
                raw=raw,
            )
        except (KeyError, TypeError, ValueError) as err:
            raise _malformed("member object", err) from err


@dataclass(frozen=True)
class UploadResult:
    """A completed upload: the new file's id, its size as Open Humans stored it, its name."""

    id: int
    size: int
    basename: str


class Replacement(NamedTuple):
    """What ``replace_file`` did: the new file, then the ids of the files it superseded."""

    file: UploadResult
    deleted: list[int]


@dataclass(frozen=True)
class UploadTarget:
    """A started direct upload (step 1): the file's id and where to PUT its bytes."""

    id: int
    # The presigned URL is a credential for six hours: keep it out of reprs.
    url: str = field(repr=False)


@dataclass(frozen=True)
class TokenSet:
    """An OAuth2 access/refresh token pair; the repr never shows the tokens."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: datetime
    scope: frozenset[str]
    token_type: str = "Bearer"

    @property
    def expires_in(self) -> int:
        """Seconds of life left in the access token (0 once expired)."""
        return max(0, int((self.expires_at - datetime.now(UTC)).total_seconds()))

    @classmethod
    def from_response(cls, body: Any, *, now: datetime | None = None) -> TokenSet:
        """Build from a token endpoint body; raise if it lacks a field."""
        if not isinstance(body, Mapping):
            raise _malformed("token response")
        try:
            access, refresh = body["access_token"], body["refresh_token"]
            if not (isinstance(access, str) and access and isinstance(refresh, str) and refresh):
                raise TypeError("tokens must be non-empty strings")
            expires_in = int(body["expires_in"])
            scope = body.get("scope") or ""
            return cls(
                access_token=access,
                refresh_token=refresh,
                expires_at=(now or datetime.now(UTC)) + timedelta(seconds=expires_in),
                # spec §1.2: an unordered, space-separated set.
                scope=frozenset(str(scope).split()),
                token_type=str(body.get("token_type") or "Bearer"),
            )
        except (KeyError, TypeError, ValueError, OverflowError) as err:
            raise _malformed("token response", err) from err
