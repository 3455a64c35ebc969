"""The demo's policy on erasure: when the member record goes, the whole account goes."""

from __future__ import annotations

from django.contrib.auth import get_user_model


def delete_user_with_member(sender, instance, **kwargs) -> None:
    """Delete the Django user whose Open Humans member record was just deleted.

    django-open-humans deletes the ``OpenHumansMember`` when a member leaves the project
    asking for erasure (``OPENHUMANS_DELETE_ON_ERASURE``). This site keeps nothing else about
    a person, so it removes the login account too; their sessions stop working at once.
    """
    get_user_model().objects.filter(pk=instance.user_id).delete()
