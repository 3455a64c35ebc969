"""Benchmark a browser upload (direct-upload.js) against a plain ``curl -T`` of the same bytes.

The demo site runs as its own process (``manage.py runserver --noreload``, one process, as
``make demo``), the sandbox as another (``python -m openhumans.sandbox``), Chromium through
Playwright. For each run a real
browser uploads a generated file from the demo's dashboard; then curl PUTs the same file to a
fresh signed URL of the same storage. Figures:

- PUT time and throughput: the browser's Resource Timing entry of its PUT (request start to
  response end), and curl's ``time_total``.
- Django busy: the browser's timings of the two server steps (start, complete), which bound
  the time a web worker is busy for the upload; and the CPU seconds the Django process used
  during the whole upload (``/proc/<pid>/stat``).
- Django memory: the process's resident set before, and its peak during the upload
  (``VmHWM``, reset through ``/proc/<pid>/clear_refs`` just before).

``--mbit N`` limits both uploads to N Mbit/s (Chromium's network emulation, curl's
``--limit-rate``), as a member's uplink would; without it both run as fast as loopback and
the storage stand-in (Python, hashing and writing every byte) allow.

Linux only; needs /usr/bin/chromium, the playwright package and curl. Run by hand:
``python bench/bench_browser_upload.py [--mb 200] [--runs 2] [--mbit 100]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "example"
CHROMIUM = "/usr/bin/chromium"
MiB = 1024 * 1024
CLIENT_ID, CLIENT_SECRET = "bench-client", "bench-secret"
TIMINGS = """() => performance.getEntriesByType("resource").map(e => (
  {name: e.name.split("?")[0], type: e.initiatorType, start: e.startTime, duration: e.duration}))"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_status(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` size field (VmRSS, VmHWM) in bytes."""
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_file(path: Path, size: int) -> None:
    block = os.urandom(MiB)
    with path.open("wb") as f:
        for _ in range(size // MiB):
            f.write(block)
        f.write(block[: size % MiB])


def start_site(site_port: int, oh: Any, tmp: Path, limit: int) -> tuple[subprocess.Popen, dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENHUMANS_", "DJANGO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="demo_site.settings",
        PYTHONUNBUFFERED="1",
        DEMO_DB=str(tmp / "demo.sqlite3"),
        DEMO_BROWSER_UPLOAD_MAX=str(limit),
        OPENHUMANS_APP_BASE_URL=f"http://127.0.0.1:{site_port}",
        OPENHUMANS_OH_BASE_URL=oh.base_url,
        OPENHUMANS_CLIENT_ID=CLIENT_ID,
        OPENHUMANS_CLIENT_SECRET=CLIENT_SECRET,
    )
    manage = [sys.executable, str(EXAMPLE / "manage.py")]
    subprocess.run([*manage, "migrate", "-v", "0"], env=env, check=True, cwd=EXAMPLE)
    log = (tmp / "site.log").open("w")
    proc = subprocess.Popen(
        [*manage, "runserver", "--noreload", f"127.0.0.1:{site_port}"],
        env=env,
        cwd=EXAMPLE,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", site_port)) == 0:
                return proc, env
        time.sleep(0.1)
    raise RuntimeError("the demo site did not start")


def log_in(page: Any, site: str, oh: Any) -> str:
    page.goto(site + "/")
    page.get_by_role("link", name="Log in with Open Humans").click()
    page.wait_for_url(oh.base_url + "/direct-sharing/projects/oauth2/authorize/**")
    page.fill("input[name=new_username]", f"bench{time.time_ns() % 10**8}")
    page.get_by_role("button", name="Authorize project").click()
    page.wait_for_url(site + "/dashboard/")
    # The header shows the Open Humans username; the member id is in data-member-id.
    return str(page.locator(".who").get_attribute("data-member-id"))


def browser_upload(page: Any, path: Path, pid: int) -> dict[str, float]:
    """Upload ``path`` from the dashboard; return the timings and Django's memory and CPU."""
    page.evaluate("performance.clearResourceTimings()")
    form = page.locator("#upload-form")
    form.locator("input[name=file]").set_input_files(str(path))
    form.locator("input[name=description]").fill("benchmark")
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    rss_before, cpu_before = proc_status(pid, "VmRSS"), cpu_seconds(pid)
    started = time.monotonic()
    form.get_by_role("button", name="Upload", exact=True).click()
    message = form.locator(".openhumans-upload-message")
    message.filter(has_text="Uploaded").wait_for(timeout=600_000)
    wall = time.monotonic() - started
    peak, cpu = proc_status(pid, "VmHWM"), cpu_seconds(pid) - cpu_before
    entries = page.evaluate(TIMINGS)
    put = [e for e in entries if "/_storage/" in e["name"]]
    steps = [e for e in entries if e["name"].endswith(("/upload/start/", "/upload/complete/"))]
    if len(put) != 1 or len(steps) != 2:
        raise RuntimeError(f"unexpected requests: {json.dumps(entries)}")
    return {
        "put_s": put[0]["duration"] / 1000,
        "steps_ms": sum(e["duration"] for e in steps),
        "wall_s": wall,
        "rss_before": rss_before,
        "peak_over": max(0, peak - rss_before),
        "cpu_s": cpu,
    }


def start_sandbox(port: int, site: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "openhumans.sandbox",
            "--port",
            str(port),
            "--client-id",
            CLIENT_ID,
            "--client-secret",
            CLIENT_SECRET,
            "--redirect-uri",
            f"{site}/openhumans/complete",
            "--quiet",
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.1)
    raise RuntimeError("the sandbox did not start")


def curl_upload(path: Path, oh: Any, pmid: str, mbit: float | None) -> float:
    """PUT ``path`` with ``curl -T`` to a fresh signed URL; return curl's total time."""
    from openhumans.client import OpenHumansClient

    token = oh.issue_tokens(pmid)["access_token"]
    with OpenHumansClient(token, base_url=oh.base_url) as api:
        target = api.start_upload(path.name, {"description": "curl", "tags": []})
    limit = ["--limit-rate", str(int(mbit * 1_000_000 / 8))] if mbit else []
    out = subprocess.run(
        ["curl", "-sS", "-f", *limit, "-T", str(path), "-o", "/dev/null", "-w", "%{time_total}"]
        + [target.url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(out)


def main(argv: list[str]) -> None:
    """Run the comparison and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--mb", type=int, default=200, help="file size in MiB")
    parser.add_argument("--runs", type=int, default=2, help="uploads of each kind")
    parser.add_argument("--mbit", type=float, default=None, help="uplink limit in Mbit/s")
    args = parser.parse_args(argv)
    if not os.access(CHROMIUM, os.X_OK):
        print(f"skipped: {CHROMIUM} is not installed")
        return
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("skipped: the playwright package is not installed")
        return

    from openhumans.sandbox import SandboxClient

    size = args.mb * MiB
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        big, small = tmp / f"bench-{args.mb}mb.bin", tmp / "warm-up.bin"
        make_file(big, size)
        make_file(small, 64 * 1024)
        site_port, oh_port = free_port(), free_port()
        site = f"http://127.0.0.1:{site_port}"
        sandbox = start_sandbox(oh_port, site)
        oh = SandboxClient(f"http://127.0.0.1:{oh_port}")
        try:
            proc, _ = start_site(site_port, oh, tmp, size + 1)
            try:
                with sync_playwright() as pw:
                    browser = pw.chromium.launch(
                        executable_path=CHROMIUM, args=["--headless", "--no-sandbox"]
                    )
                    page = browser.new_page()
                    pmid = log_in(page, site, oh)
                    browser_upload(page, small, proc.pid)  # imports, connections, caches
                    if args.mbit:
                        cdp = page.context.new_cdp_session(page)
                        cdp.send("Network.enable")
                        cdp.send(
                            "Network.emulateNetworkConditions",
                            {
                                "offline": False,
                                "latency": 0,
                                "downloadThroughput": -1,
                                "uploadThroughput": args.mbit * 1_000_000 / 8,
                            },
                        )
                    runs = [browser_upload(page, big, proc.pid) for _ in range(args.runs)]
                    browser.close()
                curls = [curl_upload(big, oh, pmid, args.mbit) for _ in range(args.runs)]
            finally:
                proc.terminate()
                proc.wait(timeout=10)
        finally:
            oh.close()
            sandbox.terminate()
            sandbox.wait(timeout=10)
    put = statistics.median(r["put_s"] for r in runs)
    curl = statistics.median(curls)
    link = f"uplink limited to {args.mbit:g} Mbit/s" if args.mbit else "no uplink limit"
    print(f"{args.mb} MiB upload, {args.runs} runs each (median), {link}; demo site and")
    print("sandbox storage on 127.0.0.1; the browser is headless Chromium with direct-upload.js.\n")
    rows = [
        ("PUT time (s): browser / curl -T", f"{put:.2f}", f"{curl:.2f}"),
        ("throughput (MiB/s): browser / curl -T", f"{args.mb / put:.0f}", f"{args.mb / curl:.0f}"),
        ("browser throughput vs curl", f"{curl / put:.0%}", ""),
        ("click to 'Uploaded' (s)", f"{statistics.median(r['wall_s'] for r in runs):.2f}", ""),
        (
            "Django busy: start + complete (ms)",
            f"{statistics.median(r['steps_ms'] for r in runs):.0f}",
            "",
        ),
        (
            "Django CPU during the upload (s)",
            f"{statistics.median(r['cpu_s'] for r in runs):.2f}",
            "",
        ),
        (
            "Django RSS before (MiB)",
            f"{statistics.median(r['rss_before'] for r in runs) / MiB:.1f}",
            "",
        ),
        (
            "Django RSS peak above that (MiB)",
            f"{max(r['peak_over'] for r in runs) / MiB:.2f}",
            "",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    for label, a, b in rows:
        print(f"{label:<{width}}  {a:>8}  {b:>8}")


if __name__ == "__main__":
    main(sys.argv[1:])
