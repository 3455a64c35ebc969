"""One benchmark run of one workload, through one library's documented API, in this process.

Started by ``bench_compare.py`` with the interpreter of the library's own virtualenv (ours:
the project's ``.venv``; django-open-humans 0.2.0: ``bench/.venv-old``), so it imports only
the standard library and Django. The job comes as JSON on stdin; one JSON line on stdout says
what happened: wall and CPU time of the workload alone, peak RSS growth, failed calls and
what the orchestrator needs to check correctness against the sandbox afterwards.

Run: ``python bench/worker.py --lib ours|old --db FILE --base URL --control URL < job.json``
(``--migrate`` only creates the SQLite schema in ``--db``).
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import sys
import threading
import time
import traceback
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from generated import GeneratedFile  # bench/, on sys.path when run as a script

META = {"description": "benchmark", "tags": ["bench"]}
SMALL = b"x" * 10 * 1024


def configure_django(lib: str, db: str, base: str, max_upload: int | None) -> None:
    """Settings as each library's docs ask for, on an SQLite file of this run's own."""
    import django
    from django.conf import settings

    extra: dict[str, Any] = {}
    if lib == "ours":
        # Documented setting; the 1 GiB workload lifts the 128 MiB default cap.
        extra["OPENHUMANS_MAX_UPLOAD_SIZE"] = max_upload
        extra["AUTHENTICATION_BACKENDS"] = [
            "openhumans.backends.OpenHumansBackend",
            "django.contrib.auth.backends.ModelBackend",
        ]
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-not-secret",
        ALLOWED_HOSTS=["testserver", "localhost"],
        USE_TZ=True,
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "openhumans",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
        ],
        ROOT_URLCONF=__name__,
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": db,
                # Writers take the lock at BEGIN: without it, concurrent callers that read and
                # then write in one transaction fail at once with "database is locked".
                "OPTIONS": {"timeout": 60, "transaction_mode": "IMMEDIATE"},
            }
        },
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        LOGIN_REDIRECT_URL="/",
        LOGOUT_REDIRECT_URL="/",
        OPENHUMANS_APP_BASE_URL="http://localhost:8000",
        OPENHUMANS_CLIENT_ID=os.environ["BENCH_CLIENT_ID"],
        OPENHUMANS_CLIENT_SECRET=os.environ["BENCH_CLIENT_SECRET"],
        OPENHUMANS_OH_BASE_URL=base,
        LOGGING_CONFIG=None,
        **extra,
    )
    django.setup()


def _urlpatterns() -> list[Any]:
    from django.urls import include, path

    return [path("openhumans/", include("openhumans.urls"))]


def __getattr__(name: str) -> Any:  # ROOT_URLCONF is this module; patterns built lazily
    if name == "urlpatterns":
        return _urlpatterns()
    raise AttributeError(name)


class Control:
    """Control-plane calls this worker must make itself (consent during logins).

    A fresh connection per call, so the orchestrator can subtract exactly ``opened`` from
    the TCP connections the sandbox accepted during the run.
    """

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.opened = 0

    def post(self, path: str, body: dict[str, Any]) -> Any:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        self.opened += 1
        try:
            conn.request(
                "POST", path, json.dumps(body), headers={"Content-Type": "application/json"}
            )
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        if response.status >= 400:
            raise RuntimeError(f"control plane {path}: {response.status} {data[:200]!r}")
        return json.loads(data)


class SSLCounter:
    """Counts SSL contexts built and CA bundles loaded in this process (instrumentation only)."""

    def __init__(self) -> None:
        import ssl

        self.contexts = self.ca_loads = 0
        new, load = ssl.SSLContext.__new__, ssl.SSLContext.load_verify_locations
        counter = self

        def counted_new(cls: Any, *args: Any, **kwargs: Any) -> Any:
            counter.contexts += 1
            return new(cls, *args, **kwargs)

        def counted_load(ctx: Any, *args: Any, **kwargs: Any) -> Any:
            counter.ca_loads += 1
            return load(ctx, *args, **kwargs)

        ssl.SSLContext.__new__ = counted_new  # type: ignore[method-assign,assignment]
        ssl.SSLContext.load_verify_locations = counted_load  # type: ignore[method-assign]


def rss_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak_rss() -> None:
    """Make VmHWM start from the current RSS (Linux: ``5`` to clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass


def add_members(members: list[dict[str, Any]]) -> None:
    """Give each member's sandbox tokens to the library's member model."""
    from openhumans.models import OpenHumansMember

    for m in members:
        member = OpenHumansMember.create(oh_id=m["pmid"], data=m["tokens"])
        member.save()  # 0.2.0's create() does not save; ours saved already (a no-op update)


def get_member(pmid: str) -> Any:
    from openhumans.models import OpenHumansMember

    return OpenHumansMember.objects.get(oh_id=pmid)


class Run:
    """Counts calls and failures of one workload."""

    def __init__(self) -> None:
        self.calls = 0
        self.failures: list[str] = []
        self.call_cpu_ms: list[float] = []
        self.first_call_imports: tuple[list[str], int] = ([], 0)
        self.lock = threading.Lock()

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.calls += 1
        # CPU of each call on the main thread (process CPU: threads would blur it).
        timed = threading.current_thread() is threading.main_thread()
        first = timed and not self.call_cpu_ms
        loaded = set(sys.modules) if first else set()
        c0 = time.process_time()
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - a benchmark records every failure
            with self.lock:
                self.failures.append(f"{type(err).__name__}: {str(err)[:160]}")
            return None
        finally:
            if timed:
                self.call_cpu_ms.append(round(1000 * (time.process_time() - c0), 3))
            if first:
                fresh = set(sys.modules) - loaded
                self.first_call_imports = sorted({m.split(".")[0] for m in fresh}), len(fresh)


# -- workloads: each returns (result dict, seconds of its own to leave out of the timing) --


def w_login(lib: str, job: dict[str, Any], run: Run, control: Control) -> dict[str, Any]:
    from django.test import Client

    timed_wall = timed_cpu = 0.0
    ok = 0
    for pmid in job["pmids"]:
        browser = Client()
        if lib == "ours":
            # Our login view stashes state and a PKCE verifier in the session (docs: login).
            start = browser.get("/openhumans/login/")
            query = dict(parse_qsl(urlsplit(start["Location"]).query))
        else:
            from openhumans.models import OpenHumansMember

            query = dict(parse_qsl(urlsplit(OpenHumansMember.get_auth_url()).query))
        consent = {
            k: query.get(k)
            for k in ("state", "code_challenge", "code_challenge_method", "redirect_uri", "scope")
        }
        location = control.post(f"/_sandbox/members/{pmid}/authorize/", consent)["location"]
        params = dict(parse_qsl(urlsplit(location).query))
        w0, c0 = time.perf_counter(), time.process_time()
        response = run.call(browser.get, "/openhumans/complete/", params)
        timed_wall += time.perf_counter() - w0
        timed_cpu += time.process_time() - c0
        if response is not None and "_auth_user_id" in browser.session:
            ok += 1
        elif response is not None:
            run.failures.append(f"complete answered {response.status_code}, nobody logged in")
    return {"logged_in": ok, "timed_wall": timed_wall, "timed_cpu": timed_cpu}


def w_list(lib: str, job: dict[str, Any], run: Run, control: Control) -> dict[str, Any]:
    files = run.call(get_member(job["pmid"]).list_files) or []
    ids = [f["id"] for f in files]
    return {"listed": len(ids), "distinct": len(set(ids))}


def w_upload_small(lib: str, job: dict[str, Any], run: Run, control: Control) -> dict[str, Any]:
    member = get_member(job["pmid"])
    for i in range(job["count"]):
        run.call(member.upload, io.BytesIO(SMALL), f"small-{i}.bin", META)
    return {}


def w_upload_big(lib: str, job: dict[str, Any], run: Run, control: Control) -> dict[str, Any]:
    member = get_member(job["pmid"])
    stream = io.BufferedReader(GeneratedFile(job["size"]), buffer_size=64 * 1024)
    run.call(member.upload, stream, "big.bin", META)
    return {}


def w_delete(lib: str, job: dict[str, Any], run: Run, control: Control) -> dict[str, Any]:
    member = get_member(job["pmid"])
    for file_id in job["file_ids"]:
        run.call(member.delete_single_file, file_id=file_id)
    return {}


def w_message(lib: str, job: dict[str, Any], run: Run, control: Control) -> dict[str, Any]:
    member = get_member(job["pmid"])
    for i in range(job["count"]):
        run.call(member.message, f"bench {i}", "Hello from the benchmark.")
    return {}


def w_refresh_storm(lib: str, job: dict[str, Any], run: Run, control: Control) -> dict[str, Any]:
    from django.db import connection

    callers = job["callers"]
    barrier = threading.Barrier(callers)
    tokens: list[str | None] = [None] * callers

    def caller(i: int) -> None:
        try:
            member = get_member(job["pmid"])  # each caller its own request, its own row read
            barrier.wait()
            tokens[i] = run.call(member.get_access_token)
        finally:
            connection.close()

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"tokens": tokens}


