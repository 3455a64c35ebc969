"""Create a new data-source project: ``python -m openhumans.starter NAME [DIRECTORY]``.

The project (the role the old oh-data-source-template played) logs people in through Open
Humans, shows a dashboard of the member's files with an upload form, has a nightly
per-member import job to fill in (``manage.py import_data``), reads its settings from the
environment, and comes with tests that run against the sandbox (``oh_sandbox``).
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

__all__ = ["TEMPLATE_DIR", "create_project"]

TEMPLATE_DIR = Path(__file__).resolve().parent / "project_template"
# Files rendered with the project's name (Django's startproject renders *.py by default).
RENDERED_EXTENSIONS = ["py", "ini", "md", "txt"]


def create_project(name: str, directory: str | None = None) -> Path:
    """Make project ``name`` in ``directory`` (default: a new ``./name``); return its path.

    Raises django.core.management.CommandError for a bad name or an existing directory, or
    when Django's tasks framework (the import job runs on it) is not installed.
    """
    from django.conf import settings
    from django.core.management import CommandError

    if find_spec("django.tasks") is None and find_spec("django_tasks") is None:
        raise CommandError(
            "The project's import job runs on Django's tasks framework, built into Django 6; "
            "on Django 5.2 install the backport first: pip install 'django-open-humans[jobs]'"
        )
    from django.core.management import call_command
    from django.core.management.commands.startproject import Command as StartProject

    if not settings.configured:
        settings.configure()  # startproject needs no project settings
    target = Path(directory) if directory else Path.cwd() / name
    if directory:
        target.mkdir(parents=True, exist_ok=True)
    where = [str(target)] if directory else []
    call_command(
        StartProject(),
        name,
        *where,
        template=str(TEMPLATE_DIR),
        extensions=RENDERED_EXTENSIONS,
        verbosity=0,
    )
    return target
