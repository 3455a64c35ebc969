"""Settings for the test project: SQLite by default, PostgreSQL when DATABASE_URL is set."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = "tests-only-not-secret"  # noqa: S105
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "openhumans",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

STATIC_URL = "/static/"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _database_from_url(url: str) -> dict[str, object]:
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise ValueError(f"DATABASE_URL: unsupported scheme {parts.scheme!r}")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")) or "test",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
    }


if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": _database_from_url(os.environ["DATABASE_URL"])}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BASE_DIR / "test.sqlite3",
            "TEST": {"NAME": BASE_DIR / "test-db.sqlite3"},
        }
    }

AUTHENTICATION_BACKENDS = [
    "openhumans.backends.OpenHumansBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# The app's settings; tests point OPENHUMANS_OH_BASE_URL at a sandbox per test.
OPENHUMANS_APP_BASE_URL = "http://testserver"
OPENHUMANS_CLIENT_ID = "test-client-id"
OPENHUMANS_CLIENT_SECRET = "test-client-secret"  # noqa: S105
OPENHUMANS_OH_BASE_URL = "http://127.0.0.1:9"  # unreachable unless a test sets it

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"null": {"class": "logging.NullHandler"}},
    "root": {"handlers": ["null"], "level": "DEBUG"},
}

# The reliability tests run this project under gunicorn against the test database and a
# sandbox: they pass the database name and any settings to override as JSON.
if os.environ.get("OPENHUMANS_TESTS_OVERRIDES"):
    _overrides = json.loads(os.environ["OPENHUMANS_TESTS_OVERRIDES"])
    DATABASES["default"]["NAME"] = _overrides.pop("DATABASE_NAME")
    globals().update(_overrides)
