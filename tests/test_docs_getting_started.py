"""Follows docs/getting_started.rst step by step in a new project, with the docs' own files.

startproject, the INSTALLED_APPS and settings lines, urls.py, migrate, check; then the
"Trying it without an Open Humans account" part: a login through the sandbox.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
SNIPPETS = DOCS / "examples" / "our_project"
ROOT = DOCS.parent


def run(*args: str, cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture
def our_project(tmp_path):
    """A project made exactly as the getting-started guide says; returns (dir, env)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "OPENHUMANS_"))}
    # The guide's `pip install` made the app importable; here it is the working tree.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    project = tmp_path / "our_project"
    project.mkdir()
    run(sys.executable, "-m", "django", "startproject", "our_project", ".", cwd=project, env=env)

    settings_py = project / "our_project" / "settings.py"
    text = settings_py.read_text()
    installed_apps = re.compile(r"^INSTALLED_APPS = \[\n.*?^\]\n", re.M | re.S)
    assert installed_apps.search(text), "startproject's INSTALLED_APPS changed shape"
    text = installed_apps.sub(lambda _: (SNIPPETS / "installed_apps.py").read_text(), text)
    text += "\n" + (SNIPPETS / "openhumans_settings.py").read_text()
    text += "\n" + (SNIPPETS / "sandbox_settings.py").read_text()  # the same section
    settings_py.write_text(text)
    (project / "our_project" / "urls.py").write_text((SNIPPETS / "urls.py").read_text())
    return project, env


def test_the_guide_gives_a_working_project(our_project):
    project, env = our_project
    # Until the credentials are exported, check names the missing setting.
    missing = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=project, env=env, capture_output=True, text=True
    )
    assert missing.returncode != 0 and "openhumans.E001" in missing.stderr
    # The guide: `export OPENHUMANS_CLIENT_SECRET='…'` (and the id), from the project page.
    env = {**env, "OPENHUMANS_CLIENT_ID": "Zq8s0", "OPENHUMANS_CLIENT_SECRET": "a8Kd03mQx"}
    run(sys.executable, "manage.py", "migrate", cwd=project, env=env)
    run(sys.executable, "manage.py", "check", "--fail-level", "WARNING", cwd=project, env=env)
    out = run(
        sys.executable,
        "manage.py",
        "shell",
        "-v",
        "0",
        "-c",
        "from django.urls import reverse; "
        "from openhumans.models import OpenHumansMember; "
        "print(reverse('openhumans:complete'), reverse('openhumans:deauth'), "
        "OpenHumansMember.objects.count())",
        cwd=project,
        env=env,
    )
    assert out.split() == ["/openhumans/complete", "/openhumans/deauth", "0"]


LOGIN_THROUGH_THE_SANDBOX = """
from urllib.parse import parse_qsl, urlsplit

import httpx
from django.test import Client

from openhumans.models import OpenHumansMember

browser = Client(HTTP_HOST="localhost:5000")
authorize = browser.get("/openhumans/login/?next=/openhumans/list/")["Location"]
page, _, query = authorize.partition("?")
# What a person does on the sandbox's authorize page: type a name, press Authorize project.
form = {**dict(parse_qsl(query)), "new_username": "alice", "action": "authorize"}
back = httpx.post(page, data=form).headers["location"]
url = urlsplit(back)
assert f"{url.scheme}://{url.netloc}{url.path}" == "http://localhost:5000/openhumans/complete", back
done = browser.get(url.path + "?" + url.query)
member = OpenHumansMember.objects.get()
files = browser.get(done["Location"])
print(done.status_code, done["Location"], browser.session["_auth_user_id"] == str(member.user_id))
print(files.status_code, "Your files on Open Humans" in files.content.decode())
"""


def guide_sandbox_command() -> list[str]:
    """The guide's sandbox command line, as written (continuation lines joined)."""
    text = (DOCS / "getting_started.rst").read_text()
    match = re.search(r"^    (python -m openhumans\.sandbox .*?)\n\n", text, re.M | re.S)
    assert match, "the guide no longer shows the sandbox command"
    return match.group(1).replace("\\\n", " ").split()


def test_guide_sandbox_port_and_state_file():
    argv = guide_sandbox_command()
    port = argv[argv.index("--port") + 1]
    assert port not in ("8000", "8001")  # the demo's ports
    assert "--state-file" in argv
    exports = (DOCS / "getting_started.rst").read_text()
    assert f"OPENHUMANS_OH_BASE_URL=http://127.0.0.1:{port}" in exports


def test_trying_it_with_the_sandbox(our_project, tmp_path):
    from openhumans.sandbox.__main__ import build_parser

    project, env = our_project
    # The guide's sandbox command, parsed by the sandbox's own CLI; a free port in tests.
    args = build_parser().parse_args(guide_sandbox_command()[3:])
    state_file = tmp_path / args.state_file
    options = {
        "redirect_uri": args.redirect_uri,
        "webhook_url": args.webhook_url,
        "state_file": state_file,
        "port": 0,
    }
    from openhumans.sandbox import Sandbox

    env = {
        **env,
        "OPENHUMANS_CLIENT_ID": "sandbox-client",
        "OPENHUMANS_CLIENT_SECRET": "sandbox-secret",
    }
    with Sandbox(**options) as oh:
        env["OPENHUMANS_OH_BASE_URL"] = oh.base_url
        run(sys.executable, "manage.py", "migrate", cwd=project, env=env)
        out = run(
            sys.executable,
            "manage.py",
            "shell",
            "-v",
            "0",
            "-c",
            LOGIN_THROUGH_THE_SANDBOX,
            cwd=project,
            env=env,
        )
        members = oh.members()
    assert out.split() == ["302", "/openhumans/list/", "True", "200", "True"]
    # --state-file: a restarted sandbox still knows the member, so the site keeps working.
    with Sandbox(**options) as oh:
        assert [m["project_member_id"] for m in oh.members()] == [
            m["project_member_id"] for m in members
        ]
        env["OPENHUMANS_OH_BASE_URL"] = oh.base_url
        out = run(
            sys.executable,
            "manage.py",
            "shell",
            "-v",
            "0",
            "-c",
            "from openhumans.models import OpenHumansMember; "
            "print(len(OpenHumansMember.objects.get().list_files()))",
            cwd=project,
            env=env,
        )
    assert out.split() == ["0"]
