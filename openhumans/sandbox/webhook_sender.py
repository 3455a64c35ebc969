"""The deauthorization webhook, sent the way Open Humans sends it (spec §3)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

logger = logging.getLogger("openhumans.sandbox")

# The real server waits forever (spec §3.2); the sandbox must not hang a test run.
WEBHOOK_TIMEOUT = 30.0
# Spec §6: the plain requests default, as the real sender has no User-Agent of its own.
USER_AGENT = "python-requests/2.32.3"


def is_valid_webhook_url(url: str | None) -> bool:
    """Spec §3.1: only an http(s) URL with a host gets the webhook."""
    if not url:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def payload_bytes(pmid: str, erasure_requested: str | None, now: str | None = None) -> bytes:
    """Spec §3.2: ``json.dumps`` with default separators, keys in the server's order.

    Spec §3.4 choice: without erasure the timestamp is the time of sending.
    """
    sent = datetime.fromisoformat(now) if now else datetime.now(UTC)
    stamp = datetime.fromisoformat(erasure_requested) if erasure_requested else sent
    payload = {
        "project_member_id": pmid,
        "erasure_requested": erasure_requested is not None,
        "timestamp": stamp.astimezone(UTC).isoformat(),
    }
    return json.dumps(payload).encode("utf-8")


def signature(secret: str, body: bytes) -> str:
    """Spec §3.3: ``sha1=`` + lowercase hex HMAC-SHA1 of the exact body, secret as UTF-8."""
    return "sha1=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha1).hexdigest()


def _post(client: httpx.Client, url: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    record: dict[str, Any] = {
        "url": url,
        "headers": dict(headers),
        "body": body.decode("utf-8"),
        "status": None,
        "error": None,
        "sent_at": datetime.now(UTC).isoformat(),
    }
    try:
        response = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as err:
        record["error"] = f"{type(err).__name__}: {err}"
        logger.warning("sandbox: webhook to %s failed: %s", url, record["error"])
    else:
        record["status"] = response.status_code
    return record


def deliver(
    url: str, secret: str | None, pmid: str, erasure_requested: str | None, now: str | None = None
) -> list[dict[str, Any]]:
    """POST the webhook (and the legacy unsigned retry after a non-2xx); return the log rows.

    ``now`` is the sandbox clock's current time (ISO), for the timestamp without erasure.
    """
    body = payload_bytes(pmid, erasure_requested, now)
    headers = {
        "User-Agent": USER_AGENT,
        "Accept-Encoding": "gzip, deflate",
        "Accept": "*/*",
        "Content-Type": "application/json",
    }
    if secret:
        headers["X-OpenHumans-Webhooks-Signature"] = signature(secret, body)
    deliveries = []
    with httpx.Client(timeout=WEBHOOK_TIMEOUT, follow_redirects=False) as client:
        first = _post(client, url, body, headers)
        first.update(project_member_id=pmid, attempt=1)
        deliveries.append(first)
        status = first["status"]
        if status is not None and not 200 <= status < 300:
            # Spec §3.3: requests' json= of the *string* payload, without the signature.
            retry_headers = {
                k: v for k, v in headers.items() if k != "X-OpenHumans-Webhooks-Signature"
            }
            second = _post(client, url, json.dumps(body.decode("utf-8")).encode(), retry_headers)
            second.update(project_member_id=pmid, attempt=2)
            deliveries.append(second)
    return deliveries
