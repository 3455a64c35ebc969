"""The newcomer's story in a real browser: the demo site against the sandbox.

Log in (and cancel a login), upload, download, delete one and all, message yourself, log
out and in, then leave the project on the sandbox with and without erasure.
"""

from __future__ import annotations

import subprocess
import uuid

import pytest

from .conftest import EXAMPLE_DIR

pytestmark = pytest.mark.browser

CSV = b"date,steps\n2026-11-01,9120\n2026-11-02,10433\n"
NOTES = b"sleep log\nbed 23:10, up 07:05\n"


def expect(page):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(page)


def authorize_new_member(page, demo) -> str:
    """From the demo's home page, log in as a new sandbox member; return its id."""
    page.goto(demo.site + "/")
    page.get_by_role("link", name="Log in with Open Humans").click()
    page.wait_for_url(demo.oh.base_url + "/direct-sharing/projects/oauth2/authorize/**")
    # As a person does (and must, without JavaScript): choose "new member", type the name.
    page.check("#member-new")
    page.fill("input[name=new_username]", f"alice-{uuid.uuid4().hex[:6]}")
    page.get_by_role("button", name="Authorize project").click()
    page.wait_for_url(demo.site + "/dashboard/")
    # The name shown is the Open Humans username; the member id is in data-member-id.
    expect(page.locator(".who")).to_contain_text("alice-")
    return page.locator(".who").get_attribute("data-member-id")


def authorize_existing_member(page, demo, pmid: str) -> None:
    """On the sandbox's authorize page, pick member ``pmid`` and authorize."""
    page.wait_for_url(demo.oh.base_url + "/direct-sharing/projects/oauth2/authorize/**")
    page.check(f"input[name=member][value='{pmid}']")
    page.get_by_role("button", name="Authorize project").click()
    page.wait_for_url(demo.site + "/dashboard/")


def upload(page, name: str, content: bytes, description: str, tags: str) -> None:
    form = page.locator("#upload-form")
    form.locator("input[name=file]").set_input_files(
        {"name": name, "mimeType": "text/plain", "buffer": content}
    )
    form.locator("input[name=description]").fill(description)
    form.locator("input[name=tags]").fill(tags)
    form.get_by_role("button", name="Upload").click()
    # direct-upload.js sends it straight to storage and refreshes the list in place.
    expect(form.locator(".openhumans-upload-message")).to_contain_text(f"Uploaded {name}")


def file_row(page, name: str):
    return page.locator("li.file", has=page.locator(".file-name", has_text=name))


def test_denying_access_shows_login_cancelled(page, demo):
    page.goto(demo.site + "/")
    page.get_by_role("link", name="Log in with Open Humans").click()
    page.wait_for_url(demo.oh.base_url + "/direct-sharing/projects/oauth2/authorize/**")
    page.get_by_role("button", name="Deny").click()
    page.wait_for_url(demo.site + "/")
    expect(page.locator(".flash")).to_contain_text("Login cancelled")
    expect(page.get_by_role("link", name="Log in with Open Humans")).to_be_visible()


def test_files_messages_and_logging_back_in(page, demo):
    pmid = authorize_new_member(page, demo)
    expect(page.locator("#no-files")).to_be_visible()

    upload(page, "steps.csv", CSV, "Daily steps", "steps, csv")
    upload(page, "sleep.txt", NOTES, "Sleep notes", "sleep")
    expect(page.locator(".openhumans-upload-message")).to_contain_text("Uploaded sleep.txt")
    steps = file_row(page, "steps.csv")
    expect(steps).to_contain_text("Daily steps")
    expect(steps.locator(".tag")).to_have_text(["steps", "csv"])
    expect(steps.locator(".file-size")).to_have_text(f"{len(CSV)}\xa0bytes")
    expect(steps.locator("time")).to_contain_text("UTC")
    assert sorted(f["basename"] for f in demo.oh.files(pmid)) == ["sleep.txt", "steps.csv"]

    # Download it back: click the link, as a person would.
    with page.expect_download() as download_info:
        steps.get_by_role("link", name="Download").click()
    download = download_info.value
    with open(download.path(), "rb") as f:
        assert f.read() == CSV
    assert page.url == demo.site + "/dashboard/"  # a download, not a navigation
    assert download.suggested_filename == "steps.csv"

    # The page left open for two hours: the listing's download keys (one hour) are dead,
    # but the link goes through openhumans:download, which fetches a fresh one.
    demo.oh.advance_clock(2 * 3600)
    with page.expect_download() as later_info:
        steps.get_by_role("link", name="Download").click()
    with open(later_info.value.path(), "rb") as f:
        assert f.read() == CSV

    # Delete one: the other stays.
    file_row(page, "sleep.txt").get_by_role("button", name="Delete").click()
    page.wait_for_url(demo.site + "/dashboard/")
    expect(page.locator("li.file")).to_have_count(1)
    expect(file_row(page, "steps.csv")).to_be_visible()
    assert [f["basename"] for f in demo.oh.files(pmid)] == ["steps.csv"]

    # Delete all.
    upload(page, "more.csv", CSV, "More steps", "steps")
    expect(page.locator("li.file")).to_have_count(2)
    page.locator("#delete-all").click()
    page.wait_for_url(demo.site + "/dashboard/")
    expect(page.locator("#no-files")).to_be_visible()
    assert demo.oh.files(pmid) == []

    # Message yourself, then read it in the sandbox's inbox.
    subject = f"Hello {uuid.uuid4().hex[:6]}"
    page.fill("#message-form input[name=subject]", subject)
    page.fill("#message-form textarea[name=message]", "Your weekly report is ready.")
    page.get_by_role("button", name="Send message").click()
    page.wait_for_url(demo.site + "/dashboard/")
    page.locator("#message-sent").get_by_role("link").click()
    page.wait_for_url(f"{demo.oh.base_url}/members/{pmid}/")
    expect(page.locator("body")).to_contain_text(subject)
    assert any(m["subject"].endswith(subject) for m in demo.oh.inbox())

    # Log out, and back in as the same member: same account, no duplicate.
    page.goto(demo.site + "/dashboard/")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(demo.site + "/")
    expect(page.get_by_role("link", name="Log in with Open Humans")).to_be_visible()
    page.goto(demo.site + "/dashboard/")
    page.wait_for_url(demo.site + "/")  # anonymous visitors go home
    page.get_by_role("link", name="Log in with Open Humans").click()
    authorize_existing_member(page, demo, pmid)
    expect(page.locator(".who")).to_have_attribute("data-member-id", pmid)
    assert demo.member_ids().count(pmid) == 1


