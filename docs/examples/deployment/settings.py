# Production settings for a project using django-open-humans (added to settings.py).
import os

import django

DEBUG = False
SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
ALLOWED_HOSTS = [os.environ.get("SITE_HOST", "study.example.org")]

# Open Humans sends people back to OPENHUMANS_APP_BASE_URL: make it https://.
OPENHUMANS_APP_BASE_URL = os.environ.get("OPENHUMANS_APP_BASE_URL", "https://study.example.org")
OPENHUMANS_CLIENT_ID = os.environ["OPENHUMANS_CLIENT_ID"]
OPENHUMANS_CLIENT_SECRET = os.environ["OPENHUMANS_CLIENT_SECRET"]
# The same secret as on your project's page: only Open Humans can call the deauth webhook.
OPENHUMANS_WEBHOOK_SECRET = os.environ["OPENHUMANS_WEBHOOK_SECRET"]
# Encrypts the members' tokens in the database: a secret of its own, not SECRET_KEY
# (rotate by putting a new one first, then manage.py openhumans_reencrypt_tokens).
OPENHUMANS_TOKEN_KEYS = [os.environ["TOKEN_ENCRYPTION_KEY"]]
# Seconds a call to Open Humans may take in all; keep it below the web server's timeout.
OPENHUMANS_TIMEOUT = 10

# HTTPS everywhere, and cookies that never travel over plain HTTP.
SECURE_SSL_REDIRECT = True
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")  # behind nginx or a PaaS router
SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# The login's state lives in the session; Lax (the default) lets it come back from
# Open Humans' redirect, Strict would not.
SESSION_COOKIE_SAMESITE = "Lax"

# Error reports go out by SMTP: Django's default, but 6.1's startproject writes a console
# mailer (MAILERS) that its deploy check refuses.
if django.VERSION >= (6, 1):
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend"}}
