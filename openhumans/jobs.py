"""Per-member background jobs through Django's tasks framework.

::

    from openhumans.jobs import enqueue_for_active_members, member_job

    @member_job
    def import_member(member):               # an OpenHumansMember
        member.upload(fetch_from_elsewhere(member), "daily.json", metadata)

    enqueue_for_active_members(import_member)   # one task per active member

``django.tasks`` on Django 6.x, the ``django-tasks`` backport on 5.2 (the ``jobs`` extra), so
the project picks the backend: the database backend on one machine, RQ on Redis when it
outgrows one. Importing this module needs Django's settings (tasks are made at import).

A member job is a task taking the project member id. When it runs, a member who left
meanwhile is skipped (not an error). A transient Open Humans failure (connection error,
5xx, 429) is retried with exponential backoff and jitter, as a new deferred task where the
backend can defer, otherwise after a sleep in the same worker; a permanent one (the member
was deauthorized, bad input) fails the task at once. Jobs run at least once: make them
idempotent (replace a file by name rather than adding one).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.utils import timezone

from .exceptions import MemberDeauthorizedError
from .outbox import backoff_delay, deliver, is_transient

try:  # Django 6.x ships the framework; 5.2 has the backport (pip install django-open-humans[jobs])
    from django.tasks import task  # type: ignore[import-not-found,unused-ignore]
except ImportError:
    from django_tasks import task  # type: ignore[no-redef,unused-ignore]

__all__ = [
    "SKIPPED",
    "deliver_outbox_entry",
    "enqueue_for_active_members",
    "member_job",
]

logger = logging.getLogger(__name__)

#: What a member job returns when the member left before it ran.
SKIPPED = "skipped"
DONE = "done"
RETRYING = "retrying"


def _defer(task_obj: Any, delay: float, *args: Any) -> bool:
    """Enqueue ``task_obj(*args)`` to run after ``delay`` seconds; False if it cannot defer."""
    if not task_obj.get_backend().supports_defer:
        return False
    task_obj.using(run_after=timezone.now() + timedelta(seconds=delay)).enqueue(*args)
    return True


def member_job(
    func: Callable[[Any], Any] | None = None,
    *,
    max_attempts: int = 6,
    backoff: float = 2.0,
    backoff_max: float = 600.0,
    **task_options: Any,
) -> Any:
    """Turn ``def job(member)`` into a task run as ``job.enqueue(project_member_id)``.

    ``max_attempts`` bounds the tries for transient failures; attempt n waits a random time
    up to ``backoff * 2**(n-1)`` seconds (at most ``backoff_max``). ``task_options``
    (``queue_name``, ``priority``, ``backend``) go to the framework's ``task()``.
    """

    def decorate(function: Callable[[Any], Any]) -> Any:
        def run(project_member_id: str, attempt: int = 1) -> str:
            return _run(made, function, project_member_id, attempt, policy)

        # The task is found by its module path: it replaces the function under its name.
        run.__name__ = function.__name__
        run.__qualname__ = function.__qualname__
        run.__module__ = function.__module__
        run.__doc__ = function.__doc__
        policy = (max_attempts, backoff, backoff_max)
        made = task(**task_options)(run)
        return made

    return decorate(func) if func is not None else decorate


def _run(
    job: Any,
    function: Callable[[Any], Any],
    pmid: str,
    attempt: int,
    policy: tuple[int, float, float],
) -> str:
    from .models import OpenHumansMember

    max_attempts, backoff, backoff_max = policy
    while True:
        member = OpenHumansMember.objects.active().filter(oh_id=pmid).first()
        if member is None:
            logger.info("job %s skipped: member %s left or is inactive", job.name, pmid)
            return SKIPPED
        try:
            function(member)
        except MemberDeauthorizedError:
            logger.info("job %s skipped: member %s left while it ran", job.name, pmid)
            return SKIPPED
        except Exception as err:
            if not is_transient(err) or attempt >= max_attempts:
                raise  # permanent, or out of attempts: the task fails, with the error
            delay = backoff_delay(attempt, backoff, backoff_max)
            logger.warning(
                "job %s for member %s failed (attempt %d), retrying in %.1f s: %s",
                job.name, pmid, attempt, delay, err,
            )  # fmt: skip
            if _defer(job, delay, pmid, attempt + 1):
                return RETRYING
            time.sleep(delay)
            attempt += 1
            continue
        return DONE


def enqueue_for_active_members(job: Any, *, queryset: Any = None) -> int:
    """Enqueue ``job`` once for every active member (or those of ``queryset``); return count."""
    from .models import OpenHumansMember

    members = queryset if queryset is not None else OpenHumansMember.objects.active()
    count = 0
    for pmid in members.values_list("oh_id", flat=True).iterator():
        job.enqueue(pmid)
        count += 1
    return count


@task()
def deliver_outbox_entry(entry_id: int) -> str:
    """Deliver one outbox entry (:mod:`openhumans.outbox`); a transient failure re-defers it."""
    return deliver(
        entry_id, on_retry=lambda entry, delay: _defer(deliver_outbox_entry, delay, entry.pk)
    )
