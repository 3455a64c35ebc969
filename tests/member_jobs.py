"""Member jobs for the tests: importable by RQ workers (module-level tasks).

Each run that completes is counted, in Redis when ``OH_JOBS_REDIS_URL`` is set (the worker
test, where jobs run in other processes), otherwise in memory.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import Any

from openhumans.jobs import member_job

#: Completed runs per project member id (in-process runs).
completed: Counter[str] = Counter()
#: Calls per project member id, completed or not (in-process runs).
calls: Counter[str] = Counter()

COMPLETED_KEY = "oh-test:completed"
CALLS_KEY = "oh-test:calls"
SLEEPING_KEY = "oh-test:sleeping"


def _redis() -> Any:
    import redis

    return redis.Redis.from_url(os.environ["OH_JOBS_REDIS_URL"])


def _record(pmid: str) -> None:
    if os.environ.get("OH_JOBS_REDIS_URL"):
        _redis().hincrby(COMPLETED_KEY, pmid, 1)
    else:
        completed[pmid] += 1


@member_job(backoff=0.05, backoff_max=0.5)
def import_member(member: Any) -> None:
    """Read the member's files from Open Humans (the "fetch"), then count the run."""
    calls[member.oh_id] += 1
    if os.environ.get("OH_JOBS_REDIS_URL"):
        _redis().hincrby(CALLS_KEY, member.oh_id, 1)
    member.list_files()
    # A little work after the call, so a worker killed mid-run is killed before the count;
    # the marker (gone before the sleep ends) tells the test when to kill.
    if sleep := float(os.environ.get("OH_JOBS_SLEEP", "0")):
        _redis().set(f"{SLEEPING_KEY}:{os.getpid()}", member.oh_id, px=int(sleep * 500))
        time.sleep(sleep)
    _record(member.oh_id)


@member_job(max_attempts=3, backoff=0.01, backoff_max=0.02)
def upload_summary(member: Any) -> None:
    """Upload a small file: a refused upload is a permanent failure."""
    calls[member.oh_id] += 1
    member.upload(b"{}", "summary.json", {"description": "summary", "tags": ["summary"]})
    _record(member.oh_id)
