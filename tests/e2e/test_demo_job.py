"""The demo's background job: after an upload, a db_worker rebuilds the member's summary.json."""

from __future__ import annotations

import json
import subprocess
import time

import httpx
import pytest

from .conftest import EXAMPLE_DIR
from .test_demo_story import CSV, NOTES, authorize_new_member, upload

pytestmark = pytest.mark.browser


def summary_of(demo, pmid: str, wanted_files: int, timeout: float = 60.0) -> dict:
    """Wait for summary.json to describe ``wanted_files`` files; return its content."""
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        for f in demo.oh.files(pmid):
            if f["basename"] == "summary.json":
                got = httpx.get(f["download_url"], follow_redirects=True)
                if got.status_code != 200:
                    continue  # replaced by the next run between listing and download
                seen = json.loads(got.content)
                if seen["files"] == wanted_files:
                    return seen
        time.sleep(0.3)
    raise AssertionError(f"summary.json never described {wanted_files} files: {seen}")


def test_each_upload_rebuilds_the_summary_in_the_background(page, demo):
    pmid = authorize_new_member(page, demo)
    worker = subprocess.Popen(
        [*demo.manage, "db_worker", "--no-reload", "--interval", "0.2"],
        env=demo.env,
        cwd=EXAMPLE_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        upload(page, "steps.csv", CSV, "Steps", "activity, csv")
        first = summary_of(demo, pmid, 1)
        assert first["tags"] == {"activity": 1, "csv": 1}
        upload(page, "sleep.txt", NOTES, "Sleep", "sleep")
        second = summary_of(demo, pmid, 2)
        assert second["tags"] == {"activity": 1, "csv": 1, "sleep": 1}
        assert second["bytes"] == len(CSV) + len(NOTES)
        # Replaced, not added: one summary however many uploads.
        names = sorted(f["basename"] for f in demo.oh.files(pmid))
        assert names == ["sleep.txt", "steps.csv", "summary.json"]
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
