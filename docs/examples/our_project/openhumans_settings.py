import os

OPENHUMANS_APP_BASE_URL = os.getenv("OPENHUMANS_APP_BASE_URL", "http://localhost:5000")
OPENHUMANS_CLIENT_ID = os.getenv("OPENHUMANS_CLIENT_ID")
OPENHUMANS_CLIENT_SECRET = os.getenv("OPENHUMANS_CLIENT_SECRET")

AUTHENTICATION_BACKENDS = [
    "openhumans.backends.OpenHumansBackend",
    "django.contrib.auth.backends.ModelBackend",
]
