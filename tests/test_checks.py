"""Settings are read at use time, missing ones are reported by checks and at first use."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.core.checks import run_checks

from openhumans.backends import OpenHumansBackend
from openhumans.checks import check_settings
from openhumans.conf import get_setting, redirect_uri
from openhumans.exceptions import OpenHumansConfigurationError

ROOT = Path(__file__).resolve().parent.parent


def ids(messages):
    return [m.id for m in messages]


def test_settings_are_read_at_use_time(settings):
    settings.OPENHUMANS_OH_BASE_URL = "https://oh.example"
    assert get_setting("OPENHUMANS_OH_BASE_URL") == "https://oh.example"
    settings.OPENHUMANS_OH_BASE_URL = "https://other.example"
    assert get_setting("OPENHUMANS_OH_BASE_URL") == "https://other.example"


def test_documented_defaults(settings):
    for name in (
        "OPENHUMANS_OH_BASE_URL",
        "OPENHUMANS_LOGIN_REDIRECT_URL",
        "OPENHUMANS_LOGOUT_REDIRECT_URL",
        "OPENHUMANS_DEAUTH_ON_DELETE",
        "OPENHUMANS_DELETE_ON_ERASURE",
        "OPENHUMANS_DELETE_ON_DEAUTH",
        "OPENHUMANS_WEBHOOK_SECRET",
    ):
        if hasattr(settings, name):
            delattr(settings, name)
    assert get_setting("OPENHUMANS_OH_BASE_URL") == "https://www.openhumans.org"
    assert get_setting("OPENHUMANS_LOGIN_REDIRECT_URL") == "/"
    assert get_setting("OPENHUMANS_LOGOUT_REDIRECT_URL") == "/"
    assert get_setting("OPENHUMANS_DEAUTH_ON_DELETE") is True
    assert get_setting("OPENHUMANS_DELETE_ON_ERASURE") is True
    assert get_setting("OPENHUMANS_DELETE_ON_DEAUTH") is False
    assert get_setting("OPENHUMANS_WEBHOOK_SECRET") is None
    assert get_setting("OPENHUMANS_USE_PKCE") is True


@pytest.mark.parametrize(
    "name", ["OPENHUMANS_APP_BASE_URL", "OPENHUMANS_CLIENT_ID", "OPENHUMANS_CLIENT_SECRET"]
)
def test_missing_required_setting_names_it_at_first_use(settings, name):
    delattr(settings, name)
    with pytest.raises(OpenHumansConfigurationError, match=name):
        get_setting(name)


def test_unknown_setting_is_refused():
    with pytest.raises(KeyError):
        get_setting("OPENHUMANS_NOPE")


def test_redirect_uri_is_exactly_the_documented_one(settings):
    settings.OPENHUMANS_APP_BASE_URL = "http://localhost:5000/"
    assert redirect_uri() == "http://localhost:5000/openhumans/complete"


@pytest.mark.parametrize(
    "name", ["OPENHUMANS_APP_BASE_URL", "OPENHUMANS_CLIENT_ID", "OPENHUMANS_CLIENT_SECRET"]
)
def test_check_e001_for_each_missing_required_setting(settings, name):
    delattr(settings, name)
    errors = [m for m in check_settings() if m.id == "openhumans.E001"]
    assert len(errors) == 1 and name in errors[0].msg


def test_check_e002_for_a_malformed_base_url(settings):
    settings.OPENHUMANS_OH_BASE_URL = "www.openhumans.org"
    assert "openhumans.E002" in ids(check_settings())


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OPENHUMANS_MAX_UPLOAD_SIZE", "10MB"),
        ("OPENHUMANS_MAX_UPLOAD_SIZE", -1),
        ("OPENHUMANS_MAX_UPLOAD_SIZE", True),
        ("OPENHUMANS_TIMEOUT", "slow"),
        ("OPENHUMANS_TIMEOUT", 0),
        ("OPENHUMANS_STATE_MAX_AGE", None),
    ],
)
def test_check_e003_for_a_setting_that_is_not_a_number(settings, name, value):
    setattr(settings, name, value)
    errors = [m for m in check_settings() if m.id == "openhumans.E003"]
    assert len(errors) == 1 and name in errors[0].msg


def test_numeric_settings_pass_the_checks(settings):
    settings.OPENHUMANS_MAX_UPLOAD_SIZE = None
    settings.OPENHUMANS_TIMEOUT = 5
    settings.OPENHUMANS_STATE_MAX_AGE = 60.5
    assert "openhumans.E003" not in ids(check_settings())


def test_check_w001_without_webhook_secret_when_debug_is_off(settings):
    settings.DEBUG = False
    settings.OPENHUMANS_WEBHOOK_SECRET = None
    assert "openhumans.W001" in ids(check_settings())
    settings.OPENHUMANS_WEBHOOK_SECRET = "abcdefghijklmnop"
    assert "openhumans.W001" not in ids(check_settings())
    settings.OPENHUMANS_WEBHOOK_SECRET = None
    settings.DEBUG = True
    assert "openhumans.W001" not in ids(check_settings())


def test_check_w002_without_the_backend(settings):
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
    assert "openhumans.W002" in ids(check_settings())


def test_checks_are_registered_with_django(settings, db):  # model checks may query (JSONField)
    delattr(settings, "OPENHUMANS_CLIENT_ID")
    assert "openhumans.E001" in ids(run_checks())


def test_test_settings_pass_the_checks(settings):
    settings.OPENHUMANS_WEBHOOK_SECRET = "abcdefghijklmnop"
    settings.OPENHUMANS_TOKEN_KEYS = ["k" * 32]
    assert check_settings() == []


def test_backend_ignores_other_credentials(rf):
    assert OpenHumansBackend().authenticate(rf.get("/"), username="x", password="y") is None


def test_every_module_imports_without_settings():
    """Importing a module must never fail for want of a setting (docs: settings at use time)."""
    script = textwrap.dedent(
        """
        import importlib, os
        os.environ.pop("DJANGO_SETTINGS_MODULE", None)
        for name in ["openhumans", "openhumans.conf", "openhumans.exceptions",
                     "openhumans.signals", "openhumans.checks", "openhumans.client",
                     "openhumans.tokens"]:
            importlib.import_module(name)
        import django
        from django.conf import settings
        settings.configure(
            INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes",
                            "django.contrib.sessions", "django.contrib.messages",
                            "django.contrib.admin", "openhumans"],
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        )
        django.setup()
        for name in ["openhumans.models", "openhumans.views", "openhumans.urls",
                     "openhumans.admin", "openhumans.backends", "openhumans.oauth",
                     "openhumans.forms", "openhumans.webhooks", "openhumans.apps",
                     "openhumans.notices",
                     "openhumans.management.commands.openhumans_retry_deauth"]:
            importlib.import_module(name)
        from django.core.checks import run_checks
        print(sorted({m.id for m in run_checks()}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "openhumans.E001" in result.stdout


def test_check_w003_for_an_unknown_openhumans_setting(settings):
    settings.OPENHUMANS_WEBHOOK_SECRETS = "typo"
    (warning,) = [m for m in check_settings() if m.id == "openhumans.W003"]
    assert "OPENHUMANS_WEBHOOK_SECRETS" in warning.msg
    assert "OPENHUMANS_WEBHOOK_SECRET?" in warning.hint


def test_check_w003_leaves_a_projects_own_openhumans_setting_alone(settings):
    settings.OPENHUMANS_DASHBOARD_TITLE = "My study"
    settings.OPENHUMANS_FITBIT_CLIENT_ID = "fitbit"
    assert [m for m in check_settings() if m.id == "openhumans.W003"] == []


@pytest.mark.parametrize(
    "placeholder",
    ["your_client_id", "YOUR-CLIENT-SECRET", "...", "<client_id>", "changeme", "xxxx"],
)
def test_check_w004_for_placeholder_credentials(settings, placeholder):
    settings.OPENHUMANS_CLIENT_SECRET = placeholder
    (warning,) = [m for m in check_settings() if m.id == "openhumans.W004"]
    assert "OPENHUMANS_CLIENT_SECRET" in warning.msg


def test_check_w004_accepts_real_looking_credentials(settings):
    settings.OPENHUMANS_CLIENT_ID = "Zq8s0aBc"
    settings.OPENHUMANS_CLIENT_SECRET = "sandbox-secret"
    assert [m for m in check_settings() if m.id == "openhumans.W004"] == []


def test_configuration_errors_stand_apart_from_the_api_error_tree():
    """``except OpenHumansError`` never swallows a misconfiguration (it stays a 500)."""
    from django.core.exceptions import ImproperlyConfigured

    from openhumans import exceptions, models

    assert issubclass(OpenHumansConfigurationError, ImproperlyConfigured)
    assert not issubclass(OpenHumansConfigurationError, exceptions.OpenHumansError)
    assert models.MemberLinkError is exceptions.MemberLinkError
    assert issubclass(exceptions.MemberLinkError, exceptions.OpenHumansError)
