"""The JSON control plane under ``/_sandbox/`` used by tests, benchmarks and the CLI.

The route table (routes.py) answers a method a handler does not take with a JSON 405.
About 400 lines, one concern: every ``/_sandbox/`` endpoint, with its input checks.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from werkzeug.wrappers import Request, Response

from ..membership import leave_project
from ..request_bodies import read_json_object
from ..responses import HTTPError, plain_json
from ..serializers import file_json
from ..state import ALL_SCOPES, MASTER_TOKEN_LIFETIME, Store, api_datetime, generate_token
from .authorization import control_authorize

MAX_ADD_FILES = 100_000
DEFAULT_METADATA = {"description": "Sandbox file", "tags": ["sandbox"]}
CONFIG_KEYS = {
    "client_id": str,
    "client_secret": str,
    "redirect_uri": str,
    "webhook_url": str,
    "webhook_secret": str,
    "access_token_lifetime": int,
}
PROJECT_KEYS = {
    "name": str,
    "slug": str,
    "active": bool,
    "approved": bool,
    "contact_email": str,
    "info_url": str,
    "leader": str,
    "organization": str,
    "short_description": str,
    "long_description": str,
    "returned_data_description": str,
    "request_username_access": bool,
    "requested_sources": list,
    "registered_datatypes": list,
    "any_datatypes": bool,
    "auto_add_datatypes": bool,
}
FAULT_KEYS = {"endpoint", "latency_ms", "error_rate", "status", "drop_connection", "times"}


def bad(message: str, status: int = 400) -> HTTPError:
    return HTTPError(plain_json({"error": message}, status))


def member_json(store: Store, member: dict[str, Any]) -> dict[str, Any]:
    return {
        "project_member_id": member["project_member_id"],
        "username": member["username"],
        "created": api_datetime(member["created"]),
        "active": store.is_active(member),
        "revoked": member["revoked"],
        "erasure_requested": api_datetime(member["erasure_requested"]),
        "sources_shared": list(member["sources_shared"]),
        "file_count": store.count_files(member["project_member_id"]),
    }


def config_json(store: Store) -> dict[str, Any]:
    config = store.config
    expires = config.get("master_token_expires")
    return {
        "client_id": config["client_id"],
        "client_secret": config["client_secret"],
        "redirect_uri": config["redirect_uri"],
        "webhook_url": config["webhook_url"] or None,
        "webhook_secret": config["webhook_secret"] or None,
        "access_token_lifetime": config["access_token_lifetime"],
        "master_token": config["master_token"],
        "master_token_expires_at": None if expires is None else float(expires),
        "master_token_expired": store.master_token_expired(),
        "project": dict(store.project, id_label=store.id_label),
        "data_dir": str(store.data_dir),
        "state_file": str(store.state_file) if store.state_file else None,
    }


def _typed(name: str, value: Any, kind: type) -> Any:
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad(f"{name} must be an integer")
        return value
    if kind is str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise bad(f"{name} must be a string or null")
        return value
    if not isinstance(value, kind):
        raise bad(f"{name} must be a {kind.__name__}")
    return value


def _member(store: Store, pmid: str) -> dict[str, Any]:
    member = store.members.get(pmid)
    if member is None:
        raise bad(f"no member with project_member_id {pmid}", 404)
    return member


# --- handlers ---


def members(store: Store, request: Request) -> Response:
    if request.method == "GET":
        with store.lock:
            ordered = sorted(store.members.values(), key=lambda m: m["created"])
            return plain_json([member_json(store, m) for m in ordered])
    data = read_json_object(request)
    unknown = set(data) - {"username", "project_member_id", "authorized"}
    if unknown:
        raise bad(f"unknown keys: {sorted(unknown)}")
    with store.lock:
        username = data.get("username")
        if username is None:
            username = f"member{len(store.members) + 1}"
            while store.member_by_username(username):
                username += "x"
        if not isinstance(username, str) or not username.strip():
            raise bad("username must be a non-empty string")
        if store.member_by_username(username) is not None:
            raise bad(f"username {username!r} is taken", 409)
        pmid = data.get("project_member_id")
        if pmid is not None:
            if not isinstance(pmid, str) or len(pmid) not in (8, 16) or not pmid.isdigit():
                raise bad("project_member_id must be 8 or 16 digits")
            if pmid in store.members:
                raise bad(f"project_member_id {pmid} exists", 409)
        authorized = data.get("authorized", True)
        if not isinstance(authorized, bool):
            raise bad("authorized must be a boolean")
        member = store.create_member(username, pmid=pmid, authorized=authorized)
        return plain_json(member_json(store, member), 201)


def member(store: Store, request: Request, pmid: str) -> Response:
    with store.lock:
        return plain_json(member_json(store, _member(store, pmid)))


def tokens(store: Store, request: Request, pmid: str) -> Response:
    data = read_json_object(request)
    with store.lock:
        _member(store, pmid)
        scope = data.get("scope")
        scopes = list(ALL_SCOPES) if scope is None else str(scope).split()
        lifetime = data.get("expires_in")
        if lifetime is not None:
            lifetime = _typed("expires_in", lifetime, int)
        # Tokens come from consent: the member is (re)authorized, as on the real server.
        store.authorize_member(pmid)
        return plain_json(store.issue_tokens(pmid, scopes, lifetime))


def authorize(store: Store, request: Request, pmid: str) -> Response:
    status, body = control_authorize(store, pmid, read_json_object(request))
    return plain_json(body, status)


def _content(data: dict[str, Any]) -> bytes:
    if "content_base64" in data:
        try:
            return base64.b64decode(str(data["content_base64"]), validate=True)
        except (ValueError, binascii.Error) as err:
            raise bad(f"content_base64: {err}") from None
    content = data.get("content", "sandbox file content\n")
    if not isinstance(content, str):
        raise bad("content must be a string (or use content_base64)")
    return content.encode("utf-8")


def files(store: Store, request: Request, pmid: str) -> Response:
    if request.method == "GET":
        with store.lock:
            member = _member(store, pmid)
            base = request.host_url.rstrip("/")
            return plain_json([file_json(store, f, base) for f in store.member_files(member)])
    data = read_json_object(request)
    unknown = set(data) - {
        "count",
        "basename",
        "content",
        "content_base64",
        "metadata",
        "datatypes",
        "source",
    }
    if unknown:
        raise bad(f"unknown keys: {sorted(unknown)}")
    count = _typed("count", data.get("count", 1), int)
    if not 0 <= count <= MAX_ADD_FILES:
        raise bad(f"count must be between 0 and {MAX_ADD_FILES}")
    basename = _typed("basename", data.get("basename", "data.csv"), str) or "data.csv"
    metadata = data.get("metadata")
    if metadata is None:
        metadata = dict(DEFAULT_METADATA)
    datatypes = data.get("datatypes") or []
    if not isinstance(datatypes, list) or not all(isinstance(i, int) for i in datatypes):
        raise bad("datatypes must be a list of datatype ids")
    source = data.get("source")
    if source is not None and (not isinstance(source, str) or not source):
        raise bad("source must be a non-empty id_label string")
    content = _content(data)
    blob = "shared-" + hashlib.sha256(content).hexdigest()
    md5 = hashlib.md5(content, usedforsecurity=False).hexdigest()
    path = store.data_dir / blob
    if not path.exists():
        path.write_bytes(content)
    with store.lock:
        _member(store, pmid)
        ids = []
        for i in range(1, count + 1):
            name = basename.replace("{i}", str(i))
            record = store.new_file(
                pmid,
                name,
                metadata,
                list(datatypes),
                source=source,
                completed=True,
                blob=blob,
                size=len(content),
                md5=md5,
            )
            ids.append(record["id"])
        store.changed()
    return plain_json({"ids": ids}, 201)


def leave(store: Store, request: Request, pmid: str) -> Response:
    data = read_json_object(request)
    erasure = data.get("erasure_requested", False)
    if isinstance(erasure, str):
        erasure = erasure.lower() in ("1", "true", "on", "yes")
    with store.lock:
        if not store.is_authorized(_member(store, pmid)):
            # Only a member in the project can leave it: nothing happens, no webhook.
            return plain_json({"webhooks": []})
    deliveries = leave_project(store, pmid, bool(erasure))
    return plain_json({"webhooks": deliveries})


def expire_tokens(store: Store, request: Request, pmid: str) -> Response:
    with store.lock:
        _member(store, pmid)
        return plain_json({"expired": store.expire_tokens(pmid)})


def _log_list(store: Store, request: Request, name: str) -> Response:
    if request.method == "DELETE":
        with store.lock:
            getattr(store, name).clear()
            store.changed()
        return plain_json({"cleared": True})
    pmid = request.args.get("project_member_id")
    with store.lock:
        rows = [r for r in getattr(store, name) if pmid is None or r["project_member_id"] == pmid]
        return plain_json(rows)


def inbox(store: Store, request: Request) -> Response:
    return _log_list(store, request, "inbox")


def webhooks(store: Store, request: Request) -> Response:
    return _log_list(store, request, "webhooks")


def requests_log(store: Store, request: Request) -> Response:
    """The request log, per-path counts and TCP connections accepted since the last clear."""
    if request.method == "DELETE":
        with store.lock:
            store.requests.clear()
            store.request_counts.clear()
            store.connections_opened = 0
        return plain_json({"cleared": True})
    with store.lock:
        return plain_json(
            {
                "requests": list(store.requests),
                "counts": dict(store.request_counts),
                "connections_opened": store.connections_opened,
            }
        )


def connections(store: Store, request: Request) -> Response:
    """TCP connections accepted since the last clear (control-plane ones included), and
    how many are open now: with keep-alive a client reuses one."""
    with store.lock:
        return plain_json({"opened": store.connections_opened, "open": store.connections_open})


def faults(store: Store, request: Request) -> Response:
    if request.method == "GET":
        with store.lock:
            return plain_json(list(store.faults))
    if request.method == "DELETE":
        with store.lock:
            store.faults.clear()
        return plain_json({"cleared": True})
    data = read_json_object(request)
    unknown = set(data) - FAULT_KEYS
    if unknown:
        raise bad(f"unknown keys: {sorted(unknown)}")
    endpoint = data.get("endpoint", "/")
    if not isinstance(endpoint, str) or not endpoint.startswith("/"):
        raise bad("endpoint must be a path prefix starting with /")
    latency = data.get("latency_ms", 0)
    rate = data.get("error_rate", 0.0)
    status = data.get("status", 503)
    times = data.get("times")
    if isinstance(latency, bool) or not isinstance(latency, int | float) or latency < 0:
        raise bad("latency_ms must be a number >= 0")
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
        raise bad("error_rate must be a number between 0 and 1")
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise bad("status must be an HTTP status code")
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
        raise bad("times must be a positive integer or null")
    drop = data.get("drop_connection", False)
    if not isinstance(drop, bool):
        raise bad("drop_connection must be a boolean")
    fault = {
        "endpoint": endpoint,
        "latency_ms": latency,
        "error_rate": float(rate),
        "status": status,
        "drop_connection": drop,
        "times": times,
    }
    with store.lock:
        store.faults.append(fault)
    return plain_json(fault, 201)


def clock(store: Store, request: Request) -> Response:
    """``GET`` the sandbox clock; ``POST {"advance": seconds}`` moves it (never back)."""
    if request.method == "POST":
        data = read_json_object(request)
        unknown = set(data) - {"advance"}
        if unknown:
            raise bad(f"unknown keys: {sorted(unknown)}")
        advance = data.get("advance", 0)
        if isinstance(advance, bool) or not isinstance(advance, int | float) or advance < 0:
            raise bad("advance must be a number of seconds >= 0")
        with store.lock:
            store.clock_offset += float(advance)
    with store.lock:
        return plain_json(
            {"now": api_datetime(store.now_iso()), "offset_seconds": store.clock_offset}
        )


def reset(store: Store, request: Request) -> Response:
    store.reset()
    return plain_json({"reset": True})


def config(store: Store, request: Request) -> Response:
    if request.method == "GET":
        with store.lock:
            return plain_json(config_json(store))
    data = read_json_object(request)
    extra = {"project", "master_token_expires_in", "regenerate_master_token"}
    unknown = set(data) - set(CONFIG_KEYS) - extra
    if unknown:
        raise bad(f"unknown keys: {sorted(unknown)}")
    with store.lock:
        updates = {k: _typed(k, data[k], kind) for k, kind in CONFIG_KEYS.items() if k in data}
        project = data.get("project") or {}
        if not isinstance(project, dict):
            raise bad("project must be an object")
        unknown = set(project) - set(PROJECT_KEYS)
        if unknown:
            raise bad(f"unknown project keys: {sorted(unknown)}")
        project_updates = {k: _typed(k, v, PROJECT_KEYS[k]) for k, v in project.items()}
        if "access_token_lifetime" in updates and updates["access_token_lifetime"] < 0:
            raise bad("access_token_lifetime must be >= 0")
        store.config.update(updates)
        store.project.update(project_updates)
        if data.get("regenerate_master_token"):
            store.config["master_token"] = generate_token(64)
            store.config["master_token_expires"] = store.now() + MASTER_TOKEN_LIFETIME
        if "master_token_expires_in" in data:
            expires_in = data["master_token_expires_in"]
            if expires_in is None:
                store.config["master_token_expires"] = None
            else:
                if isinstance(expires_in, bool) or not isinstance(expires_in, int | float):
                    raise bad("master_token_expires_in must be a number of seconds or null")
                store.config["master_token_expires"] = store.now() + expires_in
        store.changed()
        return plain_json(config_json(store))
