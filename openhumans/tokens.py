"""The app's side of the client: clients and token calls with the settings read at use time.

Every call goes through the process's shared connection pool (``OpenHumansClient.shared``),
keyed by ``OPENHUMANS_OH_BASE_URL`` and ``OPENHUMANS_TIMEOUT`` as read now, so a changed
setting (``override_settings``) gets its own pool. Imports no models.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from . import client as oh_client
from .conf import get_setting
from .exceptions import InvalidArgumentError, OpenHumansAPIResponseError, OpenHumansError

__all__ = [
    "REFRESH_MARGIN",
    "client_for",
    "master_token",
    "refresh_pair",
    "still_in_project",
    "stored_time",
    "token_fields",
]

logger = logging.getLogger("openhumans.models")

#: Refresh when fewer than this many seconds of access-token life remain (spec §1.4).
REFRESH_MARGIN = timedelta(seconds=60)


def stored_time(value: datetime) -> datetime:
    """Return the client's aware expiry as the project stores datetimes (USE_TZ or not)."""
    if not settings.USE_TZ and timezone.is_aware(value):
        # 0.2.0 ran with USE_TZ = False too; SQLite/MySQL refuse aware datetimes then.
        return timezone.make_naive(value)
    return value


@sensitive_variables()  # tokens in every frame below: never in error reports
def token_fields(data: Any) -> tuple[str, str, datetime]:
    """Return (access, refresh, expiry) from a TokenSet or a token endpoint dict."""
    if isinstance(data, Mapping):
        try:
            data = oh_client.TokenSet.from_response(data)
        except OpenHumansAPIResponseError as err:
            raise InvalidArgumentError(
                "data", "needs access_token and refresh_token strings and expires_in seconds"
            ) from err
    if not isinstance(data, oh_client.TokenSet):
        raise InvalidArgumentError("data", "must be a TokenSet or a token response dict")
    return data.access_token, data.refresh_token, stored_time(data.expires_at)


@sensitive_variables()
def client_for(access_token: str) -> oh_client.OpenHumansClient:
    """Return a client bound to ``access_token`` over the process's shared pool."""
    return oh_client.OpenHumansClient.shared(
        access_token,
        base_url=get_setting("OPENHUMANS_OH_BASE_URL"),
        timeout=get_setting("OPENHUMANS_TIMEOUT"),
    )


@sensitive_variables()
def refresh_pair(
    refresh_token: str, client_id: str | None = None, client_secret: str | None = None
) -> oh_client.TokenSet:
    """Trade ``refresh_token`` for a new pair; raises the client's errors."""
    return oh_client.refresh(
        refresh_token=refresh_token,
        client_id=client_id or get_setting("OPENHUMANS_CLIENT_ID"),
        client_secret=client_secret or get_setting("OPENHUMANS_CLIENT_SECRET"),
        base_url=get_setting("OPENHUMANS_OH_BASE_URL"),
        # Its own, longer deadline: a refresh given up early may have rotated the pair.
        timeout=get_setting("OPENHUMANS_TOKEN_TIMEOUT"),
        shared=True,
    )


def master_token() -> str | None:
    """OPENHUMANS_MASTER_TOKEN, or None when it is not set."""
    token = get_setting("OPENHUMANS_MASTER_TOKEN")
    return token if isinstance(token, str) and token else None


@sensitive_variables()
def still_in_project(oh_id: str) -> bool | None:
    """Ask Open Humans (master token) whether ``oh_id`` is an active member; None: unknown."""
    master = master_token()
    if master is None:
        return None
    try:
        return oh_id in client_for(master).member_ids()
    except OpenHumansError as err:
        logger.warning("could not check member %s with the master token: %s", oh_id, err)
        return None
