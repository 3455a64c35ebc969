"""OpenHumansMember: an Open Humans account linked to a Django user, and its API calls.

Every network call goes through :class:`openhumans.client.OpenHumansClient` (or the client's
token functions) over the process's shared connection pool, with ``OPENHUMANS_OH_BASE_URL``
and ``OPENHUMANS_TIMEOUT`` read at call time (a changed setting gets its own pool). The
member's file methods are in :mod:`openhumans.member_files` (a mixin); here are its fields,
linking, and the token lifecycle, one decision read whole.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, OperationalError, models, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from . import client as oh_client
from .client import check_message_args
from .conf import get_setting, redirect_uri
from .db import compare_and_update, lock_for_write
from .exceptions import (
    InvalidArgumentError,
    InvalidGrantError,
    InvalidTokenError,
    MemberDeauthorizedError,
    MemberLinkError,
    OpenHumansConnectionError,
    ReauthorizationRequiredError,
)
from .fields import EncryptedTokenField
from .member_files import MemberFilesMixin, file_selector
from .tokens import (
    REFRESH_MARGIN,
    client_for,
    master_token,
    refresh_pair,
    still_in_project,
    stored_time,
    token_fields,
)

__all__ = [
    "DirectUpload",
    "MemberLinkError",
    "OpenHumansMember",
    "PendingDeauthNotice",
    "make_unique_username",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: An operation run for a member with a client holding their token (or acting for them).
Operation = Callable[[oh_client.OpenHumansClient], T]


class _ActingFor:
    """The master-token client acting for one member: each call gets the member's id.

    Open Humans accepts the master token with ``project_member_id`` on every project endpoint.
    Wraps the sync or the async client alike (it only binds the id into each method).
    """

    def __init__(self, api: Any, oh_id: str) -> None:
        self._api, self._oh_id = api, oh_id

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._api, name)
        if not callable(attr):
            return attr
        parameters = inspect.signature(attr).parameters
        if "project_member_id" in parameters:
            return functools.partial(attr, project_member_id=self._oh_id)
        if "project_member_ids" in parameters:
            return functools.partial(attr, project_member_ids=[self._oh_id])
        return attr


#: Returned by _take_lease while another caller's refresh of the member is under way.
_BUSY = object()


def _lease_seconds() -> float:
    """How long a refresh may hold a member's lease: its deadline, and a margin."""
    return float(get_setting("OPENHUMANS_TOKEN_TIMEOUT")) + 5.0


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


def _already_connected() -> str:
    return _("This account is already connected to another Open Humans account.")


def _printable(value: str) -> bool:
    # A NUL or other control character would be a DataError (a 500) on PostgreSQL.
    return value.isascii() and value.isprintable() and " " not in value


class OpenHumansMemberQuerySet(models.QuerySet["OpenHumansMember"]):
    """Queries over members."""

    def active(self) -> OpenHumansMemberQuerySet:
        """Members still authorized (not ``oh_deauth``) whose Django user is active."""
        return self.filter(oh_deauth=False, user__is_active=True)


