"""Request bodies parsed as DRF's default parsers would (JSON, urlencoded, multipart)."""

from __future__ import annotations

import json
from typing import Any

from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request

from .responses import ALLOW_POST, HTTPError, api_response, plain_json


class Body:
    """A parsed API request body with Django ``QueryDict.get`` semantics (last value wins)."""

    def __init__(self, values: dict[str, Any], files: dict[str, FileStorage], is_json: bool):
        self.values = values
        self.files = files
        self.is_json = is_json

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def __contains__(self, key: str) -> bool:
        return key in self.values


def _last_values(multi: MultiDict[str, Any]) -> dict[str, Any]:
    # spec §A.4: QueryDict.get() returns only the last value of a repeated key.
    return {key: values[-1] for key, values in multi.lists() if values}


def parse_api_body(request: Request, allow: str = ALLOW_POST) -> Body:
    """Parse a POST body like DRF's default parsers (JSON, urlencoded, multipart).

    Raises :class:`HTTPError` with DRF's 400 ``JSON parse error`` or 415 answers.
    """
    mimetype = request.mimetype
    if mimetype == "application/json":
        raw = read_raw_body(request, allow)
        if not raw:
            # DRF: an empty body parses to nothing at all.
            return Body({}, {}, True)
        try:
            data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError) as err:
            raise HTTPError(
                api_response({"detail": f"JSON parse error - {err}"}, 400, allow=allow)
            ) from err
        if not isinstance(data, dict):
            raise HTTPError(
                api_response(
                    {
                        "non_field_errors": [
                            f"Invalid data. Expected a dictionary, but got {type(data).__name__}."
                        ]
                    },
                    400,
                    allow=allow,
                )
            )
        return Body(data, {}, True)
    if mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            form, files = request.form, request.files
        except (ValueError, OSError) as err:
            raise HTTPError(
                api_response({"detail": f"Multipart form parse error - {err}"}, 400, allow=allow)
            ) from err
        return Body(_last_values(form), _last_values(files), False)
    if not mimetype or not request.content_length:
        return Body({}, {}, False)
    raise HTTPError(
        api_response(
            {"detail": f'Unsupported media type "{request.content_type}" in request.'},
            415,
            allow=allow,
        )
    )


def read_raw_body(request: Request, allow: str = ALLOW_POST) -> bytes:
    """The whole body; broken chunked framing or a short body is a 400 (as gunicorn)."""
    try:
        return request.get_data(cache=True)
    except (OSError, ValueError, HTTPException) as err:
        raise HTTPError(
            api_response({"detail": f"Malformed request body: {err}"}, 400, allow=allow)
        ) from err


def _reject_constant(name: str) -> Any:
    raise ValueError("Out of range float values are not JSON compliant")


def read_json_object(request: Request) -> dict[str, Any]:
    """Read a control-plane JSON object body (empty body = ``{}``); 400 JSON on bad input."""
    try:
        raw = request.get_data(cache=True)
    except (OSError, ValueError, HTTPException) as err:
        raise HTTPError(plain_json({"error": f"malformed request body: {err}"}, 400)) from err
    if not raw.strip():
        if request.form:
            return _last_values(request.form)
        return {}
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return _last_values(request.form)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise HTTPError(plain_json({"error": f"invalid JSON body: {err}"}, 400)) from err
    if not isinstance(data, dict):
        raise HTTPError(plain_json({"error": "the JSON body must be an object"}, 400))
    return data
