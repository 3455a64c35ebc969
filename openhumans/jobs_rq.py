"""RQ for Django's tasks framework, made safe against workers that die mid-job.

django-tasks-rq queues a job without retries, so RQ drops a job whose worker process was
killed (out of memory, a deploy's SIGKILL, a lost machine): it lands in the failed registry.
This backend queues each job with a few retries that RQ spends *only* when the process
running the job died; a job that raised is failed as before (member jobs do their own
retrying of transient Open Humans errors, see :mod:`openhumans.jobs`)::

    TASKS = {"default": {"BACKEND": "openhumans.jobs_rq.RQBackend", "QUEUES": ["default"]}}
    RQ_QUEUES = {"default": {"URL": "redis://127.0.0.1:6379/0"}}
    # INSTALLED_APPS += ["django_rq"]; then run workers with:
    #   manage.py rqworker --with-scheduler --job-class openhumans.jobs_rq.Job

Needs the ``rq`` extra (``pip install django-open-humans[rq]``). django-tasks-rq is built on
the ``django-tasks`` backport on every Django version, 6.x included (it runs ``django.tasks``
tasks too), so this module uses the backport's types, as its base class does. On Django 6 the
backend's signals are therefore ``django_tasks.signals``, not ``django.tasks.signals``.
"""

from __future__ import annotations

from typing import Any

import django_rq
from django_tasks.base import TASK_MAX_PRIORITY, TaskResult, TaskResultStatus
from django_tasks.signals import task_enqueued
from django_tasks.utils import get_random_id
from django_tasks_rq.backend import Job as _TasksJob
from django_tasks_rq.backend import RQBackend as _TasksRQBackend
from django_tasks_rq.backend import failed_callback, success_callback
from rq.job import Callback, JobStatus, Retry

__all__ = ["CRASH_RETRIES", "Job", "RQBackend"]

#: How many times a job is run again after the process running it died.
CRASH_RETRIES = 3


class Job(_TasksJob):
    """A task's RQ job, re-queued (up to CRASH_RETRIES times) only if its worker died."""

    def _execute(self) -> Any:
        try:
            return super()._execute()
        except BaseException:
            # It ran and raised: a failure of the task, not of the worker. RQ reads
            # retries_left in this same process to decide, so none are spent on it.
            self.retries_left = 0
            raise


class RQBackend(_TasksRQBackend):
    """django-tasks-rq's backend, queueing :class:`Job`\\ s that survive a dying worker."""

    def enqueue(self, task: Any, args: Any, kwargs: Any) -> TaskResult[Any]:
        """Queue ``task`` as django-tasks-rq does, with crash retries."""
        self.validate_task(task)
        task_result: TaskResult[Any] = TaskResult(
            task=task,
            id=get_random_id(),
            status=TaskResultStatus.READY,
            enqueued_at=None,
            started_at=None,
            last_attempted_at=None,
            finished_at=None,
            args=args,
            kwargs=kwargs,
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        queue = django_rq.get_queue(task.queue_name, job_class=Job)
        job = queue.create_job(
            task.module_path,
            args=args,
            kwargs=kwargs,
            job_id=task_result.id,
            status=JobStatus.SCHEDULED if task.run_after else JobStatus.QUEUED,
            on_failure=Callback(failed_callback),
            on_success=Callback(success_callback),
            meta={"backend_name": self.alias},
            retry=Retry(max=CRASH_RETRIES),
        )
        if task.run_after is None:
            job = queue.enqueue_job(job, at_front=task.priority == TASK_MAX_PRIORITY)
        else:
            job = queue.schedule_job(job, task.run_after)
        object.__setattr__(task_result, "enqueued_at", job.enqueued_at)
        task_enqueued.send(type(self), task_result=task_result)
        return task_result
