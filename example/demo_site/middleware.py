"""Keep visitors on the host of OPENHUMANS_APP_BASE_URL."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpResponsePermanentRedirect


class CanonicalHostMiddleware:
    """Redirect GETs on another host name (``localhost`` vs ``127.0.0.1``) to the base URL's.

    The login's ``state`` lives in a session cookie of the host the login started on, and
    Open Humans sends the browser back to the registered redirect URL's host: starting on
    another name would end in "This login link is not valid".
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        base = urlsplit(settings.OPENHUMANS_APP_BASE_URL)
        if request.method == "GET" and request.get_host() != base.netloc:
            return HttpResponsePermanentRedirect(
                f"{base.scheme}://{base.netloc}{request.get_full_path()}"
            )
        return self.get_response(request)
