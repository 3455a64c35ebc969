"""OpenHumansMember: an Open Humans account linked to a Django user, and its API calls.

Every network call goes through :class:`openhumans.client.OpenHumansClient` (or the client's
token functions) with ``OPENHUMANS_OH_BASE_URL`` and ``OPENHUMANS_TIMEOUT`` read at call time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import IO, Any, TypeVar

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, models, transaction
from django.urls import reverse
from django.utils import timezone

from . import client as oh_client
from .client.api import check_file_selector, check_message_args, check_stream, check_upload_args
from .conf import get_setting, redirect_uri
from .exceptions import (
    InvalidArgumentError,
    InvalidGrantError,
    InvalidTokenError,
    MemberDeauthorizedError,
    OpenHumansError,
)

__all__ = [
    "MemberLinkError",
    "OpenHumansMember",
    "PendingDeauthNotice",
    "make_unique_username",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Refresh when fewer than this many seconds of access-token life remain (spec §1.4).
REFRESH_MARGIN = timedelta(seconds=60)


class MemberLinkError(OpenHumansError):
    """The Open Humans account and the Django user cannot be linked (one of them is taken)."""


def make_unique_username(base: str) -> str:
    """Return ``base``, or ``base`` followed by the smallest number >= 2 that is not taken."""
    user_model = get_user_model()
    field = user_model.USERNAME_FIELD
    manager = user_model._default_manager
    if not manager.filter(**{field: base}).exists():
        return base
    counter = 2
    while manager.filter(**{field: f"{base}{counter}"}).exists():
        counter += 1
    return f"{base}{counter}"


def _printable(value: str) -> bool:
    # A NUL or other control character would be a DataError (a 500) on PostgreSQL.
    return value.isascii() and value.isprintable() and " " not in value


def _stored_time(value: datetime) -> datetime:
    """Return the client's aware expiry as the project stores datetimes (USE_TZ or not)."""
    if not settings.USE_TZ and timezone.is_aware(value):
        # 0.2.0 ran with USE_TZ = False too; SQLite/MySQL refuse aware datetimes then.
        return timezone.make_naive(value)
    return value


def _token_fields(data: Any) -> tuple[str, str, datetime]:
    """Return (access, refresh, expiry) from a TokenSet or a token endpoint dict (spec §1.2)."""
    if isinstance(data, oh_client.TokenSet):
        return data.access_token, data.refresh_token, _stored_time(data.expires_at)
    if isinstance(data, Mapping):
        access, refresh = data.get("access_token"), data.get("refresh_token")
        try:
            expires = timezone.now() + timedelta(seconds=int(data["expires_in"]))
        except (KeyError, TypeError, ValueError, OverflowError) as err:
            raise InvalidArgumentError("data", "needs expires_in, a number of seconds") from err
        if not (isinstance(access, str) and access and isinstance(refresh, str) and refresh):
            raise InvalidArgumentError("data", "needs access_token and refresh_token strings")
        return access, refresh, expires
    raise InvalidArgumentError("data", "must be a TokenSet or a token response dict")


def _new_client(access_token: str) -> oh_client.OpenHumansClient:
    return oh_client.OpenHumansClient(
        access_token,
        base_url=get_setting("OPENHUMANS_OH_BASE_URL"),
        timeout=float(get_setting("OPENHUMANS_TIMEOUT")),
    )


def _refresh(refresh_token: str, client_id: str | None, client_secret: str | None) -> Any:
    return oh_client.refresh(
        refresh_token=refresh_token,
        client_id=client_id or get_setting("OPENHUMANS_CLIENT_ID"),
        client_secret=client_secret or get_setting("OPENHUMANS_CLIENT_SECRET"),
        base_url=get_setting("OPENHUMANS_OH_BASE_URL"),
        timeout=float(get_setting("OPENHUMANS_TOKEN_TIMEOUT")),
    )


