#!/usr/bin/env python
"""Run the demo: migrate, start the Open Humans sandbox and the example site, print the address.

``make demo`` runs this. Ports come from DEMO_PORT (default 8000) and SANDBOX_PORT (8001);
the site's database from DEMO_DB (example/db.sqlite3) and the sandbox's state from
DEMO_STATE_FILE (example/.sandbox-state.json). Ctrl-C stops both servers.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

EXAMPLE_DIR = Path(__file__).resolve().parent
HOST = "127.0.0.1"
STARTUP_TIMEOUT = 30.0


def port_is_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


def wait_for_port(port: int, proc: subprocess.Popen, name: str) -> None:
    """Wait until ``port`` accepts connections; exit if ``proc`` dies first."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"The {name} stopped while starting (exit status {proc.returncode}).")
        if port_is_open(port):
            return
        time.sleep(0.1)
    raise SystemExit(f"The {name} did not start listening on port {port}.")


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _default_sigint() -> None:
    # Run in each child before exec: a parent that ignores SIGINT (a background job, nohup,
    # some CI runners) would pass SIG_IGN on, and the servers could not be stopped cleanly.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    # And should this script die without stopping them (kill -9), Linux ends them too.
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, int(signal.SIGTERM))


def keep_state_consistent(db: Path, state: Path) -> None:
    """Start both stores afresh if only one is left: the site's tokens must be the sandbox's."""
    leftovers = [db, state, state.with_name(state.name + ".files")]
    if db.exists() != state.exists():
        print("The demo database and the sandbox's state do not belong together; starting afresh.")
        for path in leftovers:
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()


def stop(procs: list[subprocess.Popen]) -> None:
    """Stop the servers as Ctrl-C would (the sandbox then saves its state), then harder."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    demo_port = int(os.environ.get("DEMO_PORT", "8000"))
    sandbox_port = int(os.environ.get("SANDBOX_PORT", "8001"))
    for port, var in ((demo_port, "DEMO_PORT"), (sandbox_port, "SANDBOX_PORT")):
        if port_is_open(port):
            print(f"Port {port} is already in use: set {var} to another port.", file=sys.stderr)
            return 1

    site_url = f"http://{HOST}:{demo_port}"
    sandbox_url = f"http://{HOST}:{sandbox_port}"
    # The example's settings read these; the sandbox gets the same values on its command line.
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="demo_site.settings",
        PYTHONUNBUFFERED="1",
        OPENHUMANS_APP_BASE_URL=site_url,
        OPENHUMANS_OH_BASE_URL=sandbox_url,
    )
    env.setdefault("OPENHUMANS_CLIENT_ID", "sandbox-client")
    env.setdefault("OPENHUMANS_CLIENT_SECRET", "sandbox-secret")
    env.setdefault("OPENHUMANS_WEBHOOK_SECRET", "demo-webhook-secret-0123456789")

    state_file = Path(env.get("DEMO_STATE_FILE", EXAMPLE_DIR / ".sandbox-state.json"))
    keep_state_consistent(Path(env.get("DEMO_DB", EXAMPLE_DIR / "db.sqlite3")), state_file)
    manage = [sys.executable, str(EXAMPLE_DIR / "manage.py")]
    print("Preparing the demo database...")
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, check=True)

    sandbox_cmd = [
        sys.executable, "-m", "openhumans.sandbox",
        "--host", HOST,
        "--port", str(sandbox_port),
        "--client-id", env["OPENHUMANS_CLIENT_ID"],
        "--client-secret", env["OPENHUMANS_CLIENT_SECRET"],
        "--redirect-uri", f"{site_url}/openhumans/complete",
        "--webhook-url", f"{site_url}/openhumans/deauth",
        "--webhook-secret", env["OPENHUMANS_WEBHOOK_SECRET"],
        "--state-file", str(state_file),
    ]  # fmt: skip
    # runserver is threaded: the sandbox calls the site's webhook while the site's own
    # remove-members request to the sandbox is still open (spec §5 item 9).
    site_cmd = [*manage, "runserver", "--noreload", f"{HOST}:{demo_port}"]
    # The demo's background job (demo_site/jobs.py) runs here, on the database backend.
    worker_cmd = [*manage, "db_worker", "--no-reload", "--interval", "0.5"]

    procs: list[subprocess.Popen] = []
    # New sessions: Ctrl-C reaches only this script, which then stops the servers in order.
    popen = {
        "env": env,
        "cwd": EXAMPLE_DIR,
        "start_new_session": True,
        "preexec_fn": _default_sigint,
    }
    # Ctrl-C and SIGTERM stop the demo even when this script inherited SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)  # the terminal closed: stop the servers too
    try:
        procs.append(subprocess.Popen(sandbox_cmd, **popen))
        wait_for_port(sandbox_port, procs[0], "Open Humans sandbox")
        procs.append(subprocess.Popen(site_cmd, **popen))
        wait_for_port(demo_port, procs[1], "example site")
        procs.append(subprocess.Popen(worker_cmd, **popen))
        print(
            "\n"
            f"  The demo is running. Open {site_url}/ in your browser.\n"
            f"  Open Humans sandbox: {sandbox_url}/\n"
            "  Press Ctrl-C to stop. To start afresh, delete example/db.sqlite3.\n",
            flush=True,
        )
        while all(proc.poll() is None for proc in procs):
            time.sleep(0.5)
        print("A server stopped unexpectedly; shutting down.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopping the demo...")
        return 0
    finally:
        stop(procs)


if __name__ == "__main__":
    sys.exit(main())
