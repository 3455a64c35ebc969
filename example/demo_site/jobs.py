"""The demo's one background job: rebuild the member's ``summary.json`` after each upload.

Runs on Django's tasks framework with the database backend (``manage.py db_worker``, which
``make demo`` starts beside the site): no extra service. The job is idempotent (it replaces
the summary by name), as member jobs should be: a job may run more than once.
"""

from __future__ import annotations

import json
from collections import Counter

from openhumans.jobs import member_job

SUMMARY = "summary.json"


@member_job
def rebuild_summary(member):
    """Write a summary of the member's other files (count, bytes, tags) as summary.json."""
    files = [f for f in member.list_files() if f["basename"] != SUMMARY]
    tags = Counter(t for f in files for t in f["metadata"].get("tags", []))
    sizes = [f["metadata"].get("size") for f in files]
    summary = {
        "files": len(files),
        "bytes": sum(s for s in sizes if isinstance(s, int)),
        "tags": dict(sorted(tags.items())),
        "latest": max((f["created"] for f in files), default=None),
    }
    member.replace_file(
        json.dumps(summary, indent=2).encode(),
        SUMMARY,
        {"description": "A summary of your files, rebuilt after each upload", "tags": ["summary"]},
    )