def leave_on_sandbox(page, demo, pmid: str, *, erasure: bool) -> None:
    page.goto(f"{demo.oh.base_url}/members/{pmid}/")
    if erasure:
        page.check("input[name=erasure_requested]")
    page.get_by_role("button", name="Leave project").click()
    page.wait_for_load_state()


def test_leaving_with_erasure_removes_the_account(page, demo):
    pmid = authorize_new_member(page, demo)
    users_before = demo.user_count()
    upload(page, "steps.csv", CSV, "Daily steps", "steps")

    leave_on_sandbox(page, demo, pmid, erasure=True)

    delivery = demo.oh.webhooks()[-1]
    assert delivery["status"] == 200, delivery
    assert pmid not in demo.member_ids()
    assert demo.user_count() == users_before - 1
    page.goto(demo.site + "/dashboard/")
    page.wait_for_url(demo.site + "/")  # the session's user is gone
    expect(page.get_by_role("link", name="Log in with Open Humans")).to_be_visible()


def test_leaving_without_erasure_offers_to_reconnect(page, demo):
    pmid = authorize_new_member(page, demo)

    leave_on_sandbox(page, demo, pmid, erasure=False)

    assert demo.oh.webhooks()[-1]["status"] == 200
    assert pmid in demo.member_ids()
    page.goto(demo.site + "/dashboard/")
    expect(page.locator("#reconnect")).to_contain_text("You left this project")
    page.get_by_role("link", name="Reconnect with Open Humans").click()
    authorize_existing_member(page, demo, pmid)
    expect(page.locator("h1")).to_have_text("Your files")


def test_deleting_the_account_withdraws_from_the_project(page, demo):
    pmid = authorize_new_member(page, demo)

    # The site queues remove-members in its outbox; the demo's worker delivers it, and the
    # sandbox calls the site's webhook meanwhile.
    page.locator("#delete-account").click()

    page.wait_for_url(demo.site + "/")
    expect(page.locator(".flash")).to_contain_text("Your account is deleted")
    assert pmid not in demo.member_ids()
    assert demo.oh.member(pmid)["active"]  # not yet: the worker has not run
    subprocess.run(  # what `make demo`'s worker does, once
        [*demo.manage, "db_worker", "--batch", "--no-reload", "--no-startup-delay"],
        env=demo.env,
        cwd=EXAMPLE_DIR,
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert not demo.oh.member(pmid)["active"]
    [delivery] = [w for w in demo.oh.webhooks() if pmid in w["body"]]
    assert delivery["status"] == 200
    page.goto(f"{demo.oh.base_url}/members/{pmid}/")
    expect(page.locator("body")).to_contain_text("left the project")


def test_pages_fit_a_phone_screen(page, demo):
    page.set_viewport_size({"width": 375, "height": 740})

    def fits() -> bool:
        return page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )

    page.goto(demo.site + "/")
    assert fits()
    authorize_new_member(page, demo)
    upload(page, "a-rather-long-file-name-from-a-wearable-export-2026-11.csv", CSV, "x", "a b")
    assert fits()
