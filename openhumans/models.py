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
from django.views.decorators.debug import sensitive_variables

from . import client as oh_client
from .client.api import check_file_selector, check_message_args, check_stream, check_upload_args
from .conf import get_setting, redirect_uri
from .db import lock_for_write
from .exceptions import (
    BadRequestError,
    InvalidArgumentError,
    InvalidGrantError,
    InvalidTokenError,
    MemberDeauthorizedError,
    OpenHumansError,
    ReauthorizationRequiredError,
)

__all__ = [
    "MemberLinkError",
    "OpenHumansMember",
    "PendingDeauthNotice",
    "make_unique_username",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: An operation run for a member: (client, project_member_id) -> result. The id is None when
#: the client holds the member's own token, the member's id when it holds the master token.
Operation = Callable[[oh_client.OpenHumansClient, "str | None"], T]

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


@sensitive_variables()  # tokens in every frame below: never in error reports
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


@sensitive_variables()  # tokens in every frame below: never in error reports
def _new_client(access_token: str) -> oh_client.OpenHumansClient:
    return oh_client.OpenHumansClient(
        access_token,
        base_url=get_setting("OPENHUMANS_OH_BASE_URL"),
        timeout=float(get_setting("OPENHUMANS_TIMEOUT")),
    )


def _master_token() -> str | None:
    token = get_setting("OPENHUMANS_MASTER_TOKEN")
    return token if isinstance(token, str) and token else None


@sensitive_variables()  # tokens in every frame below: never in error reports
def _still_in_project(oh_id: str) -> bool | None:
    """Ask Open Humans (master token) whether ``oh_id`` is an active member; None: unknown."""
    master = _master_token()
    if master is None:
        return None
    try:
        with _new_client(master) as api:
            return oh_id in api.member_ids()
    except OpenHumansError as err:
        logger.warning("could not check member %s with the master token: %s", oh_id, err)
        return None


@sensitive_variables()  # tokens in every frame below: never in error reports
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
    # Open Humans refused the refresh token although the member did not leave (a refresh
    # whose answer was lost rotated the pair, spec §1.4): they must log in again.
    needs_reauthorization = models.BooleanField(default=False)
    # When the member last authorized this project (logged in): deauth notices older than
    # this are replays from before they re-joined, and are ignored.
    authorized_at = models.DateTimeField(null=True, blank=True, editable=False)
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
    @sensitive_variables()  # tokens in every frame below: never in error reports
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
                authorized_at=timezone.now(),
            )
            member.save(force_insert=True)
        return member

    @classmethod
    @sensitive_variables()  # tokens in every frame below: never in error reports
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
    @sensitive_variables()  # tokens in every frame below: never in error reports
    def _store_tokens(cls, oh_id: str, data: Any, user: Any) -> OpenHumansMember:
        access, refresh, expires = _token_fields(data)
        for _attempt in range(3):
            try:
                with transaction.atomic():
                    lock_for_write(cls)
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
                    member.oh_deauth = member.needs_reauthorization = False
                    member.authorized_at = timezone.now()
                    member.save()
                    logger.info("Open Humans member %s re-authorized", oh_id)
                    return member
            except IntegrityError:
                # A concurrent first login inserted the member (or its username) first; the
                # retry finds it and updates it instead of creating a second user.
                logger.info("concurrent first login of %s; retrying", oh_id)
        raise MemberLinkError(f"Could not store Open Humans member {oh_id}.")

    @classmethod
    @sensitive_variables()  # tokens in every frame below: never in error reports
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
        self.needs_reauthorization = other.needs_reauthorization

    def _unusable(self) -> MemberDeauthorizedError | None:
        """The error for a member whose own tokens cannot be used, None if they can."""
        if self.oh_deauth:
            return MemberDeauthorizedError(f"Open Humans member {self.oh_id} is deauthorized.")
        if self.needs_reauthorization:
            return ReauthorizationRequiredError(
                f"Open Humans member {self.oh_id} must log in again (their tokens were lost)."
            )
        return None

    def get_access_token(
        self, client_id: str | None = None, client_secret: str | None = None
    ) -> str:
        """Return access token. Refresh first if necessary.

        ``client_id``/``client_secret`` default to ``OPENHUMANS_CLIENT_ID``/``_SECRET``.
        Raises MemberDeauthorizedError if the member left (``oh_deauth``), its subclass
        ReauthorizationRequiredError if Open Humans refused the refresh token of a member who
        did not leave, as far as we know (``needs_reauthorization``: they must log in again),
        other OpenHumansError subclasses if the refresh failed for another reason (a timeout
        never marks the member). Never returns a token known to be stale.
        """
        return self._access_token(client_id, client_secret, force=False)

    def refresh_tokens(
        self, client_id: str | None = None, client_secret: str | None = None
    ) -> None:
        """Refresh the token pair now, whatever its expiry; raises like get_access_token()."""
        self._access_token(client_id, client_secret, force=True)

    @sensitive_variables()  # tokens in every frame below: never in error reports
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
        if (unusable := self._unusable()) is not None:
            raise unusable
        if not force and stale_token is None and not self._needs_refresh():
            return self.access_token
        refused = False
        with transaction.atomic():
            # SQLite: the write lock before the read, or the save after a successful
            # rotation could fail with "database is locked" and lose the new pair.
            lock_for_write(type(self))
            locked = type(self).objects.select_for_update().filter(pk=self.pk).first()
            if locked is None:
                raise MemberDeauthorizedError(f"Open Humans member {self.oh_id} no longer exists.")
            wanted = (
                force
                or locked._needs_refresh()
                or (stale_token is not None and locked.access_token == stale_token)
            )
            usable = not (locked.oh_deauth or locked.needs_reauthorization)
            if usable and wanted and (not force or locked.access_token == self.access_token):
                # The one network call made inside a transaction, on purpose: Open Humans
                # rotates the refresh token and kills the old access token at once (spec
                # §1.4), so the exchange must be serialized by this row lock; a second caller
                # waits here and then finds the fresh pair instead of refreshing again. It
                # ends by OPENHUMANS_TOKEN_TIMEOUT, a total deadline.
                try:
                    tokens = _refresh(locked.refresh_token, client_id, client_secret)
                except InvalidGrantError:
                    # Not "the member left": a refresh whose answer we lost (a timeout, a
                    # dropped connection, a killed worker) rotated the pair too.
                    locked.needs_reauthorization = True
                    locked.save(update_fields=["needs_reauthorization", "updated"])
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
            self._classify_refused()
        if (unusable := self._unusable()) is not None:
            raise unusable
        return self.access_token

    def _classify_refused(self) -> None:
        """After a refused refresh: with the master token, tell "left" from "tokens lost"."""
        still_in = _still_in_project(self.oh_id)
        if still_in is False:
            type(self).objects.filter(pk=self.pk).update(
                oh_deauth=True, needs_reauthorization=False, updated=timezone.now()
            )
            self.oh_deauth, self.needs_reauthorization = True, False
            logger.warning("Open Humans member %s left the project: deauthorized", self.oh_id)
        else:
            logger.warning(
                "Open Humans refused to refresh member %s (%s): they must log in again",
                self.oh_id,
                "still in the project" if still_in else "left or lost tokens: unknown",
            )

    @sensitive_variables()  # tokens in every frame below: never in error reports
    def _call(self, operation: Operation[T], *, retry: bool = True) -> T:
        """Run ``operation`` with a client holding a fresh token; retry once after a 401.

        A member needing re-authorization is served with OPENHUMANS_MASTER_TOKEN when it is
        set (Open Humans accepts it with ``project_member_id`` on every project endpoint).
        """
        try:
            token = self.get_access_token()
        except ReauthorizationRequiredError:
            return self._call_as_project(operation)
        try:
            with _new_client(token) as api:
                return operation(api, None)
        except InvalidTokenError:
            if not retry:
                raise
            # The token died early (refreshed elsewhere, or the member left): refresh once.
            # A 401 means nothing happened on the server, so repeating is safe.
            try:
                token = self._access_token(None, None, force=False, stale_token=token)
            except ReauthorizationRequiredError:
                return self._call_as_project(operation)
            with _new_client(token) as api:
                return operation(api, None)

    @sensitive_variables()  # tokens in every frame below: never in error reports
    def _call_as_project(self, operation: Operation[T]) -> T:
        master = _master_token()
        if master is None or self.oh_deauth:
            raise self._unusable() or ReauthorizationRequiredError(self.oh_id)
        with _new_client(master) as api:
            return operation(api, self.oh_id)

    # -- the documented API calls ---------------------------------------------------------

    def list_files(self) -> list[dict[str, Any]]:
        """List files."""
        files = self._call(lambda api, pmid: api.list_files(project_member_id=pmid))
        return [f.as_dict() for f in files]

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

        def operation(api: oh_client.OpenHumansClient, pmid: str | None) -> Any:
            if seekable and not isinstance(stream, bytes):
                stream.seek(start)  # rewound for the one retry after a 401
            return api.upload(stream, filename, metadata, project_member_id=pmid)

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
            return self._call(
                lambda api, pmid: api.delete_files(
                    file_basename=file_basename, project_member_id=pmid
                )
            )
        try:
            number = int(str(file_id))
        except ValueError:
            raise InvalidArgumentError(
                "file_id",
                "should be an integer (did you mean file_basename=...?)",
            ) from None
        check_file_selector(file_id=number)
        return self._call(
            lambda api, pmid: api.delete_files(file_id=number, project_member_id=pmid)
        )

    def delete_all_files(self) -> list[int]:
        """Delete every file this project uploaded for the member; return the deleted ids."""
        return self._call(
            lambda api, pmid: api.delete_files(all_files=True, project_member_id=pmid)
        )

    def message(self, subject: str, message: str) -> None:
        """Send messages.

        :param subject: This field is the subject of the message.
        :param message: This field is the message which is to be send.
        """
        check_message_args(subject, message)
        self._call(
            lambda api, pmid: api.message(
                subject, message, project_member_ids=None if pmid is None else [pmid]
            )
        )

    def deauth(self) -> None:
        """Deauthorize the Open Humans account (remove-members with the member's token).

        This does not delete the account locally; the member is marked ``oh_deauth`` and must
        log in again to be usable. Open Humans calls the deauth webhook during this call
        (spec §2.5).
        """
        self._call(lambda api, pmid: api.remove_members(None if pmid is None else [pmid]))
        type(self).objects.filter(pk=self.pk).update(
            oh_deauth=True, needs_reauthorization=False, updated=timezone.now()
        )
        self.oh_deauth, self.needs_reauthorization = True, False
        logger.info("deauthorized Open Humans member %s", self.oh_id)


