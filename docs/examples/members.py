"""The examples of "Interacting with Members" (docs/members.rst).

Each function is shown in the docs with ``literalinclude`` and run against the sandbox by
tests/test_docs_examples.py, so what the docs show is what works.
"""

from __future__ import annotations

import io

from django.contrib.auth import get_user_model

from openhumans.models import OpenHumansMember


def get_member_of_a_user():
    User = get_user_model()
    single_user = User.objects.all()[0]  # get a single user
    # Prints: Open Humans member 12341337
    # (the shell's repr is still <OpenHumansMember (oh_id='12341337')>)
    print(single_user.openhumansmember)
    return single_user.openhumansmember


def my_view(request):
    open_humans_member = request.user.openhumansmember
    return open_humans_member


def show_files():
    oh_member = OpenHumansMember.objects.all()[0]
    for f in oh_member.list_files():
        print(f["id"], f["basename"], f["created"], f["metadata"]["tags"])
        print("  download (valid one hour):", f["download_url"])


def delete_files(file_id):
    oh_member = OpenHumansMember.objects.all()[0]

    # Delete a single file by file-ID (see accessing files)
    oh_member.delete_single_file(file_id=file_id)

    # Delete one or multiple files by file-name.
    oh_member.delete_single_file(file_basename="my_file.json")

    # Delete all files of a member
    oh_member.delete_all_files()


def upload_file(request):
    oh_member = request.user.openhumansmember

    with open("example_file.json") as f:
        oh_member.upload(
            f,
            "example.json",
            metadata={"description": "foo", "tags": ["test", "example"]},
        )


def upload_bytes(oh_member):
    data = io.BytesIO(b"day,steps\n2024-01-01,9000\n")
    result = oh_member.upload(
        data, "steps.csv", metadata={"description": "Daily steps", "tags": ["steps", "csv"]}
    )
    print(result.id, result.size)  # the new file's id and its size in bytes
    return result


def send_message(oh_member):
    oh_member.message(
        "Your report is ready",
        "Hello {{ PROJECT_MEMBER_ID }}, your weekly report is waiting for you.",
    )


def withdraw(oh_member):
    # Open Humans removes the member from the project and calls your deauth webhook.
    oh_member.deauth()
    assert oh_member.oh_deauth


def call_the_api_directly(oh_member):
    from django.conf import settings

    from openhumans.client import OpenHumansClient

    token = oh_member.get_access_token()  # refreshed first if less than a minute is left
    with OpenHumansClient(token, base_url=settings.OPENHUMANS_OH_BASE_URL) as api:
        member = api.exchange_member()
        print(member.project_member_id, member.file_count)


def files_or_reconnect(request):
    from django.shortcuts import redirect, render

    from openhumans.exceptions import MemberDeauthorizedError

    try:
        files = request.user.openhumansmember.list_files()
    except MemberDeauthorizedError:
        # The member left the project, or Open Humans refused to refresh their token.
        return redirect("openhumans:login")
    return render(request, "openhumans/list_files.html", {"files": files})


def refresh_now(oh_member):
    # Tokens are refreshed when needed; this forces it (after a leaked token, for instance).
    oh_member.refresh_tokens()


def store_tokens_from_elsewhere(token_response, user=None):
    # token_response: the JSON body of Open Humans' /oauth2/token/ endpoint.
    oh_member = OpenHumansMember.get_create_member(token_response, user=user)
    print(oh_member.oh_id, oh_member.user)
    return oh_member


def create_member_for_known_id(oh_id, token_response):
    # No request to Open Humans: you vouch that the tokens belong to oh_id.
    return OpenHumansMember.create(oh_id=oh_id, data=token_response)


def exchange_a_code(code):
    # What the complete view does with the code Open Humans sent back.
    return OpenHumansMember.oh_code_to_member(code=code)


def login_link():
    return OpenHumansMember.get_auth_url() + "?next=/dashboard/"
