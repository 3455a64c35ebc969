"""The install command of Getting Started, run as written in a fresh virtual environment.

Marked ``install`` (it downloads Django and the other dependencies from PyPI): ``.ci/run``
runs it once; run it by hand with ``make test PYTEST_ARGS='-m install'``.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import openhumans

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "getting_started.rst"

pytestmark = pytest.mark.install


def documented_install_command() -> list[str]:
    """The guide's `pip install ... ../django-open-humans` line, split as the shell would."""
    lines = re.findall(r"^    (pip install .*django-open-humans)$", GUIDE.read_text(), re.M)
    assert len(lines) == 1, f"expected one install line from a clone, found {lines}"
    return shlex.split(lines[0])


def run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_the_documented_install_gives_this_version_with_the_sandbox(tmp_path):
    # The guide's layout: the clone next to the project directory.
    (tmp_path / "django-open-humans").symlink_to(ROOT)
    project = tmp_path / "our_project"
    project.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    run([sys.executable, "-m", "venv", ".venv"], project, env)
    venv_bin = project / ".venv" / "bin"
    env["PATH"] = f"{venv_bin}{os.pathsep}{env.get('PATH', '')}"  # `. .venv/bin/activate`
    command = documented_install_command()
    run([str(venv_bin / command[0]), *command[1:]], project, env)

    python = str(venv_bin / "python")
    version = run([python, "-c", "import openhumans; print(openhumans.__version__)"], project, env)
    assert version.strip() == openhumans.__version__
    where = run([python, "-c", "import openhumans; print(openhumans.__file__)"], project, env)
    assert str(project / ".venv") in where  # installed, not picked up from the clone
    usage = run([python, "-m", "openhumans.sandbox", "--help"], project, env)
    assert "--port" in usage
    run([python, "-m", "django", "--version"], project, env)
