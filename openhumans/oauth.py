"""Starting a login: the single-use ``state`` kept in the session, PKCE, the authorize URL.

As in django-allauth, the PKCE verifier and the ``next`` URL travel inside the stashed state,
never in a URL; at most a few login attempts are kept per session, each for a limited time.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, TypedDict

from django.http import HttpRequest

from . import client as oh_client
from .conf import get_setting, redirect_uri

__all__ = ["MAX_STATES", "SESSION_KEY", "StashedState", "pop_state", "start_login"]

SESSION_KEY = "openhumans_oauth_states"
#: Login attempts kept per session (several tabs); the oldest are dropped.
MAX_STATES = 5


class StashedState(TypedDict):
    """What a ``state`` stands for: when it was issued, the PKCE verifier, where to go next."""

    issued: float
    code_verifier: str | None
    next: str | None


def _states(request: HttpRequest) -> dict[str, Any]:
    states = request.session.get(SESSION_KEY)
    return dict(states) if isinstance(states, dict) else {}


def _fresh(states: dict[str, Any]) -> dict[str, Any]:
    max_age = float(get_setting("OPENHUMANS_STATE_MAX_AGE"))
    now = time.time()
    return {
        key: value
        for key, value in states.items()
        if isinstance(value, dict) and now - float(value.get("issued", 0)) < max_age
    }


def stash_state(request: HttpRequest, *, next_url: str | None, code_verifier: str | None) -> str:
    """Store a new single-use state in the session and return it."""
    state = secrets.token_urlsafe(32)
    states = _fresh(_states(request))
    states[state] = StashedState(issued=time.time(), code_verifier=code_verifier, next=next_url)
    newest = sorted(states.items(), key=lambda item: item[1]["issued"])[-MAX_STATES:]
    request.session[SESSION_KEY] = dict(newest)
    return state


def pop_state(request: HttpRequest, state: str | None) -> StashedState | None:
    """Remove and return the stashed ``state``; None if missing, unknown, used or expired."""
    if not state:
        return None
    states = _states(request)
    stashed = states.pop(state, None)
    if stashed is None:
        return None
    request.session[SESSION_KEY] = _fresh(states)  # single use: gone from now on
    if not _fresh({state: stashed}):
        return None
    return StashedState(
        issued=float(stashed["issued"]),
        code_verifier=stashed.get("code_verifier"),
        next=stashed.get("next"),
    )


def start_login(request: HttpRequest, next_url: str | None = None) -> str:
    """Stash a new login attempt and return the Open Humans authorize URL to redirect to."""
    client_id = get_setting("OPENHUMANS_CLIENT_ID")
    uri = redirect_uri()
    verifier = oh_client.make_code_verifier() if get_setting("OPENHUMANS_USE_PKCE") else None
    state = stash_state(request, next_url=next_url, code_verifier=verifier)
    return oh_client.authorize_url(
        client_id,
        uri,
        state=state,
        code_challenge=oh_client.code_challenge_s256(verifier) if verifier else None,
        base_url=get_setting("OPENHUMANS_OH_BASE_URL"),
    )
