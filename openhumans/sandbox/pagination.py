"""DRF's ``LimitOffsetPagination`` as the project API uses it (spec §2.2, §2.3)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode

from werkzeug.wrappers import Request

DEFAULT_LIMIT = 100  # spec §2.2: the paginator's default; no maximum


def host_url(request: Request) -> str:
    """``scheme://host[:port]`` of the request, as links are built from it."""
    return request.host_url.rstrip("/")


def _positive_int(text: str, strict: bool) -> int:
    value = int(text)
    if value < 0 or (strict and value == 0):
        raise ValueError(text)
    return value


def _with_query(url: str, query: str, changes: dict[str, Any], remove: tuple[str, ...]) -> str:
    """DRF ``replace_query_param``/``remove_query_param``: every parameter, sorted by key."""
    params = parse_qs(query, keep_blank_values=True)
    for key, value in changes.items():
        params[key] = [str(value)]
    for key in remove:
        params.pop(key, None)
    return url + "?" + urlencode(sorted(params.items()), doseq=True)


def paginate(request: Request, count: int) -> tuple[int, int, str | None, str | None]:
    """Return (limit, offset, next, previous); links are absolute and keep every parameter."""
    try:
        limit = _positive_int(request.args["limit"], strict=True)
    except (KeyError, ValueError):
        limit = DEFAULT_LIMIT
    try:
        offset = _positive_int(request.args["offset"], strict=False)
    except (KeyError, ValueError):
        offset = 0
    base = host_url(request) + request.path
    query = request.query_string.decode("latin-1")
    next_url = None
    if offset + limit < count:
        next_url = _with_query(base, query, {"limit": limit, "offset": offset + limit}, ())
    previous_url = None
    if offset > 0:
        if offset - limit <= 0:
            previous_url = _with_query(base, query, {"limit": limit}, ("offset",))
        else:
            previous_url = _with_query(base, query, {"limit": limit, "offset": offset - limit}, ())
    return limit, offset, next_url, previous_url
