#!/usr/bin/env python
"""Take the docs' screenshot of the demo dashboard (docs/_static/demo-dashboard.png).

Starts the sandbox and the demo site on free ports with a throw-away database, logs in as a
new member in Debian's Chromium, uploads a few files and saves the dashboard.
Usage: python example/screenshot.py [OUTPUT.png] [--width 1000]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLE_DIR = Path(__file__).resolve().parent
ROOT = EXAMPLE_DIR.parent
SECRET = "screenshot-webhook-secret"
FILES = [
    (
        "sleep-2026-11.csv",
        b"night,hours\n" + b"2026-11-01,7.5\n" * 40,
        "Sleep, November",
        "sleep csv",
    ),
    (
        "steps-week-47.json",
        b'{"steps": [9120, 10433, 8011]}' * 20,
        "Daily steps, week 47",
        "steps json",
    ),
    ("notes.txt", b"Felt rested after the long weekend.\n", "Diary notes", "diary"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("output", nargs="?", default=str(ROOT / "docs/_static/demo-dashboard.png"))
    parser.add_argument("--width", type=int, default=1000)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from openhumans.sandbox import Sandbox

    port = free_port()
    site = f"http://127.0.0.1:{port}"
    with (
        tempfile.TemporaryDirectory() as tmp,
        Sandbox(
            redirect_uri=f"{site}/openhumans/complete", webhook_url=f"{site}/openhumans/deauth"
        ) as oh,
    ):
        env = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="demo_site.settings",
            DEMO_DB=f"{tmp}/db.sqlite3",
            OPENHUMANS_APP_BASE_URL=site,
            OPENHUMANS_OH_BASE_URL=oh.base_url,
            OPENHUMANS_CLIENT_ID=oh.client_id,
            OPENHUMANS_CLIENT_SECRET=oh.client_secret,
            OPENHUMANS_WEBHOOK_SECRET=SECRET,
        )
        manage = [sys.executable, str(EXAMPLE_DIR / "manage.py")]
        subprocess.run([*manage, "migrate", "-v", "0"], env=env, check=True)
        server = subprocess.Popen(
            [*manage, "runserver", "--noreload", f"127.0.0.1:{port}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(100):
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.1)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path="/usr/bin/chromium",
                    args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
                )
                page = browser.new_page(viewport={"width": args.width, "height": 900})
                page.goto(site + "/")
                page.get_by_role("link", name="Log in with Open Humans").click()
                page.fill("input[name=new_username]", "alice")
                page.get_by_role("button", name="Authorize project").click()
                page.wait_for_url(site + "/dashboard/")
                for name, content, description, tags in FILES:
                    form = page.locator("#upload-form")
                    form.locator("input[name=file]").set_input_files(
                        {"name": name, "mimeType": "text/plain", "buffer": content}
                    )
                    form.locator("input[name=description]").fill(description)
                    form.locator("input[name=tags]").fill(tags)
                    form.get_by_role("button", name="Upload").click()
                    page.wait_for_url(site + "/dashboard/")
                page.goto(site + "/dashboard/")  # without the last "Uploaded" message
                page.screenshot(path=args.output, full_page=True)
                browser.close()
        finally:
            server.terminate()
            server.wait()
    print(f"saved {args.output}")


if __name__ == "__main__":
    main()
