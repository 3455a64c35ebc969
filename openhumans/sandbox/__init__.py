"""A local stand-in for www.openhumans.org: OAuth2, the project API, storage and webhooks.

Run it three ways::

    python -m openhumans.sandbox --port 8001          # a server for the demo or by hand

    from openhumans.sandbox import Sandbox             # in-process, on a thread
    with Sandbox(client_id="id", client_secret="secret") as oh:
        member = oh.create_member(username="alice")
        tokens = oh.issue_tokens(member["project_member_id"])

    def test_something(oh_sandbox): ...                # the pytest fixture (openhumans.testing)

It reproduces ``open-humans-api.md`` wherever a client can tell: status codes, JSON shapes and
key order, both error envelopes, ``"success"`` bodies, the auth matrix and its
``WWW-Authenticate`` headers (a user token is also read from a form or multipart body, as
oauthlib does), token rotation, pagination links carrying ``access_token``, 301s to slash
URLs, DRF's ``.json`` format-suffix routes, the security and ``Vary`` headers, the download
redirector, and the deauthorization webhook. It serves HTTP/1.1 with keep-alive, and HTTPS
with ``--tls`` / ``Sandbox(tls=True)``.

Control plane (JSON in and out, 4xx JSON ``{"error": ...}`` on bad input); each Python method
of :class:`SandboxClient` (and so :class:`Sandbox`) is one call to it:

- ``GET/POST /_sandbox/members/``: ``members()``, ``create_member(username, ...)``
- ``GET /_sandbox/members/<pmid>/``: ``member(pmid)``
- ``POST /_sandbox/members/<pmid>/tokens/``: ``issue_tokens(pmid, scope=, expires_in=)``
- ``POST /_sandbox/members/<pmid>/authorize/``: ``authorize(pmid, state=, ...)``
- ``GET/POST /_sandbox/members/<pmid>/files/``: ``files(pmid)``, ``add_files(pmid, ...)``
- ``POST /_sandbox/members/<pmid>/leave/``: ``leave(pmid, erasure_requested=)``
- ``POST /_sandbox/members/<pmid>/expire-tokens/``: ``expire_access_tokens(pmid)``
- ``GET/DELETE /_sandbox/inbox/``: ``inbox(project_member_id=None)``
- ``GET/DELETE /_sandbox/webhooks/``: ``webhooks(project_member_id=None)``
- ``GET/DELETE /_sandbox/requests/``: ``request_log()`` (with ``connections_opened``, the TCP
  connections accepted since the last clear), ``clear_request_log()``
- ``GET /_sandbox/connections/``: ``connections()``: ``{"opened": n, "open": m}``
- ``GET/POST/DELETE /_sandbox/faults/``: ``set_fault(endpoint, ...)``, ``clear_faults()``
- ``GET/POST /_sandbox/clock/``: ``advance_clock(seconds)``
- ``POST /_sandbox/reset/``: ``reset()``
- ``GET/POST /_sandbox/config/``: ``config()``, ``configure(**changes)``,
  ``expire_master_token()``, ``regenerate_master_token()``

``SandboxClient(base_url)`` drives a sandbox running in another process the same way.

Choices where the real server is buggy or cannot be copied, and other deviations:

- Webhook without erasure: sent, with ``timestamp`` = the time of sending (the
  server at HEAD crashes instead). A webhook URL that is not http(s) skips the webhook.
- Webhook timeout: 30 s per POST (the server has none). A transport error is recorded in
  the webhook log, with no second POST, and the leave/remove request still succeeds.
  Redirects from the receiver are not followed. Any http(s) URL with a host is accepted
  (Django's URLValidator on the server would refuse a dotless host such as ``http://web/``).
- ``files/upload/complete/`` with a nonexistent ``file_id``: 400
  ``{"detail":"file does not exist"}`` (the server answers 500). A file of another member
  is accepted, as on the server.
- Master-token ``exchange-member/`` without ``project_member_id``: 400
  ``{"project_member_id":"project_member_id is invalid"}`` (the server answers 500).
  Members who never joined count as unknown; a member who left is still listed.
- Master token sent only in a header to ``members/``: 500 with Django's HTML error page
  once there is a member, exactly as the server. Send ``?access_token=``.
- ``message/``: the message is stored in the sandbox inbox (``/_sandbox/inbox/``) instead of
  emailed. ``subject`` is the email subject as sent (``[Open Humans Project Message] ...``);
  ``project_subject`` is the raw value. The message is rendered with Django's standalone
  template engine (no settings); if that fails (syntax error, a filter needing settings) the
  entry keeps the text with only ``{{ PROJECT_MEMBER_ID }}`` substituted plus an ``error``
  key, and the API still answers ``"success"`` (the mail would go out later). When the ID
  list is invalid only that error is reported (not also the ``__all__`` one).
- Authorize page: "not logged in" is replaced by choosing a sandbox member (radio ``member``)
  or creating one (``member=new`` with ``new_username``; a typed name alone also creates one)
  on the consent page; a chosen member together with a typed name is refused (400), never
  guessed. ``approval_prompt=auto`` never skips the page, as there is no login session. An
  inactive project (``configure(project={"active": False})``) redirects to
  ``/direct-sharing/authorize-inactive/``.
- Storage: ``/_storage/<key>`` stands in for S3. Upload URLs are S3-SigV2-style query
  signatures valid 6 h (per process: a restart invalidates them). As on S3, the PUT needs a
  ``Content-Length``, refuses ``Transfer-Encoding: chunked`` (501), and refuses a
  ``Content-Type`` (403 ``SignatureDoesNotMatch``) because the URL was signed without one.
  Bytes are streamed to disk, never held in memory.
- Download keys (1 h) are kept in memory only (after a restart, list files again), at most
  500,000 of them: past that the oldest keys are forgotten early.
- Datatypes: a fixed table (1 "Sandbox data", 2 "Survey responses", 3 "Genetic data",
  4 "Activity tracking"); the project registers 1 and 2.
- The project requests usernames by default (``username`` keys present); change it with
  ``configure(project={"request_username_access": False})``. As on the server, the setting
  is captured per member when they consent: members who joined before a change keep theirs.
- Password grant: sandbox members have no password, so it always answers ``invalid_grant``
  "Invalid credentials given." (the server's answer to wrong credentials).
- Of the public API only ``/api/public/datatypes/``, ``/api/public/datatype/<id>/``
  and ``/api/public/project/<id>/`` are served: the sandbox's own project (404 unless
  approved, as on the server) and, as approved stand-ins with placeholder fields, the other
  projects it knows by id_label (requested sources, members' shared sources, files'
  sources). ``/oauth2/revoke_token/`` revokes a token pair (no webhook, membership
  stays, as on Open Humans); introspection and OIDC routes are not served. DRF's browsable API
  (``Accept: text/html``, ``?format=api``) is a plain HTML page showing the same JSON, status
  and headers. CORS: ``Access-Control-Allow-Origin: *`` on ``/api/`` when an ``Origin`` is
  sent, and preflights are answered before authentication (django-cors-headers).
- Faults (``set_fault``): ``latency_ms`` delays every request whose path starts with
  ``endpoint``; with probability ``error_rate`` the request fails with ``status`` (a JSON
  ``{"detail": ...}``), or, with ``drop_connection``, the socket is closed without an answer
  (``drop_connection`` alone drops every request). ``times=n`` limits a fault to n requests.
  The control plane itself is never faulted, nor logged in ``request_log()``.
- Kinder than the server (which answers 500 to these): a JSON body that is not an
  object is a 400 ``non_field_errors``; a ``null`` metadata date is a 400 "Dates must be in
  ISO 8601 format"; ``datatypes`` that is JSON but not a list is a 400 "Could not parse";
  a list mixing ids and names is a 400 "don't match"; a numeric (non-string)
  ``project_member_ids`` is taken as its string form.
- Connections: HTTP/1.1 keep-alive on a thread per connection (werkzeug's own handler closes
  every connection, see ``http_server``); an idle connection is closed after 75 s.
  ``request_log()["connections_opened"]`` counts accepted TCP connections.
- TLS: ``--tls`` (``Sandbox(tls=True)``) with ``--tls-cert``/``--tls-key`` PEM files, or a
  self-signed certificate generated at start (needs ``cryptography``: the ``sandbox-tls``
  extra) that is its own CA: trust ``Sandbox.tls_ca_file`` (printed by the CLI).
- Clock: ``advance_clock(seconds)`` (``POST /_sandbox/clock/``) moves the sandbox's clock
  forward for every expiry check; ``reset()`` puts it back.
"""

from __future__ import annotations

from .control_client import SandboxClient, SandboxError
from .runner import Sandbox

__all__ = ["Sandbox", "SandboxClient", "SandboxError"]
