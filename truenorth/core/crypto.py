"""Encryption at rest with the instance's keys (TRUENORTH_ENCRYPTION_KEYS, from TRUENORTH_ENCRYPTION_KEY or
the data directory's encryption_key file).

Each use derives its own Fernet keys from every configured key with HKDF and a purpose label (`info`), so a
value sealed for one purpose never opens for another. The first key encrypts, all of them decrypt: put a new
key in front of the old ones to rotate."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from truenorth.core.errors import ValidationFailed


def fernet(info: bytes) -> MultiFernet:
    """A MultiFernet over the configured keys, derived for the purpose `info`."""
    keys = []
    for raw in settings.TRUENORTH_ENCRYPTION_KEYS:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(raw.encode())
        keys.append(Fernet(base64.urlsafe_b64encode(derived)))
    if not keys:
        raise ValidationFailed("No encryption key is configured (TRUENORTH_ENCRYPTION_KEY).", field="config")
    return MultiFernet(keys)


def seal(text: str, info: bytes) -> str:
    """`text` encrypted (and authenticated) with the current key for the purpose `info`."""
    return fernet(info).encrypt(text.encode()).decode()


def unseal(token: str, info: bytes) -> str | None:
    """What `seal` encrypted for `info`, or None when no configured key opens it (changed keys, damage)."""
    try:
        return fernet(info).decrypt(token.encode()).decode()
    except (InvalidToken, ValueError):
        return None


def reseal(token: str, info: bytes) -> str:
    """Re-encrypt with the current (first) key; raises InvalidToken when no key opens it."""
    return fernet(info).rotate(token.encode()).decode()
