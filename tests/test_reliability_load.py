"""Issue 10's long runs: the test project under gunicorn, 50 clients at once, and faults.

Run with ``pytest -m reliability`` (SQLite), and with DATABASE_URL set (PostgreSQL). Each
test prints its figures; docs/reliability.rst records a run.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from openhumans.models import OpenHumansMember

from .gunicorn_harness import Gunicorn
from .helpers import REDIRECT_URI

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

CLIENTS = 50
SECRET = "reliability-webhook-secret"


def report(name: str, **figures: Any) -> None:
    vendor = connection.vendor
    print(
        f"\n[reliability] {name} on {vendor}: " + ", ".join(f"{k}={v}" for k, v in figures.items())
    )


def at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run every call in its own thread, released together; return results (or exceptions)."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except Exception as err:  # counted as an error by the caller
            results[i] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def site_settings(sandbox: Any, **extra: Any) -> dict[str, Any]:
    return {
        "OPENHUMANS_OH_BASE_URL": sandbox.base_url,
        "OPENHUMANS_CLIENT_ID": sandbox.client_id,
        "OPENHUMANS_CLIENT_SECRET": sandbox.client_secret,
        "OPENHUMANS_APP_BASE_URL": "http://testserver",
        "OPENHUMANS_WEBHOOK_SECRET": SECRET,
        **extra,
    }


def prepare_login(site: str, sandbox: Any, pmid: str) -> tuple[httpx.Client, str]:
    """Start a login in a fresh browser-like client; return it and its complete URL."""
    # No kept-alive connections: gunicorn closes idle ones after 2 s, and a request sent on
    # one it just closed fails on the client's side (a browser would silently resend it).
    browser = httpx.Client(
        base_url=site, timeout=60, limits=httpx.Limits(max_keepalive_connections=0)
    )
    started = browser.get("/openhumans/login/")
    assert started.status_code == 302, started.text
    query = {k: v[0] for k, v in parse_qs(urlsplit(started.headers["location"]).query).items()}
    redirect = sandbox.authorize(
        pmid,
        state=query["state"],
        code_challenge=query.get("code_challenge"),
        code_challenge_method=query.get("code_challenge_method"),
        redirect_uri=REDIRECT_URI,
    )
    parts = urlsplit(redirect)
    return browser, f"{parts.path}?{parts.query}"


def signed_notice(pmid: str, erasure: bool) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {
            "project_member_id": pmid,
            "erasure_requested": erasure,
            "timestamp": datetime.now(UTC).isoformat(),
        }
    ).encode()
    signature = "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    headers = {"Content-Type": "application/json", "X-OpenHumans-Webhooks-Signature": signature}
    return body, headers


def test_50_concurrent_login_completions_under_gunicorn(sandbox, tmp_path):
    # Bug: on SQLite 30 of 50 simultaneous first logins were 500s ("database is locked").
    # Five browsers per member: concurrent first logins of one member make one user.
    pmids = [sandbox.create_member(username=f"load{i}")["project_member_id"] for i in range(10)]
    with Gunicorn(tmp_path / "gunicorn.log", **site_settings(sandbox)) as site:
        logins = [prepare_login(site.url, sandbox, pmids[i % 10]) for i in range(CLIENTS)]
        started = time.monotonic()
        results = at_once([lambda b=b, u=u: b.get(u) for b, u in logins])
        took = time.monotonic() - started
        for browser, _ in logins:
            browser.close()
        timeouts = site.worker_timeouts()
    statuses = Counter(
        r.status_code if isinstance(r, httpx.Response) else type(r).__name__ for r in results
    )
    ok = sum(
        1
        for r in results
        if isinstance(r, httpx.Response) and r.status_code == 302 and r.headers["location"] == "/"
    )
    users = get_user_model().objects.count()
    report(
        "concurrent login completions",
        clients=CLIENTS,
        ok=ok,
        statuses=dict(statuses),
        users=users,
        members=OpenHumansMember.objects.count(),
        seconds=round(took, 2),
    )
    assert ok == CLIENTS, statuses
    assert users == 10 and OpenHumansMember.objects.count() == 10  # 0 duplicate users
    assert timeouts == 0


@pytest.mark.parametrize("erasure", [True, False], ids=["erasure", "deauth"])
def test_50_concurrent_signed_webhooks_under_gunicorn(sandbox, tmp_path, erasure):
    # Bug: on SQLite 18 of 50 simultaneous signed erasure webhooks were 500s and never
    # applied; Open Humans' only retry is unsigned, so refused: the erasure was lost.
    members = []
    for i in range(CLIENTS):
        pmid = sandbox.create_member(username=f"hook{i}")["project_member_id"]
        members.append(OpenHumansMember.create(pmid, sandbox.issue_tokens(pmid)).oh_id)
    # Every member also gets a second, duplicate delivery at the same moment.
    deliveries = [signed_notice(pmid, erasure) for pmid in members + members[:10]]
    with Gunicorn(tmp_path / "gunicorn.log", **site_settings(sandbox)) as site:
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=site.url, timeout=60, limits=limits) as http:
            started = time.monotonic()
            results = at_once(
                [
                    lambda b=b, h=h: http.post("/openhumans/deauth", content=b, headers=h)
                    for b, h in deliveries
                ]
            )
            took = time.monotonic() - started
        timeouts = site.worker_timeouts()
    statuses = Counter(
        r.status_code if isinstance(r, httpx.Response) else type(r).__name__ for r in results
    )
    remaining = OpenHumansMember.objects.filter(oh_deauth=False).count()
    report(
        f"concurrent signed {'erasure' if erasure else 'deauth'} webhooks",
        deliveries=len(deliveries),
        statuses=dict(statuses),
        not_applied=remaining,
        seconds=round(took, 2),
    )
    assert statuses == Counter({200: len(deliveries)})
    if erasure:
        assert not OpenHumansMember.objects.exists()
    else:
        assert remaining == 0 and OpenHumansMember.objects.count() == CLIENTS
    assert timeouts == 0
