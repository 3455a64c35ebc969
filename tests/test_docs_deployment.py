"""docs/deployment.rst's files: the settings pass check --deploy, the timeouts fit, cron runs."""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

from django.core.management import get_commands

from openhumans.conf import DEFAULTS

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples" / "deployment"


def test_production_settings_pass_djangos_deploy_checks(tmp_path):
    """startproject + the guide's app settings + this page's settings: check --deploy is clean."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "OPENHUMANS_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    subprocess.run(
        [sys.executable, "-m", "django", "startproject", "our_project", str(tmp_path)],
        env=env,
        check=True,
    )
    settings_py = tmp_path / "our_project" / "settings.py"
    settings_py.write_text(
        settings_py.read_text()
        + '\nINSTALLED_APPS += ["openhumans"]\n'
        + 'AUTHENTICATION_BACKENDS = ["openhumans.backends.OpenHumansBackend"]\n'
        + (EXAMPLES / "settings.py").read_text()
    )
    env |= {
        "DJANGO_SECRET_KEY": "k3" * 30 + "-Zq8s0a8Kd03mQx",
        "OPENHUMANS_CLIENT_ID": "Zq8s0",
        "OPENHUMANS_CLIENT_SECRET": "a8Kd03mQx",
        "OPENHUMANS_WEBHOOK_SECRET": "w" * 32,
        "TOKEN_ENCRYPTION_KEY": "t" * 48,
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Without the webhook secret, our own check says so.
    del env["OPENHUMANS_WEBHOOK_SECRET"]
    settings_py.write_text(
        settings_py.read_text().replace(
            'os.environ["OPENHUMANS_WEBHOOK_SECRET"]', 'os.environ.get("OPENHUMANS_WEBHOOK_SECRET")'
        )
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert "openhumans.W001" in result.stdout + result.stderr


def test_gunicorn_timeout_outlasts_open_humans_requests():
    conf = runpy.run_path(str(EXAMPLES / "gunicorn.conf.py"))
    settings_text = (EXAMPLES / "settings.py").read_text()
    ours = float(re.search(r"^OPENHUMANS_TIMEOUT = (\S+)", settings_text, re.M).group(1))
    assert ours <= DEFAULTS["OPENHUMANS_TIMEOUT"]
    assert conf["timeout"] > ours
    assert conf["threads"] * conf["workers"] >= 2  # deauth() needs a second request served
    assert conf["preload_app"] is True


def test_cron_lines_name_existing_commands():
    commands = get_commands()
    lines = [
        line
        for line in (EXAMPLES / "crontab").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines
    for line in lines:
        name = re.search(r"manage\.py (\S+)", line).group(1)
        assert name in commands, name
