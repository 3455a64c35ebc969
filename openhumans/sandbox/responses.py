"""The sandbox's response builders: DRF-style JSON, control-plane JSON, HTML pages, errors."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from typing import Any

from werkzeug.http import http_date
from werkzeug.wrappers import Response

NEVER_CACHE = "max-age=0, no-cache, no-store, must-revalidate, private"
ALLOW_GET = "GET, HEAD, OPTIONS"
ALLOW_POST = "POST, OPTIONS"
# Spec §6: what DRF, DOT's middleware and django-cors-headers add to an API view's answer.
API_VARY = "Accept, Authorization, Cookie, origin"
# Spec §6: Django's SecurityMiddleware and XFrameOptionsMiddleware, on every response.
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
)


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
    response.headers["Vary"] = API_VARY
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
        '<link rel=icon href="/favicon.ico" type="image/svg+xml">'
        f"<title>{esc(title)}</title><style>{PAGE_CSS}</style></head><body>"
        '<header><a href="/">Open Humans sandbox</a><small>local stand-in</small></header>'
        f"<main>{body}</main></body></html>"
    )
    response = Response(text, status=status, content_type="text/html; charset=utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


def add_security_headers(response: Response) -> Response:
    """Spec §6: the headers Django's middleware puts on every answer, unless already set."""
    for name, value in SECURITY_HEADERS:
        response.headers.setdefault(name, value)
    return response


def patch_vary(response: Response, name: str) -> None:
    """Django's ``patch_vary_headers`` for one header name (kept once, case-insensitively)."""
    present = [v.strip() for v in response.headers.get("Vary", "").split(",") if v.strip()]
    if name.lower() not in {v.lower() for v in present}:
        response.headers["Vary"] = ", ".join([*present, name])


def method_not_allowed(allow: str) -> Response:
    """Django's bare 405 (``require_http_methods``/``View.http_method_not_allowed``)."""
    response = Response(b"", status=405)
    response.headers["Allow"] = allow
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


# A small "OH" badge in the header's blue; served as /favicon.ico so no page logs a 404.
FAVICON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    '<rect width="32" height="32" rx="6" fill="#1f4e79"/>'
    '<text x="16" y="21" font-family="system-ui,sans-serif" font-size="14" font-weight="700" '
    'fill="#fff" text-anchor="middle">OH</text></svg>'
)
