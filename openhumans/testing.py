"""Test helpers for projects using django-open-humans: ``oh_sandbox`` and friends.

Fixtures: ``oh_sandbox`` (a sandbox), ``oh_settings`` (the app pointed at it),
``oh_member`` / ``oh_member_factory`` (connected members with live tokens, and files) and
``oh_login`` (log a Django test client in through the real flow in one call).

Registered as a pytest plugin (entry point ``openhumans``), so it is loaded by every pytest
run: it imports nothing from Django or the sandbox at import time.

    def test_login(oh_sandbox):
        member = oh_sandbox.create_member(username="alice")

    @pytest.mark.oh_sandbox(access_token_lifetime=5, webhook_secret="s" * 16)
    def test_expiry(oh_sandbox): ...
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from openhumans.models import OpenHumansMember
    from openhumans.sandbox import Sandbox


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "oh_sandbox(**kwargs): keyword arguments for the oh_sandbox fixture's Sandbox(...)",
    )


@pytest.fixture
def oh_sandbox(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    """A fresh Open Humans sandbox on a free port, stopped after the test.

    Overrides come from ``@pytest.mark.oh_sandbox(**kwargs)`` (any ``Sandbox`` argument).
    """
    from openhumans.sandbox import Sandbox

    kwargs: dict[str, Any] = {}
    marker = request.node.get_closest_marker("oh_sandbox")
    if marker is not None:
        if marker.args:
            raise TypeError("@pytest.mark.oh_sandbox takes keyword arguments only")
        kwargs.update(marker.kwargs)
    kwargs.setdefault("port", 0)
    with Sandbox(**kwargs) as sandbox:
        yield sandbox


# -- members and logins for a project's own tests (need pytest-django) -------------------------


@pytest.fixture
def oh_settings(oh_sandbox: Sandbox, settings: Any) -> Sandbox:
    """Point the app's settings at ``oh_sandbox`` (reverted after the test); return it.

    The sandbox accepts the redirect URI the app sends (``<OPENHUMANS_APP_BASE_URL>
    /openhumans/complete``), so the project's own OPENHUMANS_APP_BASE_URL works as it is.
    """
    from openhumans.conf import redirect_uri

    settings.OPENHUMANS_OH_BASE_URL = oh_sandbox.base_url
    settings.OPENHUMANS_CLIENT_ID = oh_sandbox.client_id
    settings.OPENHUMANS_CLIENT_SECRET = oh_sandbox.client_secret
    if not getattr(settings, "OPENHUMANS_APP_BASE_URL", None):
        settings.OPENHUMANS_APP_BASE_URL = "http://testserver"
    oh_sandbox.configure(redirect_uri=redirect_uri())
    return oh_sandbox


@pytest.fixture
def oh_member_factory(oh_settings: Sandbox, db: Any) -> Callable[..., OpenHumansMember]:
    """Make connected members with live sandbox tokens, and files if asked.

    ``oh_member_factory("bob", user=None, files=[...])``: each item of ``files`` is a
    basename, or a dict of ``Sandbox.add_files`` arguments (``basename``, ``content``,
    ``metadata``, ``datatypes``, ``count``).
    """
    from openhumans.models import OpenHumansMember

    def make(
        username: str = "alice", *, user: Any = None, files: Iterable[str | dict[str, Any]] = ()
    ) -> OpenHumansMember:
        pmid = oh_settings.create_member(username=username)["project_member_id"]
        member = OpenHumansMember.create(
            pmid, oh_settings.issue_tokens(pmid), user=user, oh_username=username
        )
        for spec in files:
            kwargs = {"basename": spec} if isinstance(spec, str) else dict(spec)
            oh_settings.add_files(pmid, **kwargs)
        return member

    return make


@pytest.fixture
def oh_member(oh_member_factory: Callable[..., OpenHumansMember]) -> OpenHumansMember:
    """A connected member ("alice") with live sandbox tokens and no files."""
    return oh_member_factory()


@pytest.fixture
def oh_login(oh_settings: Sandbox, db: Any) -> Callable[..., OpenHumansMember]:
    """Log a Django test client in through the real flow: ``oh_login(client)``.

    ``oh_login(client, member=None, *, username="alice", next=None)`` runs the login view,
    the sandbox's consent (as ``member``, or a new member ``username``) and the complete
    view, and returns the logged-in OpenHumansMember. Raises AssertionError, with the
    response, if a step does not answer as a working login does.
    """
    return functools.partial(log_in_through_sandbox, oh_settings)


def log_in_through_sandbox(
    sandbox: Sandbox,
    client: Any,
    member: OpenHumansMember | None = None,
    *,
    username: str = "alice",
    next: str | None = None,  # noqa: A002 - the login view's parameter
) -> OpenHumansMember:
    """Drive login -> consent -> complete for ``client``; return the member logged in."""
    from urllib.parse import parse_qs, urlsplit

    from django.urls import reverse

    from openhumans.models import OpenHumansMember

    pmid = member.oh_id if member is not None else None
    if pmid is None:
        pmid = sandbox.create_member(username=username)["project_member_id"]
    start = client.get(reverse("openhumans:login"), {"next": next} if next else {})
    assert start.status_code == 302, f"openhumans:login answered {start.status_code}"
    query = {k: v[0] for k, v in parse_qs(urlsplit(start["Location"]).query).items()}
    location = sandbox.authorize(
        pmid,
        state=query.get("state"),
        code_challenge=query.get("code_challenge"),
        code_challenge_method=query.get("code_challenge_method"),
        redirect_uri=query.get("redirect_uri"),
    )
    back = urlsplit(location)
    done = client.get(f"{back.path}?{back.query}")
    assert done.status_code == 302, f"the login's completion answered {done.status_code}"
    found = OpenHumansMember.objects.get(oh_id=pmid)
    assert str(client.session.get("_auth_user_id")) == str(found.user_id), (
        "the login completed but the client is not logged in as the member's user"
    )
    return found
