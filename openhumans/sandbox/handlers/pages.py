"""The human pages: the project overview, each member's files, inbox and webhooks, the icon."""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Request, Response

from ..membership import leave_project
from ..responses import FAVICON_SVG, esc, html_page, not_found
from ..serializers import file_json
from ..state import Store, api_datetime
from .authorization import redirect


def _table(headers: list[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f"<p class=muted>{esc(empty)}</p>"
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _list(items: list[str], empty: str) -> str:
    if not items:
        return f"<p class=muted>{esc(empty)}</p>"
    return "<ul class=items>" + "".join(items) + "</ul>"


def _when(value: str | None) -> str:
    """A readable UTC time for people: ``2026-11-27 11:14:36 UTC``."""
    if not value:
        return ""
    text = value.replace("T", " ").replace("Z", "")
    return text.split(".", 1)[0].split("+", 1)[0] + " UTC"


def favicon(store: Store, request: Request) -> Response:
    """``/favicon.ico``: browsers ask for it on every page; an SVG answers."""
    response = Response(FAVICON_SVG, content_type="image/svg+xml")
    response.headers["Cache-Control"] = "max-age=86400"
    return response


def index(store: Store, request: Request) -> Response:
    base = request.host_url.rstrip("/")
    with store.lock:
        config, project = store.config, store.project
        members = sorted(store.members.values(), key=lambda m: m["created"])
        rows = [
            [
                f'<a href="/members/{esc(m["project_member_id"])}/">'
                f"{esc(m['project_member_id'])}</a>",
                esc(m["username"]),
                "active" if store.is_active(m) else ("left" if m["revoked"] else "not joined"),
                esc(store.count_files(m["project_member_id"])),
            ]
            for m in members
        ]
        authorize = (
            f"{base}/direct-sharing/projects/oauth2/authorize/?client_id="
            f"{config['client_id']}&response_type=code"
        )
        webhook = config["webhook_url"] or "(none)"
        body = f"""
<section><h1>{esc(project["name"])} <span class=muted>({esc(store.id_label)})</span></h1>
<p>{esc(project["short_description"])}</p>
<table>
<tr><th>Client ID</th><td><code>{esc(config["client_id"])}</code></td></tr>
<tr><th>Redirect URI</th><td><code>{esc(config["redirect_uri"])}</code></td></tr>
<tr><th>Deauth webhook</th><td><code>{esc(webhook)}</code>
{" (signed)" if config["webhook_secret"] else ""}</td></tr>
<tr><th>Access token lifetime</th><td>{esc(config["access_token_lifetime"])} s</td></tr>
</table>
<p><a href="{esc(authorize)}">Start an authorization</a> (as the project would send you).</p>
</section>
<section><h2>Members</h2>
{_table(["Member ID", "Username", "Status", "Files"], rows, "No members yet.")}
</section>
<section><h2>For programs</h2><p class=muted>JSON control plane:
<a href="/_sandbox/config/">/_sandbox/config/</a>,
<a href="/_sandbox/members/">/_sandbox/members/</a>,
<a href="/_sandbox/inbox/">/_sandbox/inbox/</a>,
<a href="/_sandbox/webhooks/">/_sandbox/webhooks/</a>,
<a href="/_sandbox/requests/">/_sandbox/requests/</a>.</p></section>"""
    return html_page(f"{project['name']} - Open Humans sandbox", body)


def member_page(store: Store, request: Request, pmid: str) -> Response:
    base = request.host_url.rstrip("/")
    with store.lock:
        member = store.members.get(pmid)
        if member is None:
            return not_found()
        store.prune_download_keys()
        files = [file_json(store, f, base) for f in store.member_files(member)]
        inbox = [m for m in store.inbox if m["project_member_id"] == pmid]
        webhooks = [w for w in store.webhooks if w.get("project_member_id") == pmid]
        active = store.is_active(member)
        status = "active" if active else ("left the project" if member["revoked"] else "not joined")
        project_name = store.project["name"]
    file_items = [
        f'<li><a href="{esc(f["download_url"])}"><strong>{esc(f["basename"])}</strong></a>'
        f"<div class=muted>#{esc(f['id'])} · {esc(f['source'])} · {esc(_when(f['created']))}"
        f"</div><pre>{esc(json.dumps(f['metadata'], ensure_ascii=False))}</pre></li>"
        for f in files
    ]
    message_items = [
        f"<li><strong>{esc(m['subject'])}</strong>"
        f"<div class=muted>{esc(_when(api_datetime(m['sent_at'])))}</div>"
        f"<pre>{esc(m['message'])}</pre></li>"
        for m in reversed(inbox)
    ]
    webhook_items = [_webhook_item(w) for w in reversed(webhooks)]
    if active:
        leave = f"""
<section><h2>Leave project</h2>
<form method=post action="/members/{esc(pmid)}/leave/">
<label><input type=checkbox name=erasure_requested value=on> Request erasure of my data
from the project</label>
<button type=submit class=danger>Leave project</button></form>
<p class=muted>Revokes the authorization, deletes the member's tokens and sends the
deauthorization webhook.</p></section>"""
    else:
        leave = ""
    since = _when(api_datetime(member["created"]))
    body = f"""
<p><a href="/">&larr; Back to {esc(project_name)}</a></p>
<section><h1>{esc(member["username"])} <span class=muted>{esc(pmid)}</span></h1>
<p>Status: <strong>{esc(status)}</strong>. Member since {esc(since)}.</p></section>
<section><h2>Files ({len(files)})</h2>{_list(file_items, "No files.")}</section>
<section><h2>Inbox ({len(inbox)})</h2>{_list(message_items, "No messages.")}</section>
<section><h2>Webhook deliveries ({len(webhooks)})</h2>
{_list(webhook_items, "No webhook deliveries.")}</section>
{leave}"""
    return html_page(f"{member['username']} - Open Humans sandbox", body)


def _webhook_item(w: dict[str, Any]) -> str:
    if w.get("error"):
        outcome = f"<span class=error>{esc(w['error'])}</span>"
    else:
        ok = w.get("status") is not None and 200 <= int(w["status"]) < 300
        outcome = f"<span class={'ok' if ok else 'error'}>HTTP {esc(w.get('status'))}</span>"
    signed = "signed" if "X-OpenHumans-Webhooks-Signature" in w.get("headers", {}) else "unsigned"
    return (
        f"<li>{outcome} <span class=muted>attempt {esc(w.get('attempt'))}, {signed}, "
        f"{esc(_when(w.get('sent_at')))}</span><div><code>{esc(w['url'])}</code></div>"
        f"<pre>{esc(w['body'])}</pre></li>"
    )


def leave(store: Store, request: Request, pmid: str) -> Response:
    """The "Leave project" form (spec §3.1 case 1)."""
    with store.lock:
        member = store.members.get(pmid)
        if member is None:
            return not_found()
        active = store.is_active(member)
    if active:
        erasure = bool(request.form.get("erasure_requested"))
        leave_project(store, pmid, erasure)
    return redirect(f"/members/{pmid}/")
