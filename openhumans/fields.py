"""Tokens encrypted at rest: :class:`EncryptedTokenField` and the keys it uses.

A member's tokens give access to their health data for as long as they stay in the project,
so a copied database (a backup, a dump for debugging, a read replica) must not give them
away. Every token column is stored as ``ohenc1:`` followed by a Fernet token (AES-128-CBC
and HMAC-SHA256, from ``cryptography``), under keys from ``OPENHUMANS_TOKEN_KEYS``:

- a list of secrets; the first encrypts, every one decrypts, so a key is rotated by putting
  a new one first, running ``manage.py openhumans_reencrypt_tokens``, then dropping the old;
- unset, the keys are derived from ``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS`` (Django's own
  rotation keeps working), and check ``openhumans.W006`` says so on a deployed site: the
  tokens are then only as safe as the secret key, and changing it without the fallback
  loses every member.

Each secret is stretched into a Fernet key with HKDF-SHA256 (its own salt), so a setting
can be any long random string, as ``SECRET_KEY`` is. A value read without the prefix is a
token stored in plain text (by 0.2.0, or before migration 0008) and is returned as is; the
next write encrypts it. Encryption is randomized, so token columns cannot be searched: every
lookup except ``isnull`` is refused (a FieldError), which also keeps them out of admin
filters.
"""

from __future__ import annotations

import base64
import functools
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import FieldError
from django.db import models

from .conf import get_setting
from .exceptions import OpenHumansConfigurationError

__all__ = ["PREFIX", "EncryptedTokenField", "TokenDecryptionError", "decrypt", "encrypt"]

#: Marks an encrypted value (the version of the format: Fernet under HKDF-derived keys).
PREFIX = "ohenc1:"


class TokenDecryptionError(OpenHumansConfigurationError):
    """A stored token could not be decrypted with any configured key (a key was dropped?)."""


def _secrets() -> tuple[str, ...]:
    keys = get_setting("OPENHUMANS_TOKEN_KEYS")
    if keys:
        return tuple(keys)
    fallbacks = getattr(settings, "SECRET_KEY_FALLBACKS", None) or ()
    return (settings.SECRET_KEY, *fallbacks)


@functools.lru_cache(maxsize=8)
def _fernet(secrets: tuple[str, ...]) -> MultiFernet:
    def derive(secret: str) -> Fernet:
        hkdf = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=b"django-open-humans token encryption",
            info=b"ohenc1",
        )
        return Fernet(base64.urlsafe_b64encode(hkdf.derive(secret.encode())))

    return MultiFernet([derive(secret) for secret in secrets])


def encrypt(plaintext: str) -> str:
    """Return ``plaintext`` encrypted with the first key, as stored in a token column."""
    return PREFIX + _fernet(_secrets()).encrypt(plaintext.encode()).decode("ascii")


def decrypt(stored: str) -> str:
    """Return the token a column holds: decrypted, or as is if stored in plain text.

    Raises TokenDecryptionError (never showing the value) when no configured key fits.
    """
    if not stored.startswith(PREFIX):
        return stored  # plain text from 0.2.0 or before migration 0008
    try:
        return _fernet(_secrets()).decrypt(stored[len(PREFIX) :].encode("ascii")).decode()
    except (InvalidToken, UnicodeError):
        raise TokenDecryptionError(
            "A stored Open Humans token could not be decrypted with any key of "
            "OPENHUMANS_TOKEN_KEYS (or, unset, SECRET_KEY and SECRET_KEY_FALLBACKS): was the "
            "key it was encrypted with removed? Put it back (after the current first key)."
        ) from None


def needs_reencryption(stored: str | None) -> bool:
    """Whether a column's value is plain text or encrypted with a key other than the first."""
    if not stored:
        return False
    if not stored.startswith(PREFIX):
        return True
    first = _fernet(_secrets()[:1])
    try:
        first.decrypt(stored[len(PREFIX) :].encode("ascii"))
    except (InvalidToken, UnicodeError):
        return True
    return False


class EncryptedTokenField(models.TextField):
    """A token, encrypted in the database and plain text in Python; never searchable.

    Dumps (``dumpdata``) carry the encrypted form, and loading one decrypts it.
    """

    description = "An Open Humans token, encrypted at rest"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        return None if value is None else decrypt(value)

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            return decrypt(value)
        return super().to_python(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None:
            return None
        return encrypt(str(value))

    def value_to_string(self, obj: models.Model) -> str:
        value = self.value_from_object(obj)
        return "" if value is None else encrypt(str(value))

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name == "isnull":
            return super().get_lookup(lookup_name)
        raise FieldError(
            f"{self.model.__name__}.{self.name} is encrypted (with a random IV): "
            f"'{lookup_name}' lookups on it are refused; only 'isnull' is allowed."
        )

    def get_transform(self, lookup_name: str) -> Any:
        return None
