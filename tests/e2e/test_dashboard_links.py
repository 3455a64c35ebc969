"""The demo's dashboard links files through ``openhumans:download``, never ``download_url``.

Rendered without a browser or a server: the URL comes from Open Humans, and a hostile or
broken server must not get a ``javascript:`` link onto the page (as the app's
``openhumans/list_files.html``).
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponse
from django.template import Context, Engine
from django.test import override_settings
from django.urls import include, path

from .conftest import EXAMPLE_DIR


def _view(request):  # pragma: no cover - only reversed, never called
    return HttpResponse()


urlpatterns = [
    path("", _view, name="home"),
    path("dashboard/", _view, name="dashboard"),
    path("upload/", _view, name="upload"),
    path("upload/start/", _view, name="upload_start"),
    path("message/", _view, name="send_message"),
    path("account/delete/", _view, name="delete_account"),
    path("openhumans/", include("openhumans.urls")),
]


def render_dashboard(download_url):
    engine = Engine(
        dirs=[str(EXAMPLE_DIR / "demo_site" / "templates")],
        libraries={"static": "django.templatetags.static"},
    )
    context = {
        "user": AnonymousUser(),
        "member": {"oh_id": "12345678"},
        "sandbox_url": "http://127.0.0.1:8001",
        "files": [
            {
                "id": 7,
                "basename": "steps.csv",
                "created": None,
                "download_url": download_url,
                "description": "Daily steps",
                "tags": ["steps"],
                "size": 12,
            }
        ],
    }
    with override_settings(ROOT_URLCONF=__name__):
        return engine.get_template("demo/dashboard.html").render(Context(context))


@pytest.mark.parametrize(
    "url",
    [
        "https://oh.example/data-management/datafile-download/7/?key=abc",
        "javascript:alert(document.cookie)",
        " JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "//oh.example/download/7/",
        "",
        None,
    ],
)
def test_files_link_through_the_download_view_never_to_download_url(url):
    # Issue 11 changed this: the dashboard links openhumans:download (a fresh download_url
    # per click, ownership checked), so whatever Open Humans listed never becomes an href.
    html = render_dashboard(url)
    hrefs = re.findall(r'href="([^"]*)"', html)
    assert hrefs.count("/openhumans/download/7/") == 2, hrefs
    assert re.search(r'<a class="file-name" href="[^"]+" download="steps.csv"', html)
    assert ">Download</a>" in html
    assert "javascript:" not in html.lower()
    assert "data:text" not in html
    assert "oh.example" not in html