class OpenHumansMember(models.Model):
    """Data storage, auth, etc. related to an Open Humans member account."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    oh_id = models.CharField(max_length=16, primary_key=True, unique=True)
    # TextField: Open Humans' tokens are 30 chars today, but nothing promises that.
    access_token = models.TextField()
    refresh_token = models.TextField()
    token_expires = models.DateTimeField()
    public = models.BooleanField(default=False)
    oh_deauth = models.BooleanField(default=False)
    created = models.DateTimeField(default=timezone.now, editable=False)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Open Humans member"

    def __str__(self) -> str:
        return f"<OpenHumansMember (oh_id='{self.oh_id}')>"

    def __repr__(self) -> str:
        return str(self)

    # -- creating and linking -------------------------------------------------------------

    @classmethod
    def create(cls, oh_id: str, data: Any, user: Any = None) -> OpenHumansMember:
        """Create and save an Open Humans member, and corresponding User, if not provided.

        ``data`` is the token endpoint's response (a dict with ``access_token``,
        ``refresh_token`` and ``expires_in``) or a :class:`~openhumans.client.TokenSet`.
        """
        if isinstance(oh_id, int) and not isinstance(oh_id, bool):
            oh_id = str(oh_id)  # 0.2.0 took whatever it was given
        if not isinstance(oh_id, str) or not 1 <= len(oh_id) <= 16 or not _printable(oh_id):
            raise InvalidArgumentError(
                "oh_id", "must be a project member id of 1-16 printable ASCII characters"
            )
        access, refresh, expires = _token_fields(data)
        with transaction.atomic():
            if user is None:
                user_model = get_user_model()
                username = make_unique_username(f"{oh_id}_openhumans")
                user = user_model(**{user_model.USERNAME_FIELD: username})
                user.set_unusable_password()  # they log in through Open Humans only
                user.save()
            member = cls(
                user=user,
                oh_id=oh_id,
                access_token=access,
                refresh_token=refresh,
                token_expires=expires,
            )
            member.save(force_insert=True)
        return member

    @classmethod
    def get_create_member(cls, data: Any, user: Any = None) -> OpenHumansMember:
        """Use the token exchange's ``data`` to create or update the member, and return it.

        Asks Open Humans who the tokens belong to. With ``user``, links the member to that
        user; raises MemberLinkError if the member belongs to another user or the user has
        another member. Concurrent first logins of one member create one user.
        """
        access, _, _ = _token_fields(data)
        with _new_client(access) as api:
            oh_id = api.exchange_member().project_member_id
        return cls._store_tokens(oh_id, data, user)

    @classmethod
    def _store_tokens(cls, oh_id: str, data: Any, user: Any) -> OpenHumansMember:
        access, refresh, expires = _token_fields(data)
        for _attempt in range(3):
            try:
                with transaction.atomic():
                    member = cls.objects.select_for_update().filter(oh_id=oh_id).first()
                    if member is None:
                        if user is not None and cls.objects.filter(user=user).exists():
                            raise MemberLinkError(
                                "This account is already connected to another Open Humans account."
                            )
                        created = cls.create(oh_id, data, user=user)
                        logger.info("Open Humans member %s created", oh_id)
                        return created
                    if user is not None and member.user_id != user.pk:
                        raise MemberLinkError(
                            "This Open Humans account is already connected to another user."
                        )
                    member.access_token, member.refresh_token = access, refresh
                    member.token_expires = expires
                    member.oh_deauth = False
                    member.save()
                    logger.info("Open Humans member %s re-authorized", oh_id)
                    return member
            except IntegrityError:
                # A concurrent first login inserted the member (or its username) first; the
                # retry finds it and updates it instead of creating a second user.
                logger.info("concurrent first login of %s; retrying", oh_id)
        raise MemberLinkError(f"Could not store Open Humans member {oh_id}.")

    @classmethod
    def oh_code_to_member(
        cls, code: str, *, code_verifier: str | None = None, user: Any = None
    ) -> OpenHumansMember:
        """Exchange code for token, use this to create and return ``OpenHumansMember``.

        If a matching ``OpenHumansMember`` already exists in db, update and return it.
        Raises InvalidArgumentError for an empty code, InvalidGrantError for a bad or used
        code, other OpenHumansError subclasses when Open Humans fails.
        """
        if not code:
            raise InvalidArgumentError("code", "empty or not provided")
        tokens = oh_client.exchange_code(
            code=code,
            client_id=get_setting("OPENHUMANS_CLIENT_ID"),
            client_secret=get_setting("OPENHUMANS_CLIENT_SECRET"),
            redirect_uri=redirect_uri(),
            code_verifier=code_verifier,
            base_url=get_setting("OPENHUMANS_OH_BASE_URL"),
            timeout=float(get_setting("OPENHUMANS_TOKEN_TIMEOUT")),
        )
        return cls.get_create_member(tokens, user=user)

    @staticmethod
    def get_auth_url() -> str:
        """Gets the authentication url.

        This is the app's login view (``openhumans:login``), which redirects to Open Humans
        with a fresh single-use ``state`` (and PKCE); append ``?next=...`` to come back
        somewhere. Unlike 0.2.0 it is a path, not Open Humans' authorize URL, because a
        usable authorize URL needs per-browser state.
        """
        return reverse("openhumans:login")

    # -- tokens ---------------------------------------------------------------------------

    def _needs_refresh(self) -> bool:
        return self.token_expires - REFRESH_MARGIN < timezone.now()

    def _load_tokens(self, other: OpenHumansMember) -> None:
        self.access_token, self.refresh_token = other.access_token, other.refresh_token
        self.token_expires, self.oh_deauth = other.token_expires, other.oh_deauth

    def get_access_token(
        self, client_id: str | None = None, client_secret: str | None = None
    ) -> str:
        """Return access token. Refresh first if necessary.

        ``client_id``/``client_secret`` default to ``OPENHUMANS_CLIENT_ID``/``_SECRET``.
        Raises MemberDeauthorizedError if the member left or Open Humans refused the refresh
        (the member is then marked ``oh_deauth``), other OpenHumansError subclasses if the
        refresh failed for another reason. Never returns a token known to be stale.
        """
        return self._access_token(client_id, client_secret, force=False)

    def refresh_tokens(
        self, client_id: str | None = None, client_secret: str | None = None
    ) -> None:
        """Refresh the token pair now, whatever its expiry; raises like get_access_token()."""
        self._access_token(client_id, client_secret, force=True)

    def _access_token(
        self,
        client_id: str | None,
        client_secret: str | None,
        *,
        force: bool,
        stale_token: str | None = None,
    ) -> str:
        # Re-read the row: another process may have rotated the pair, which kills the token
        # this instance holds (spec §1.4).
        current = type(self).objects.filter(pk=self.pk).first()
        if current is None:
            raise MemberDeauthorizedError(f"Open Humans member {self.oh_id} no longer exists.")
        self._load_tokens(current)
        if self.oh_deauth:
            raise MemberDeauthorizedError(f"Open Humans member {self.oh_id} is deauthorized.")
        if not force and stale_token is None and not self._needs_refresh():
            return self.access_token
        refused = False
        with transaction.atomic():
            locked = type(self).objects.select_for_update().filter(pk=self.pk).first()
            if locked is None:
                raise MemberDeauthorizedError(f"Open Humans member {self.oh_id} no longer exists.")
            wanted = (
                force
                or locked._needs_refresh()
                or (stale_token is not None and locked.access_token == stale_token)
            )
            if locked.oh_deauth:
                pass
            elif wanted and (not force or locked.access_token == self.access_token):
                # The one network call made inside a transaction, on purpose: Open Humans
                # rotates the refresh token and kills the old access token at once (spec
                # §1.4), so the exchange must be serialized by this row lock; a second caller
                # waits here and then finds the fresh pair instead of refreshing again.
                try:
                    tokens = _refresh(locked.refresh_token, client_id, client_secret)
                except InvalidGrantError:
                    locked.oh_deauth = True
                    locked.save(update_fields=["oh_deauth", "updated"])
                    refused = True
                else:
                    locked.access_token = tokens.access_token
                    locked.refresh_token = tokens.refresh_token
                    locked.token_expires = _stored_time(tokens.expires_at)
                    locked.save(
                        update_fields=["access_token", "refresh_token", "token_expires", "updated"]
                    )
                    logger.info("refreshed the tokens of Open Humans member %s", self.oh_id)
            self._load_tokens(locked)
        if refused:
            logger.warning("Open Humans refused to refresh member %s: deauthorized", self.oh_id)
            raise MemberDeauthorizedError(
                f"Open Humans refused to refresh the token of member {self.oh_id}; "
                "they must log in again."
            )
        if self.oh_deauth:
            raise MemberDeauthorizedError(f"Open Humans member {self.oh_id} is deauthorized.")
        return self.access_token

    def _call(
        self, operation: Callable[[oh_client.OpenHumansClient], T], *, retry: bool = True
    ) -> T:
        """Run ``operation`` with a client holding a fresh token; retry once after a 401."""
        token = self.get_access_token()
        try:
            with _new_client(token) as api:
                return operation(api)
        except InvalidTokenError:
            if not retry:
                raise
            # The token died early (refreshed elsewhere, or the member left): refresh once.
            # A 401 means nothing happened on the server, so repeating is safe.
            token = self._access_token(None, None, force=False, stale_token=token)
            with _new_client(token) as api:
                return operation(api)

    # -- the documented API calls ---------------------------------------------------------

    def list_files(self) -> list[dict[str, Any]]:
        """List files."""
        return [f.as_dict() for f in self._call(lambda api: api.list_files())]

    def upload(
        self,
        stream: IO[Any] | bytes,
        filename: str,
        metadata: dict[str, Any],
        file_identifier: str | None = None,
    ) -> Any:
        """Upload file to Open Humans.

        ``stream`` is a text or binary file object (or bytes); ``metadata`` needs
        ``description`` and ``tags`` (spec §4.3). ``file_identifier`` only names the file
        in log lines. Returns the client's UploadResult.
        """
        # Refused before any request, even a token refresh (the client checks again).
        check_upload_args(filename, metadata)
        check_stream(stream)
        seekable = isinstance(stream, bytes) or bool(getattr(stream, "seekable", lambda: False)())
        start = 0 if isinstance(stream, bytes) else (stream.tell() if seekable else 0)

        def operation(api: oh_client.OpenHumansClient) -> Any:
            if seekable and not isinstance(stream, bytes):
                stream.seek(start)  # rewound for the one retry after a 401
            return api.upload(stream, filename, metadata)

        # A stream that cannot be rewound is not retried: a second try would send less.
        result = self._call(operation, retry=seekable)
        logger.info(
            "uploaded %s for Open Humans member %s as file %s",
            file_identifier or filename,
            self.oh_id,
            getattr(result, "id", "?"),
        )
        return result

    def delete_single_file(
        self, file_id: int | str | None = None, file_basename: str | None = None
    ) -> list[int]:
        """Deletes a file. Specify file_id or file_basename but not both.

        A basename deletes every file of that name. Returns the deleted ids. Raises
        InvalidArgumentError (a ValueError) for neither, both, or a non-integer file_id.
        """
        if (file_id is None or file_id == "") == (not file_basename):
            raise InvalidArgumentError("file_id", "specify exactly one of file_id or file_basename")
        if file_basename:
            check_file_selector(file_basename=file_basename)
            return self._call(lambda api: api.delete_files(file_basename=file_basename))
        try:
            number = int(str(file_id))
        except ValueError:
            raise InvalidArgumentError(
                "file_id",
                "should be an integer (did you mean file_basename=...?)",
            ) from None
        check_file_selector(file_id=number)
        return self._call(lambda api: api.delete_files(file_id=number))

    def delete_all_files(self) -> list[int]:
        """Delete every file this project uploaded for the member; return the deleted ids."""
        return self._call(lambda api: api.delete_files(all_files=True))

    def message(self, subject: str, message: str) -> None:
        """Send messages.

        :param subject: This field is the subject of the message.
        :param message: This field is the message which is to be send.
        """
        check_message_args(subject, message)
        self._call(lambda api: api.message(subject, message))

    def deauth(self) -> None:
        """Deauthorize the Open Humans account (remove-members with the member's token).

        This does not delete the account locally; the member is marked ``oh_deauth`` and must
        log in again to be usable. Open Humans calls the deauth webhook during this call
        (spec §2.5).
        """
        self._call(lambda api: api.remove_members())
        type(self).objects.filter(pk=self.pk).update(oh_deauth=True, updated=timezone.now())
        self.oh_deauth = True
        logger.info("deauthorized Open Humans member %s", self.oh_id)


class PendingDeauthNotice(models.Model):
    """A remove-members call owed to Open Humans for a member deleted here (DEAUTH_ON_DELETE).

    Kept until Open Humans accepted it, so an outage never loses it; the tokens are the
    deleted member's (needed to call remove-members) and are never shown.
    """

    project_member_id = models.CharField(max_length=16, db_index=True)
    access_token = models.TextField()
    refresh_token = models.TextField()
    token_expires = models.DateTimeField()
    created = models.DateTimeField(default=timezone.now, editable=False)
    attempts = models.PositiveIntegerField(default=0)
    last_attempt = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        verbose_name = "pending deauthorization notice"
        ordering = ["created"]

    def __str__(self) -> str:
        return f"<PendingDeauthNotice (project_member_id='{self.project_member_id}')>"

    def __repr__(self) -> str:
        return str(self)

    def send(self) -> bool:
        """Tell Open Humans the member left; return True once done (the notice is deleted).

        Never raises an OpenHumansError: a failure is recorded on the notice for a retry.
        Another process may send the same notice at once; it is never lost for that.
        """
        row = type(self).objects.filter(pk=self.pk)
        used = self.refresh_token
        try:
            token = self.access_token
            if self.token_expires - REFRESH_MARGIN < timezone.now():
                tokens = _refresh(self.refresh_token, None, None)
                # Keep the rotated pair at once: the old refresh token is dead (spec §1.4).
                self.access_token, self.refresh_token = tokens.access_token, tokens.refresh_token
                self.token_expires = _stored_time(tokens.expires_at)
                used = self.refresh_token
                # update(), not save(): the row may be gone (sent by another process).
                row.update(
                    access_token=self.access_token,
                    refresh_token=self.refresh_token,
                    token_expires=self.token_expires,
                )
                token = tokens.access_token
            with _new_client(token) as api:
                api.remove_members()
        except (InvalidGrantError, InvalidTokenError, MemberDeauthorizedError):
            # Dead tokens: the member already left Open Humans' side and nothing is owed,
            # unless another sender rotated this notice's pair meanwhile (which killed ours):
            # then the notice stays, with the live pair, for that sender or the next run.
            if not row.filter(refresh_token=used).delete()[0] and row.exists():
                logger.info(
                    "deauth notice for member %s is being sent elsewhere", self.project_member_id
                )
                return False
            logger.info("member %s already gone from Open Humans", self.project_member_id)
            return True
        except OpenHumansError as err:
            self.attempts += 1
            self.last_attempt = timezone.now()
            self.last_error = f"{type(err).__name__}: {err}"[:1000]
            row.update(
                attempts=self.attempts, last_attempt=self.last_attempt, last_error=self.last_error
            )
            logger.warning(
                "deauth notice for member %s failed (attempt %d); kept for a retry: %s",
                self.project_member_id,
                self.attempts,
                self.last_error,
            )
            return False
        logger.info("told Open Humans that member %s left", self.project_member_id)
        row.delete()
        return True
