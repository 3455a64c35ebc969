"""The sandbox's in-memory store: one lock, plain JSON-able dicts, optional JSON state file.

Longer than 400 lines on purpose: it is one concern (every piece of sandbox state and the
one lock guarding it), and reads better whole than split into a persistence half and a
data half that would share every attribute.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import secrets
import string
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

logger = logging.getLogger("openhumans.sandbox")

TOKEN_CHARS = string.ascii_letters + string.digits

# Spec §1.1: without `scope` the default is every configured scope.
ALL_SCOPES = ("read", "write", "american-gut", "go-viral", "pgp", "wildlife", "open-humans")

CODE_LIFETIME = 1800  # spec §1.1: AUTHORIZATION_CODE_EXPIRE_SECONDS
MASTER_TOKEN_LIFETIME = 24 * 3600  # spec §A.1
DOWNLOAD_KEY_LIFETIME = 3600  # spec §2.9
UPLOAD_URL_LIFETIME = 6 * 3600  # spec §2.6: INCOMPLETE_FILE_EXPIRATION_HOURS
STORAGE_GET_LIFETIME = 600  # spec §2.9: the presigned S3 GET URL
REQUEST_LOG_SIZE = 10_000
MAX_DOWNLOAD_KEYS = 500_000
SAVE_DELAY = 0.2  # seconds: the state file is written at most about this often

# The sandbox's datatype "database" (spec §4.4); the project registers the first two.
DATATYPES: dict[int, str] = {
    1: "Sandbox data",
    2: "Survey responses",
    3: "Genetic data",
    4: "Activity tracking",
}

DEFAULT_PROJECT: dict[str, Any] = {
    "id": 1,
    "name": "Sandbox Project",
    "slug": "sandbox-project",
    "active": True,
    "approved": False,
    "badge_image": None,
    "contact_email": "sandbox@example.org",
    "info_url": "",
    "is_academic_or_nonprofit": False,
    "is_study": False,
    "leader": "Sandbox Coordinator",
    "long_description": "A local stand-in for an Open Humans project, run by the sandbox.",
    "organization": "",
    "returned_data_description": "Files uploaded by the project under test.",
    "short_description": "Open Humans sandbox project.",
    "request_username_access": True,
    # id_labels of the other projects whose data members share (spec §2.2 sources_shared).
    "requested_sources": [],
    "registered_datatypes": [1, 2],
    "any_datatypes": False,
    "auto_add_datatypes": False,
}


def generate_token(length: int = 30) -> str:
    """Return a random ``[A-Za-z0-9]`` token (oauthlib's ``generate_token`` alphabet)."""
    return "".join(secrets.choice(TOKEN_CHARS) for _ in range(length))


def now_iso(offset: float = 0.0) -> str:
    """Return the current UTC time (plus ``offset`` seconds) as an ISO string with offset."""
    return datetime.fromtimestamp(time.time() + offset, UTC).isoformat()


def api_datetime(value: str | None) -> str | None:
    """Format a stored ISO datetime like DRF: UTC, microseconds unless 0, ``Z`` suffix."""
    if value is None:
        return None
    text = datetime.fromisoformat(value).astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def id_label(project_id: int) -> str:
    return f"direct-sharing-{project_id}"


class Store:
    """Everything the sandbox knows, behind one re-entrant lock.

    Views take ``store.lock`` for a whole read-modify-write and call :meth:`changed` after
    mutating persisted data. File bytes live on disk under :attr:`data_dir`, never in the
    JSON state.
    """

    PERSISTED = (
        "config",
        "members",
        "access_tokens",
        "refresh_tokens",
        "codes",
        "files",
        "next_file_id",
        "inbox",
        "webhooks",
    )

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        webhook_url: str | None,
        webhook_secret: str | None,
        access_token_lifetime: int,
        state_file: str | os.PathLike[str] | None = None,
        data_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.connections_open = 0  # live count, kept by the HTTP server
        # Seconds added to the wall clock by /_sandbox/clock/ (tests of lifetimes).
        self.clock_offset = 0.0
        self._dirty = threading.Condition()
        self._is_dirty = False
        self._closing = False
        self._saver: threading.Thread | None = None
        self.state_file = Path(state_file) if state_file else None
        self._own_data_dir = False
        if data_dir is not None:
            self.data_dir = Path(data_dir)
        elif self.state_file is not None:
            self.data_dir = self.state_file.with_name(self.state_file.name + ".files")
        else:
            self.data_dir = Path(tempfile.mkdtemp(prefix="oh-sandbox-"))
            self._own_data_dir = True
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Signs storage URLs; per process, so old presigned URLs die with a restart.
        self.signing_key = secrets.token_bytes(32)
        self.config: dict[str, Any] = {}
        self._defaults = {
            "client_id": client_id,
            "client_secret": client_secret,
            "redirect_uri": redirect_uri,
            "access_token_lifetime": int(access_token_lifetime),
        }
        # Unset webhook options keep what a state file saved (set through the control plane).
        if webhook_url is not None:
            self._defaults["webhook_url"] = webhook_url
        if webhook_secret is not None:
            self._defaults["webhook_secret"] = webhook_secret
        self._clear()
        self.config.update(webhook_url="", webhook_secret="")
        self.config.update(self._defaults)
        self.config["master_token"] = generate_token(64)
        self.config["master_token_expires"] = self.now() + MASTER_TOKEN_LIFETIME
        self.config["project"] = json.loads(json.dumps(DEFAULT_PROJECT))
        if self.state_file is not None and self.state_file.exists():
            self._load()
            # Command-line values win over the saved ones: they are what the user just typed.
            self.config.update(self._defaults)
            self.save()

    # --- clock ---

    def now(self) -> float:
        """The sandbox's clock (epoch seconds): every expiry check uses it."""
        return time.time() + self.clock_offset

    def now_iso(self) -> str:
        return now_iso(self.clock_offset)

    # --- lifecycle ---

    def _clear(self) -> None:
        self.members: dict[str, dict[str, Any]] = {}
        self.access_tokens: dict[str, dict[str, Any]] = {}
        self.refresh_tokens: dict[str, dict[str, Any]] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.files: dict[int, dict[str, Any]] = {}
        self.next_file_id = 1001
        self.storage_keys: dict[str, int] = {}
        # pmid -> {file id -> record}: listings must not scan every file.
        self.files_by_member: dict[str, dict[int, dict[str, Any]]] = {}
        self.download_keys: dict[str, tuple[int, float]] = {}
        self.inbox: list[dict[str, Any]] = []
        self.webhooks: list[dict[str, Any]] = []
        self.requests: collections.deque[dict[str, Any]] = collections.deque(
            maxlen=REQUEST_LOG_SIZE
        )
        self.request_counts: collections.Counter[str] = collections.Counter()
        self.faults: list[dict[str, Any]] = []
        # TCP connections the server accepted since the last clear (keep-alive shows here).
        self.connections_opened = 0

    def reset(self) -> None:
        """Forget members, tokens, files, inbox, webhooks, requests and faults; keep config."""
        with self.lock:
            for record in self.files.values():
                self.delete_blob(record)
            self._clear()
            self.clock_offset = 0.0
            self.config["master_token_expires"] = self.now() + MASTER_TOKEN_LIFETIME
            self.changed()

    def _load(self) -> None:
        assert self.state_file is not None
        try:
            saved = json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            logger.warning("sandbox: ignoring unreadable state file %s (%s)", self.state_file, err)
            return
        self.config.update(saved.get("config", {}))
        self.members = saved.get("members", {})
        self.access_tokens = saved.get("access_tokens", {})
        self.refresh_tokens = saved.get("refresh_tokens", {})
        self.codes = saved.get("codes", {})
        self.files = {int(k): v for k, v in saved.get("files", {}).items()}
        self.next_file_id = int(saved.get("next_file_id", 1001))
        self.inbox = saved.get("inbox", [])
        self.webhooks = saved.get("webhooks", [])
        self.storage_keys = {f["key"]: f["id"] for f in self.files.values()}
        for record in self.files.values():
            self.files_by_member.setdefault(record["pmid"], {})[record["id"]] = record

    def save(self) -> None:
        """Write the state file atomically (no-op without one)."""
        if self.state_file is None:
            return
        with self.lock:
            data = {name: getattr(self, name) for name in self.PERSISTED}
            text = json.dumps(data, default=str)
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.state_file)

    def changed(self) -> None:
        """Note a change to persisted data; a saver thread writes it within ``SAVE_DELAY``."""
        if self.state_file is None:
            return
        with self._dirty:
            self._is_dirty = True
            if self._saver is None:
                self._saver = threading.Thread(
                    target=self._save_loop, name="oh-sandbox-saver", daemon=True
                )
                self._saver.start()
            self._dirty.notify()

    def _save_loop(self) -> None:
        # Batches writes: with thousands of files a write per request would dominate.
        while True:
            with self._dirty:
                while not self._is_dirty and not self._closing:
                    self._dirty.wait()
                if self._closing and not self._is_dirty:
                    return
            time.sleep(SAVE_DELAY)
            with self._dirty:
                self._is_dirty = False
            try:
                self.save()
            except OSError as err:  # pragma: no cover - disk trouble must not kill the server
                logger.warning("sandbox: could not write %s: %s", self.state_file, err)

    def flush(self) -> None:
        """Write pending changes now and stop the saver thread."""
        saver = self._saver
        if saver is not None:
            with self._dirty:
                self._closing = True
                self._dirty.notify()
            saver.join(timeout=30)
            self._saver = None
            self._closing = False
        if self.state_file is not None:
            self.save()

    def close(self) -> None:
        """Flush the state file; remove the temporary data directory if the store made it."""
        self.flush()
        if self._own_data_dir:
            import shutil

            shutil.rmtree(self.data_dir, ignore_errors=True)

    # --- project ---

    @property
    def project(self) -> dict[str, Any]:
        return self.config["project"]

    @property
    def id_label(self) -> str:
        return id_label(self.project["id"])

    # --- members ---

    def new_pmid(self) -> str:
        while True:
            pmid = f"{secrets.randbelow(10**8):08d}"
            if pmid not in self.members:
                return pmid

    def create_member(
        self, username: str, *, pmid: str | None = None, authorized: bool = True
    ) -> dict[str, Any]:
        """Create a member; ``authorized`` makes them joined and active in the project."""
        with self.lock:
            pmid = pmid or self.new_pmid()
            member = {
                "project_member_id": pmid,
                "username": username,
                "created": self.now_iso(),
                "joined": authorized,
                "authorized": authorized,
                "revoked": False,
                "erasure_requested": None,
                "is_active": True,
                "sources_shared": list(self.project["requested_sources"]) if authorized else [],
                # Spec §6: username sharing is fixed per member when they consent.
                "username_shared": bool(self.project["request_username_access"])
                if authorized
                else None,
            }
            self.members[pmid] = member
            self.changed()
            return member

    def member_by_username(self, username: str) -> dict[str, Any] | None:
        for member in self.members.values():
            if member["username"] == username:
                return member
        return None

    def authorize_member(self, pmid: str) -> None:
        """Spec §1.1 consent: joined, authorized, not revoked, sources granted."""
        with self.lock:
            member = self.members[pmid]
            member.update(
                joined=True,
                authorized=True,
                revoked=False,
                erasure_requested=None,
                sources_shared=list(self.project["requested_sources"]),
                username_shared=bool(self.project["request_username_access"]),
            )
            self.changed()

    @staticmethod
    def is_authorized(member: dict[str, Any] | None) -> bool:
        """Spec §A.5, uploads/delete: joined, authorized and not revoked."""
        return bool(member and member["joined"] and member["authorized"] and not member["revoked"])

    @classmethod
    def is_active(cls, member: dict[str, Any] | None) -> bool:
        """Spec §A.5, message/remove-members/members: also an active user account."""
        return cls.is_authorized(member) and bool(member and member["is_active"])

    def revoke_member(self, pmid: str, erasure_requested: bool) -> None:
        """Spec §2.5 effect: revoke and delete all of the member's tokens (not files)."""
        with self.lock:
            member = self.members[pmid]
            member.update(
                revoked=True,
                joined=False,
                authorized=False,
                erasure_requested=self.now_iso() if erasure_requested else None,
            )
            self.delete_tokens(pmid)
            self.changed()

    # --- tokens ---

    def issue_tokens(
        self, pmid: str, scope: list[str] | tuple[str, ...], lifetime: int | None = None
    ) -> dict[str, Any]:
        """Create an access/refresh pair; return the token endpoint body (spec §1.2)."""
        with self.lock:
            if lifetime is None:
                lifetime = int(self.config["access_token_lifetime"])
            access, refresh = generate_token(), generate_token()
            scope_text = " ".join(scope)
            self.access_tokens[access] = {
                "pmid": pmid,
                "scope": scope_text,
                "expires": self.now() + lifetime,
                "refresh_token": refresh,
            }
            self.refresh_tokens[refresh] = {
                "pmid": pmid,
                "scope": scope_text,
                "access_token": access,
            }
            self.changed()
            # oauthlib's key order (spec §1.2).
            return {
                "access_token": access,
                "expires_in": lifetime,
                "token_type": "Bearer",
                "scope": scope_text,
                "refresh_token": refresh,
            }

    def delete_tokens(self, pmid: str) -> int:
        with self.lock:
            dead = [t for t, rec in self.access_tokens.items() if rec["pmid"] == pmid]
            for token in dead:
                del self.access_tokens[token]
            for token in [t for t, rec in self.refresh_tokens.items() if rec["pmid"] == pmid]:
                del self.refresh_tokens[token]
            self.changed()
            return len(dead)

    def expire_tokens(self, pmid: str) -> int:
        with self.lock:
            n = 0
            for rec in self.access_tokens.values():
                if rec["pmid"] == pmid:
                    rec["expires"] = self.now() - 1
                    n += 1
            self.changed()
            return n

    def master_token_expired(self) -> bool:
        expires = self.config.get("master_token_expires")
        return expires is not None and self.now() >= float(expires)

    # --- codes ---

    def create_code(
        self,
        pmid: str,
        *,
        redirect_uri: str,
        scope: list[str],
        code_challenge: str | None,
        code_challenge_method: str | None,
    ) -> str:
        with self.lock:
            code = generate_token()
            self.codes[code] = {
                "pmid": pmid,
                "redirect_uri": redirect_uri,
                "scope": " ".join(scope),
                "code_challenge": code_challenge,
                "code_challenge_method": code_challenge_method,
                "expires": self.now() + CODE_LIFETIME,
            }
            self.changed()
            return code

    # --- files ---

    def blob_path(self, record: dict[str, Any]) -> Path:
        return self.data_dir / record["blob"]

    def new_file(
        self,
        pmid: str,
        filename: str,
        metadata: Any,
        datatypes: list[int],
        *,
        source: str | None = None,
        completed: bool = False,
        blob: str | None = None,
        size: int | None = None,
        md5: str | None = None,
    ) -> dict[str, Any]:
        """Create a file record (spec §2.6: the key is member-files/<label>/<uuid1>/<name>)."""
        with self.lock:
            file_id = self.next_file_id
            self.next_file_id += 1
            source = source or self.id_label
            key = f"member-files/{source}/{uuid.uuid1()}/{filename}"
            record = {
                "id": file_id,
                "pmid": pmid,
                "basename": key.rsplit("/", 1)[-1],
                "key": key,
                "created": self.now_iso(),
                "metadata": metadata,
                "datatypes": datatypes,
                "source": source,
                "completed": completed,
                "size": size,
                "md5": md5,
                "blob": blob or f"f{file_id}",
                "shared_blob": blob is not None,
            }
            self.files[file_id] = record
            self.storage_keys[key] = file_id
            self.files_by_member.setdefault(pmid, {})[file_id] = record
            return record

    def delete_blob(self, record: dict[str, Any]) -> None:
        if record.get("shared_blob"):
            return
        try:
            self.blob_path(record).unlink()
        except FileNotFoundError:
            pass
        except OSError as err:  # pragma: no cover - disk trouble must not fail a request
            logger.warning("sandbox: could not delete %s: %s", record["blob"], err)

    def delete_file(self, file_id: int) -> None:
        with self.lock:
            record = self.files.pop(file_id)
            self.storage_keys.pop(record["key"], None)
            self.files_by_member.get(record["pmid"], {}).pop(file_id, None)
            self.delete_blob(record)

    def visible_sources(self, member: dict[str, Any]) -> set[str]:
        """Spec §2.2: this project's own files plus the sources the member shares."""
        return {self.id_label, *member.get("sources_shared", [])}

    def count_files(self, pmid: str) -> int:
        """All files of a member, completed or not, any source."""
        return len(self.files_by_member.get(pmid, {}))

    def member_files(self, member: dict[str, Any]) -> list[dict[str, Any]]:
        """Completed files listed for a member, ordered by source then id (spec §2.2)."""
        with self.lock:
            sources = self.visible_sources(member)
            own = self.files_by_member.get(member["project_member_id"], {})
            files = [f for f in own.values() if f["completed"] and f["source"] in sources]
        files.sort(key=lambda f: (f["source"], f["id"]))
        return files

    def new_download_key(self, file_id: int) -> str:
        with self.lock:
            key = str(uuid.uuid4())
            self.download_keys[key] = (file_id, self.now() + DOWNLOAD_KEY_LIFETIME)
            if len(self.download_keys) > MAX_DOWNLOAD_KEYS:
                # Bounded memory under benchmarks that list thousands of files in a loop:
                # the oldest key goes first (dicts keep insertion order).
                del self.download_keys[next(iter(self.download_keys))]
            return key

    def prune_download_keys(self) -> None:
        with self.lock:
            now = self.now()
            for key in [k for k, (_, exp) in self.download_keys.items() if exp <= now]:
                del self.download_keys[key]
