"""``python -m openhumans.starter``: the project it creates passes its own tests and serves a
login against the sandbox through a real server, exactly as created."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest

from openhumans.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[1]


def project_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "OPENHUMANS_"))}
    env.pop("PYTEST_ADDOPTS", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    where = tmp_path_factory.mktemp("starter") / "mystudy"
    result = subprocess.run(
        [sys.executable, "-m", "openhumans.starter", "mystudy", str(where)],
        env=project_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "Created mystudy" in result.stdout
    return where


def test_refuses_a_bad_name(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "openhumans.starter", "my-study", str(tmp_path / "x")],
        env=project_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "not a valid" in result.stderr


def test_the_project_has_what_a_data_source_needs(project):
    files = {p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()}
    for expected in (
        "manage.py",
        "mystudy/settings.py",
        "datasource/views.py",
        "datasource/importer.py",
        "datasource/management/commands/import_data.py",
        "datasource/templates/datasource/dashboard.html",
        "tests/test_datasource.py",
        "README.md",
    ):
        assert expected in files
    assert not any(name.endswith("-tpl") for name in files)
    settings = (project / "mystudy" / "settings.py").read_text()
    assert 'ROOT_URLCONF = "mystudy.urls"' in settings and "django-insecure-" in settings
    assert 'env("OPENHUMANS_CLIENT_SECRET"' in settings


def test_its_own_tests_pass(project):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env=project_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_it_serves_a_login_against_the_sandbox(project, tmp_path):
    port = free_port()
    site = f"http://127.0.0.1:{port}"
    env = project_env() | {"DJANGO_DB_PATH": str(tmp_path / "db.sqlite3")}
    with Sandbox(redirect_uri=f"{site}/openhumans/complete", port=0) as oh:
        # As created: the sandbox's default client id and secret; only the addresses differ.
        env |= {"OPENHUMANS_OH_BASE_URL": oh.base_url, "OPENHUMANS_APP_BASE_URL": site}
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=project, env=env, check=True
        )
        log = (tmp_path / "server.log").open("w")
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=project,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                assert server.poll() is None, (tmp_path / "server.log").read_text()
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                assert time.monotonic() < deadline, "the project's server did not start"
                time.sleep(0.1)
            with httpx.Client(base_url=site, timeout=10) as browser:
                home = browser.get("/")
                assert home.status_code == 200 and "Log in with Open Humans" in home.text
                authorize = browser.get("/openhumans/login/?next=/dashboard/")
                assert authorize.status_code == 302
                page, _, query = authorize.headers["location"].partition("?")
                assert page.startswith(oh.base_url)
                form = {**dict(parse_qsl(query)), "new_username": "alice", "action": "authorize"}
                back = httpx.post(page, data=form).headers["location"]
                assert back.startswith(f"{site}/openhumans/complete?")
                done = browser.get(back)
                assert done.status_code == 302 and done.headers["location"] == "/dashboard/"
                dashboard = browser.get("/dashboard/")
                assert dashboard.status_code == 200
                assert "Your files on Open Humans" in dashboard.text
                assert "Signed in as" in dashboard.text
            assert len(oh.members()) == 1
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log.close()
