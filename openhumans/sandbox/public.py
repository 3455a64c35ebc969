"""The few public API resources the project API links to (spec §2.10), unauthenticated."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from .api import paginate
from .state import DATATYPES, Store
from .web import ALLOW_GET, api_response

if TYPE_CHECKING:
    from .app import SandboxApp


def _datatype(store: Store, dt_id: int) -> dict[str, Any]:
    registered = dt_id in store.project["registered_datatypes"]
    return {
        "id": dt_id,
        "name": DATATYPES[dt_id],
        "parent": None,
        "children": [],
        "description": f"Sandbox datatype: {DATATYPES[dt_id]}.",
        "details": "",
        "uploadable": True,
        "source_projects": [f"/api/public/project/{store.project['id']}/"] if registered else [],
    }


def _get_only(request: Request) -> Response | None:
    if request.method in ("GET", "HEAD"):
        return None
    if request.method == "OPTIONS":
        return api_response({"name": "Public Data", "description": ""})
    return api_response({"detail": f'Method "{request.method}" not allowed.'}, 405)


def datatypes(app: SandboxApp, request: Request) -> Response:
    refused = _get_only(request)
    if refused is not None:
        return refused
    ids = sorted(DATATYPES)
    limit, offset, next_url, previous_url = paginate(request, len(ids))
    with app.store.lock:
        results = [_datatype(app.store, i) for i in ids[offset : offset + limit]]
    return api_response(
        {"count": len(ids), "next": next_url, "previous": previous_url, "results": results},
        allow=ALLOW_GET,
    )


def datatype(app: SandboxApp, request: Request, dt_id: str) -> Response:
    refused = _get_only(request)
    if refused is not None:
        return refused
    if not dt_id.isdigit() or int(dt_id) not in DATATYPES:
        return api_response({"detail": "Not found."}, 404)
    with app.store.lock:
        return api_response(_datatype(app.store, int(dt_id)))


def project(app: SandboxApp, request: Request, project_id: str) -> Response:
    """Spec §2.10: approved projects only, so an unapproved project's link is a 404."""
    refused = _get_only(request)
    if refused is not None:
        return refused
    store = app.store
    with store.lock:
        p = store.project
        if project_id != str(p["id"]) or not p["approved"]:
            return api_response({"detail": "Not found."}, 404)
        return api_response(
            {
                "id": p["id"],
                "id_label": store.id_label,
                "name": p["name"],
                "slug": p["slug"],
                "type": "oauth2",
                "active": p["active"],
                "approved": p["approved"],
                "leader": p["leader"],
                "organization": p["organization"],
                "contact_email": p["contact_email"],
                "info_url": p["info_url"],
                "short_description": p["short_description"],
                "long_description": p["long_description"],
                "returned_data_description": p["returned_data_description"],
                "registered_datatypes": [
                    f"/api/public/datatype/{i}/" for i in p["registered_datatypes"]
                ],
            }
        )