class PendingDeauthNotice(models.Model):
    """A remove-members call owed to Open Humans for a member deleted here (DEAUTH_ON_DELETE).

    Kept until Open Humans accepted it, so an outage never loses it; the tokens are the
    deleted member's (needed to call remove-members) and are never shown. A notice that can
    no longer be delivered with the member's tokens and no master token is kept too, marked
    ``gave_up``, for a person to settle.
    """

    project_member_id = models.CharField(max_length=16, db_index=True)
    access_token = models.TextField()
    refresh_token = models.TextField()
    token_expires = models.DateTimeField()
    created = models.DateTimeField(default=timezone.now, editable=False)
    attempts = models.PositiveIntegerField(default=0)
    last_attempt = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    gave_up = models.BooleanField(
        default=False,
        help_text="The member's tokens were refused and no OPENHUMANS_MASTER_TOKEN is set: "
        "remove the member on Open Humans by hand, then delete this notice.",
    )

    class Meta:
        verbose_name = "pending deauthorization notice"
        ordering = ["created"]

    def __str__(self) -> str:
        return f"<PendingDeauthNotice (project_member_id='{self.project_member_id}')>"

    def __repr__(self) -> str:
        return str(self)

    @sensitive_variables()  # tokens in every frame below: never in error reports
    def send(self) -> bool:
        """Tell Open Humans the member left; return True once done (the notice is deleted).

        Never raises an OpenHumansError: a failure is recorded on the notice for a retry. A
        401 is retried once after a refresh, then with OPENHUMANS_MASTER_TOKEN when set;
        if none works the notice is kept, marked ``gave_up``. Another process may send the
        same notice at once; it is never lost for that.
        """
        row = type(self).objects.filter(pk=self.pk)
        try:
            done = self._remove_member()
        except _NoticeGone:
            logger.info("deauth notice for member %s was sent elsewhere", self.project_member_id)
            return False
        except OpenHumansError as err:
            self._record(row, f"{type(err).__name__}: {err}", gave_up=False)
            logger.warning(
                "deauth notice for member %s failed (attempt %d); kept for a retry: %s",
                self.project_member_id,
                self.attempts,
                self.last_error,
            )
            return False
        if not done:
            self._record(
                row,
                "Open Humans refused the member's tokens and no OPENHUMANS_MASTER_TOKEN is set",
                gave_up=True,
            )
            logger.error(
                "deauth notice for member %s cannot be delivered with the member's tokens; "
                "kept (gave_up): set OPENHUMANS_MASTER_TOKEN or remove them on Open Humans",
                self.project_member_id,
            )
            return False
        logger.info("told Open Humans that member %s left", self.project_member_id)
        row.delete()
        return True

    def _record(self, row: models.QuerySet[PendingDeauthNotice], error: str, gave_up: bool) -> None:
        self.attempts += 1
        self.last_attempt = timezone.now()
        self.last_error = error[:1000]
        self.gave_up = gave_up
        row.update(
            attempts=self.attempts,
            last_attempt=self.last_attempt,
            last_error=self.last_error,
            gave_up=gave_up,
        )

    @sensitive_variables()  # tokens in every frame below: never in error reports
    def _remove_member(self) -> bool:
        """Call remove-members; True once Open Humans has (or had) removed the member."""
        token: str | None = None
        for _attempt in range(2):
            try:
                token = self._current_token(stale=token)
            except InvalidGrantError:
                break  # the refresh token is dead: only the master token can still do it
            try:
                with _new_client(token) as api:
                    api.remove_members()
            except InvalidTokenError:
                continue  # refreshed elsewhere since we read it, or dead: refresh once
            return True
        return self._remove_as_project()

    @sensitive_variables()  # tokens in every frame below: never in error reports
    def _current_token(self, stale: str | None) -> str:
        """The notice's live access token, read under lock; refreshed when due or ``stale``."""
        with transaction.atomic():
            lock_for_write(type(self))
            locked = type(self).objects.select_for_update().filter(pk=self.pk).first()
            if locked is None:
                raise _NoticeGone
            self.access_token, self.refresh_token = locked.access_token, locked.refresh_token
            self.token_expires = locked.token_expires
            rotated_elsewhere = stale is not None and locked.access_token != stale
            due = self.token_expires - REFRESH_MARGIN < timezone.now()
            if rotated_elsewhere or not (due or stale is not None):
                return self.access_token
            # As for members: serialized by the row lock, stored before it is used, since
            # the old refresh token is dead the moment Open Humans answers (spec §1.4).
            tokens = _refresh(self.refresh_token, None, None)
            self.access_token, self.refresh_token = tokens.access_token, tokens.refresh_token
            self.token_expires = _stored_time(tokens.expires_at)
            type(self).objects.filter(pk=self.pk).update(
                access_token=self.access_token,
                refresh_token=self.refresh_token,
                token_expires=self.token_expires,
            )
            return self.access_token

    @sensitive_variables()  # tokens in every frame below: never in error reports
    def _remove_as_project(self) -> bool:
        """remove-members with the master token; False without one."""
        master = _master_token()
        if master is None:
            return False
        try:
            with _new_client(master) as api:
                api.remove_members([self.project_member_id])
        except BadRequestError:
            # spec §2.4/§2.5: an id that is not an active member is refused: already gone.
            logger.info("member %s already gone from Open Humans", self.project_member_id)
        return True


class _NoticeGone(Exception):
    """The notice row was deleted by another sender."""
