"""Settings for the demo site. Every value can be overridden from the environment.

The defaults match the sandbox that ``example/run_demo.py`` starts, so the demo needs no
Open Humans account, no credentials and no internet.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
EXAMPLE_DIR = BASE_DIR.parent

SECRET_KEY = os.environ.get("DEMO_SECRET_KEY", "demo-only-not-secret")
DEBUG = os.environ.get("DEMO_DEBUG", "") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "openhumans",
    "demo_site",
]

MIDDLEWARE = [
    "demo_site.middleware.CanonicalHostMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demo_site.urls"
WSGI_APPLICATION = "demo_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # demo_site/templates comes first, so openhumans/base.html there restyles every
        # page the app renders.
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "demo_site.views.demo_context",
            ]
        },
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DEMO_DB", str(EXAMPLE_DIR / "db.sqlite3")),
    }
}

AUTHENTICATION_BACKENDS = [
    "openhumans.backends.OpenHumansBackend",
    "django.contrib.auth.backends.ModelBackend",
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]

LOGIN_URL = "/"

# Uploads from the dashboard are passed to Open Humans as they are; keep them small here.
DEMO_MAX_UPLOAD_BYTES = 10 * 1024 * 1024

# --- django-open-humans -------------------------------------------------------------------
# Where this site runs: the redirect URL registered with Open Humans (or the sandbox) is
# OPENHUMANS_APP_BASE_URL + /openhumans/complete.
OPENHUMANS_APP_BASE_URL = os.environ.get("OPENHUMANS_APP_BASE_URL", "http://127.0.0.1:8000")
# The demo talks to the local sandbox, never to www.openhumans.org.
OPENHUMANS_OH_BASE_URL = os.environ.get("OPENHUMANS_OH_BASE_URL", "http://127.0.0.1:8001")
OPENHUMANS_CLIENT_ID = os.environ.get("OPENHUMANS_CLIENT_ID", "sandbox-client")
OPENHUMANS_CLIENT_SECRET = os.environ.get("OPENHUMANS_CLIENT_SECRET", "sandbox-secret")
# Shared with the sandbox, which signs its deauthorization webhooks with it.
OPENHUMANS_WEBHOOK_SECRET = os.environ.get(
    "OPENHUMANS_WEBHOOK_SECRET", "demo-webhook-secret-0123456789"
)
OPENHUMANS_LOGIN_REDIRECT_URL = "/dashboard/"
# Browser uploads go straight to storage (no bytes through Django), so they may be larger
# than DEMO_MAX_UPLOAD_BYTES, the limit of the form's no-JavaScript path.
OPENHUMANS_MAX_UPLOAD_SIZE = int(os.environ.get("DEMO_BROWSER_UPLOAD_MAX", 100 * 1024 * 1024))
OPENHUMANS_LOGOUT_REDIRECT_URL = "/"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"openhumans": {"handlers": ["console"], "level": "INFO"}},
}
