"""openhumans.testing's fixtures, as a project's own suite uses them.

Runs docs/examples/test_recipes_views.py (the Recipes page's "test your own views") with the
docs' default OPENHUMANS_APP_BASE_URL (``http://localhost:5000``), then checks the
fixtures' promises directly.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from openhumans.models import OpenHumansMember

_path = Path(__file__).resolve().parents[1] / "docs" / "examples" / "test_recipes_views.py"
_spec = importlib.util.spec_from_file_location("docs_example_test_recipes_views", _path)
_module = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _module  # the example is its own ROOT_URLCONF, found by name
_spec.loader.exec_module(_module)

globals().update({name: value for name, value in vars(_module).items() if name.startswith("test_")})
our_urls = _module.our_urls


@pytest.fixture(autouse=True)
def docs_default_app_url(settings):
    # What a project configured as the docs show (docs/examples/our_project).
    settings.OPENHUMANS_APP_BASE_URL = "http://localhost:5000"


def test_oh_member_has_live_tokens(oh_member, oh_sandbox):
    assert oh_member.oh_username == "alice"
    oh_member.message("Hi", "there")
    assert oh_sandbox.inbox(oh_member.oh_id)[0]["project_subject"] == "Hi"


def test_the_factory_makes_members_with_files(oh_member_factory):
    bob = oh_member_factory("bob", files=["a.csv", {"basename": "b.json", "content": b"{}"}])
    carol = oh_member_factory("carol")
    assert sorted(f["basename"] for f in bob.list_files()) == ["a.csv", "b.json"]
    assert carol.list_files() == []
    assert OpenHumansMember.objects.count() == 2


def test_oh_login_logs_the_client_in_and_follows_next(client, oh_login, oh_sandbox):
    member = oh_login(client, next="/somewhere/")
    assert member.user.is_active
    assert int(client.session["_auth_user_id"]) == member.user_id
    assert oh_sandbox.config()["redirect_uri"] == "http://localhost:5000/openhumans/complete"
