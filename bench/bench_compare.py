"""Side by side with django-open-humans 0.2.0: the same workloads, one sandbox, one run.

Each library runs in its own virtualenv (ours: the project's ``.venv``; 0.2.0 with
open-humans-api 0.2.9 from PyPI: ``bench/.venv-old``, built on first use), in a fresh
subprocess per run (``bench/worker.py``) with its own SQLite file, against one sandbox
process (``python -m openhumans.sandbox``). Members, tokens and files are made through the
sandbox's control plane and handed to each library's member model.

Figures per workload and library:

- requests: counted by the sandbox (its request log, control plane excluded);
- TCP connections: accepted by the sandbox, from the ``PassiveOpens`` counter of the network
  namespace the sandbox runs in (``bench/netlink.py``), minus the worker's own control-plane
  calls; without root, a counting TCP proxy in front of the sandbox;
- wall and CPU time of the library's process during the workload (median of the runs);
- peak RSS growth of that process during the workload (the largest of the runs);
- correctness: failed calls, and what the sandbox holds afterwards (missing or duplicated
  files, messages, logins).

Run: ``python bench/bench_compare.py [--reps 3] [--quick] [--no-write]``; writes
``docs/_static/bench/results.md``, ``results.inc`` (included by ``docs/performance.rst``) and
``results.png``, and ``results.json`` with every run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import math
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from openhumans.sandbox import SandboxClient

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = ROOT / "docs" / "_static" / "bench"
OLD_VENV = HERE / ".venv-old"
OLD_REQUIREMENTS = ["django-open-humans==0.2.0", "open-humans-api==0.2.9"]
LIBS = ("ours", "old")
LABEL = {"ours": "ours", "old": "0.2.0", "curl": "curl -T (ceiling)"}
GIB = 1024**3
META = {"description": "benchmark", "tags": ["bench"]}

sys.path.insert(0, str(HERE))
from netlink import FAST_SANDBOX, SLOW_SANDBOX, NetLab, NetLabUnavailable  # noqa: E402

# -- the old library's virtualenv ------------------------------------------------------------


def old_python() -> Path:
    """bench/.venv-old/bin/python with 0.2.0 installed from PyPI (made once)."""
    python = OLD_VENV / "bin" / "python"
    stamp = OLD_VENV / ".installed"
    if not stamp.exists() or stamp.read_text() != " ".join(OLD_REQUIREMENTS):
        print(f"building {OLD_VENV.relative_to(ROOT)} with {' '.join(OLD_REQUIREMENTS)}")
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(OLD_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", *OLD_REQUIREMENTS], check=True
        )
        stamp.write_text(" ".join(OLD_REQUIREMENTS))
    return python


def version_of(python: Path | str, module: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({module!r}))"
    # -I: not the project's own egg-info from the current directory.
    done = subprocess.run(
        [str(python), "-I", "-c", code], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or "?"


# -- the sandbox, and counting its TCP connections -------------------------------------------


class CountingProxy:
    """Without a namespace: a TCP proxy in front of the sandbox that counts accepts."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.accepted = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with suppress(OSError):
            while data := src.recv(262144):
                dst.sendall(data)
        with suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.listener.close()


