"""Run the test project under a real gunicorn on 127.0.0.1 (an ephemeral port).

The workers use the test database of the running test (SQLite file or PostgreSQL) and the
settings given; the reliability tests drive them over real sockets.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
LISTENING = re.compile(r"Listening at: http://127\.0\.0\.1:(\d+)")


class Gunicorn:
    """``with Gunicorn(log_path, OPENHUMANS_OH_BASE_URL=...) as site: site.url``."""

    def __init__(
        self, log_path: Path, *, workers: int = 4, threads: int = 4, **settings: Any
    ) -> None:
        self.log_path = log_path
        self.workers, self.threads = workers, threads
        self.settings = {"DATABASE_NAME": str(connection.settings_dict["NAME"]), **settings}
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def __enter__(self) -> Gunicorn:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "OPENHUMANS_TESTS_OVERRIDES": json.dumps(self.settings),
            "PYTHONPATH": str(ROOT),
        }
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "tests.wsgi:application",
            "--bind=127.0.0.1:0",
            f"--workers={self.workers}",
            "--worker-class=gthread",
            f"--threads={self.threads}",
            "--timeout=30",  # gunicorn's default: what a worker may take before it is killed
            "--graceful-timeout=5",
            "--log-level=info",
        ]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
        port = self._wait_for_port()
        self.url = f"http://127.0.0.1:{port}"
        return self

    def _wait_for_port(self) -> int:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log()}")
            found = LISTENING.search(self.log())
            if found and self.log().count("Booting worker") >= self.workers:
                port = int(found.group(1))
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        return port
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def worker_timeouts(self) -> int:
        """How many workers gunicorn killed for taking longer than its timeout."""
        return self.log().count("WORKER TIMEOUT")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
