"""A stand-in for S3 (presigned PUT and GET) and the file download redirector.

Spec §2.6 step 2 and §2.9. URLs are signed like S3 signature version 2 query auth: the
string to sign is ``METHOD\\nContent-MD5\\nContent-Type\\nExpires\\n/bucket/key``, so, as on
S3, a PUT that sends a ``Content-Type`` the URL was not signed with is refused.

The bucket answers CORS as an S3 bucket configured for browser uploads from the project's
site: one rule whose allowed origin is the origin of the registered redirect URI, methods
GET, PUT and HEAD, any request header, ``ETag`` exposed (see :func:`cors_rule_allows`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from urllib.parse import quote, urlsplit
from xml.sax.saxutils import escape as xml_escape

from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import wrap_file

from ..responses import html_error
from ..state import STORAGE_GET_LIFETIME, Store

BUCKET = "open-humans-sandbox"
ACCESS_KEY_ID = "SANDBOXACCESSKEYID"
STORAGE_PREFIX = "/_storage/"
MAX_PUT_SIZE = 5 * 1024**3  # S3's single-PUT limit (spec §4.2)
CHUNK = 1 << 20


def _sign(store: Store, method: str, key: str, expires: int, md5: str = "", ctype: str = "") -> str:
    string_to_sign = f"{method}\n{md5}\n{ctype}\n{expires}\n/{BUCKET}/{key}"
    digest = hmac.new(store.signing_key, string_to_sign.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def presign(store: Store, base: str, method: str, key: str, expires: int) -> str:
    """An S3-style query-signed URL for ``key`` on this sandbox."""
    signature = quote(_sign(store, method, key, expires), safe="")
    return (
        f"{base}{STORAGE_PREFIX}{quote(key)}"
        f"?Signature={signature}&Expires={expires}&AWSAccessKeyId={ACCESS_KEY_ID}"
    )


def s3_error(status: int, code: str, message: str, **extra: str) -> Response:
    fields = "".join(f"<{k}>{xml_escape(v)}</{k}>" for k, v in extra.items())
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{xml_escape(message)}</Message>{fields}"
        f"<RequestId>{secrets.token_hex(8).upper()}</RequestId></Error>"
    )
    return Response(body, status=status, content_type="application/xml")


def _check_signature(store: Store, request: Request, method: str, key: str) -> Response | None:
    signature = request.args.get("Signature")
    expires = request.args.get("Expires")
    if not signature or not expires or not request.args.get("AWSAccessKeyId"):
        return s3_error(
            403,
            "AccessDenied",
            "Query-string authentication requires the Signature, Expires and "
            "AWSAccessKeyId parameters",
        )
    try:
        expires_at = int(expires)
    except ValueError:
        return s3_error(403, "AccessDenied", "Invalid date (should be seconds since epoch)")
    ctype = request.headers.get("Content-Type", "") if method == "PUT" else ""
    md5 = request.headers.get("Content-MD5", "") if method == "PUT" else ""
    expected = _sign(store, method, key, expires_at, md5, ctype)
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        return s3_error(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method.",
        )
    if store.now() > expires_at:
        return s3_error(403, "AccessDenied", "Request has expired", Expires=expires)
    return None


# The bucket's one CORS rule, as a project would configure it for browser uploads:
# <AllowedMethod>GET/PUT/HEAD</AllowedMethod><AllowedHeader>*</AllowedHeader>
# <ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>3000</MaxAgeSeconds>.
CORS_METHODS = ("GET", "PUT", "HEAD")
CORS_EXPOSE_HEADERS = "ETag"
CORS_MAX_AGE = "3000"
CORS_VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"


def site_origin(store: Store) -> str:
    """The origin (``scheme://host[:port]``) of the project's registered redirect URI."""
    with store.lock:
        parts = urlsplit(str(store.config.get("redirect_uri") or ""))
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


def cors_rule_allows(store: Store, origin: str, method: str) -> bool:
    """Whether the bucket's CORS rule matches ``origin`` (exactly, as S3) and ``method``."""
    return bool(origin) and origin.lower() == site_origin(store) and method in CORS_METHODS


def _cors_headers(response: Response, origin: str) -> Response:
    """Add what S3 adds to an answer for a request whose origin matches the rule."""
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Allow-Methods"] = ", ".join(CORS_METHODS)
    response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS
    response.headers["Access-Control-Max-Age"] = CORS_MAX_AGE
    response.headers["Access-Control-Allow-Credentials"] = "true"
    response.headers["Vary"] = CORS_VARY
    return response


def _preflight(store: Store, request: Request) -> Response:
    """An S3 CORS preflight: 200 with the rule's headers, or 400/403 as S3 answers."""
    origin = request.headers.get("Origin", "")
    wanted = request.headers.get("Access-Control-Request-Method", "")
    if not origin:
        return s3_error(
            400, "BadRequest", "Insufficient information. Origin request header needed."
        )
    if not wanted:
        return s3_error(400, "BadRequest", f"Invalid Access-Control-Request-Method: {wanted}")
    if not cors_rule_allows(store, origin, wanted):
        return s3_error(
            403,
            "AccessForbidden",
            "CORSResponse: This CORS request is not allowed. This is usually because the "
            "evalution of Origin, request method / Access-Control-Request-Method or "
            "Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
            Method=wanted,
            ResourceType="OBJECT",
        )
    response = _cors_headers(Response(b"", status=200), origin)
    del response.headers["Content-Type"]
    headers = request.headers.get("Access-Control-Request-Headers")
    if headers:  # AllowedHeader "*": S3 echoes what was asked for
        response.headers["Access-Control-Allow-Headers"] = headers.lower()
    return response


def storage(store: Store, request: Request, key: str) -> Response:
    """One object: ``PUT`` (spec §2.6 step 2), ``GET``/``HEAD`` (download), CORS as S3."""
    if request.method == "OPTIONS":
        return _preflight(store, request)
    response = _object(store, request)
    origin = request.headers.get("Origin", "")
    if cors_rule_allows(store, origin, request.method or ""):
        _cors_headers(response, origin)
    return response


def _object(store: Store, request: Request) -> Response:
    key = request.path[len(STORAGE_PREFIX) :]
    method = request.method
    if method == "PUT":
        return _put(store, request, key)
    if method in ("GET", "HEAD"):
        denied = _check_signature(store, request, "GET", key)
        if denied is not None:
            return denied
        with store.lock:
            file_id = store.storage_keys.get(key)
            record = store.files.get(file_id) if file_id is not None else None
            path = store.blob_path(record) if record is not None else None
        if record is None or path is None or not path.exists():
            return s3_error(404, "NoSuchKey", "The specified key does not exist.", Key=key)
        handle = open(path, "rb")  # noqa: SIM115 - closed by the WSGI server via wrap_file
        size = os.fstat(handle.fileno()).st_size
        response = Response(
            wrap_file(request.environ, handle),
            content_type="binary/octet-stream",
            direct_passthrough=True,
        )
        response.headers["Content-Length"] = str(size)
        if record.get("md5"):
            response.headers["ETag"] = f'"{record["md5"]}"'
        return response
    return s3_error(
        405,
        "MethodNotAllowed",
        "The specified method is not allowed against this resource.",
        Method=method or "",
        ResourceType="OBJECT",
    )


def _put(store: Store, request: Request, key: str) -> Response:
    # S3 refuses chunked uploads on a presigned PUT (needs Content-Length).
    if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        return s3_error(
            501,
            "NotImplemented",
            "A header you provided implies functionality that is not implemented",
            Header="Transfer-Encoding",
        )
    length_header = request.headers.get("Content-Length")
    if length_header is None:
        return s3_error(
            411, "MissingContentLength", "You must provide the Content-Length HTTP header."
        )
    try:
        length = int(length_header)
        if length < 0:
            raise ValueError(length_header)
    except ValueError:
        return s3_error(400, "InvalidArgument", "Invalid Content-Length.")
    denied = _check_signature(store, request, "PUT", key)
    if denied is not None:
        return denied
    if length > MAX_PUT_SIZE:
        return s3_error(
            400,
            "EntityTooLarge",
            "Your proposed upload exceeds the maximum allowed size",
            ProposedSize=str(length),
            MaxSizeAllowed=str(MAX_PUT_SIZE),
        )
    with store.lock:
        file_id = store.storage_keys.get(key)
        record = store.files.get(file_id) if file_id is not None else None
    digest = hashlib.md5(usedforsecurity=False)
    stream = request.environ["wsgi.input"]
    remaining = length
    target = store.data_dir / f"upload-{secrets.token_hex(8)}.part"
    try:
        with open(target, "wb") as out:
            while remaining > 0:
                chunk = stream.read(min(CHUNK, remaining))
                if not chunk:
                    break
                digest.update(chunk)
                out.write(chunk)
                remaining -= len(chunk)
        if remaining:
            return s3_error(
                400,
                "IncompleteBody",
                "You did not provide the number of bytes specified by the Content-Length "
                "HTTP header",
            )
        if record is not None:
            with store.lock:
                os.replace(target, store.blob_path(record))
                record["size"] = length
                record["md5"] = digest.hexdigest()
                store.changed()
    finally:
        if target.exists():
            target.unlink()
    response = Response(b"", status=200)
    del response.headers["Content-Type"]  # S3 sends none with a PUT answer
    response.headers["ETag"] = f'"{digest.hexdigest()}"'
    response.headers["x-amz-request-id"] = secrets.token_hex(8).upper()
    return response


def download(store: Store, request: Request, file_id: str) -> Response:
    """Spec §2.9: the ``download_url`` redirector; 302 to a 10-minute storage URL."""
    key = request.args.get("key", "")
    with store.lock:
        record = store.files.get(int(file_id)) if file_id.isdigit() else None
        if record is None or not record["completed"]:
            return html_error(403, "This file is unavailable.")
        entry = store.download_keys.get(key)
        if entry is None or entry[0] != record["id"] or entry[1] <= store.now():
            return html_error(403, "You are not authorized to view this file.")
        url = presign(
            store,
            request.host_url.rstrip("/"),
            "GET",
            record["key"],
            int(store.now()) + STORAGE_GET_LIFETIME,
        )
    response = Response(b"", status=302)
    response.headers["Location"] = f"{url}&x-oh-key={quote(key, safe='')}"
    return response
