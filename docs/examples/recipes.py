import json
from datetime import date

from django.apps import AppConfig

from openhumans.signals import member_authorized

SUMMARY_METADATA = {"description": "Steps per day, updated daily", "tags": ["summary", "steps"]}


# -- start an import on connect ------------------------------------------------------------


def start_import(sender, open_humans_member, created, request, **kwargs):
    """Import the member's data as soon as they connect (first time or again)."""
    # A real project enqueues a task here (the request should not wait for it):
    #     import_steps.enqueue(open_humans_member.oh_id)
    import_steps(open_humans_member)


def import_steps(member):
    steps = {"2026-11-29": 8123, "2026-11-30": 9045}  # fetched from the device's API
    member.upload_json(steps, "steps.json", {"description": "Imported steps", "tags": ["steps"]})


class OurProjectConfig(AppConfig):
    name = "our_project"

    def ready(self):
        member_authorized.connect(start_import, dispatch_uid="our_project.start_import")


# -- read a member's JSON --------------------------------------------------------------------


def latest_survey_answers(member):
    """The member's newest survey answers, or None if they have not answered yet."""
    answers = member.latest_file(tag="survey")
    if answers is None:
        return None
    return member.read_json(answers)  # refuses a file over OPENHUMANS_MAX_READ_SIZE


# -- replace a daily summary safely ----------------------------------------------------------


def save_daily_summary(member, steps_by_day):
    """Store the summary; the old one is deleted only once the new one is uploaded."""
    body = json.dumps({"updated": date.today().isoformat(), "steps": steps_by_day})
    new_file, deleted_ids = member.replace_file(
        body.encode("utf-8"), "summary.json", SUMMARY_METADATA, match="basename"
    )
    return new_file, deleted_ids