def w_mixed(lib: str, job: dict[str, Any], run: Run, control: Control) -> dict[str, Any]:
    for pmid in job["pmids"]:
        member = get_member(pmid)
        run.call(member.get_access_token)
        files = run.call(member.list_files) or []
        run.call(member.upload, io.BytesIO(SMALL), "day-1.bin", META)
        run.call(member.upload, io.BytesIO(SMALL), "day-2.bin", META)
        old = [f for f in files if f["basename"].startswith("old")]
        if old:
            run.call(member.delete_single_file, file_id=old[0]["id"])
        else:
            run.failures.append("no old file listed to delete")
        run.call(member.message, "Your day", "Thanks for sharing.")
    return {}


def w_mixed_async(lib: str, job: dict[str, Any], run: Run, control: Control) -> dict[str, Any]:
    """The mixed day through the members' async methods, 10 members in flight (ours).

    0.2.0 has no async API: for it this is its sequential mixed day, the comparison asked for.
    """
    if lib != "ours":
        return w_mixed(lib, job, run, control)
    import asyncio

    from asgiref.sync import sync_to_async

    async def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
        with run.lock:
            run.calls += 1
        try:
            return await fn(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - a benchmark records every failure
            with run.lock:
                run.failures.append(f"{type(err).__name__}: {str(err)[:160]}")
            return None

    async def day(pmid: str, gate: asyncio.Semaphore) -> None:
        async with gate:
            member = await sync_to_async(get_member)(pmid)
            await call(member.aget_access_token)
            files = await call(member.alist_files) or []
            await call(member.aupload, io.BytesIO(SMALL), "day-1.bin", META)
            await call(member.aupload, io.BytesIO(SMALL), "day-2.bin", META)
            old = [f for f in files if f["basename"].startswith("old")]
            if old:
                await call(member.adelete_single_file, file_id=old[0]["id"])
            else:
                run.failures.append("no old file listed to delete")
            await call(member.amessage, "Your day", "Thanks for sharing.")

    async def whole_day() -> None:
        gate = asyncio.Semaphore(10)
        await asyncio.gather(*(day(pmid, gate) for pmid in job["pmids"]))

    asyncio.run(whole_day())
    return {}


WORKLOADS = {
    "login": w_login,
    "list": w_list,
    "upload_small": w_upload_small,
    "upload_big": w_upload_big,
    "delete": w_delete,
    "message": w_message,
    "refresh_storm": w_refresh_storm,
    "mixed": w_mixed,
    "mixed_async": w_mixed_async,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lib", choices=("ours", "old"), required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--base", required=True)
    parser.add_argument("--control", required=True)
    parser.add_argument("--migrate", action="store_true")
    args = parser.parse_args()
    job = {} if args.migrate else json.load(sys.stdin)
    configure_django(args.lib, args.db, args.base, job.get("max_upload"))
    if args.migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        print(json.dumps({"migrated": True}))
        return
    add_members(job.get("members", []))
    run, control = Run(), Control(args.control)
    workload = WORKLOADS[job["workload"]]
    ssl_count = SSLCounter()
    reset_peak_rss()
    rss0 = rss_kib("VmRSS")
    w0, c0 = time.perf_counter(), time.process_time()
    try:
        extra = workload(args.lib, job, run, control)
    except Exception:  # noqa: BLE001 - reported, not hidden
        extra = {}
        run.failures.append(traceback.format_exc(limit=3)[-300:])
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    peak = rss_kib("VmHWM")
    if "timed_wall" in extra:  # only the part the workload is about (e.g. complete)
        wall, cpu = extra.pop("timed_wall"), extra.pop("timed_cpu")
    result = {
        "wall": wall,
        "cpu": cpu,
        "rss_growth_kib": max(0, peak - rss0),
        "calls": run.calls,
        "call_cpu_ms": run.call_cpu_ms,
        "first_call_imports": run.first_call_imports,
        "failures": run.failures,
        "control_connections": control.opened,
        "ssl_contexts": ssl_count.contexts,
        "ca_loads": ssl_count.ca_loads,
        **extra,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
