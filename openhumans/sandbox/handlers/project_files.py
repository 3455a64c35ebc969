"""File uploads and deletion in the project API (spec §2.6–§2.8)."""

from __future__ import annotations

import hashlib
import os
import re
from typing import Any

from werkzeug.wrappers import Request, Response

from ..api_auth import Caller
from ..api_endpoint import WRITE, ApiCall, api_endpoint
from ..form_fields import (
    FieldError,
    checkbox,
    clean_char,
    clean_datatypes,
    clean_int,
    clean_metadata,
)
from ..membership import caller_member
from ..pagination import host_url
from ..responses import api_response
from ..state import UPLOAD_URL_LIFETIME, Store
from . import storage

__all__ = ["delete", "upload", "upload_complete", "upload_direct"]


# --- §2.6 direct upload ---


def _file_fields(
    store: Store, caller: Caller, body: Any, name_field: str, name: Any
) -> tuple[dict[str, Any], Any, list[int] | None]:
    """Validate the upload form fields in the form's order; return (errors, metadata, types)."""
    errors: dict[str, Any] = {}
    metadata: Any = None
    datatypes: list[int] | None = None
    if caller.is_master:
        try:
            clean_char(body.get("project_member_id"))
        except FieldError as err:
            errors["project_member_id"] = [str(err)]
    try:
        metadata = clean_metadata(body.get("metadata"))
    except FieldError as err:
        errors["metadata"] = [str(err)]
    try:
        datatypes = clean_datatypes(body.get("datatypes"), store)
    except FieldError as err:
        errors["datatypes"] = [str(err)]
    if name is not None:
        errors[name_field] = [name]
    return errors, metadata, datatypes


def _default_datatypes(store: Store, datatypes: list[int] | None) -> list[int]:
    if datatypes is not None:
        return datatypes
    # Spec §4.4: left out -> all registered datatypes with auto_add_datatypes, else none.
    return (
        list(store.project["registered_datatypes"]) if store.project["auto_add_datatypes"] else []
    )


@api_endpoint("Project File Direct Upload", methods=WRITE)
def upload_direct(store: Store, request: Request, call: ApiCall) -> Response:
    caller, body = call.who, call.body
    filename: str | None = None
    filename_error = None
    try:
        filename = clean_char(body.get("filename"))
    except FieldError as err:
        filename_error = str(err)
    with store.lock:
        errors, metadata, datatypes = _file_fields(store, caller, body, "filename", filename_error)
        if errors:
            return api_response(errors, 400, allow=call.allow)
        member = caller_member(store, caller, body, allow=call.allow)
        record = store.new_file(
            member["project_member_id"],
            filename or "",
            metadata,
            _default_datatypes(store, datatypes),
        )
        store.changed()
        url = storage.presign(
            store,
            host_url(request),
            "PUT",
            record["key"],
            int(store.now()) + UPLOAD_URL_LIFETIME,
        )
    return api_response({"id": record["id"], "url": url}, 201, allow=call.allow)


@api_endpoint("Project File Direct Upload Completion", methods=WRITE)
def upload_complete(store: Store, request: Request, call: ApiCall) -> Response:
    caller, body = call.who, call.body
    with store.lock:
        caller_member(store, caller, body, allow=call.allow)
        try:
            file_id = clean_int(body.get("file_id"))
        except FieldError as err:
            return api_response({"file_id": [str(err)]}, 400, allow=call.allow)
        # Spec §6 choices: a nonexistent id is a 400 (the server says 500); ownership is
        # not checked, as on the server.
        record = store.files.get(file_id) if file_id else None
        if record is None:
            return api_response({"detail": "file does not exist"}, 400, allow=call.allow)
        path = store.blob_path(record)
        if not path.exists():
            record["completed"] = False
            store.changed()
            return api_response({"detail": "file not present"}, 400, allow=call.allow)
        record["completed"] = True
        record["size"] = path.stat().st_size
        store.changed()
        return api_response({"status": "ok", "size": record["size"]}, allow=call.allow)


# --- §2.7 multipart upload ---


def _storage_name(name: str) -> str:
    """Django's storage name cleaning: basename, spaces to ``_``, only ``[-\\w.]`` kept."""
    base = os.path.basename(name.replace("\\", "/")).strip().replace(" ", "_")
    cleaned = re.sub(r"(?u)[^-\w.]", "", base)
    return cleaned if cleaned not in ("", ".", "..") else "file"


@api_endpoint("Project File Upload", methods=WRITE)
def upload(store: Store, request: Request, call: ApiCall) -> Response:
    caller, body = call.who, call.body
    data_file = body.files.get("data_file")
    file_error = None
    size = 0
    if data_file is None or not data_file.filename:
        file_error = "This field is required."
    else:
        stream = data_file.stream
        stream.seek(0, os.SEEK_END)
        size = stream.tell()
        stream.seek(0)
        if size == 0:
            file_error = "The submitted file is empty."
    with store.lock:
        errors, metadata, datatypes = _file_fields(store, caller, body, "data_file", file_error)
        if errors:
            return api_response(errors, 400, allow=call.allow)
        member = caller_member(store, caller, body, allow=call.allow)
        assert data_file is not None
        record = store.new_file(
            member["project_member_id"],
            _storage_name(data_file.filename or ""),
            metadata,
            _default_datatypes(store, datatypes),
        )
    # Listed only once the bytes are on disk.
    digest = hashlib.md5(usedforsecurity=False)
    path = store.blob_path(record)
    with open(path, "wb") as out:
        while chunk := data_file.stream.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
    with store.lock:
        record.update(size=size, md5=digest.hexdigest(), completed=True)
        store.changed()
    return api_response({"id": record["id"]}, 201, allow=call.allow)


# --- §2.8 delete ---


@api_endpoint("Project File Delete", methods=WRITE)
def delete(store: Store, request: Request, call: ApiCall) -> Response:
    caller, body = call.who, call.body
    errors: dict[str, list[str]] = {}
    if caller.is_master:
        try:
            clean_char(body.get("project_member_id"))
        except FieldError as err:
            errors["project_member_id"] = [str(err)]
    file_id = None
    try:
        file_id = clean_int(body.get("file_id"))
    except FieldError as err:
        errors["file_id"] = [str(err)]
    basename = clean_char(body.get("file_basename"), required=False)
    all_files = checkbox(body, "all_files")
    if errors:
        return api_response(errors, 400, allow=call.allow)
    with store.lock:
        member = caller_member(store, caller, body, allow=call.allow)
        given = sum(bool(x) for x in (file_id, basename, all_files))
        if given == 0:
            return api_response(
                {"missing_field": "one of file_id, file_basename, or all_files is required"},
                400,
                allow=call.allow,
            )
        if given > 1:
            return api_response(
                {"too_many": "one of file_id, file_basename, or all_files is required"},
                400,
                allow=call.allow,
            )
        pmid = member["project_member_id"]
        candidates = sorted(
            (
                f
                for f in store.files_by_member.get(pmid, {}).values()
                if f["completed"] and f["source"] == store.id_label
            ),
            key=lambda f: f["id"],
        )
        if file_id:
            doomed = [f for f in candidates if f["id"] == file_id]
        elif basename:
            doomed = [f for f in candidates if f["basename"] == basename]
        else:
            doomed = candidates
        ids = [f["id"] for f in doomed]
        for file_id_ in ids:
            store.delete_file(file_id_)
        store.changed()
    return api_response({"ids": ids}, allow=call.allow)
