"""The few public API resources the project API links to (spec §2.10), unauthenticated."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request, Response

from ..api_endpoint import READ, ApiCall, api_endpoint
from ..pagination import paginate
from ..responses import api_response
from ..serializers import source_project_id
from ..state import DATATYPES, Store


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


@api_endpoint("Data Type List", methods=READ, auth=None)
def datatypes(store: Store, request: Request, call: ApiCall) -> Response:
    ids = sorted(DATATYPES)
    limit, offset, next_url, previous_url = paginate(request, len(ids))
    with store.lock:
        results = [_datatype(store, i) for i in ids[offset : offset + limit]]
    return api_response(
        {"count": len(ids), "next": next_url, "previous": previous_url, "results": results}
    )


@api_endpoint("Data Type Detail", methods=READ, auth=None)
def datatype(store: Store, request: Request, call: ApiCall, dt_id: str) -> Response:
    if not dt_id.isdigit() or int(dt_id) not in DATATYPES:
        return api_response({"detail": "Not found."}, 404)
    with store.lock:
        return api_response(_datatype(store, int(dt_id)))


@api_endpoint("Project Detail", methods=READ, auth=None)
def project(store: Store, request: Request, call: ApiCall, project_id: str) -> Response:
    """Spec §2.10/§6: every approved project: this one (when approved) and the sources its
    members share, so a shared file's ``source_project`` link resolves."""
    with store.lock:
        p = store.project
        if project_id == str(p["id"]):
            if not p["approved"]:
                return api_response({"detail": "Not found."}, 404)
            return api_response(_project_json(store.id_label, p))
        sources = {source_project_id(s): s for s in _known_sources(store)}
        if project_id not in sources:
            return api_response({"detail": "Not found."}, 404)
        return api_response(_other_project_json(int(project_id), sources[project_id]))


def _known_sources(store: Store) -> set[str]:
    """Other projects' id_labels the sandbox has seen: requested, granted, or on a file."""
    sources = set(store.project["requested_sources"])
    for member in store.members.values():
        sources.update(member.get("sources_shared", []))
    sources.update(f["source"] for f in store.files.values())
    sources.discard(store.id_label)
    return {s for s in sources if source_project_id(s).isdigit()}


def _project_json(label: str, p: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": p["id"],
        "id_label": label,
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
        "registered_datatypes": [f"/api/public/datatype/{i}/" for i in p["registered_datatypes"]],
    }


def _other_project_json(project_id: int, label: str) -> dict[str, Any]:
    """A stand-in for another approved project, known to the sandbox only by its id_label."""
    return _project_json(
        label,
        {
            "id": project_id,
            "name": f"Shared source {project_id}",
            "slug": f"shared-source-{project_id}",
            "active": True,
            "approved": True,
            "leader": "",
            "organization": "",
            "contact_email": "",
            "info_url": "",
            "short_description": "Another Open Humans project whose data members share.",
            "long_description": "",
            "returned_data_description": "",
            "registered_datatypes": [],
        },
    )
