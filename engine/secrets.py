"""Secrets at rest: connector credentials are encrypted with the instance key (Fernet: AES-128-CBC +
HMAC-SHA256), never stored or logged in clear.

The key comes from ``TIDEFLOW_SECRET_KEY`` (a Fernet key: 32 url-safe base64 bytes) or, for the
embedded stack, from ``<data dir>/secret.key``, created on first use with mode 0600. Losing the key
means re-entering connector secrets; back it up with the database.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from engine.settings import get_settings
from engine.text import Msg, MsgError


class SecretsError(MsgError):
    """Secrets that cannot be decrypted (wrong instance key) or a malformed key."""


def _key_file() -> Path:
    return get_settings().data_dir / "secret.key"


@lru_cache(maxsize=4)
def _fernet(key: str) -> Fernet:
    try:
        return Fernet(key.encode())
    except (ValueError, TypeError):
        raise SecretsError(Msg("TIDEFLOW_SECRET_KEY is not a Fernet key; generate one with python -c "
                               "'from cryptography.fernet import Fernet; "
                               "print(Fernet.generate_key().decode())'")
                           ) from None


def instance_key() -> str:
    configured = get_settings().secret_key.get_secret_value()
    if configured:
        return configured
    path = _key_file()
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key)
    return key


def encrypt(values: dict[str, Any]) -> str:
    """Encrypt a dict of secrets for storage ("" for none)."""
    if not values:
        return ""
    return _fernet(instance_key()).encrypt(json.dumps(values, sort_keys=True).encode()).decode()


def decrypt(token: str) -> dict[str, Any]:
    if not token:
        return {}
    try:
        data = json.loads(_fernet(instance_key()).decrypt(token.encode()))
    except InvalidToken:
        raise SecretsError(Msg("stored secrets cannot be decrypted with this instance key; restore "
                               "the key file or re-enter the connector's secrets")) from None
    if not isinstance(data, dict):
        raise SecretsError(Msg("stored secrets are not an object"))
    return data