class OpenHumansMember(MemberFilesMixin, models.Model):
    """Data storage, auth, etc. related to an Open Humans member account."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    oh_id = models.CharField(max_length=16, primary_key=True, unique=True)
    # Encrypted at rest (openhumans.fields); text: Open Humans' tokens are 30 chars today,
    # but nothing promises that.
    access_token = EncryptedTokenField()
    refresh_token = EncryptedTokenField()
    token_expires = models.DateTimeField()
    public = models.BooleanField(default=False)
    oh_deauth = models.BooleanField(default=False)
    # Open Humans refused the refresh token although the member did not leave (a refresh
    # whose answer was lost rotated the pair, spec §1.4): they must log in again.
    needs_reauthorization = models.BooleanField(default=False)
    # When the member last authorized this project (logged in): deauth notices older than
    # this are replays from before they re-joined, and are ignored.
    authorized_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Until when one caller is refreshing the pair (no lock is held across the network call:
    # on SQLite that would stop every write of the site for as long).
    refresh_lease = models.DateTimeField(null=True, blank=True, editable=False)
    # The Open Humans username, when the project requests usernames (spec §2.2); "" if not.
    oh_username = models.CharField("Open Humans username", max_length=150, blank=True, default="")
    created = models.DateTimeField(default=timezone.now, editable=False)
    updated = models.DateTimeField(auto_now=True)

    objects = OpenHumansMemberQuerySet.as_manager()

    #: Set on the instance _store_tokens returns: whether this authorization created it.
    _created_now: bool = False

    class Meta:
        verbose_name = "Open Humans member"

    def __str__(self) -> str:
        # What the admin's titles and notices show; the repr keeps 0.2.0's form.
        username = self.oh_username
        name = _("Open Humans member %(oh_id)s") % {"oh_id": self.oh_id}
        return f"{name} ({username})" if username else name

    def __repr__(self) -> str:
        return f"<OpenHumansMember (oh_id='{self.oh_id}')>"

    # -- creating and linking -------------------------------------------------------------

    @classmethod
    @sensitive_variables()  # tokens in every frame below: never in error reports
    def create(
        cls, oh_id: str, data: Any, user: Any = None, *, oh_username: str | None = None
    ) -> OpenHumansMember:
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
        access, refresh, expires = token_fields(data)
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
                oh_username=(oh_username or "")[:150],
            )
            member.save(force_insert=True)
        return member

    @classmethod
    @sensitive_variables()
    def get_create_member(cls, data: Any, user: Any = None) -> OpenHumansMember:
        """Use the token exchange's ``data`` to create or update the member, and return it.

        Asks Open Humans who the tokens belong to. With ``user``, links the member to that
        user; raises MemberLinkError if the member belongs to another user or the user has
        another member. Concurrent first logins of one member create one user.
        """
        access = token_fields(data)[0]
        who = client_for(access).exchange_member()
        return cls._store_tokens(who.project_member_id, data, user, oh_username=who.username)

    @classmethod
    @sensitive_variables()
    def _store_tokens(
        cls, oh_id: str, data: Any, user: Any, *, oh_username: str | None = None
    ) -> OpenHumansMember:
        access, refresh, expires = token_fields(data)
        for _attempt in range(3):
            try:
                with transaction.atomic():
                    lock_for_write(cls)  # SQLite: the write lock before the read
                    member = cls.objects.select_for_update().filter(oh_id=oh_id).first()
                    if member is None:
                        if user is not None and cls.objects.filter(user=user).exists():
                            raise MemberLinkError(_already_connected())
                        created = cls.create(oh_id, data, user=user, oh_username=oh_username)
                        created._created_now = True
                        logger.info("Open Humans member %s created", oh_id)
                        return created
                    if user is not None and member.user_id != user.pk:
                        raise MemberLinkError(
                            _("This Open Humans account is already connected to another user.")
                        )
                    member.access_token, member.refresh_token = access, refresh
                    member.token_expires = expires
                    member.oh_deauth = member.needs_reauthorization = False
                    member.authorized_at = timezone.now()
                    member.refresh_lease = None
                    member.oh_username = (oh_username or "")[:150]
                    member.save()
                    logger.info("Open Humans member %s re-authorized", oh_id)
                    return member
            except IntegrityError:
                # A concurrent first login inserted the member (or its username) first; the
                # retry finds it and updates it instead of creating a second user.
                logger.info("concurrent first login of %s; retrying", oh_id)
        raise MemberLinkError(f"Could not store Open Humans member {oh_id}.")

    @classmethod
    @sensitive_variables()
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
            timeout=get_setting("OPENHUMANS_TOKEN_TIMEOUT"),
            shared=True,
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

    def _reload(self, *, lock: bool = False) -> OpenHumansMember:
        """Load this member's row (locked for update); raise MemberDeauthorizedError (or
        ReauthorizationRequiredError) if it is gone or its tokens cannot be used."""
        rows = type(self).objects.select_for_update() if lock else type(self).objects
        row = rows.filter(pk=self.pk).first()
        if row is None:
            raise MemberDeauthorizedError(f"Open Humans member {self.oh_id} no longer exists.")
        self._load_tokens(row)
        if (unusable := self._unusable()) is not None:
            raise unusable
        return row

    def _refresh_due(self, *, force: bool, seen: str, stale_token: str | None) -> bool:
        """Whether this (fresh) row still needs the refresh a caller asked for.

        Forced: unless another caller rotated the pair while we waited for it.
        Otherwise: when the token is near expiry, or is the one the caller saw refused.
        """
        if force:
            return self.access_token == seen
        return self._needs_refresh() or self.access_token == stale_token

    def _take_lease(self, *, force: bool, seen: str, stale_token: str | None) -> Any:
        """In a short transaction: the lease's end if this caller must refresh now, None if
        no refresh is due any more, ``_BUSY`` while another caller holds the lease."""
        with transaction.atomic():
            lock_for_write(type(self))  # SQLite: the write lock before the read
            row = self._reload(lock=True)
            if not row._refresh_due(force=force, seen=seen, stale_token=stale_token):
                return None
            now = timezone.now()
            if row.refresh_lease is not None and row.refresh_lease > now:
                return _BUSY
            lease = now + timedelta(seconds=_lease_seconds())
            type(self).objects.filter(pk=self.pk).update(refresh_lease=lease)
            return lease

    @sensitive_variables()
    def _rotate(self, lease: datetime, client_id: str | None, client_secret: str | None) -> None:
        """Trade the refresh token for a new pair (no lock held) and store it, always."""
        rows = type(self).objects.filter(pk=self.pk)
        old_refresh = self.refresh_token
        try:
            tokens = refresh_pair(old_refresh, client_id, client_secret)
        except InvalidGrantError:
            # Not "the member left": a refresh whose answer we lost (a timeout, a dropped
            # connection, a killed worker) rotated the pair too (spec §1.4).
            compare_and_update(
                type(self),
                self.pk,
                "refresh_token",
                old_refresh,
                needs_reauthorization=True,
                refresh_lease=None,
                updated=timezone.now(),
            )
            self.needs_reauthorization = True
            self._classify_refused()
            raise self._unusable() or ReauthorizationRequiredError(self.oh_id) from None
        except BaseException:
            rows.filter(refresh_lease=lease).update(refresh_lease=None)
            raise
        self.access_token, self.refresh_token = tokens.access_token, tokens.refresh_token
        self.token_expires = stored_time(tokens.expires_at)
        self._store_rotated(old_refresh)
        logger.info("refreshed the tokens of Open Humans member %s", self.oh_id)

    @sensitive_variables()
    def _store_rotated(self, old_refresh: str) -> None:
        """Store the pair Open Humans just issued: the old one is dead, this must not fail."""
        fields = {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_expires": self.token_expires,
        }
        for attempt in range(5):
            try:
                stored = (
                    type(self)
                    .objects.filter(pk=self.pk)
                    .update(**fields, refresh_lease=None, updated=timezone.now())
                )
                if not stored:
                    # Deleted while we refreshed: its deauth notice holds the pair we rotated.
                    notices = PendingDeauthNotice.objects.filter(project_member_id=self.oh_id)
                    for pk in notices.values_list("pk", flat=True):
                        compare_and_update(
                            PendingDeauthNotice, pk, "refresh_token", old_refresh, **fields
                        )
                return
            except OperationalError:  # "database is locked" beyond the busy timeout
                if attempt == 4:
                    logger.error("could not store the new pair of member %s", self.oh_id)
                    raise
                time.sleep(0.5 * (attempt + 1))

    def _classify_refused(self) -> None:
        """After a refused refresh: with the master token, tell "left" from "tokens lost"."""
        still_in = still_in_project(self.oh_id)
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

    @sensitive_variables()
    def _access_token(
        self,
        client_id: str | None,
        client_secret: str | None,
        *,
        force: bool,
        stale_token: str | None = None,
    ) -> str:
        # Re-read the row: another process may have rotated the pair, which kills the token
        # this instance holds (spec §1.4). A fresh token costs this one query.
        seen = self._reload().access_token
        if not (force or stale_token or self._needs_refresh()):
            return seen
        # Open Humans rotates the refresh token and kills the old access token at once, so
        # one caller refreshes (holding a lease on the row) while the others wait for its
        # pair; no lock is held across the call, which ends by OPENHUMANS_TOKEN_TIMEOUT.
        give_up = time.monotonic() + _lease_seconds() + 1.0
        while (lease := self._take_lease(force=force, seen=seen, stale_token=stale_token)) is _BUSY:
            if time.monotonic() > give_up:
                raise OpenHumansConnectionError(
                    f"another refresh of Open Humans member {self.oh_id} did not finish"
                )
            time.sleep(0.1)
        if lease is not None:
            self._rotate(lease, client_id, client_secret)
        return self.access_token

    @sensitive_variables()
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
            return operation(client_for(token))
        except InvalidTokenError:
            if not retry:
                raise
            # The token died early (refreshed elsewhere, or the member left): refresh once.
            # A 401 means nothing happened on the server, so repeating is safe.
            try:
                token = self._access_token(None, None, force=False, stale_token=token)
            except ReauthorizationRequiredError:
                return self._call_as_project(operation)
            return operation(client_for(token))

    @sensitive_variables()
    def _call_as_project(self, operation: Operation[T]) -> T:
        return operation(cast(oh_client.OpenHumansClient, self._acting_client(client_for)))

    @sensitive_variables()
    def _acting_client(self, client_for_token: Callable[[str], Any]) -> Any:
        """The master-token client (``client_for_token(master)``, sync or async) acting for
        this member; raises when there is no master token or the member left."""
        master = master_token()
        if master is None or self.oh_deauth:
            raise self._unusable() or ReauthorizationRequiredError(self.oh_id)
        return _ActingFor(client_for_token(master), self.oh_id)

    # -- the documented API calls ---------------------------------------------------------

    def delete_single_file(
        self, file_id: int | str | None = None, file_basename: str | None = None
    ) -> list[int]:
        """Deletes a file. Specify file_id or file_basename but not both.

        A basename deletes every file of that name. Returns the deleted ids. Raises
        InvalidArgumentError (a ValueError) for neither, both, or a non-integer file_id.
        """
        selector = file_selector(file_id, file_basename)
        return self._call(lambda api: api.delete_files(**selector))

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
        log in again to be usable. Open Humans calls the deauth webhook during this call.
        """
        self._call(lambda api: api.remove_members())
        type(self).objects.filter(pk=self.pk).update(
            oh_deauth=True, needs_reauthorization=False, updated=timezone.now()
        )
        self.oh_deauth, self.needs_reauthorization = True, False
        logger.info("deauthorized Open Humans member %s", self.oh_id)


# Defined beside the code they serve; models of this app all the same.
from .notices import PendingDeauthNotice  # noqa: E402
from .outbox import OutboxEntry  # noqa: E402, F401
from .upload_records import DirectUpload  # noqa: E402
