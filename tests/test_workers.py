"""Member jobs and the outbox on real RQ workers (4 processes) on Redis, against the sandbox.

Behind the ``workers`` marker: ``make test PYTEST_ARGS='-m workers'`` (Redis on
127.0.0.1:6379, db 7; ``OH_TEST_REDIS_URL`` overrides). ``.ci/run`` starts Redis and runs them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from openhumans.jobs import enqueue_for_active_members
from openhumans.models import OpenHumansMember
from openhumans.outbox import OutboxEntry, queue_message

from . import member_jobs

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("OH_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")
WORKERS = 4
N_FAULTY = int(os.environ.get("OH_TEST_FAULTY_MEMBERS", "300"))


@pytest.fixture
def redis_db() -> Iterator[Any]:
    import redis

    conn = redis.Redis.from_url(REDIS_URL)
    conn.ping()  # no Redis is a failure here, not a skip: .ci/run starts it
    conn.flushdb()
    yield conn
    conn.flushdb()


class Workers:
    """RQ worker processes sharing the test database, Redis and the sandbox."""

    def __init__(self, sandbox: Any, log_dir: Path, **env: str) -> None:
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.worker_settings",
            "OH_JOBS_DB_NAME": str(connection.settings_dict["NAME"]),
            "OH_JOBS_REDIS_URL": REDIS_URL,
            "OH_JOBS_OH_BASE_URL": sandbox.base_url,
            "OH_JOBS_CLIENT_ID": sandbox.client_id,
            "OH_JOBS_CLIENT_SECRET": sandbox.client_secret,
            # No fork per job: four small jobs' worth of CPU on a 2-core machine. A killed
            # worker then takes its job down with it, as a lost machine would.
            "OH_JOBS_WORKER_CLASS": "rq.worker.SimpleWorker",
            **env,
        }
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, count: int) -> None:
        for _ in range(count):
            log = open(self.log_dir / f"worker-{len(self.procs)}.log", "wb")  # noqa: SIM115
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "tests.rq_worker"],
                    cwd=ROOT,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )

    def horse(self, proc: subprocess.Popen[bytes]) -> int | None:
        """The pid of the work horse running a job for ``proc`` right now, if any."""
        try:
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        except OSError:
            return None
        return int(children[0]) if children else None

    def kill_one_mid_run(self, redis_db: Any, timeout: float = 60) -> str:
        """SIGKILL a worker in the middle of a job (and any work horse of it), as a lost
        machine would; return the project member id of that job."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.procs:
                # The job marks the process running it while it works (member_jobs).
                for pid in (proc.pid, self.horse(proc)):
                    pmid = pid and redis_db.get(f"{member_jobs.SLEEPING_KEY}:{pid}")
                    if pmid:
                        if pid != proc.pid:
                            os.kill(pid, signal.SIGKILL)
                        proc.kill()
                        proc.wait()
                        return str(pmid.decode())
            time.sleep(0.005)
        raise AssertionError("no worker was running a job")

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in self.log_dir.glob("*.log"))

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def workers(
    sandbox: Any, settings: Any, redis_db: Any, tmp_path: Path
) -> Iterator[Callable[..., Workers]]:
    # The test process enqueues through the same backend the workers run.
    settings.TASKS = {"default": {"BACKEND": "openhumans.jobs_rq.RQBackend", "QUEUES": ["default"]}}
    settings.RQ_QUEUES = {"default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 20}}
    started: list[Workers] = []

    def start(count: int = WORKERS, **env: str) -> Workers:
        group = Workers(sandbox, tmp_path, **env)
        group.start(count)
        started.append(group)
        return group

    yield start
    for group in started:
        group.stop()


def make_members(sandbox: Any, count: int) -> list[str]:
    """``count`` sandbox members with live tokens, stored here in two bulk inserts."""
    user_model = get_user_model()
    pmids, tokens = [], []
    for _ in range(count):
        pmid = sandbox.create_member()["project_member_id"]
        pmids.append(pmid)
        tokens.append(sandbox.issue_tokens(pmid))
    users = user_model.objects.bulk_create(
        [user_model(username=f"{pmid}_openhumans") for pmid in pmids]
    )
    if users[0].pk is None:  # backends that do not return ids
        users = list(user_model.objects.filter(username__in=[u.username for u in users]))
    by_name = {u.username: u for u in users}
    expires = timezone.now() + timedelta(hours=10)
    OpenHumansMember.objects.bulk_create(
        OpenHumansMember(
            user=by_name[f"{pmid}_openhumans"],
            oh_id=pmid,
            access_token=t["access_token"],
            refresh_token=t["refresh_token"],
            token_expires=expires,
        )
        for pmid, t in zip(pmids, tokens, strict=True)
    )
    return pmids


def wait_for(condition: Callable[[], bool], timeout: float, what: str, group: Workers) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} ({rq_state()}); logs:\n{group.logs()}")


def rq_state() -> str:
    import django_rq
    from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

    queue = django_rq.get_queue("default")
    return (
        f"queued {queue.count}, started {StartedJobRegistry(queue=queue).count}, "
        f"scheduled {ScheduledJobRegistry(queue=queue).count}, "
        f"failed {FailedJobRegistry(queue=queue).count}"
    )


def completed(redis_db: Any) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in redis_db.hgetall(member_jobs.COMPLETED_KEY).items()}


