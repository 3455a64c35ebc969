"""``make demo``'s script: it starts both servers, prints the address, and Ctrl-C stops them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx

from .conftest import EXAMPLE_DIR, free_port


def _stop(proc: subprocess.Popen) -> str:
    """Ctrl-C the script, then terminate and kill it if it does not stop; return its output."""
    proc.send_signal(signal.SIGINT)  # what Ctrl-C does
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    return out


def test_run_demo_serves_and_stops_on_ctrl_c(tmp_path):
    site_port, sandbox_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENHUMANS_", "DJANGO_"))}
    env.update(
        DEMO_PORT=str(site_port),
        SANDBOX_PORT=str(sandbox_port),
        DEMO_DB=str(tmp_path / "db.sqlite3"),
        DEMO_STATE_FILE=str(tmp_path / "state.json"),
        PYTHONUNBUFFERED="1",
    )
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLE_DIR / "run_demo.py")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = ""
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "run_demo.py exited early:\n" + "".join(lines)
            lines.append(line)
            if "The demo is running" in line:
                break
        assert f"Open http://127.0.0.1:{site_port}/ in your browser." in lines[-1]

        home = httpx.get(f"http://127.0.0.1:{site_port}/")
        assert home.status_code == 200
        assert "Log in with Open Humans" in home.text
        login = httpx.get(f"http://127.0.0.1:{site_port}/openhumans/login/")
        assert login.headers["location"].startswith(
            f"http://127.0.0.1:{sandbox_port}/direct-sharing/projects/oauth2/authorize/"
        )
        # Another name for the host would lose the login's session: sent to the right one.
        other = httpx.get(
            f"http://127.0.0.1:{site_port}/dashboard/", headers={"Host": f"localhost:{site_port}"}
        )
        assert other.status_code == 301
        assert other.headers["location"] == f"http://127.0.0.1:{site_port}/dashboard/"
        created = httpx.post(
            f"http://127.0.0.1:{sandbox_port}/_sandbox/members/", json={"username": "kept"}
        )
        assert created.status_code == 201
    finally:
        out = _stop(proc)
    assert proc.returncode == 0, out
    assert "Stopping the demo" in out
    for port in (site_port, sandbox_port):
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
        except httpx.ConnectError:
            continue
        raise AssertionError(f"something still listens on {port}")
    # The sandbox saved its state on the way out: the member is there next time.
    assert "kept" in (tmp_path / "state.json").read_text()


def test_run_demo_stops_its_servers_when_killed_or_its_terminal_closes(tmp_path):
    for how in (signal.SIGHUP, signal.SIGKILL):
        site_port, sandbox_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENHUMANS_", "DJANGO_"))}
        env.update(
            DEMO_PORT=str(site_port),
            SANDBOX_PORT=str(sandbox_port),
            DEMO_DB=str(tmp_path / f"db-{how}.sqlite3"),
            DEMO_STATE_FILE=str(tmp_path / f"state-{how}.json"),
            PYTHONUNBUFFERED="1",
        )
        proc = subprocess.Popen(
            [sys.executable, str(EXAMPLE_DIR / "run_demo.py")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                line = proc.stdout.readline()
                assert line, "run_demo.py exited early"
                if "The demo is running" in line:
                    break
            proc.send_signal(how)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        deadline = time.monotonic() + 15
        listening = [site_port, sandbox_port]
        while listening and time.monotonic() < deadline:
            listening = [p for p in listening if _listens(p)]
            time.sleep(0.2)
        assert not listening, f"after {how!r}, something still listens on {listening}"


def _listens(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
    except httpx.HTTPError:
        return False
    return True
