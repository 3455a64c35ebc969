"""One RQ worker for the worker tests: ``python -m tests.rq_worker`` (settings from the env).

What ``manage.py rqworker --with-scheduler --job-class openhumans.jobs_rq.Job`` runs, with
registry maintenance every 2 s instead of 10 min, so a job abandoned by a killed worker is
found soon after its heartbeat lapses (RQ gives it 60 s at least).
"""

from __future__ import annotations

import importlib
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.worker_settings")
django.setup()

import django_rq  # noqa: E402
from django.db import connections  # noqa: E402
from rq.logutils import setup_loghandlers  # noqa: E402

from openhumans.jobs_rq import Job  # noqa: E402


def main() -> None:
    # Import the task modules once here: otherwise every forked work horse imports them
    # (and builds the task backend) again, which costs more than a small job itself.
    for module in os.environ.get("OH_JOBS_PRELOAD", "tests.member_jobs").split(","):
        importlib.import_module(module)
    worker = django_rq.get_worker(
        "default",
        job_class=Job,
        worker_class=os.environ.get("OH_JOBS_WORKER_CLASS"),
        maintenance_interval=2,
        worker_ttl=20,  # an idle worker wakes every 5 s (worker_ttl - 15) to run maintenance
        # Heartbeat every 5 s: a killed worker's job is found abandoned 65 s later (RQ adds 60).
        job_monitoring_interval=5,
    )
    connections.close_all()  # never share a connection with the forked work horses
    level = os.environ.get("OH_JOBS_LOG_LEVEL", "WARNING")
    setup_loghandlers(level)
    worker.work(with_scheduler=True, logging_level=level)


if __name__ == "__main__":
    main()
