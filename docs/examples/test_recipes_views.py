import pytest
from django.http import HttpResponse
from django.urls import include, path

from openhumans.member_views import member_required


# A project's own view, as in its views.py: the member's latest summary.
@member_required
def latest_summary(request):
    member = request.openhumans_member
    summary = member.latest_file(tag="summary")
    if summary is None:
        return HttpResponse("no summary yet")
    return HttpResponse(f"steps: {member.read_json(summary)['steps']}")


urlpatterns = [
    path("summary/", latest_summary),
    path("openhumans/", include("openhumans.urls")),
]


@pytest.fixture(autouse=True)
def our_urls(settings):
    # Only for this example; a project's own ROOT_URLCONF already has its views.
    settings.ROOT_URLCONF = __name__


def test_summary_after_logging_in(client, oh_login):
    member = oh_login(client)  # login view -> Open Humans consent -> complete
    member.upload_json({"steps": 9000}, "summary.json", {"description": "", "tags": ["summary"]})
    assert client.get("/summary/").content == b"steps: 9000"


def test_no_summary_yet(client, oh_member_factory, oh_login):
    bob = oh_member_factory("bob", files=["notes.txt"])
    oh_login(client, bob)
    assert client.get("/summary/").content == b"no summary yet"


def test_visitors_are_sent_to_log_in(client, db):
    response = client.get("/summary/")
    assert response.status_code == 302
    assert response["Location"] == "/openhumans/login/?next=/summary/"


def test_a_member_who_left_is_asked_to_reconnect(client, oh_login, oh_sandbox):
    member = oh_login(client)
    oh_sandbox.leave(member.oh_id)
    response = client.get("/summary/")
    assert response["Location"].startswith("/openhumans/reconnect/")
