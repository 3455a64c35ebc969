"""Signals django-open-humans sends."""

from __future__ import annotations

from django.dispatch import Signal

#: Sent when Open Humans tells us (the deauth webhook) that a member left the project,
#: before the deletion policy is applied. Keyword arguments: ``sender`` (the
#: OpenHumansMember class), ``open_humans_member`` (the OpenHumansMember instance) and
#: ``erasure_requested`` (bool: whether the member asked for their data to be erased).
member_deauth = Signal()

#: Sent after every successful authorization (first login, re-authorization after leaving,
#: linking to a logged-in user), once the transaction storing the tokens has committed: the
#: place to start an import. Keyword arguments: ``sender`` (the OpenHumansMember class),
#: ``open_humans_member`` (the instance), ``created`` (bool: whether this authorization
#: created it) and ``request`` (the HttpRequest of the login's completion).
member_authorized = Signal()
