"""``python -m openhumans.starter NAME [DIRECTORY]``: create a new data-source project."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from django.core.management import CommandError

from . import create_project


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m openhumans.starter",
        description="Create a Django project that imports data into Open Humans: login, a "
        "dashboard of the member's files, an upload form, a nightly import job, tests.",
    )
    parser.add_argument("name", help="the project's name, a Python identifier (e.g. mystudy)")
    parser.add_argument("directory", nargs="?", help="where to create it (default: ./NAME)")
    args = parser.parse_args(argv)
    try:
        path = create_project(args.name, args.directory)
    except CommandError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"Created {args.name} in {path}. Next: cd {path} and follow README.md.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
