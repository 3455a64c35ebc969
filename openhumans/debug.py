"""Error reports without tokens: a SafeExceptionReporterFilter for Django's 500 pages and mails.

Django's technical 500 report (the ``DEBUG`` page, and the HTML mail ``AdminEmailHandler``
sends) shows every frame's local variables. A failure during a refresh or an upload has
live tokens in those frames, in django-open-humans and in httpx below it. Django's default
filter hides only the frames marked ``sensitive_variables`` (ours are) and settings whose
names look secret. This one also hides, in every frame, any variable whose name looks
secret and any value whose text carries a bearer token, a token query parameter or an
OAuth2 form::

    DEFAULT_EXCEPTION_REPORTER_FILTER = "openhumans.debug.TokenSafeExceptionReporterFilter"
"""

from __future__ import annotations

import re
from typing import Any

from django.views.debug import SafeExceptionReporterFilter

__all__ = ["TokenSafeExceptionReporterFilter"]

_SECRET_TEXT = re.compile(
    r"(?i)bearer\s|authorization|access_token|refresh_token|client_secret|code_verifier"
    r"|master_token|signature=|x-amz-credential|awsaccesskeyid"
)


class TokenSafeExceptionReporterFilter(SafeExceptionReporterFilter):
    """Hide tokens from every frame of an error report, not only the marked ones."""

    hidden_settings = re.compile(
        r"API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|AUTH|VERIFIER|CREDENTIAL",
        flags=re.IGNORECASE,
    )

    def is_active(self, request: Any) -> bool:
        """Always: a token on a ``DEBUG`` page is as live as one in a mail."""
        return True

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        variables = super().get_traceback_frame_variables(request, tb_frame)
        return [(name, self._cleanse_local(name, value)) for name, value in variables]

    def _cleanse_local(self, name: str, value: Any) -> Any:
        if isinstance(value, str) and value == self.cleansed_substitute:
            return value
        cleansed = self.cleanse_setting(name, value)
        try:
            text = repr(cleansed)
        except Exception:  # a broken __repr__ must not break the report
            return self.cleansed_substitute
        if _SECRET_TEXT.search(text):
            return self.cleansed_substitute
        return cleansed
