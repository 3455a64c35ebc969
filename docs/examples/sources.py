"""The examples of "Sources and scopes" (docs/sources.rst), run by tests/test_docs_examples.py."""

from __future__ import annotations

from django.conf import settings

from openhumans.client import OpenHumansClient

# A source is named by its id_label, "direct-sharing-<project id>": the number in the
# address of the source project's page on Open Humans (or its API: /api/public/project/<id>/).
FITBIT_SOURCE = "direct-sharing-102"


def files_from(oh_member, source):
    """The member's files that one source uploaded (another project, or this one)."""
    return [f for f in oh_member.list_files() if f["source"] == source]


def what_this_member_shares(oh_member):
    """The other sources this member shares with the project, and this project's own label."""
    token = oh_member.get_access_token()
    with OpenHumansClient(token, base_url=settings.OPENHUMANS_OH_BASE_URL) as api:
        shared = api.exchange_member().sources_shared  # other projects' id_labels
        own = api.project()["id_label"]  # the "source" of the files this project uploads
    return own, list(shared)


def fitbit_or_ask(oh_member):
    """The member's Fitbit files, or None if they do not share that source (yet)."""
    own, shared = what_this_member_shares(oh_member)
    if FITBIT_SOURCE not in shared:
        return None  # e.g. show "connect Fitbit on Open Humans, then log in here again"
    return files_from(oh_member, FITBIT_SOURCE)
