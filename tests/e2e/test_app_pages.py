"""The app's own default pages in Chromium, at desktop and phone width.

The tests project (``tests/urls.py``: the app under ``openhumans/``) runs under
``runserver`` with its own SQLite database and the sandbox; a person logs in, uploads,
deletes everything after confirming, meets an outage and logs out. Screenshots of each page
go to a temporary directory (printed), to look at.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from .conftest import CLIENT_ID, CLIENT_SECRET, ROOT, free_port, wait_for_port

pytestmark = pytest.mark.browser

SETTINGS = """
import os
from tests.settings import *  # noqa: F403

DEBUG = False
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["APP_DB"]}}
OPENHUMANS_APP_BASE_URL = os.environ["OPENHUMANS_APP_BASE_URL"]
OPENHUMANS_OH_BASE_URL = os.environ["OPENHUMANS_OH_BASE_URL"]
OPENHUMANS_CLIENT_ID = os.environ["OPENHUMANS_CLIENT_ID"]
OPENHUMANS_CLIENT_SECRET = os.environ["OPENHUMANS_CLIENT_SECRET"]
OPENHUMANS_LOGOUT_REDIRECT_URL = "/openhumans/list/"
"""

LIST = re.compile(r".*/openhumans/list/?$")
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The tests project serving the app's pages, and a sandbox: ``(site_url, sandbox)``."""
    from openhumans.sandbox import Sandbox

    tmp = tmp_path_factory.mktemp("app_pages")
    (tmp / "app_pages_settings.py").write_text(SETTINGS)
    port = free_port()
    site = f"http://127.0.0.1:{port}"
    with Sandbox(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        redirect_uri=f"{site}/openhumans/complete",
        port=0,
    ) as oh:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENHUMANS_", "DJANGO_"))}
        env.update(
            PYTHONPATH=os.pathsep.join([str(tmp), str(ROOT)]),
            DJANGO_SETTINGS_MODULE="app_pages_settings",
            APP_DB=str(tmp / "app.sqlite3"),
            OPENHUMANS_APP_BASE_URL=site,
            OPENHUMANS_OH_BASE_URL=oh.base_url,
            OPENHUMANS_CLIENT_ID=CLIENT_ID,
            OPENHUMANS_CLIENT_SECRET=CLIENT_SECRET,
        )
        django = [sys.executable, "-m", "django"]
        subprocess.run([*django, "migrate", "-v", "0"], env=env, check=True, cwd=tmp)
        log = tmp / "site.log"
        with log.open("w") as out:
            # --insecure: serve the app's stylesheet with DEBUG off, as a web server would.
            proc = subprocess.Popen(
                [*django, "runserver", "--noreload", "--insecure", f"127.0.0.1:{port}"],
                env=env,
                cwd=tmp,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            try:
                wait_for_port(port, proc, log)
                yield site, oh
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    out = tmp_path_factory.mktemp("app_pages_screenshots")
    print(f"\nscreenshots of the app's pages: {out}")
    return out


def fits_the_width(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize("width", list(VIEWPORTS))
def test_app_pages_look_finished_and_work(browser, app, shots, width):
    from playwright.sync_api import expect

    site, oh = app
    context = browser.new_context(viewport=VIEWPORTS[width], is_mobile=width == "phone")
    page = context.new_page()
    page.set_default_timeout(15_000)

    def shot(name):
        page.screenshot(path=str(shots / f"{width}-{name}.png"), full_page=True)
        assert fits_the_width(page), f"{name} scrolls sideways at {width} width"

    try:
        # Not logged in: the page says so and offers the login, styled by our stylesheet.
        page.goto(f"{site}/openhumans/list/")
        expect(page.locator("h1")).to_have_text("Log in with Open Humans")
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(246, 247, 249)"  # openhumans.css was served and applied
        expect(page.get_by_role("button", name="Log out")).to_have_count(0)
        shot("1-not-connected")

        page.get_by_role("link", name="Log in with Open Humans").click()
        page.fill("input[name=new_username]", f"pat-{width}")
        page.get_by_role("button", name="Authorize project").click()
        page.wait_for_url(LIST)
        expect(page.locator(".oh-who")).to_contain_text("Signed in as")
        expect(page.locator(".oh-who")).to_be_visible()
        expect(page.get_by_text("No files yet.")).to_be_visible()
        shot("2-no-files")

        page.get_by_role("link", name="Upload a file").click()
        page.locator("input[name=data_file]").set_input_files(
            files=[{"name": "report.csv", "mimeType": "text/csv", "buffer": b"a,b\n1,2\n"}]
        )
        page.fill("input[name=description]", "Weekly report")
        page.fill("input[name=tags]", "csv, weekly")
        shot("3-upload-form")
        page.get_by_role("button", name="Upload").click()
        # direct-upload.js sends it straight to storage and says so on the page.
        expect(page.locator(".openhumans-upload-message")).to_contain_text("Uploaded report.csv")
        shot("3b-uploaded")
        page.get_by_role("link", name="Your files").click()
        page.wait_for_url(LIST)
        row = page.locator("tr", has_text="report.csv")
        expect(row.locator("time")).to_have_text("just now")
        expect(row).to_contain_text("csv, weekly")
        shot("4-one-file")

        # Deleting everything takes two steps, without JavaScript.
        confirm = page.get_by_role("button", name="Yes, delete all files")
        expect(confirm).to_be_hidden()
        page.get_by_text("Delete all files…").click()
        expect(confirm).to_be_visible()
        shot("5-confirm-delete-all")
        confirm.click()
        page.wait_for_url(LIST)
        expect(page.locator(".oh-messages")).to_have_text(
            "Deleted the one file this project uploaded."
        )

        # Open Humans down: try again or log out, never "log in" to someone logged in.
        oh.set_fault(
            endpoint="/api/direct-sharing/project/exchange-member/", error_rate=1.0, status=503
        )
        page.reload()
        expect(page.locator("h1")).to_have_text("Open Humans is not answering")
        expect(page.get_by_role("link", name="Try again")).to_be_visible()
        expect(page.get_by_role("link", name="Log in with Open Humans")).to_have_count(0)
        shot("6-outage")
        oh.clear_faults()
        page.get_by_role("link", name="Try again").click()
        expect(page.locator("h1")).to_have_text("Your files on Open Humans")

        page.get_by_role("button", name="Log out").click()
        expect(page.locator("h1")).to_have_text("Log in with Open Humans")
    finally:
        context.close()