class Bench:
    """The sandbox process, its links, and the counters read around every run."""

    def __init__(self, lab: NetLab | None) -> None:
        self.lab = lab
        self.proxy: CountingProxy | None = None
        port = 8001 if lab else _free_port()
        host = "0.0.0.0" if lab else "127.0.0.1"  # noqa: S104 - inside the bench's namespace
        cmd = [sys.executable, "-m", "openhumans.sandbox", "--host", host, "--port", str(port)]
        cmd.append("--quiet")
        if lab:
            cmd = ["ip", "netns", "exec", lab.name, *cmd]
        env = {k: v for k, v in os.environ.items() if not k.startswith("OH_SANDBOX_")}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=env)
        self.direct = f"http://{FAST_SANDBOX if lab else '127.0.0.1'}:{port}"
        self.slow = f"http://{SLOW_SANDBOX}:{port}" if lab else None
        _wait_for(self.direct, self.proc)
        self._own_reads = self._all_reads = 0
        # Sandboxes since issue 9 count the connections they accept (/_sandbox/connections/).
        self.counts_connections = self._sandbox_opened() is not None
        if lab or self.counts_connections:
            self.fast = self.direct
        else:
            self.proxy = CountingProxy(("127.0.0.1", port))
            self.fast = f"http://127.0.0.1:{self.proxy.port}"
        self.method = (
            "the PassiveOpens counter of the sandbox's network namespace"
            if lab
            else "the sandbox's own count (/_sandbox/connections/)"
            if self.counts_connections
            else "a counting TCP proxy in front of the sandbox"
        )
        self.control = SandboxClient(self.direct, timeout=600)
        self.config = self.control.config()
        self.keepalive = probe_keepalive(self.direct)
        self.serial = 0

    def _sandbox_opened(self) -> int | None:
        """The sandbox's count, read on a connection of its own (so counted in it)."""
        host, port = self.direct.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            conn.request("GET", "/_sandbox/connections/")
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            return None
        finally:
            conn.close()
        self._own_reads += 1
        self._all_reads += 1
        if response.status != 200:
            return None
        return int(json.loads(body)["opened"])

    def clear_log(self) -> None:
        """Clear the request log (and the sandbox's connection count with it)."""
        self.control.clear_request_log()
        self._own_reads = 0

    def connections(self) -> tuple[int, int | None]:
        """(connections accepted so far by the primary method, by the sandbox's count)."""
        counted = self._sandbox_opened() if self.counts_connections else None
        own = None if counted is None else counted - self._own_reads
        if self.lab:
            # Read after the sandbox's count: the namespace saw every one of our reads.
            return self.lab.snmp_passive_opens(self.proc.pid) - self._all_reads, own
        if own is not None:
            return own, own
        assert self.proxy is not None
        return self.proxy.accepted, None

    def member(self, *, authorized: bool = True, tokens: bool = True) -> dict[str, Any]:
        self.serial += 1
        pmid = self.control.create_member(f"bench{self.serial}", authorized=authorized)[
            "project_member_id"
        ]
        return {"pmid": pmid, "tokens": self.control.issue_tokens(pmid) if tokens else None}

    def close(self) -> None:
        self.control.close()
        if self.proxy:
            self.proxy.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(base: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        with suppress(httpx.TransportError):
            if httpx.get(f"{base}/_sandbox/config/", timeout=1).status_code == 200:
                return
        if proc.poll() is not None:
            raise RuntimeError(f"sandbox exited with {proc.returncode}")
        time.sleep(0.05)
    raise RuntimeError("sandbox did not start in 10 s")


def probe_keepalive(base: str) -> bool:
    """Does the sandbox answer two requests on one connection?"""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        for _ in range(2):
            conn.request("GET", "/_sandbox/clock/")
            response = conn.getresponse()
            response.read()
            if response.will_close:
                return False
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


# -- one run ----------------------------------------------------------------------------------


class Runner:
    def __init__(self, bench: Bench, pythons: dict[str, Path | str], workdir: Path) -> None:
        self.bench, self.pythons, self.workdir = bench, pythons, workdir
        self.templates: dict[str, Path] = {}
        for lib in LIBS:
            db = workdir / f"template-{lib}.sqlite3"
            self._worker(lib, db, self.bench.fast, {}, migrate=True)
            self.templates[lib] = db

    def _worker(
        self, lib: str, db: Path, base: str, job: dict[str, Any], *, migrate: bool = False
    ) -> dict[str, Any]:
        env = {
            k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE")
        }
        env.update(
            BENCH_CLIENT_ID=self.bench.config["client_id"],
            BENCH_CLIENT_SECRET=self.bench.config["client_secret"],
            OHAPI_OH_BASE_URL=base + "/",  # 0.2.0's message() and deletes read only this
        )
        cmd = [str(self.pythons[lib]), str(HERE / "worker.py"), "--lib", lib, "--db", str(db)]
        cmd += ["--base", base, "--control", self.bench.direct]
        if migrate:
            cmd.append("--migrate")
        done = subprocess.run(
            cmd, input=json.dumps(job), capture_output=True, text=True, env=env, check=False
        )
        lines = done.stdout.strip().splitlines()
        if done.returncode or not lines:
            raise RuntimeError(f"{lib} worker failed ({done.returncode}): {done.stderr[-3000:]}")
        return dict(json.loads(lines[-1]))

    def run(self, lib: str, job: dict[str, Any], base: str) -> dict[str, Any]:
        """Run one job in a fresh process; add the sandbox's view of it."""
        db = self.workdir / f"run-{lib}.sqlite3"
        shutil.copyfile(self.templates[lib], db)
        self.bench.clear_log()
        before, before_own = self.bench.connections()
        result = self._worker(lib, db, base, job)
        after, after_own = self.bench.connections()
        own_control = result.pop("control_connections")
        per_call = result.pop("call_cpu_ms", [])
        result["first_call_ms"] = per_call[0] if per_call else None
        result["later_call_ms"] = statistics.median(per_call[1:]) if len(per_call) > 1 else None
        opened = after - before - own_control
        if before_own is not None and after_own is not None:
            result["connections_sandbox_count"] = after_own - before_own - own_control
            if self.bench.lab and result["connections_sandbox_count"] != opened:
                print(
                    f"  (the sandbox counted {result['connections_sandbox_count']} connections, "
                    f"the namespace {opened})"
                )
        log = self.bench.control.request_log()
        result["requests"] = sum(log["counts"].values())
        result["connections"] = opened
        result["bad_statuses"] = sum(
            1 for r in log["requests"] if isinstance(r["status"], int) and r["status"] >= 400
        )
        result["refreshes"] = sum(
            n for k, n in log["counts"].items() if k.startswith("POST /oauth2/token")
        )
        return result


# -- workloads: set up in the sandbox, run, check ----------------------------------------------


class Workload:
    """A named job: ``prepare()`` makes its sandbox data; ``check()`` reads the outcome."""

    def __init__(
        self,
        key: str,
        title: str,
        prepare: Callable[[Bench], dict[str, Any]],
        check: Callable[[Bench, dict[str, Any], dict[str, Any]], list[str]],
        *,
        calls: int,
        minimum: str,
        reps: int,
        link: str = "fast",
        fault_ms: int = 0,
    ) -> None:
        self.key, self.title, self.prepare, self.check = key, title, prepare, check
        self.calls, self.minimum, self.reps = calls, minimum, reps
        self.link, self.fault_ms = link, fault_ms
        self.upload_mib = 0.0


def no_check(bench: Bench, job: dict[str, Any], result: dict[str, Any]) -> list[str]:
    return []


def login_job(n: int) -> Callable[[Bench], dict[str, Any]]:
    def prepare(bench: Bench) -> dict[str, Any]:
        return {
            "workload": "login",
            "pmids": [bench.member(authorized=False, tokens=False)["pmid"] for _ in range(n)],
        }

    return prepare


def login_check(bench: Bench, job: dict[str, Any], result: dict[str, Any]) -> list[str]:
    missing = len(job["pmids"]) - result["logged_in"]
    return [f"{missing} not logged in"] if missing else []


def list_job(n: int) -> Callable[[Bench], dict[str, Any]]:
    def prepare(bench: Bench) -> dict[str, Any]:
        m = bench.member()
        if n:
            bench.control.add_files(m["pmid"], n, basename="f{i}.csv", content=b"x")
        return {"workload": "list", "pmid": m["pmid"], "members": [m], "expected": n}

    return prepare


def list_check(bench: Bench, job: dict[str, Any], result: dict[str, Any]) -> list[str]:
    notes = []
    if result["listed"] != result["distinct"]:
        notes.append(f"{result['listed'] - result['distinct']} duplicated")
    if result["distinct"] != job["expected"]:
        notes.append(f"{job['expected'] - result['distinct']} missing")
    return notes


def upload_small_job(count: int) -> Callable[[Bench], dict[str, Any]]:
    def prepare(bench: Bench) -> dict[str, Any]:
        m = bench.member()
        return {"workload": "upload_small", "pmid": m["pmid"], "members": [m], "count": count}

    return prepare


def files_check(expected_key: str) -> Callable[[Bench, dict[str, Any], dict[str, Any]], list[str]]:
    def check(bench: Bench, job: dict[str, Any], result: dict[str, Any]) -> list[str]:
        have = len(bench.control.files(job["pmid"]))
        want = job[expected_key]
        if have == want:
            return []
        return [f"{want - have} files missing" if have < want else f"{have - want} extra files"]

    return check


def upload_big_job(size: int) -> Callable[[Bench], dict[str, Any]]:
    def prepare(bench: Bench) -> dict[str, Any]:
        m = bench.member()
        return {
            "workload": "upload_big",
            "pmid": m["pmid"],
            "members": [m],
            "size": size,
            "max_upload": None,
            "expected_files": 1,
        }

    return prepare


def upload_big_check(bench: Bench, job: dict[str, Any], result: dict[str, Any]) -> list[str]:
    files = bench.control.files(job["pmid"])
    if any(f.get("size") == job["size"] for f in files if isinstance(f, dict)):
        return []
    if files and all("size" not in f for f in files):
        return []  # listing without sizes: the file is there
    refused = [f for f in result["failures"] if "Maximum file size" in f or "too large" in f]
    return ["refused (over its size limit)"] if refused else ["file not stored"]


def delete_job(count: int) -> Callable[[Bench], dict[str, Any]]:
    def prepare(bench: Bench) -> dict[str, Any]:
        m = bench.member()
        ids = bench.control.add_files(m["pmid"], count + 1, basename="d{i}.csv", content=b"x")
        return {
            "workload": "delete",
            "pmid": m["pmid"],
            "members": [m],
            "file_ids": ids[:count],
            "expected_files": 1,
        }

    return prepare


def message_job(count: int) -> Callable[[Bench], dict[str, Any]]:
    def prepare(bench: Bench) -> dict[str, Any]:
        m = bench.member()
        return {"workload": "message", "pmid": m["pmid"], "members": [m], "count": count}

    return prepare


def message_check(bench: Bench, job: dict[str, Any], result: dict[str, Any]) -> list[str]:
    got = len(bench.control.inbox(job["pmid"]))
    return [] if got == job["count"] else [f"{job['count'] - got} messages missing"]


def storm_job(callers: int) -> Callable[[Bench], dict[str, Any]]:
    def prepare(bench: Bench) -> dict[str, Any]:
        m = bench.member()
        bench.control.expire_access_tokens(m["pmid"])
        m["tokens"] = dict(m["tokens"], expires_in=0)  # the model knows it expired too
        return {"workload": "refresh_storm", "pmid": m["pmid"], "members": [m], "callers": callers}

    return prepare


def storm_check(bench: Bench, job: dict[str, Any], result: dict[str, Any]) -> list[str]:
    """How many callers got a token that works now (checked after the run)."""
    tokens = [t for t in result["tokens"] if t]
    dead = 0
    for token in set(tokens):
        response = httpx.get(
            f"{bench.direct}/api/direct-sharing/project/exchange-member/",
            params={"access_token": token},
            timeout=30,
        )
        if response.status_code != 200:
            dead += tokens.count(token)
    notes = []
    if dead:
        notes.append(f"{dead} of {job['callers']} callers got a dead token")
    if len(tokens) < job["callers"]:
        notes.append(f"{job['callers'] - len(tokens)} callers got no token")
    return notes


def mixed_job(members: int) -> Callable[[Bench], dict[str, Any]]:
    def prepare(bench: Bench) -> dict[str, Any]:
        ms = [bench.member() for _ in range(members)]
        for m in ms:
            bench.control.add_files(m["pmid"], 3, basename="old-{i}.csv", content=b"x")
        return {"workload": "mixed", "pmids": [m["pmid"] for m in ms], "members": ms}

    return prepare


def mixed_async_job(members: int) -> Callable[[Bench], dict[str, Any]]:
    """The mixed day's data, run through ours' async methods (0.2.0: its sequential day)."""
    prepare = mixed_job(members)

    def prepare_async(bench: Bench) -> dict[str, Any]:
        return {**prepare(bench), "workload": "mixed_async"}

    return prepare_async


def mixed_check(bench: Bench, job: dict[str, Any], result: dict[str, Any]) -> list[str]:
    wrong = sum(1 for pmid in job["pmids"] if len(bench.control.files(pmid)) != 4)
    unsent = len(job["pmids"]) - len(bench.control.inbox())
    notes = [f"{wrong} members with a wrong file count"] if wrong else []
    return notes + ([f"{unsent} messages missing"] if unsent else [])


def _size(n: int) -> str:
    return f"{n / GIB:g} GiB" if n >= GIB else f"{n / 1024**2:g} MiB"


def workloads(quick: bool, reps: int) -> list[Workload]:
    big = 100 * 1024**2 if quick else GIB
    counts = (10, 150, 1000) if quick else (10, 150, 1000, 10_000)
    day = 10 if quick else 50
    few = max(1, reps - 1)
    items = [
        Workload(
            "login",
            "20 logins through complete",
            login_job(20),
            login_check,
            calls=20,
            minimum="2 per login",
            reps=reps,
        ),
    ]
    for n in counts:
        items.append(
            Workload(
                f"list{n}",
                f"list_files(), {n:,} files",
                list_job(n),
                list_check,
                calls=1,
                minimum=str(max(1, math.ceil(n / 100))),
                reps=few if n >= 10_000 else reps,
            )
        )
    items += [
        Workload(
            "upload_small",
            "50 uploads of 10 KB",
            upload_small_job(50),
            files_check("count"),
            calls=50,
            minimum="150 (3 per upload)",
            reps=reps,
        ),
        Workload(
            "upload_big",
            f"upload of {_size(big)} (generated stream)",
            upload_big_job(big),
            upload_big_check,
            calls=1,
            minimum="3",
            reps=few,
        ),
        Workload(
            "delete",
            "10 deletes by id",
            delete_job(10),
            files_check("expected_files"),
            calls=10,
            minimum="10 (1 each)",
            reps=reps,
        ),
        Workload(
            "message",
            "10 messages",
            message_job(10),
            message_check,
            calls=10,
            minimum="10 (1 each)",
            reps=reps,
        ),
        Workload(
            "storm",
            "refresh storm: 32 callers, expired token",
            storm_job(32),
            storm_check,
            calls=32,
            minimum="1 refresh",
            reps=reps,
        ),
        Workload(
            "mixed0",
            f"mixed day, {day} members, no latency",
            mixed_job(day),
            mixed_check,
            calls=6 * day,
            minimum=f"{9 * day}",
            reps=reps,
        ),
        Workload(
            "mixed20",
            f"mixed day, {day} members, 20 ms injected latency",
            mixed_job(day),
            mixed_check,
            calls=6 * day,
            minimum=f"{9 * day}",
            reps=reps,
            fault_ms=20,
        ),
        Workload(
            "mixed20async",
            # 0.2.0 has no async API: its row is its sequential day (docs/performance.rst).
            f"mixed day, {day} members, 20 ms, async (10 in flight)",
            mixed_async_job(day),
            mixed_check,
            calls=6 * day,
            minimum=f"{9 * day}",
            reps=reps,
            fault_ms=20,
        ),
        Workload(
            "mixedrtt",
            f"mixed day, {day} members, 20 ms round-trip link",
            mixed_job(day),
            mixed_check,
            calls=6 * day,
            minimum=f"{9 * day}",
            reps=few,
            link="slow",
        ),
    ]
    items[[w.key for w in items].index("upload_big")].upload_mib = big / 1024**2
    return items


def curl_ceiling(bench: Bench, size: int, workdir: Path) -> dict[str, Any]:
    """PUT ``size`` zero bytes with curl to a sandbox storage URL (from upload/direct)."""
    m = bench.member()
    token = m["tokens"]["access_token"]
    response = httpx.post(
        f"{bench.fast}/api/direct-sharing/project/files/upload/direct/?"
        + urlencode({"access_token": token}),
        data={"project_member_id": m["pmid"], "filename": "big.bin", "metadata": json.dumps(META)},
        timeout=60,
    )
    response.raise_for_status()
    url = response.json()["url"]
    blob = workdir / "zeros.bin"
    with blob.open("wb") as f:
        f.truncate(size)  # sparse: the same zero bytes as the generated stream
    bench.clear_log()
    before_conns = bench.connections()[0]
    usage = os.times()
    started = time.perf_counter()
    done = subprocess.run(
        # No "Expect: 100-continue" (curl waits up to 1 s for it; httpx never sends it).
        [
            "curl",
            "-sS",
            "-H",
            "Expect:",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-T",
            str(blob),
            url,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    after = os.times()
    opened = bench.connections()[0] - before_conns
    blob.unlink()
    log = bench.control.request_log()
    return {
        "wall": wall,
        "cpu": (after.children_user - usage.children_user)
        + (after.children_system - usage.children_system),
        "rss_growth_kib": None,
        "calls": 1,
        "failures": [] if done.stdout.strip() == "200" else [f"curl: {done.stdout} {done.stderr}"],
        "requests": sum(log["counts"].values()),
        "connections": opened,
        "bad_statuses": 0,
        "refreshes": 0,
        "notes": [],
    }


# -- summary, table, plot, page --------------------------------------------------------------


def _median_or_none(values: Iterator[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    med = statistics.median
    rss = [r["rss_growth_kib"] for r in runs if r.get("rss_growth_kib") is not None]
    notes: list[str] = []
    for r in runs:
        for n in r.get("notes", []) + [f"failed: {f}" for f in r["failures"][:1]]:
            if n not in notes:
                notes.append(n)
    failed = sum(len(r["failures"]) for r in runs)
    return {
        "runs": len(runs),
        "wall": med(r["wall"] for r in runs),
        "cpu": med(r["cpu"] for r in runs),
        "calls": runs[0]["calls"],
        "rss_mib": max(rss) / 1024 if rss else None,
        "requests": med(r["requests"] for r in runs),
        "connections": med(r["connections"] for r in runs),
        "refreshes": med(r["refreshes"] for r in runs),
        "ssl_contexts": med(r.get("ssl_contexts", 0) for r in runs),
        "first_call_ms": _median_or_none(r.get("first_call_ms") for r in runs),
        "first_call_imports": runs[0].get("first_call_imports") or [[], 0],
        "later_call_ms": _median_or_none(r.get("later_call_ms") for r in runs),
        "ca_loads": med(r.get("ca_loads", 0) for r in runs),
        "failed_calls": failed,
        "notes": notes,
    }


def _num(x: float | None, digits: int = 2) -> str:
    if x is None:
        return "–"
    return f"{x:.{digits}f}"


def _int(x: float) -> str:
    return f"{x:g}"


def table_rows(items: list[Workload], summary: dict[str, dict[str, Any]]) -> list[list[str]]:
    rows = []
    for w in items:
        for lib in ("ours", "old", "curl"):
            s = summary.get(w.key, {}).get(lib)
            if s is None:
                continue
            other = summary[w.key].get("old")
            speed = ""
            if lib == "ours" and other and s["wall"] > 0 and not other["failed_calls"]:
                speed = f"{other['wall'] / s['wall']:.2f}x"
            ok = "; ".join(s["notes"]) if s["notes"] else "ok"
            rows.append(
                [
                    w.title if lib == "ours" else "",
                    LABEL[lib],
                    _int(s["requests"]),
                    w.minimum if lib == "ours" else "",
                    _int(s["connections"]),
                    f"{s['wall']:.3f}",
                    speed,
                    f"{s['cpu']:.3f}",
                    _num(1000 * s["cpu"] / max(1, s["calls"]), 1),
                    _num(s["rss_mib"], 1),
                    ok,
                ]
            )
    return rows


HEADERS = [
    "workload",
    "library",
    "requests",
    "protocol minimum",
    "TCP connections",
    "wall s (median)",
    "0.2.0 wall / ours",
    "CPU s (median)",
    "CPU ms per call",
    "peak RSS growth MiB",
    "correctness",
]


def text_table(rows: list[list[str]]) -> str:
    cells = [HEADERS, *rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(HEADERS))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in r] for r in rows]
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(r) + " |" for r in esc]
    return "\n".join(lines) + "\n"


def rst_table(rows: list[list[str]]) -> str:
    out = [".. list-table::", "   :header-rows: 1", ""]
    for row in [HEADERS, *rows]:
        out.append(f"   * - {row[0] or ' '}")
        out += [f"     - {c or ' '}" for c in row[1:]]
    return "\n".join(out) + "\n"


def target_checks(
    items: list[Workload], summary: dict[str, dict[str, Any]], keepalive: bool
) -> list[tuple[str, str, str]]:
    """(target, verdict 'met'/'missed'/'not measured', figures and why), from the numbers."""
    out: list[tuple[str, str, str]] = []
    titles = {w.key: w.title for w in items}

    def get(key: str, lib: str) -> dict[str, Any] | None:
        return summary.get(key, {}).get(lib)

    def conn_reason(s: dict[str, Any]) -> str:
        if keepalive:
            return (
                f"ours opened {_int(s['connections'])} connections for "
                f"{_int(s['requests'])} requests: the client does not keep one connection "
                "for the process"
            )
        return (
            "the sandbox closes every connection after one response (Connection: close), "
            f"so each of the {_int(s['requests'])} requests paid a new TCP connection "
            f"({_int(s['connections'])} opened)"
        )

    def ssl_reason(key: str) -> str:
        s = get(key, "ours")
        if not s or not s["ssl_contexts"]:
            return ""
        return (
            f"ours built {_int(s['ssl_contexts'])} SSL contexts and loaded a CA bundle "
            f"{_int(s['ca_loads'])} times for {s['calls']} calls ({titles[key]}), "
            "although the sandbox URL is plain http"
        )

    # CPU per call.
    worse = []
    compared = []
    for w in items:
        ours, old = get(w.key, "ours"), get(w.key, "old")
        # Not the async day: ours there runs an event loop against 0.2.0's sequential calls.
        if not ours or not old or old["failed_calls"] or w.key in ("upload_big", "mixed20async"):
            continue
        a, b = 1000 * ours["cpu"] / ours["calls"], 1000 * old["cpu"] / old["calls"]
        compared.append(w.key)
        if a > b:
            detail = ""
            if ours.get("first_call_ms") is not None and old.get("first_call_ms") is not None:
                detail = (
                    f" (first call in the process {ours['first_call_ms']:.1f} ms against "
                    f"{old['first_call_ms']:.1f} ms"
                )
                if ours.get("later_call_ms") is not None and old.get("later_call_ms"):
                    detail += (
                        f", later calls {ours['later_call_ms']:.1f} ms against "
                        f"{old['later_call_ms']:.1f} ms"
                    )
                packages, modules = ours.get("first_call_imports") or [[], 0]
                if modules:
                    detail += (
                        f"; ours' first call imported {modules} modules ({', '.join(packages[:6])})"
                    )
                detail += ")"
            worse.append(f"{titles[w.key]}: {a:.1f} ms against {b:.1f} ms{detail}")
    if compared:
        if worse:
            why = "ours used more CPU per call than 0.2.0 in: " + "; ".join(worse) + "."
            ssl_note = ssl_reason("mixed0") or ssl_reason("message")
            if ssl_note:
                why += " In the same runs " + ssl_note + "."
            out.append(("CPU per model call and per login at or below 0.2.0's", "missed", why))
        else:
            out.append(
                (
                    "CPU per model call and per login at or below 0.2.0's",
                    "met",
                    f"at or below in all {len(compared)} workloads compared",
                )
            )
    # RSS over the mixed day.
    s = get("mixed0", "ours")
    if s and s["rss_mib"] is not None:
        met = s["rss_mib"] < 2
        out.append(
            (
                "RSS growth over the mixed day under 2 MiB",
                "met" if met else "missed",
                f"ours grew {s['rss_mib']:.1f} MiB at its peak"
                + ("" if met or not ssl_reason("mixed0") else "; " + ssl_reason("mixed0")),
            )
        )
    # Speed of the mixed day.
    for key, need, name in (
        ("mixed0", 1.0, "Mixed day with no latency: not slower than 0.2.0"),
        ("mixed20", 1.2, "Mixed day with 20 ms injected latency: at least 1.2x faster"),
        ("mixedrtt", 2.0, "Mixed day over a 20 ms round-trip link: at least 2x faster"),
    ):
        ours, old = get(key, "ours"), get(key, "old")
        if key not in titles:
            continue
        if not ours or not old:
            out.append((name, "not measured", "this machine could not run it (see above)"))
            continue
        ratio = old["wall"] / ours["wall"]
        figures = (
            f"{ratio:.2f}x ({ours['wall']:.2f} s against {old['wall']:.2f} s; "
            f"{_int(ours['requests'])} against {_int(old['requests'])} requests)"
        )
        if ratio >= need:
            out.append((name, "met", figures))
            continue
        reasons = []
        per_call_ours = ours["cpu"] / ours["calls"]
        per_call_old = old["cpu"] / old["calls"]
        if per_call_ours > per_call_old:
            reasons.append(f"ours spent {ours['cpu']:.2f} s of CPU against {old['cpu']:.2f} s")
            if ssl_reason(key):
                reasons.append(ssl_reason(key))
        if ours["connections"] > 1:
            reasons.append(conn_reason(ours))
        if not reasons:
            reasons.append("neither CPU time nor connections were higher than 0.2.0's: noise")
        out.append((name, "missed", figures + ". " + "; ".join(reasons) + "."))
    # One connection per process.
    for key in ("mixed0", "mixed20", "mixedrtt"):
        s = get(key, "ours")
        if not s:
            continue
        name = f"One TCP connection per process ({titles[key]})"
        if s["connections"] <= 1:
            out.append((name, "met", f"{_int(s['connections'])} connection"))
        else:
            out.append((name, "missed", conn_reason(s)))
    # The 1 GiB upload.
    ours, ceiling = get("upload_big", "ours"), get("upload_big", "curl")
    if ours and ceiling:
        share = ceiling["wall"] / ours["wall"]
        rss = ours["rss_mib"] or 0.0
        met = share >= 0.8 and rss < 32 and not ours["failed_calls"]
        size_mib = next(w for w in items if w.key == "upload_big").upload_mib
        why = (
            f"{100 * share:.0f}% of curl's throughput ({size_mib / ours['wall']:.0f} MiB/s "
            f"against {size_mib / ceiling['wall']:.0f} MiB/s), {rss:.1f} MiB peak RSS growth"
        )
        if share > 1:
            why += "; ours outran curl here, so curl does not bound the rate on this machine"
        if not met and share < 0.8:
            why += (
                f"; ours used {ours['cpu']:.2f} s of CPU in {ours['wall']:.2f} s, curl "
                f"{ceiling['cpu']:.2f} s in {ceiling['wall']:.2f} s"
            )
        if ours["failed_calls"]:
            why += "; the upload failed"
        out.append(
            (
                "1 GiB upload at 80% of curl or more, under 32 MiB growth",
                "met" if met else "missed",
                why,
            )
        )
    # Round trips.
    extra = []
    for w in items:
        s = get(w.key, "ours")
        if not s or w.key.startswith("mixed") or w.key == "login":
            continue
        if w.key == "storm":
            if s["refreshes"] > 1:
                extra.append(f"{_int(s['refreshes'])} refreshes for one expiry")
            continue
        floor = int(w.minimum.split()[0])
        if s["requests"] > floor:
            extra.append(f"{titles[w.key]}: {_int(s['requests'])} against {floor}")
    out.append(
        (
            "Round trips at the protocol minimum",
            "missed" if extra else "met",
            "; ".join(extra)
            if extra
            else "upload 3, listing ceil(N/100), delete 1, message 1, one refresh per expiry",
        )
    )
    return out


def machine() -> dict[str, str]:
    model = "?"
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cores": str(os.cpu_count()),
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def plot(items: list[Workload], summary: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [w.key for w in items if "ours" in summary.get(w.key, {})]
    titles = [next(w.title for w in items if w.key == k) for k in keys]
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.45 * len(keys) + 1.6), sharey=True)
    y = range(len(keys))
    ax_min = 1e-3
    for ax, field, label in (
        (axes[0], "wall", "wall time, s (median; log scale)"),
        (axes[1], "requests", "requests seen by the sandbox (log scale)"),
    ):
        for i, (lib, color) in enumerate((("ours", "#1f77b4"), ("old", "#ff7f0e"))):
            stats = [summary[k].get(lib) for k in keys]
            # A refused call (0.2.0 over 128 MB) has no meaningful time: no bar, a label.
            vals = [0 if not st or st["failed_calls"] else st[field] for st in stats]
            for pos, st in zip(y, stats, strict=True):
                if st and st["failed_calls"]:
                    ax.text(
                        ax_min if field == "wall" else 0.5,
                        pos + (i - 0.5) * 0.38,
                        " failed/refused",
                        va="center",
                        fontsize=8,
                        color=color,
                    )
            ax.barh(
                [v + (i - 0.5) * 0.38 for v in y], vals, height=0.38, color=color, label=LABEL[lib]
            )
        ax.set_xscale("log")
        ax.set_xlim(left=ax_min if field == "wall" else 0.5)
        ax.set_xlabel(label)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(list(y), titles)
    axes[0].invert_yaxis()
    axes[1].legend(loc="upper center", bbox_to_anchor=(0.5, 1.08), ncol=2, frameon=False)
    fig.suptitle("django-open-humans (ours) against 0.2.0, same sandbox, same run", y=0.995)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_outputs(
    items: list[Workload],
    summary: dict[str, dict[str, Any]],
    runs: dict[str, Any],
    info: dict[str, Any],
    notices: list[str],
) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rows = table_rows(items, summary)
    checks = target_checks(items, summary, info["sandbox_keepalive"])
    m = info["machine"]
    head = (
        f"Measured {m['date']} on {m['cores']} cores ({m['cpu']}), Linux {m['kernel']}, "
        f"Python {m['python']}; ours {info['ours_version']} (Django {info['ours_django']}), "
        f"django-open-humans {info['old_version']} with open-humans-api "
        f"{info['ohapi_version']} (Django {info['old_django']}). "
        f"Command: ``{info['command']}``. Median of {info['reps']} runs per library "
        f"(fewer for the largest), libraries alternated. Sandbox keep-alive: "
        f"{'yes' if info['sandbox_keepalive'] else 'no (Connection: close)'}. "
        f"Connections counted by {info['conn_method']}. Round-trip link: {info['slow_link']}."
    )
    (OUT / "results.md").write_text(
        "# Benchmark: ours against django-open-humans 0.2.0\n\n"
        + head.replace("``", "`")
        + "\n\n"
        + markdown_table(rows)
        + "\n## Targets (issue 9)\n\n"
        + "\n".join(f"- **{v}**: {t}. {w}" for t, v, w in checks)
        + ("\n\n" + "\n".join(f"- {n}" for n in notices) if notices else "")
        + "\n"
    )
    inc = [head, ""]
    if notices:
        inc += [f"* {n}" for n in notices] + [""]
    inc += [rst_table(rows), "", "Against the targets of issue 9:", ""]
    for t, v, w in checks:
        inc.append(f"* **{v}** — {t}: {w}")
    (OUT / "results.inc").write_text("\n".join(inc) + "\n")
    (OUT / "results.json").write_text(
        json.dumps({"info": info, "notices": notices, "summary": summary, "runs": runs}, indent=1)
        + "\n"
    )
    try:
        plot(items, summary, OUT / "results.png")
    except ImportError:
        print("matplotlib missing (pip install -e '.[bench]'): no plot written")


# -- main -------------------------------------------------------------------------------------


@contextmanager
def netlab(wanted: bool) -> Iterator[tuple[NetLab | None, str]]:
    if not wanted:
        yield None, "--no-netns"
        return
    try:
        lab = NetLab.create()
    except NetLabUnavailable as err:
        yield None, str(err)
        return
    try:
        yield lab, ""
    finally:
        lab.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="runs per library (median)")
    parser.add_argument("--quick", action="store_true", help="smaller workloads, 1 run")
    parser.add_argument("--only", default="", help="comma-separated workload keys")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--no-netns", action="store_true", help="sandbox on 127.0.0.1, as without root"
    )
    parser.add_argument(
        "--render", action="store_true", help="rewrite the outputs from results.json only"
    )
    args = parser.parse_args(argv)
    reps = 1 if args.quick else args.reps
    items = workloads(args.quick, reps)
    if args.render:
        saved = json.loads((OUT / "results.json").read_text())
        write_outputs(items, saved["summary"], saved["runs"], saved["info"], saved["notices"])
        print(f"rewrote {OUT.relative_to(ROOT)} from results.json")
        return
    if args.only:
        items = [w for w in items if w.key in args.only.split(",")]
    started = time.monotonic()
    pythons: dict[str, Path | str] = {"ours": sys.executable, "old": old_python()}
    notices: list[str] = []
    with (
        netlab(not args.no_netns) as (lab, why_not),
        tempfile.TemporaryDirectory(prefix="ohbench-") as tmp,
    ):
        if lab is None:
            notices.append(
                f"No network namespace ({why_not}): the sandbox runs on 127.0.0.1, "
                "connections are counted by a TCP proxy in front of it, and the 20 ms "
                "round-trip link is skipped."
            )
            print("NOTICE:", notices[-1])
        bench = Bench(lab)
        try:
            runner = Runner(bench, pythons, Path(tmp))
            runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
            for w in items:
                if w.link == "slow" and bench.slow is None:
                    continue
                base = bench.slow if w.link == "slow" else bench.fast
                assert base is not None
                runs[w.key] = {lib: [] for lib in LIBS}
                for rep in range(w.reps):
                    order = LIBS if rep % 2 == 0 else LIBS[::-1]
                    for lib in order:
                        bench.control.reset()
                        if w.fault_ms:
                            bench.control.set_fault("/", latency_ms=w.fault_ms)
                        job = w.prepare(bench)
                        result = runner.run(lib, job, base)
                        bench.control.clear_faults()
                        result["notes"] = w.check(bench, job, result)
                        result.pop("tokens", None)
                        runs[w.key][lib].append(result)
                        print(
                            f"{w.key:13} {LABEL[lib]:6} run {rep + 1}: {result['wall']:8.3f} s "
                            f"wall {result['cpu']:7.3f} s cpu {result['requests']:6} req "
                            f"{result['connections']:5} conn "
                            f"{'; '.join(result['notes'] + result['failures'][:1]) or 'ok'}",
                            flush=True,
                        )
                if w.key == "upload_big":
                    runs[w.key]["curl"] = []
                    for _ in range(w.reps):
                        bench.control.reset()
                        runs[w.key]["curl"].append(curl_ceiling(bench, job["size"], Path(tmp)))
                        print(f"{w.key:13} curl   : {runs[w.key]['curl'][-1]['wall']:8.3f} s")
            info = {
                "machine": machine(),
                "command": "make bench",
                "reps": reps,
                "sandbox_keepalive": bench.keepalive,
                "conn_method": bench.method,
                "slow_link": lab.slow_kind if lab else "skipped",
                "ours_version": version_of(pythons["ours"], "django-open-humans"),
                "ours_django": version_of(pythons["ours"], "django"),
                "old_version": version_of(pythons["old"], "django-open-humans"),
                "ohapi_version": version_of(pythons["old"], "open-humans-api"),
                "old_django": version_of(pythons["old"], "django"),
                "seconds": round(time.monotonic() - started),
            }
        finally:
            bench.close()
    summary = {k: {lib: summarize(r) for lib, r in v.items() if r} for k, v in runs.items()}
    rows = table_rows(items, summary)
    print()
    print(text_table(rows))
    print()
    for t, v, w_ in target_checks(items, summary, info["sandbox_keepalive"]):
        print(f"[{v}] {t}: {w_}")
    print(f"\n{info['seconds']} s in all")
    if not args.no_write and not args.quick and not args.only:
        write_outputs(items, summary, runs, info, notices)
        print(f"wrote {OUT.relative_to(ROOT)}/results.md, results.inc, results.png")


if __name__ == "__main__":
    main(sys.argv[1:])
