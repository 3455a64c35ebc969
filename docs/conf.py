"""Sphinx configuration for django-open-humans."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# autodoc imports openhumans.models, which needs configured Django settings.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
import django  # noqa: E402

django.setup()

import openhumans  # noqa: E402

project = "django-open-humans"
author = "django-open-humans contributors"
copyright = "2018-2026, django-open-humans contributors"  # noqa: A001
release = openhumans.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

templates_path: list[str] = []
exclude_patterns = ["_build", "examples/README.md"]
root_doc = "index"

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}

html_theme = "alabaster"
html_static_path = ["_static"]
html_title = f"django-open-humans {release}"
html_theme_options = {
    "description": "Log people in through Open Humans and work with their data.",
    "fixed_sidebar": True,
}
