"""Benchmark the Open Humans client against the sandbox: round trips and upload memory.

Round trips are read from the sandbox's request log (``/_sandbox/requests/``), so they are
what the server saw, not what the client believes it sent. The old library's counts
(django-open-humans 0.2.0 on ohapi) come from its code: an extra member lookup before every
upload, and each listing page fetched twice except the first.

Peak memory is tracemalloc's peak in this process while uploading a generated stream; the
sandbox runs in a subprocess so its own buffers are not counted.

Run: ``python bench/bench_client.py [--upload-mb 200] [--files 1,100,250,1000]``
"""

from __future__ import annotations

import argparse
import io
import math
import os
import socket
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from generated import GeneratedFile  # bench/, on sys.path when run from there

from openhumans.client import OpenHumansClient, refresh

META = {"description": "benchmark", "tags": ["bench"]}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def sandbox_process() -> Iterator[str]:
    """Run ``python -m openhumans.sandbox`` in a subprocess; yield its base URL."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "openhumans.sandbox", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/_sandbox/config/", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"sandbox exited: {err[-2000:]}")
            time.sleep(0.1)
        else:
            raise RuntimeError("sandbox did not start in 10 s")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class Control:
    """The sandbox's JSON control plane (CONTRACTS §2)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = httpx.Client(base_url=base, timeout=600)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, path, json=body)
        response.raise_for_status()
        return response.json() if response.content else None

    def config(self) -> dict[str, Any]:
        return dict(self.call("GET", "/_sandbox/config/"))

    def member(self, username: str) -> tuple[str, dict[str, Any]]:
        pmid = self.call("POST", "/_sandbox/members/", {"username": username})["project_member_id"]
        return pmid, self.call("POST", f"/_sandbox/members/{pmid}/tokens/")

    def add_files(self, pmid: str, count: int) -> None:
        self.call("POST", f"/_sandbox/members/{pmid}/files/", {"count": count, "content": "x"})

    def api_requests(self) -> list[dict[str, Any]]:
        log = self.call("GET", "/_sandbox/requests/")["requests"]
        return [r for r in log if not r["path"].startswith("/_sandbox/")]


def round_trips(control: Control, operation: Callable[[], object]) -> int:
    """Run ``operation``; return how many non-control requests the sandbox received."""
    before = len(control.api_requests())
    operation()
    return len(control.api_requests()) - before


def bench_round_trips(base: str, file_counts: list[int]) -> list[tuple[str, object, str, str]]:
    """Rows of (operation, ours, old library, protocol minimum)."""
    control = Control(base)
    config = control.config()
    rows: list[tuple[str, object, str, str]] = []
    pmid, tokens = control.member("bench-upload")
    with OpenHumansClient(tokens["access_token"], base_url=base) as client:
        rows.append(
            (
                "upload (1 KiB)",
                round_trips(control, lambda: client.upload(b"x" * 1024, "a.bin", META)),
                "4",
                "3",
            )
        )
        ids = control.call("GET", f"/_sandbox/members/{pmid}/files/")
        file_id = int(ids[0]["id"]) if ids else 0
        rows.append(
            (
                "delete 1 file",
                round_trips(control, lambda: client.delete_files(file_id=file_id)),
                "1",
                "1",
            )
        )
        rows.append(
            (
                "message (user token)",
                round_trips(control, lambda: client.message("s", "m")),
                "1",
                "1",
            )
        )
    for n in file_counts:
        pmid, tokens = control.member(f"bench-list-{n}")
        if n:
            control.add_files(pmid, n)
        with OpenHumansClient(tokens["access_token"], base_url=base) as lister:
            before = len(control.api_requests())
            listed = len(lister.list_files())
            count = len(control.api_requests()) - before
        assert listed == n, f"listed {listed} of {n} files"
        old = 2 * math.ceil(n / 100) - 1 if n else 1
        rows.append((f"list {n} file(s)", count, str(max(1, old)), str(max(1, math.ceil(n / 100)))))
    ids3 = [control.member(f"bench-msg-{i}")[0] for i in range(3)]
    with OpenHumansClient(config["master_token"], base_url=base) as master:
        sent = round_trips(control, lambda: master.message("s", "m", project_member_ids=ids3))
    inbox = control.call("GET", "/_sandbox/inbox/")
    reached = len({m["project_member_id"] for m in inbox} & set(ids3))
    # 0.2.0 form-encoded the list (repeated keys): only the last id got it (spec §2.4).
    rows.append(("message 3 members (master)", f"{sent} (reached {reached})", "1 (reached 1)", "1"))
    rows.append(
        (
            "token refresh",
            round_trips(
                control,
                lambda: refresh(
                    refresh_token=tokens["refresh_token"],
                    client_id=config["client_id"],
                    client_secret=config["client_secret"],
                    base_url=base,
                ),
            ),
            "1",
            "1",
        )
    )
    return rows


def bench_upload_memory(base: str, megabytes: int) -> list[tuple[str, str, str, str]]:
    """Rows of (variant, size, peak traced memory, throughput) for a generated upload."""
    control = Control(base)
    _pmid, tokens = control.member("bench-memory")
    size = megabytes * 1024 * 1024
    rows = []
    with OpenHumansClient(tokens["access_token"], base_url=base, timeout=600) as client:
        variants: list[tuple[str, Callable[[], Any]]] = [
            (
                "client.upload (streamed)",
                lambda: client.upload(
                    io.BufferedReader(GeneratedFile(size, b"\x5a")), "big.bin", META
                ),
            ),
            (
                "buffered baseline: upload(stream.read())",
                lambda: client.upload(
                    io.BufferedReader(GeneratedFile(size, b"\x5a")).read(), "big.bin", META
                ),
            ),
        ]
        for name, run in variants:
            tracemalloc.start()
            started = time.perf_counter()
            try:
                result = run()
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            elapsed = time.perf_counter() - started
            assert result.size == size, f"stored {result.size} bytes of {size}"
            rows.append(
                (
                    name,
                    f"{megabytes} MiB",
                    f"{peak / 2**20:.1f} MiB",
                    f"{megabytes / elapsed:.0f} MiB/s",
                )
            )
    return rows


def table(headers: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    """Format rows as a plain-text table."""
    cells = [tuple(str(c) for c in headers)] + [tuple(str(c) for c in row) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Print the round-trip table and the upload-memory table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--upload-mb", type=int, default=200)
    parser.add_argument("--files", default="1,100,250,1000")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.files.split(",") if n.strip()]
    with sandbox_process() as base:
        print("Round trips per operation (counted by the sandbox)\n")
        headers = ("operation", "ours", "old 0.2.0", "protocol minimum")
        print(table(headers, bench_round_trips(base, counts)))
        print(f"\nUpload of a generated {args.upload_mb} MiB stream (tracemalloc peak)\n")
        headers = ("variant", "size", "peak memory", "throughput")
        print(table(headers, bench_upload_memory(base, args.upload_mb)))


if __name__ == "__main__":
    main()
