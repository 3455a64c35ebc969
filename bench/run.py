"""Run every benchmark in ``bench/`` (each ``bench_*.py`` module's ``main()``), one after another.

Run: ``python bench/run.py [name ...]`` (names without ``bench_``, e.g. ``client``).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> None:
    """Import and run the selected benchmarks (all by default), printing their tables."""
    wanted = set(argv)
    for path in sorted(HERE.glob("bench_*.py")):
        name = path.stem.removeprefix("bench_")
        if wanted and name not in wanted:
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(f"\n===== {path.name} =====\n", flush=True)
        module.main([])


if __name__ == "__main__":
    main(sys.argv[1:])
