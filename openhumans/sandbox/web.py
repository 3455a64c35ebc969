"""HTTP helpers shared by the sandbox views: JSON and HTML responses, request bodies."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from typing import Any

from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.exceptions import HTTPException
from werkzeug.http import http_date
from werkzeug.wrappers import Request, Response

NEVER_CACHE = "max-age=0, no-cache, no-store, must-revalidate, private"
ALLOW_GET = "GET, HEAD, OPTIONS"
ALLOW_POST = "POST, OPTIONS"


class HTTPError(Exception):
    """Raised inside a view to answer with ``response`` at once."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def compact_json(data: Any) -> bytes:
    """Spec §A.4: DRF's compact rendering, UTF-8, non-ASCII kept as is."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def never_cache(response: Response) -> Response:
    """Django's ``never_cache`` headers (spec §A.4), with ``private`` as at Django 3.2."""
    response.headers["Expires"] = http_date()
    response.headers["Cache-Control"] = NEVER_CACHE
    return response


def api_response(
    data: Any,
    status: int = 200,
    *,
    allow: str = ALLOW_GET,
    headers: Iterable[tuple[str, str]] = (),
) -> Response:
    """A project API answer: compact JSON plus the headers of a DRF view under never_cache."""
    response = Response(compact_json(data), status=status, content_type="application/json")
    never_cache(response)
    response.headers["Allow"] = allow
    response.headers["Vary"] = "Accept, Cookie"
    response.headers["X-Frame-Options"] = "DENY"
    for name, value in headers:
        response.headers[name] = value
    return response


def plain_json(data: Any, status: int = 200) -> Response:
    """A control-plane answer (readable JSON, no caching)."""
    body = json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8")
    response = Response(body, status=status, content_type="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def esc(value: Any) -> str:
    """HTML-escape anything, quotes included."""
    return html.escape("" if value is None else str(value), quote=True)


PAGE_CSS = """
*{box-sizing:border-box}
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2733;
background:#f5f7fa}
header{background:#1f4e79;color:#fff;padding:.75rem 1rem}
header a{color:#fff;text-decoration:none;font-weight:600}
header small{opacity:.8;margin-left:.5rem}
main{max-width:52rem;margin:0 auto;padding:1rem}
section{background:#fff;border:1px solid #dde3ea;border-radius:8px;padding:1rem;margin:0 0 1rem}
h1{font-size:1.4rem;margin:.2rem 0 .8rem}h2{font-size:1.1rem;margin:0 0 .6rem}
table{width:100%;border-collapse:collapse;font-size:.95rem}
th,td{text-align:left;padding:.35rem .4rem;border-bottom:1px solid #eef1f4;vertical-align:top;
overflow-wrap:anywhere}
code,pre{font:.85rem/1.4 ui-monospace,Menlo,Consolas,monospace;background:#f0f3f6;
border-radius:4px;padding:.1rem .3rem}
pre{padding:.5rem;white-space:pre-wrap;word-break:break-all;margin:.3rem 0}
label{display:block;margin:.4rem 0}
input[type=text]{font:inherit;padding:.4rem;border:1px solid #b8c2cc;border-radius:4px;
width:100%;max-width:20rem}
button{font:inherit;padding:.5rem 1rem;border-radius:6px;border:1px solid #1f4e79;
background:#1f4e79;color:#fff;cursor:pointer;margin:.3rem .4rem .3rem 0}
button.secondary{background:#fff;color:#1f4e79}
button.danger{background:#a4262c;border-color:#a4262c}
.muted{color:#5f6b76;font-size:.9rem}.error{color:#a4262c;font-weight:600}
.ok{color:#1e7b34}
ul.items{list-style:none;margin:0;padding:0}
ul.items li{padding:.5rem 0;border-bottom:1px solid #eef1f4;overflow-wrap:anywhere}
ul.items li:last-child{border-bottom:0}
@media (max-width:40rem){main{padding:.5rem}section{padding:.75rem}}
"""


def html_page(title: str, body: str, status: int = 200) -> Response:
    """A sandbox HTML page; ``body`` must already be escaped."""
    text = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{esc(title)}</title><style>{PAGE_CSS}</style></head><body>"
        '<header><a href="/">Open Humans sandbox</a><small>local stand-in</small></header>'
        f"<main>{body}</main></body></html>"
    )
    response = Response(text, status=status, content_type="text/html; charset=utf-8")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def html_error(status: int, text: str) -> Response:
    """Django's bare error pages (e.g. ``<h1>Not Found</h1>``)."""
    return Response(
        f"<!doctype html><html lang=en><head><title>{esc(text)}</title></head>"
        f"<body><h1>{esc(text)}</h1></body></html>",
        status=status,
        content_type="text/html; charset=utf-8",
    )


def not_found() -> Response:
    return Response(
        "<!doctype html><html lang=en><head><title>Not Found</title></head><body>"
        "<h1>Not Found</h1><p>The requested resource was not found on this server.</p>"
        "</body></html>",
        status=404,
        content_type="text/html; charset=utf-8",
    )


def server_error() -> Response:
    """Django's production 500 page (DEBUG off)."""
    return Response(
        '\n<!doctype html>\n<html lang="en">\n<head>\n  <title>Server Error (500)</title>\n'
        "</head>\n<body>\n  <h1>Server Error (500)</h1><p></p>\n</body>\n</html>\n",
        status=500,
        content_type="text/html",
    )


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
