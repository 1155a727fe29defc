"""Temporal payloads encrypted at rest: what journeys carry (customer snapshots, event payloads with phone
numbers, rendered messages, ticket texts) is stored in Temporal's database — the embedded stack's
``temporal.db`` or a production cluster's — only as ciphertext.

Every client that talks to Temporal (the web app, the worker, the CLI) connects through
:func:`connect`, which adds :class:`EncryptionCodec` to the data converter: payloads are encrypted with
Fernet (AES-128-CBC + HMAC-SHA256) under a key derived from the instance key
(``TIDEFLOW_SECRET_KEY`` or ``<data dir>/secret.key``, see engine/secrets.py). Payloads that are not
encrypted (histories recorded before, test servers) are read as they are. ``TIDEFLOW_TEMPORAL_ENCRYPTION
=false`` turns encryption off (e.g. to read histories in the Temporal UI without a codec server).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.converter import DataConverter, PayloadCodec

from engine import tracing
from engine.settings import Settings, get_settings

ENCODING = b"binary/encrypted"
_INFO = b"tideflow/temporal-payloads/v1\x00"


def derive_key(instance_key: str) -> bytes:
    """The Fernet key for payloads, derived from (never equal to) the instance key."""
    return base64.urlsafe_b64encode(hashlib.sha256(_INFO + instance_key.encode()).digest())


class EncryptionCodec(PayloadCodec):
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)
        self.key_id = hashlib.sha256(key).hexdigest()[:12].encode()

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [Payload(metadata={"encoding": ENCODING, "encryption-key-id": self.key_id},
                        data=self._fernet.encrypt(p.SerializeToString())) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out: list[Payload] = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                out.append(payload)  # written without encryption: read as it is
                continue
            try:
                plain = self._fernet.decrypt(payload.data)
            except InvalidToken:
                raise ValueError("a Temporal payload was encrypted with another instance key (key id "
                                 f"{payload.metadata.get('encryption-key-id', b'?').decode()}): set the same "
                                 "TIDEFLOW_SECRET_KEY on every web and worker process") from None
            decoded = Payload()
            decoded.ParseFromString(plain)
            out.append(decoded)
        return out


def data_converter(settings: Settings | None = None) -> DataConverter:
    settings = settings or get_settings()
    if not settings.temporal_encryption:
        return DataConverter.default
    from engine.secrets import instance_key

    return dataclasses.replace(DataConverter.default, payload_codec=EncryptionCodec(derive_key(instance_key())))


async def connect(settings: Settings | None = None) -> Client:
    """A Temporal client for this instance: the configured address and namespace, payloads encrypted."""
    settings = settings or get_settings()
    return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace,
                                data_converter=data_converter(settings), interceptors=tracing.interceptors())
