"""``Project``: project-wide calls with the master token.

::

    from openhumans import Project
    project = Project()                       # OPENHUMANS_MASTER_TOKEN
    for member in project.iter_members():     # every member, with all of their files
        ...
    project.message("Hello", "News for everyone", all_members=True)

The master token lasts 24 hours; a call made with an expired one raises
:class:`~openhumans.exceptions.MasterTokenExpiredError` naming the page where it is renewed.
The token is never logged, shown in a repr or in an exception message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from .client import (
    DataFile,
    Member,
    OpenHumansClient,
    Stream,
    UploadResult,
    check_member_ids,
    check_message_args,
)
from .conf import get_setting
from .exceptions import (
    InvalidTokenError,
    MasterTokenExpiredError,
    OpenHumansConfigurationError,
)

__all__ = ["BATCH_SIZE", "Project"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Member ids sent per message/remove-members request: the server checks each id with a
#: query and Django caps a request body at 2.5 MB, so 10,000 ids go in 20 requests.
BATCH_SIZE = 500

#: Where a project coordinator renews the master token (spec §A.3: it lasts 24 hours).
RENEW_PATH = "/direct-sharing/projects/manage/"


class Project:
    """The Open Humans project, seen through its master token.

    ``master_token`` defaults to ``OPENHUMANS_MASTER_TOKEN``; ``base_url`` and ``timeout``
    to ``OPENHUMANS_OH_BASE_URL`` and ``OPENHUMANS_TIMEOUT``. Raises
    OpenHumansConfigurationError when no master token is given or set.
    """

    def __init__(
        self,
        master_token: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | None = None,
    ) -> None:
        token = master_token if master_token is not None else get_setting("OPENHUMANS_MASTER_TOKEN")
        if not token:
            raise OpenHumansConfigurationError(
                "The OPENHUMANS_MASTER_TOKEN setting is required for project-wide calls "
                "(or pass master_token=) and is not set."
            )
        base = base_url if base_url is not None else get_setting("OPENHUMANS_OH_BASE_URL")
        seconds = timeout if timeout is not None else get_setting("OPENHUMANS_TIMEOUT")
        self._client = OpenHumansClient.shared(token, base_url=base, timeout=seconds)
        self.base_url = str(self._client.base_url).rstrip("/")

    def __repr__(self) -> str:
        return f"<Project {self.base_url}>"

    @property
    def renew_url(self) -> str:
        """The project page where a coordinator renews the master token."""
        return self.base_url + RENEW_PATH

    @contextmanager
    def _master(self) -> Iterator[None]:
        """Turn a 401 into MasterTokenExpiredError naming the renewal page."""
        try:
            yield
        except MasterTokenExpiredError:
            raise
        except InvalidTokenError as err:
            expired = isinstance(err.body, Mapping) and err.body.get("detail") == "Expired token."
            why = "has expired (it lasts 24 hours)" if expired else "was refused"
            raise MasterTokenExpiredError(
                f"The Open Humans master token {why}; get a new one at {self.renew_url} "
                "and set OPENHUMANS_MASTER_TOKEN.",
                renew_url=self.renew_url,
                status_code=err.status_code,
                body=err.body,
                url=err.url,
            ) from err

    def _call(self, operation: Callable[[OpenHumansClient], T]) -> T:
        with self._master():
            return operation(self._client)

    # -- members -----------------------------------------------------------------------

    def iter_members(self) -> Iterator[Member]:
        """Yield every member once, each with all of their files.

        A member with more files than the listing includes gets the rest through
        exchange-member. Raises MasterTokenExpiredError and the errors of the client.
        """
        with self._master():
            yield from self._client.iter_members()

    def member_ids(self) -> list[str]:
        """Return the project member id of every member (see :meth:`iter_members`)."""
        return [m.project_member_id for m in self.iter_members()]

    def message(
        self,
        subject: str,
        message: str,
        *,
        project_member_ids: Sequence[str] | None = None,
        all_members: bool = False,
        on_batch: Callable[[list[str]], None] | None = None,
    ) -> int:
        """Email members through Open Humans; return how many ids were sent (0 for all).

        Give exactly one of ``project_member_ids`` (sent :data:`BATCH_SIZE` at a time;
        ``on_batch`` is called with each batch once it was accepted) or ``all_members``.
        Raises InvalidArgumentError before any request, MasterTokenExpiredError and the
        errors of the client; batches accepted before a failure stay sent.
        """
        if project_member_ids is None or all_members:
            self._call(
                lambda api: api.message(
                    subject,
                    message,
                    project_member_ids=project_member_ids,
                    all_members=all_members,
                )
            )
            return 0
        ids = check_member_ids(project_member_ids)
        check_message_args(subject, message)  # before the first batch goes out
        for batch in _batches(ids):
            with self._master():
                self._client.message(subject, message, project_member_ids=batch)
            logger.info("messaged %d Open Humans members", len(batch))
            if on_batch is not None:
                on_batch(batch)
        return len(ids)

    def remove_members(
        self,
        project_member_ids: Sequence[str],
        *,
        on_batch: Callable[[list[str]], None] | None = None,
    ) -> int:
        """Remove members from the project, in batches; return how many.

        Open Humans sends the deauthorization webhook for each. Raises InvalidArgumentError,
        MasterTokenExpiredError and the errors of the client (after a 500 Open Humans may still
        have removed the batch).
        """
        ids = check_member_ids(project_member_ids)
        for batch in _batches(ids):
            with self._master():
                self._client.remove_members(batch)
            logger.info("removed %d Open Humans members", len(batch))
            if on_batch is not None:
                on_batch(batch)
        return len(ids)

    # -- one member's files ------------------------------------------------------------

    def list_files(self, project_member_id: str) -> list[DataFile]:
        """Return every file of one member; raises like :meth:`iter_members`."""
        return self._call(lambda api: api.list_files(project_member_id=project_member_id))

    def upload(
        self,
        project_member_id: str,
        stream: Stream,
        filename: str,
        metadata: Mapping[str, Any],
        *,
        datatypes: Sequence[str | int] | None = None,
    ) -> UploadResult:
        """Upload a file for one member; raises like the client's ``upload``."""
        return self._call(
            lambda api: api.upload(
                stream, filename, metadata, datatypes=datatypes, project_member_id=project_member_id
            )
        )

    def delete_files(
        self,
        project_member_id: str,
        *,
        file_id: int | None = None,
        file_basename: str | None = None,
        all_files: bool = False,
    ) -> list[int]:
        """Delete one member's files by id, basename or all; return the ids deleted."""
        return self._call(
            lambda api: api.delete_files(
                file_id=file_id,
                file_basename=file_basename,
                all_files=all_files,
                project_member_id=project_member_id,
            )
        )


def _batches(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), BATCH_SIZE):
        yield ids[start : start + BATCH_SIZE]
