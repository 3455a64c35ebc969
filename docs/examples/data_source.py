"""The code of "Running a data-source project" (docs/data_source.rst), run by the suite."""

from __future__ import annotations

import json
from typing import Any

from django.db import transaction

from openhumans import Project
from openhumans.jobs import enqueue_for_active_members, member_job
from openhumans.outbox import queue_upload


def fetch_steps(member: Any) -> dict[str, Any]:
    """Stands in for the call to Fitbit, Oura or Google Fit."""
    return {"project_member_id": member.oh_id, "steps": 8421}


@member_job
def import_member(member):
    """Fetch the member's data from elsewhere and replace their file with it."""
    data = json.dumps(fetch_steps(member)).encode()
    member.delete_single_file(file_basename="steps.json")  # replace, never add a copy
    member.upload(data, "steps.json", {"description": "Daily steps", "tags": ["steps"]})


def nightly_import():
    """Queue one import per active member (run it from cron, or a periodic task)."""
    return enqueue_for_active_members(import_member)


def message_everyone():
    """Email every member of the project through Open Humans (master token)."""
    Project().message("New this week", "Your weekly summary is ready.", all_members=True)


def make_public(member, summary):
    """Change a member here and owe Open Humans an upload, in one transaction."""
    with transaction.atomic():
        member.public = True
        member.save(update_fields=["public"])
        queue_upload(
            member,
            json.dumps(summary).encode(),
            "summary.json",
            {"description": "Public summary", "tags": ["summary"]},
        )
