"""Shared fixtures. The ``oh_sandbox`` fixture comes from the ``openhumans.testing`` plugin."""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import APP_BASE_URL, REDIRECT_URI


@pytest.fixture
def sandbox(oh_sandbox: Any, settings: Any) -> Any:
    """The sandbox, with the app's settings pointed at it (reverted after the test)."""
    oh_sandbox.configure(redirect_uri=REDIRECT_URI)  # what the project registered
    settings.OPENHUMANS_OH_BASE_URL = oh_sandbox.base_url
    settings.OPENHUMANS_CLIENT_ID = oh_sandbox.client_id
    settings.OPENHUMANS_CLIENT_SECRET = oh_sandbox.client_secret
    settings.OPENHUMANS_APP_BASE_URL = APP_BASE_URL
    return oh_sandbox


@pytest.fixture
def member_factory(sandbox: Any, db: Any) -> Any:
    """Make an OpenHumansMember with live sandbox tokens: ``member_factory("alice", user=...)``."""
    from openhumans.models import OpenHumansMember

    def make(username: str = "alice", *, user: Any = None) -> OpenHumansMember:
        pmid = sandbox.create_member(username=username)["project_member_id"]
        return OpenHumansMember.create(pmid, sandbox.issue_tokens(pmid), user=user)

    return make
