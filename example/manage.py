#!/usr/bin/env python
"""The demo site's manage.py: ``python example/manage.py migrate``, ``runserver``, ``shell``."""

import os
import sys
from pathlib import Path


def main() -> None:
    # Run from anywhere: the demo_site package lives next to this file.
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_site.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
