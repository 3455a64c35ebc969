"""Form-field cleaning with the Django form semantics the real server has (spec §2, §4)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from .state import DATATYPES, Store

REQUIRED = "This field is required."
WHOLE_NUMBER = "Enter a whole number."
_EMPTY: tuple[Any, ...] = (None, "", [], (), {})
_DECIMAL_TAIL = re.compile(r"\.0*\s*$")  # Django IntegerField.re_decimal


class FieldError(Exception):
    """A Django form field error: the message goes into a one-item list."""


def clean_char(value: Any, *, required: bool = True) -> str | None:
    """Django ``CharField``: ``str()`` of the value, stripped; empty means missing."""
    if value in _EMPTY:
        if required:
            raise FieldError(REQUIRED)
        return None
    text = str(value).strip()
    if not text:
        if required:
            raise FieldError(REQUIRED)
        return None
    return text


def clean_int(value: Any) -> int | None:
    """Django ``IntegerField`` (not required): ``None`` when empty."""
    if value in _EMPTY:
        return None
    try:
        return int(_DECIMAL_TAIL.sub("", str(value)))
    except (ValueError, TypeError):
        raise FieldError(WHOLE_NUMBER) from None


def checkbox(values: Any, name: str) -> bool:
    """Django ``CheckboxInput`` + ``BooleanField``: true/false strings, else truthiness."""
    if name not in values:
        return False
    value = values.get(name)
    if isinstance(value, str):
        lowered = value.lower()
        if lowered == "true":
            return True
        if lowered == "false":
            return False
    return bool(value)


def _parse_date(value: Any) -> bool:
    """Roughly ``arrow.get`` on an ISO 8601 string (or a numeric timestamp)."""
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int | float):
        return True
    if not isinstance(value, str):
        return False
    text = value.strip()
    if re.fullmatch(r"\d{4}(-\d{2})?", text):
        return True
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        return False
    return True


def clean_metadata(value: Any) -> Any:
    """Spec §4.3: a JSON string with ``description`` and ``tags``; raises FieldError."""
    text = clean_char(value)
    try:
        metadata = json.loads(text or "")
    except ValueError:
        raise FieldError("could not parse the uploaded metadata") from None
    if not isinstance(metadata, dict):
        # The server would test `in` on a non-dict (or crash); report the first rule.
        raise FieldError('"description" is a required field of the metadata')
    if "description" not in metadata:
        raise FieldError('"description" is a required field of the metadata')
    if not isinstance(metadata["description"], str):
        raise FieldError('"description" must be a string')
    if "tags" not in metadata:
        raise FieldError('"tags" is a required field of the metadata')
    if not isinstance(metadata["tags"], list):
        raise FieldError('"tags" must be an array of strings')
    for key in ("creation_date", "start_date", "end_date"):
        if key in metadata and not _parse_date(metadata[key]):
            raise FieldError("Dates must be in ISO 8601 format")
    if "md5" in metadata:
        md5 = metadata["md5"]
        if not isinstance(md5, str) or not re.match(r"[a-z0-9]{32}", md5, re.IGNORECASE):
            raise FieldError("Invalid MD5 specified")
    return metadata


def clean_datatypes(value: Any, store: Store) -> list[int] | None:
    """Spec §4.4: a JSON list of IDs or names; ``None`` when left out. Raises FieldError."""
    raw = clean_char(value, required=False)
    if raw is None:
        return None
    try:
        items = json.loads(raw)
    except ValueError:
        items = None
    if not isinstance(items, list):
        raise FieldError(f"Could not parse the uploaded datatypes from: '{raw}'")
    try:
        ids = [int(item) for item in items]
    except (ValueError, TypeError):
        by_name = {name.lower(): dt_id for dt_id, name in DATATYPES.items()}
        missing = [i for i in items if not isinstance(i, str) or i.lower() not in by_name]
        if missing:
            raise FieldError(
                f"The following datatypes don't match items in our database: {missing!r}"
            ) from None
        ids = [by_name[i.lower()] for i in items]
    else:
        missing_ids = [i for i in ids if i not in DATATYPES]
        if missing_ids:
            raise FieldError(
                f"The following datatypes don't match items in our database: {missing_ids!r}"
            )
    project = store.project
    if not project.get("any_datatypes"):
        # Spec §6: the message repeats the values as the client sent them ([3],
        # ['genetic DATA']), not the datatypes' canonical names.
        registered = project["registered_datatypes"]
        unregistered = [item for item, i in zip(items, ids, strict=True) if i not in registered]
        if unregistered:
            raise FieldError(
                f"The following datatypes aren't registered for this project: {unregistered!r}"
            )
    return list(dict.fromkeys(ids))


def split_member_ids(value: Any) -> list[str]:
    """Spec §2.4: a JSON list, or one comma/space/newline-separated string."""
    if value is None:
        return []
    if isinstance(value, list):
        items = [str(item) for item in value]
    else:
        items = re.split(r"[\s,]+", str(value))
    return [item for item in items if item]


def check_member_ids(ids: list[str], store: Store) -> None:
    """Spec §2.4: 8 or 16 characters, and active members of the project; raises FieldError."""
    if any(len(i) not in (8, 16) for i in ids):
        raise FieldError("Project member IDs are always 8 digits long.")
    valid = {i for i in ids if store.is_active(store.members.get(i))}
    if len(valid) != len(ids):
        # Like the server's count comparison: a repeated ID fails too.
        invalid = list(dict.fromkeys(i for i in ids if i not in valid))
        raise FieldError("Invalid project member ID(s): " + ", ".join(invalid))
