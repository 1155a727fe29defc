"""A double of WeCom's Finance SDK (会话内容存档) that hands out archived chats in the SDK's real shapes.

It implements :class:`connectors.wecom.archive.FinanceSdk` like :class:`~connectors.wecom.archive.OfficialSdk`
does, so the whole pipeline (pull → RSA → DecryptData → store → match → alert) runs without WeCom:

* ``get_chat_data(seq, limit)`` returns the records after ``seq`` (at most ``limit``, 1..1000, or
  error 10000 as the SDK answers), each with ``seq``, ``msgid``, ``publickey_ver``,
  ``encrypt_random_key`` — base64 of an **RSA-2048 PKCS#1 v1.5 encryption under the public key of
  that version**, exactly what WeCom sends — and ``encrypt_chat_msg``;
* messages are the JSON of document 91774 (``msgid``, ``action``, ``from``, ``tolist``, ``roomid``,
  ``msgtime`` in milliseconds, ``msgtype`` and the body named after it);
* ``decrypt_data(random_key, encrypt_chat_msg)``: the real SDK's symmetric format is internal to the
  native library, so the double encrypts with its own AES-256-CBC under the random key — what is
  tested is that Tideflow RSA-decrypts the right key version and hands its result to DecryptData;
* ``get_media_data`` serves files in chunks with an ``outindexbuf`` (``Range:bytes=…`` like the
  SDK), ``is_finish`` on the last;
* :meth:`fail_next` makes the next call answer an SDK error code (10001 network, 10009 untrusted IP …).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from connectors.wecom.archive import ArchiveDecryptError, EncryptedRecord, MediaChunk, check_limit, sdk_error


@lru_cache(maxsize=4)
def key_pair(version: int) -> tuple[rsa.RSAPrivateKey, str]:
    """An RSA-2048 key per version (cached: generating one takes a moment), and its PKCS#1 PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption()).decode()
    return key, pem


def private_pem(version: int) -> str:
    return key_pair(version)[1]


@dataclass
class FinanceSdkDouble:
    corp_id: str = "ww1436e0e65a779aee"
    key_version: int = 1
    chunk_size: int = 64 * 1024
    records: list[EncryptedRecord] = field(default_factory=list)
    media: dict[str, bytes] = field(default_factory=dict)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    closed: bool = False
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- what WeCom archived ---------------------------------------------------------------------------
    def add(self, plain: dict[str, Any], *, version: int | None = None) -> EncryptedRecord:
        """Archive one message (the decrypted JSON); the record as GetChatData will return it."""
        ver = self.key_version if version is None else version
        public = key_pair(ver)[0].public_key()
        random_key = base64.b32encode(os.urandom(20)).decode()[:32]  # 32 printable characters
        encrypted_key = base64.b64encode(public.encrypt(random_key.encode(), padding.PKCS1v15())).decode()
        with self._lock:
            seq = next(self._seq)
            record = EncryptedRecord(seq=seq, msgid=str(plain["msgid"]), publickey_ver=ver,
                                     encrypt_random_key=encrypted_key,
                                     encrypt_chat_msg=_aes_encrypt(random_key, json.dumps(plain, ensure_ascii=False)))
            self.records.append(record)
        return record

    def text(self, sender: str, to: list[str], content: str, *, roomid: str = "", msgid: str | None = None,
             at_ms: int | None = None, version: int | None = None) -> EncryptedRecord:
        return self.add({"msgid": msgid or f"m{len(self.records) + 1:06d}_{int(time.time())}_external",
                         "action": "send", "from": sender, "tolist": to, "roomid": roomid,
                         "msgtime": at_ms if at_ms is not None else int(time.time() * 1000), "msgtype": "text",
                         "text": {"content": content}}, version=version)

    def image(self, sender: str, to: list[str], data: bytes, *, msgid: str | None = None) -> EncryptedRecord:
        fileid = base64.b64encode(os.urandom(24)).decode()
        self.media[fileid] = data
        import hashlib

        return self.add({"msgid": msgid or f"img{len(self.records) + 1:06d}", "action": "send", "from": sender,
                         "tolist": to, "roomid": "", "msgtime": int(time.time() * 1000), "msgtype": "image",
                         "image": {"md5sum": hashlib.md5(data).hexdigest(),  # noqa: S324 - WeCom's own field
                                   "filesize": len(data), "sdkfileid": fileid}})

    def fail_next(self, *codes: int) -> None:
        self.failures.extend(codes)

    def _maybe_fail(self, operation: str) -> None:
        if self.failures:
            raise sdk_error(operation, self.failures.pop(0))

    # -- the FinanceSdk protocol ------------------------------------------------------------------------
    def get_chat_data(self, seq: int, limit: int) -> list[EncryptedRecord]:
        self.calls.append(("GetChatData", (seq, limit)))
        try:
            check_limit(limit)
        except ValueError:
            raise sdk_error("GetChatData", 10000) from None
        self._maybe_fail("GetChatData")
        with self._lock:
            return [r for r in self.records if r.seq > seq][:limit]

    def decrypt_data(self, random_key: str, encrypt_chat_msg: str) -> dict[str, Any]:
        self.calls.append(("DecryptData", None))
        try:
            return dict(json.loads(_aes_decrypt(random_key, encrypt_chat_msg)))
        except (ValueError, UnicodeDecodeError):
            raise ArchiveDecryptError("Finance SDK DecryptData answered 10008 (DecryptMsg error)") from None

    def get_media_data(self, sdkfileid: str, indexbuf: str) -> MediaChunk:
        self.calls.append(("GetMediaData", indexbuf))
        self._maybe_fail("GetMediaData")
        data = self.media.get(sdkfileid)
        if data is None:
            raise sdk_error("GetMediaData", 10005)
        start = int(indexbuf.split("=")[1].split("-")[0]) if indexbuf else 0
        end = min(len(data), start + self.chunk_size)
        finished = end >= len(data)
        following = "" if finished else f"Range:bytes={end}-{min(len(data), end + self.chunk_size) - 1}"
        return MediaChunk(data[start:end], following, finished)

    def close(self) -> None:
        self.closed = True


def _aes_encrypt(key: str, text: str) -> str:
    raw = key.encode()
    padder = sym_padding.PKCS7(128).padder()
    data = padder.update(text.encode()) + padder.finalize()
    enc = Cipher(algorithms.AES(raw), modes.CBC(raw[:16])).encryptor()
    return base64.b64encode(enc.update(data) + enc.finalize()).decode()


def _aes_decrypt(key: str, b64: str) -> str:
    raw = key.encode()
    if len(raw) != 32:
        raise ValueError("bad key")
    dec = Cipher(algorithms.AES(raw), modes.CBC(raw[:16])).decryptor()
    data = dec.update(base64.b64decode(b64)) + dec.finalize()
    unpadder = sym_padding.PKCS7(128).unpadder()
    return (unpadder.update(data) + unpadder.finalize()).decode()
