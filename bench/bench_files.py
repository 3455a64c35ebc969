"""Benchmark reading and replacing a member's files: download memory and round trips.

Peak memory is tracemalloc's peak in this process while fetching one generated file from
the sandbox (run in a subprocess, so its buffers are not counted): ``download()`` to a path
streams, ``read_bytes()`` holds the file once, and the hand-written 0.2.0 pattern
(``requests.get(f["download_url"]).content``, here with httpx) holds it too. Round trips are
counted by the sandbox.

Run: ``python bench/bench_files.py [--mb 100]``
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from openhumans.client import OpenHumansClient

_spec = importlib.util.spec_from_file_location(
    "bench_client", Path(__file__).resolve().parent / "bench_client.py"
)
assert _spec is not None and _spec.loader is not None
bench_client = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_client)

META = {"description": "benchmark", "tags": ["summary"]}


def measure(run: Callable[[], Any]) -> tuple[float, float]:
    """(peak traced MiB, seconds) of ``run()``."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        run()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak / 2**20, time.perf_counter() - started


def bench_download_memory(base: str, megabytes: int) -> list[tuple[str, str, str, str]]:
    control = bench_client.Control(base)
    _pmid, tokens = control.member("bench-download")
    size = megabytes * 1024 * 1024
    rows = []
    with OpenHumansClient(tokens["access_token"], base_url=base, timeout=600) as client:
        client.upload(io.BufferedReader(bench_client.GeneratedFile(size)), "big.bin", META)
        with tempfile.TemporaryDirectory() as tmp:
            variants: list[tuple[str, Callable[[], Any]]] = [
                (
                    "download(file, path) (streamed)",
                    lambda: client.download(client.list_files()[0], Path(tmp) / "big.bin"),
                ),
                (
                    "read_bytes(file, max_bytes=None)",
                    lambda: client.read_bytes(client.list_files()[0], max_bytes=None),
                ),
                (
                    "0.2.0 pattern: get(download_url).content",
                    lambda: (
                        httpx.get(
                            client.list_files()[0].download_url, follow_redirects=True, timeout=600
                        ).content
                    ),
                ),
            ]
            for name, run in variants:
                peak, seconds = measure(run)
                rows.append(
                    (
                        name,
                        f"{megabytes} MiB",
                        f"{peak:.1f} MiB",
                        f"{megabytes / seconds:.0f} MiB/s",
                    )
                )
    return rows


def bench_round_trips(base: str) -> list[tuple[str, int, int]]:
    control = bench_client.Control(base)
    pmid, tokens = control.member("bench-trips")
    rows = []
    with OpenHumansClient(tokens["access_token"], base_url=base) as client:
        client.upload_json({"day": 0}, "summary.json", META)

        def by_hand_read() -> Any:
            # Quantified Flu's pattern: list, pick by hand, fetch the link.
            files = [f for f in client.list_files() if f.basename == "summary.json"]
            latest = max(files, key=lambda f: f.created)
            return json.loads(httpx.get(latest.download_url, follow_redirects=True).content)

        rows.append(
            (
                "read the latest summary",
                bench_client.round_trips(
                    control, lambda: client.read_json(client.latest_file(basename="summary.json"))
                ),
                bench_client.round_trips(control, by_hand_read),
            )
        )

        def by_hand_replace() -> None:
            # The Oura task's pattern: delete first (loses data if the upload fails).
            client.delete_files(file_basename="summary.json")
            client.upload_json({"day": 2}, "summary.json", META)

        rows.append(
            (
                "replace the summary",
                bench_client.round_trips(
                    control, lambda: client.replace_file(b'{"day": 1}', "summary.json", META)
                ),
                bench_client.round_trips(control, by_hand_replace),
            )
        )
    del pmid
    return rows


def main(argv: list[str] | None = None) -> None:
    """Print the download-memory table and the round-trip table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mb", type=int, default=100)
    args = parser.parse_args(argv)
    with bench_client.sandbox_process() as base:
        print(f"Fetching a {args.mb} MiB file (tracemalloc peak)\n")
        headers = ("variant", "size", "peak memory", "throughput")
        print(bench_client.table(headers, bench_download_memory(base, args.mb)))
        print("\nRound trips (counted by the sandbox)\n")
        headers = ("operation", "one call", "by hand (0.2.0 projects)")
        print(bench_client.table(headers, bench_round_trips(base)))


if __name__ == "__main__":
    main()
