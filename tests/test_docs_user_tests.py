"""Runs docs/examples/test_with_sandbox.py, the docs' example of a user's own test module."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_path = Path(__file__).resolve().parents[1] / "docs" / "examples" / "test_with_sandbox.py"
_spec = importlib.util.spec_from_file_location("docs_example_test_with_sandbox", _path)
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)

# Collected here as if the user's file were in our suite: its fixture and its tests.
globals().update({name: value for name, value in vars(_module).items() if name.startswith("test_")})
member = _module.member