def queue_drained() -> bool:
    import django_rq
    from rq.registry import ScheduledJobRegistry, StartedJobRegistry

    queue = django_rq.get_queue("default")
    return (
        queue.count == 0
        and StartedJobRegistry(queue=queue).count == 0
        and ScheduledJobRegistry(queue=queue).count == 0
    )


def test_a_thousand_members_are_each_imported_exactly_once(
    sandbox: Any, workers: Any, redis_db: Any
) -> None:
    pmids = make_members(sandbox, 1000)
    group = workers()
    started = time.monotonic()
    assert enqueue_for_active_members(member_jobs.import_member) == 1000
    wait_for(lambda: len(completed(redis_db)) == 1000, 240, "1,000 imports", group)
    wait_for(queue_drained, 30, "an empty queue", group)
    print(f"\n1,000 member jobs on {WORKERS} RQ workers: {time.monotonic() - started:.1f} s")
    assert completed(redis_db) == dict.fromkeys(pmids, 1)


def test_with_20_percent_failures_and_a_worker_killed_every_job_completes_once(
    sandbox: Any, workers: Any, redis_db: Any
) -> None:
    pmids = make_members(sandbox, N_FAULTY)
    sandbox.set_fault("/api/", error_rate=0.2, status=503)
    # Work after the API call (0.2 s), during which the worker is killed: before it counts.
    group = workers(OH_JOBS_SLEEP="0.2")
    assert enqueue_for_active_members(member_jobs.import_member) == N_FAULTY
    killed = group.kill_one_mid_run(redis_db)
    # The killed job runs again once its lease lapses (the job timeout, 20 s here, + 60 s)
    # and a surviving worker's registry maintenance finds it abandoned.
    wait_for(lambda: len(completed(redis_db)) == N_FAULTY, 240, "every import", group)
    wait_for(queue_drained, 30, "an empty queue", group)
    assert completed(redis_db) == dict.fromkeys(pmids, 1)
    # The killed job was started twice: killed mid-run, then run again to completion.
    assert int(redis_db.hget(member_jobs.CALLS_KEY, killed)) >= 2
    statuses = [r["status"] for r in sandbox.request_log()["requests"]]
    assert 503 in statuses  # the sandbox did fail requests; every member still got imported


def test_outbox_entries_wait_out_an_outage_and_are_delivered_once(
    sandbox: Any, workers: Any, redis_db: Any
) -> None:
    pmids = make_members(sandbox, 100)
    sandbox.set_fault("/", error_rate=1.0, status=503)
    group = workers()
    for pmid in pmids:
        with transaction.atomic():  # the change and its side effect commit together
            OpenHumansMember.objects.filter(pk=pmid).update(public=True)
            queue_message(pmid, "Weekly summary", "Your summary is ready.")
    tried = OutboxEntry.objects.filter(status=OutboxEntry.PENDING, attempts__gte=1)
    wait_for(lambda: tried.count() == 100, 120, "100 failed first attempts", group)
    assert not OutboxEntry.objects.exclude(status=OutboxEntry.PENDING).exists()
    assert sandbox.inbox() == []

    sandbox.clear_faults()
    from django.core.management import call_command

    call_command("openhumans_deliver", "--now")  # deliver: the workers' retries race it
    wait_for(queue_drained, 60, "the deferred retries", group)
    assert OutboxEntry.objects.filter(status=OutboxEntry.DELIVERED).count() == 100
    inbox = sorted(m["project_member_id"] for m in sandbox.inbox())
    assert inbox == sorted(pmids)  # each member's message exactly once


def test_members_deleted_during_an_outage_are_each_removed_once(
    sandbox: Any, workers: Any, redis_db: Any
) -> None:
    """Issue 12: with every request failing, 100 members are deleted here: all deleted locally,
    100 deauthorization notices pending in the outbox; Open Humans back, delivery tells it
    about each member exactly once."""
    from openhumans.models import PendingDeauthNotice

    pmids = make_members(sandbox, 100)
    sandbox.set_fault("/", error_rate=1.0, status=503)
    group = workers()
    for pmid in pmids:
        OpenHumansMember.objects.get(pk=pmid).user.delete()
    assert not OpenHumansMember.objects.exists()
    notices = PendingDeauthNotice.objects.filter(status=OutboxEntry.PENDING, attempts__gte=1)
    wait_for(lambda: notices.count() == 100, 120, "100 failed first attempts", group)
    assert all(sandbox.member(pmid)["active"] for pmid in pmids)

    sandbox.clear_faults()
    sandbox.clear_request_log()
    from django.core.management import call_command

    call_command("openhumans_deliver", "--now")  # deliver: the workers' retries race it
    wait_for(queue_drained, 60, "the deferred retries", group)
    assert not PendingDeauthNotice.objects.exists()
    delivered = OutboxEntry.objects.filter(kind=OutboxEntry.DEAUTH, status=OutboxEntry.DELIVERED)
    assert delivered.count() == 100
    assert not delivered.filter(access_token__isnull=False).exists()  # the pairs are wiped
    assert not any(sandbox.member(pmid)["active"] for pmid in pmids)
    removals = [
        r for r in sandbox.request_log()["requests"] if r["path"].endswith("remove-members/")
    ]
    assert len(removals) == 100  # each member exactly once
