"""Uploads straight from the browser to the sandbox's storage, on the demo's dashboard.

The page asks the demo site for a signed URL, PUTs the file to the sandbox's storage (a
cross-origin request: CORS as S3 answers it), and asks the site to complete the upload.
"""

from __future__ import annotations

import os

import pytest

from .test_demo_story import authorize_new_member, expect, file_row

pytestmark = pytest.mark.browser

MiB = 1024 * 1024
RECORD_PROGRESS = """() => {
  window.__percents = [];
  const bar = document.querySelector("#upload-form .openhumans-upload-bar");
  new MutationObserver(() => window.__percents.push(Number(bar.dataset.percent)))
    .observe(bar, {attributes: true, attributeFilter: ["data-percent"]});
}"""


def big_file(tmp_path, name: str, size: int, *, sparse: bool = False):
    path = tmp_path / name
    with path.open("wb") as f:
        if sparse:
            f.truncate(size)
        else:
            block = os.urandom(MiB)
            for _ in range(size // MiB):
                f.write(block)
            f.write(block[: size % MiB])
    return path


def choose(page, path, description: str = "An export") -> None:
    form = page.locator("#upload-form")
    form.locator("input[name=file]").set_input_files(str(path))
    form.locator("input[name=description]").fill(description)
    form.locator("input[name=tags]").fill("export, test")


def upload_button(page):
    return page.locator("#upload-form").get_by_role("button", name="Upload", exact=True)


def message(page):
    return page.locator("#upload-form .openhumans-upload-message")


def record_requests(page) -> list[tuple[str, str, int]]:
    seen: list[tuple[str, str, int]] = []
    page.on(
        "request",
        lambda r: seen.append((r.method, r.url.split("?", 1)[0], len(r.post_data_buffer or b""))),
    )
    return seen


def storage_requests(seen, demo) -> list[tuple[str, str, int]]:
    return [r for r in seen if r[1].startswith(demo.oh.base_url + "/_storage/")]


def open_uploads(demo) -> int:
    """Uploads the demo site's database still records as in progress."""
    import subprocess

    from .conftest import EXAMPLE_DIR

    code = "from openhumans.models import DirectUpload; print(DirectUpload.objects.count())"
    out = subprocess.run(
        [*demo.manage, "shell", "-v", "0", "-c", code],
        env=demo.env,
        cwd=EXAMPLE_DIR,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return int(out.strip())


def stored_blobs(demo, pmid: str) -> list[int]:
    """Ids of the member's file records whose bytes are in the sandbox's storage."""
    store = demo.oh.store
    with store.lock:
        return [
            f["id"]
            for f in store.files.values()
            if f["pmid"] == pmid and store.blob_path(f).exists()
        ]


def test_a_50_mb_file_goes_straight_to_storage_with_progress(page, demo, tmp_path):
    pmid = authorize_new_member(page, demo)
    path = big_file(tmp_path, "takeout.zip", 50 * MiB)
    seen = record_requests(page)
    page.evaluate(RECORD_PROGRESS)
    choose(page, path)
    upload_button(page).click()

    expect(upload_button(page)).to_be_disabled()
    expect(page.locator("#upload-form .openhumans-upload-cancel")).to_be_visible()
    expect(message(page)).to_contain_text("Uploaded takeout.zip (50.0 MB)", timeout=120_000)
    expect(upload_button(page)).to_be_enabled()

    percents = page.evaluate("window.__percents")
    assert any(0 < p < 100 for p in percents), percents  # it moved, visibly
    assert percents[-1] == 100
    assert percents == sorted(percents)
    announced = page.locator("#upload-form .openhumans-upload-announce")
    assert announced.get_attribute("aria-live") == "polite"
    expect(announced).to_have_text("Uploaded takeout.zip")

    row = file_row(page, "takeout.zip")
    expect(row.locator(".file-size")).to_have_text("50.0\xa0MB")  # the list refreshed in place
    [listed] = demo.oh.files(pmid)
    assert listed["basename"] == "takeout.zip"
    assert listed["metadata"]["size"] == 50 * MiB
    # The bytes went to storage in one PUT; nothing large went to the site.
    assert [m for m, _, _ in storage_requests(seen, demo)] == ["PUT"]
    store = demo.oh.store
    assert store.blob_path(store.files[listed["id"]]).stat().st_size == 50 * MiB
    assert all(n < 10_000 for _, url, n in seen if url.startswith(demo.site))
    assert open_uploads(demo) == 0


def test_several_files_in_a_row(page, demo, tmp_path):
    authorize_new_member(page, demo)
    for number in (1, 2, 3):
        choose(page, big_file(tmp_path, f"day-{number}.csv", number * 1000), f"Day {number}")
        upload_button(page).click()
        expect(message(page)).to_contain_text(f"Uploaded day-{number}.csv")
    expect(page.locator("li.file")).to_have_count(3)
    expect(file_row(page, "day-2.csv").locator(".file-desc")).to_have_text("Day 2")


def test_an_oversize_file_is_refused_before_any_byte_moves(page, demo, tmp_path):
    pmid = authorize_new_member(page, demo)
    path = big_file(tmp_path, "genome.vcf", 101 * MiB, sparse=True)
    seen = record_requests(page)
    choose(page, path)
    upload_button(page).click()

    expect(message(page)).to_have_text(
        "genome.vcf is too large (101.0 MB); files up to 100.0 MB can be uploaded."
    )
    expect(message(page)).to_have_attribute("role", "alert")
    expect(upload_button(page)).to_be_enabled()
    assert storage_requests(seen, demo) == []
    assert demo.oh.files(pmid) == []
    assert open_uploads(demo) == 0


def slow_uplink(page, mbit: float) -> None:
    """Throttle the page's uploads, as a member's uplink would (Chromium's emulation)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 0,
            "downloadThroughput": -1,
            "uploadThroughput": mbit * 1_000_000 / 8,
        },
    )


def test_a_cancelled_upload_leaves_nothing_behind(page, demo, tmp_path):
    pmid = authorize_new_member(page, demo)
    slow_uplink(page, 40)  # 20 MiB take about 4 s: time to press Cancel mid-PUT
    choose(page, big_file(tmp_path, "fitbit.zip", 20 * MiB))
    upload_button(page).click()
    bar = page.locator("#upload-form .openhumans-upload-bar")
    page.wait_for_function(
        "() => Number(document.querySelector('#upload-form .openhumans-upload-bar')"
        ".dataset.percent) >= 10"
    )
    assert int(bar.get_attribute("data-percent")) < 100
    page.locator("#upload-form .openhumans-upload-cancel").click()
    expect(message(page)).to_have_text("Upload of fitbit.zip cancelled. Nothing was saved.")
    expect(upload_button(page)).to_be_enabled()
    assert demo.oh.files(pmid) == []
    assert stored_blobs(demo, pmid) == []
    assert open_uploads(demo) == 0
    expect(page.locator("#no-files")).to_be_visible()


def test_a_connection_lost_during_the_put_is_shown_as_such(page, demo, tmp_path):
    pmid = authorize_new_member(page, demo)
    demo.oh.set_fault("/_storage/", drop_connection=True)
    try:
        choose(page, big_file(tmp_path, "sleep.csv", 2 * MiB))
        upload_button(page).click()
        expect(message(page)).to_have_text(
            "The connection was lost while uploading sleep.csv. Nothing was saved; "
            "check your connection and try again."
        )
    finally:
        demo.oh.clear_faults()
    expect(upload_button(page)).to_be_enabled()
    assert demo.oh.files(pmid) == []
    assert open_uploads(demo) == 0
    # And once the connection is back, the same file goes through.
    upload_button(page).click()
    expect(message(page)).to_contain_text("Uploaded sleep.csv")


def test_an_expired_signed_url_is_renewed_once(page, demo, tmp_path):
    pmid = authorize_new_member(page, demo)
    puts: list[str] = []

    def late(route) -> None:
        # The member's tab sat for 7 h between asking for the URL and sending the bytes.
        if route.request.method == "PUT" and not puts:
            demo.oh.advance_clock(7 * 3600)
        puts.append(route.request.method)
        route.continue_()

    page.route(demo.oh.base_url + "/_storage/**", late)
    choose(page, big_file(tmp_path, "weight.csv", 3000))
    upload_button(page).click()
    expect(message(page)).to_contain_text("Uploaded weight.csv")
    assert puts.count("PUT") == 2
    assert [f["basename"] for f in demo.oh.files(pmid)] == ["weight.csv"]
    assert open_uploads(demo) == 0


def test_the_upload_card_fits_a_phone(page, demo, tmp_path):
    page.set_viewport_size({"width": 375, "height": 740})
    authorize_new_member(page, demo)
    slow_uplink(page, 8)
    choose(page, big_file(tmp_path, "a-long-export-name-from-a-phone-2026-11-30.zip", 2 * MiB))
    upload_button(page).click()
    expect(page.locator("#upload-form .openhumans-upload-bar")).to_be_visible()
    expect(page.locator("#upload-form .openhumans-upload-progress")).to_contain_text(" of 2.0 MB (")
    assert page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
    expect(message(page)).to_contain_text("Uploaded a-long-export", timeout=30_000)


def test_without_javascript_the_form_still_uploads_through_the_site(browser, demo, tmp_path):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        pmid = authorize_new_member(page, demo)
        choose(page, big_file(tmp_path, "plain.csv", 1234))
        upload_button(page).click()
        page.wait_for_url(demo.site + "/dashboard/")
        expect(page.locator(".flash")).to_contain_text("Uploaded plain.csv")
        assert [f["basename"] for f in demo.oh.files(pmid)] == ["plain.csv"]
    finally:
        context.close()
