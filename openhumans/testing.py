"""Test helpers for projects using django-open-humans: the ``oh_sandbox`` pytest fixture.

Registered as a pytest plugin (entry point ``openhumans``), so it is loaded by every pytest
run: it imports nothing from Django or the sandbox at import time.

    def test_login(oh_sandbox):
        member = oh_sandbox.create_member(username="alice")

    @pytest.mark.oh_sandbox(access_token_lifetime=5, webhook_secret="s" * 16)
    def test_expiry(oh_sandbox): ...
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
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
