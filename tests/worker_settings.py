"""Settings for the RQ worker processes of the worker tests (tests/test_workers.py).

The test passes, through the environment, the test database it created, the Redis URL and
the sandbox's address; everything else is the test project's.
"""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES, INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "django_rq"]

DATABASES["default"]["NAME"] = os.environ["OH_JOBS_DB_NAME"]
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Four processes share one SQLite file: wait for a write lock instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 30}

TASKS = {"default": {"BACKEND": "openhumans.jobs_rq.RQBackend", "QUEUES": ["default"]}}
RQ_QUEUES = {"default": {"URL": os.environ["OH_JOBS_REDIS_URL"], "DEFAULT_TIMEOUT": 20}}

OPENHUMANS_OH_BASE_URL = os.environ["OH_JOBS_OH_BASE_URL"]
OPENHUMANS_CLIENT_ID = os.environ["OH_JOBS_CLIENT_ID"]
OPENHUMANS_CLIENT_SECRET = os.environ["OH_JOBS_CLIENT_SECRET"]
