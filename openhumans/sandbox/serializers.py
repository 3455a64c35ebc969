"""JSON shapes the project API returns for files and members (spec §2.2, §2.3)."""

from __future__ import annotations

from typing import Any

from .state import Store, api_datetime


def source_project_id(source: str) -> str:
    """``direct-sharing-91`` -> ``91``."""
    return source.rsplit("-", 1)[-1]


def jsonb_order(value: Any) -> Any:
    """Spec §6: metadata comes back in PostgreSQL ``jsonb`` key order (shorter keys first,
    then bytewise), at every depth; lists keep their order."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode("utf-8")), k.encode("utf-8")))
        return {k: jsonb_order(value[k]) for k in keys}
    if isinstance(value, list):
        return [jsonb_order(item) for item in value]
    return value


def file_json(store: Store, record: dict[str, Any], base: str) -> dict[str, Any]:
    """``DataFileSerializer`` (spec §2.2); every call mints a new 1-hour download key."""
    key = store.new_download_key(record["id"])
    return {
        "id": record["id"],
        "basename": record["basename"],
        "created": api_datetime(record["created"]),
        "datatypes": [f"{base}/api/public/datatype/{i}/" for i in record["datatypes"]],
        "download_url": f"{base}/data-management/datafile-download/{record['id']}/?key={key}",
        "metadata": jsonb_order(record["metadata"]),
        "source": record["source"],
        "source_project": f"{base}/api/public/project/{source_project_id(record['source'])}/",
    }


def shows_username(store: Store, member: dict[str, Any]) -> bool:
    """Spec §6: decided per member when they consented, not by today's project setting."""
    shared = member.get("username_shared")
    if shared is None:  # a state file from before the sandbox recorded it
        return bool(store.project["request_username_access"])
    return bool(shared)
