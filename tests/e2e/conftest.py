"""Fixtures for the browser tests: Debian's Chromium, the sandbox and the demo site.

The sandbox runs in this process (a threaded server); the demo site runs as a subprocess
with its own SQLite database, exactly as ``make demo`` starts it. Nothing here touches the
test process's Django database.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_DIR = ROOT / "example"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CLIENT_ID = "e2e-client"
CLIENT_SECRET = "e2e-client-secret"
WEBHOOK_SECRET = "e2e-webhook-secret-0123456789"


def _skip(reason: str) -> None:
    print(f"\nbrowser test skipped: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"demo site exited ({proc.returncode}):\n{log.read_text()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"demo site did not listen on {port}:\n{log.read_text()}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item, so fixtures can tell a failed test."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright; skips when either is missing.

    Module-scoped: Playwright's event loop is gone before the rest of the suite runs.
    """
    if not os.access(CHROMIUM, os.X_OK):
        _skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip("the playwright Python package is not installed")
    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Exception as err:  # a broken browser install is a skip, with the reason
            _skip(f"Chromium did not start: {err}")
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The sandbox and the demo site on free loopback ports: ``demo.site``, ``demo.oh``."""
    from openhumans.sandbox import Sandbox

    tmp = tmp_path_factory.mktemp("demo")
    site_port = free_port()
    site_url = f"http://127.0.0.1:{site_port}"
    with Sandbox(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        redirect_uri=f"{site_url}/openhumans/complete",
        webhook_url=f"{site_url}/openhumans/deauth",
        webhook_secret=WEBHOOK_SECRET,
        host="127.0.0.1",
        port=0,
    ) as oh:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENHUMANS_", "DJANGO_"))}
        env.update(
            DJANGO_SETTINGS_MODULE="demo_site.settings",
            PYTHONUNBUFFERED="1",
            DEMO_DB=str(tmp / "demo.sqlite3"),
            OPENHUMANS_APP_BASE_URL=site_url,
            OPENHUMANS_OH_BASE_URL=oh.base_url,
            OPENHUMANS_CLIENT_ID=CLIENT_ID,
            OPENHUMANS_CLIENT_SECRET=CLIENT_SECRET,
            OPENHUMANS_WEBHOOK_SECRET=WEBHOOK_SECRET,
        )
        manage = [sys.executable, str(EXAMPLE_DIR / "manage.py")]
        subprocess.run(
            [*manage, "migrate", "--noinput", "-v", "0"], env=env, check=True, cwd=EXAMPLE_DIR
        )
        log = tmp / "site.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [*manage, "runserver", "--noreload", f"127.0.0.1:{site_port}"],
                env=env,
                cwd=EXAMPLE_DIR,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            try:
                wait_for_port(site_port, proc, log)
                yield DemoSite(site_url, oh, manage, env, log)
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


class DemoSite:
    def __init__(self, site: str, oh, manage: list[str], env: dict, log: Path) -> None:
        self.site, self.oh, self.manage, self.env, self.log = site, oh, manage, env, log

    def member_ids(self) -> list[str]:
        """The project member ids the demo site's database holds."""
        code = (
            "from openhumans.models import OpenHumansMember as M; "
            "print(','.join(M.objects.values_list('oh_id', flat=True)))"
        )
        out = subprocess.run(
            [*self.manage, "shell", "-v", "0", "-c", code],
            env=self.env,
            cwd=EXAMPLE_DIR,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return [m for m in out.split(",") if m]

    def user_count(self) -> int:
        code = "from django.contrib.auth.models import User; print(User.objects.count())"
        out = subprocess.run(
            [*self.manage, "shell", "-v", "0", "-c", code],
            env=self.env,
            cwd=EXAMPLE_DIR,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return int(out.strip())


@pytest.fixture
def page(browser, request):
    """A fresh browser context and page; on failure, its screenshot and HTML are saved."""
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    # The dashboard asks before deleting everything; a person would press OK.
    page.on("dialog", lambda dialog: dialog.accept())
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        out = ROOT / "test-artifacts"
        out.mkdir(exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)
        try:
            page.screenshot(path=str(out / f"{name}.png"), full_page=True)
            (out / f"{name}.html").write_text(page.content())
            demo = request.node.funcargs.get("demo")
            if demo is not None:
                (out / f"{name}.site.log").write_text(demo.log.read_text())
            print(f"\nsaved {out / name}.png, .html and .site.log (page URL {page.url})")
        except Exception as err:  # the page may be gone; the test's own error matters more
            print(f"\ncould not save the failure artifacts: {err}")
    context.close()
