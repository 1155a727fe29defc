"""The conversation archive (会话内容存档) through WeCom's Finance SDK: the one boundary Tideflow has
with the native library, and the decryption around it.

How WeCom hands out archived chats (developer.work.weixin.qq.com/document/path/91774):

1. ``GetChatData(seq, limit)`` returns up to 1,000 records after ``seq``; each carries ``seq``,
   ``msgid``, ``publickey_ver``, ``encrypt_random_key`` and ``encrypt_chat_msg``.
2. ``encrypt_random_key`` is base64 of an RSA (2048-bit, PKCS#1 v1.5) encryption under the corp's
   public key **of version** ``publickey_ver``: decrypt it with the matching private key (several
   versions stay in use while keys rotate, :class:`Keyring`).
3. ``DecryptData(random_key, encrypt_chat_msg)`` gives the message JSON (msgid, action, from,
   tolist, roomid, msgtime, msgtype and a body named after the msgtype).
4. Media (images, voice, video, files) come by ``sdkfileid`` with ``GetMediaData`` in chunks: each
   answer carries an ``outindexbuf`` to ask for the next chunk until ``is_finish``.

Only step 1 and 4 reach WeCom; RSA and DecryptData are local. The native library comes from the
``pywecomarchive`` wheel (why that wrapper: docs/workforce.md); :class:`OfficialSdk` is the only
code that touches it, behind the :class:`FinanceSdk` protocol that the tests' SDK double
(tests/connectors/finance_sdk_double.py) implements too. Nothing here logs a key, a secret or a
message body.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from connectors.wecom.api_errors import ApiRejected, ApiRetryable
from wording import N_, Msg, message_of
from wording.stored import read_stored, stored

#: records per GetChatData call
MAX_CHAT_DATA_LIMIT = 1000
#: the msgaudit_notify callback comes at most this often (seconds) while messages arrive
NOTIFY_INTERVAL_SECONDS = 15
#: SDK error codes (document path 91774, "错误码")
SDK_ERRORS: dict[int, str] = {
    10000: N_("request parameter error"),
    10001: N_("network error"),
    10002: N_("data parse error"),
    10003: N_("system call failed"),
    10005: N_("sdkfileid error"),
    10006: N_("decrypt failed"),
    10008: N_("DecryptMsg error"),
    10009: N_("this server's IP is not trusted (ip非法): add it to the archive's trusted IPs"),
    10010: N_("the requested data has expired"),
    10011: N_("SSL certificate error"),
}
RETRYABLE_SDK_ERRORS = frozenset({10001, 10003, 10011})


class ArchiveRetryable(ApiRetryable):
    """The SDK could not reach WeCom (network, system call): try the same pull again later."""


class ArchiveRejected(ApiRejected):
    """The SDK refused the request for good (parameters, untrusted IP, expired data, bad credentials)."""


class ArchiveDecryptError(ValueError):
    """One record could not be decrypted (missing key version, wrong key, corrupt data)."""

    def __init__(self, message: str, *, missing_key: bool = False) -> None:
        super().__init__(message)
        self.missing_key = missing_key


def sdk_error(operation: str, code: int) -> ApiRejected | ApiRetryable:
    what = Msg(SDK_ERRORS.get(code, N_("unknown SDK error")))
    if code in RETRYABLE_SDK_ERRORS:
        return ArchiveRetryable(Msg("Finance SDK %(operation)s answered %(code)s (%(what)s); retry later",
                                    operation=operation, code=code, what=what), api=operation, errcode=code)
    return ArchiveRejected(Msg("Finance SDK %(operation)s answered %(code)s (%(what)s)", operation=operation,
                               code=code, what=what), api=operation, errcode=code)


@dataclass(frozen=True)
class EncryptedRecord:
    """One GetChatData record, as the SDK returns it."""

    seq: int
    msgid: str
    publickey_ver: int
    encrypt_random_key: str
    encrypt_chat_msg: str


@dataclass(frozen=True)
class MediaChunk:
    data: bytes
    indexbuf: str
    is_finish: bool


class FinanceSdk(Protocol):
    """What Tideflow uses of WeCom's Finance SDK."""

    def get_chat_data(self, seq: int, limit: int) -> list[EncryptedRecord]: ...

    def decrypt_data(self, random_key: str, encrypt_chat_msg: str) -> dict[str, Any]: ...

    def get_media_data(self, sdkfileid: str, indexbuf: str) -> MediaChunk: ...

    def close(self) -> None: ...


def records_from(answer: Mapping[str, Any]) -> list[EncryptedRecord]:
    """The records of a GetChatData answer (``{"errcode", "errmsg", "chatdata": [...]}``)."""
    code = int(answer.get("errcode") or 0)
    if code:
        raise sdk_error("GetChatData", code)
    out = []
    for row in answer.get("chatdata") or []:
        if not isinstance(row, Mapping):
            continue
        out.append(EncryptedRecord(seq=int(row.get("seq") or 0), msgid=str(row.get("msgid") or ""),
                                   publickey_ver=int(row.get("publickey_ver") or 0),
                                   encrypt_random_key=str(row.get("encrypt_random_key") or ""),
                                   encrypt_chat_msg=str(row.get("encrypt_chat_msg") or "")))
    return out


class OfficialSdk:
    """WeCom's native Finance SDK through ``pywecomarchive``.

    The wrapper promises no concurrency on one instance, so every call holds this instance's lock;
    the archive pull runs one pull per corp at a time anyway (one workflow per connector). The native
    library is loaded when the first instance is made, never at import time.
    """

    def __init__(self, corp_id: str, secret: str, *, timeout: int = 10, proxy: str = "", proxy_password: str = "",
                 library_path: str | None = None) -> None:
        if not corp_id or not secret:
            raise ValueError(Msg("the archive needs the CorpID and the 会话内容存档 Secret"))
        try:
            from pywecomarchive import SdkCallError, SdkError, WecomArchiveSdk
        except ImportError:
            raise ArchiveRejected(Msg("the Finance SDK (pywecomarchive) is not installed on this platform; WeCom "
                                      "ships it for Linux x86_64/ARM64 and Windows x64 only"), api="Init") from None
        self._call_error: type[Exception] = SdkCallError
        self._sdk_error: type[Exception] = SdkError
        self._lock = threading.Lock()
        try:
            self._sdk = WecomArchiveSdk(corp_id, secret, proxy=proxy, passwd=proxy_password, timeout=timeout,
                                        library_path=library_path)
        except SdkCallError as exc:
            raise sdk_error("Init", int(getattr(exc, "code", 0))) from None
        except SdkError as exc:
            raise ArchiveRejected(Msg("the Finance SDK could not start: %(name)s", name=type(exc).__name__),
                                  api="Init") from None

    def __repr__(self) -> str:  # never show the secret
        return "OfficialSdk()"

    def _wrap(self, operation: str, exc: Exception) -> Exception:
        if isinstance(exc, self._call_error):
            return sdk_error(operation, int(getattr(exc, "code", 0)))
        return ArchiveRetryable(Msg("Finance SDK %(operation)s failed: %(name)s", operation=operation,
                                    name=type(exc).__name__), api=operation,
                                outcome_unknown=True)

    def get_chat_data(self, seq: int, limit: int) -> list[EncryptedRecord]:
        check_limit(limit)
        with self._lock:
            try:
                answer = self._sdk.get_chat_data(seq=seq, limit=limit)
            except self._sdk_error as exc:
                raise self._wrap("GetChatData", exc) from None
        return records_from(answer.model_dump(mode="json"))

    def decrypt_data(self, random_key: str, encrypt_chat_msg: str) -> dict[str, Any]:
        with self._lock:
            try:
                raw = self._sdk._adapter.decrypt_data(random_key, encrypt_chat_msg)
            except self._sdk_error as exc:
                error = self._wrap("DecryptData", exc)
                raise ArchiveDecryptError(message_of(error)) from None
        if not isinstance(raw, dict):
            raise ArchiveDecryptError(Msg("DecryptData did not give a JSON object"))
        return raw

    def get_media_data(self, sdkfileid: str, indexbuf: str) -> MediaChunk:
        with self._lock:
            try:
                chunk = self._sdk.get_media_data(sdkfileid, indexbuf)
            except self._sdk_error as exc:
                raise self._wrap("GetMediaData", exc) from None
        return MediaChunk(bytes(chunk.data), str(chunk.indexbuf), bool(chunk.is_finish))

    def close(self) -> None:
        with self._lock:
            self._sdk.close()


class IsolatedSdk:
    """:class:`OfficialSdk` in a child process of its own.

    WeCom's native library links its own OpenSSL, protobuf and curl statically and exports their
    symbols; loaded into a process that already holds other native libraries with the same symbols
    (google-re2's abseil, for one) it aborts the process (``free(): invalid pointer``). A worker loads
    many, so the SDK lives in a spawned child (a fresh interpreter that imports only this module),
    spoken to over a pipe: a crash of the native code ends the child — the call is retryable and the
    next one starts a new child — never the worker. The secret goes through the pipe, not the command
    line or the environment. One call at a time (the wrapper's rule).
    """

    def __init__(self, corp_id: str, secret: str, *, timeout: int = 10, proxy: str = "", proxy_password: str = "",
                 library_path: str | None = None, call_timeout: float = 300.0) -> None:
        if not corp_id or not secret:
            raise ValueError(Msg("the archive needs the CorpID and the 会话内容存档 Secret"))
        self._init = (corp_id, secret, timeout, proxy, proxy_password, library_path)
        self._call_timeout = call_timeout
        self._lock = threading.Lock()
        self._proc: Any = None
        self._conn: Any = None

    def __repr__(self) -> str:  # never show the secret
        return "IsolatedSdk()"

    def _start(self) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        proc = context.Process(target=_serve_sdk, args=(child,), daemon=True, name="wecom-finance-sdk")
        proc.start()
        child.close()
        self._proc, self._conn = proc, parent
        self._exchange("init", self._init)

    def _stop(self) -> None:
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.kill()
            self._proc.join(5)
        if self._conn is not None:
            self._conn.close()
        self._proc = self._conn = None

    def _exchange(self, op: str, args: tuple[Any, ...]) -> Any:
        try:
            self._conn.send((op, args))
            if not self._conn.poll(self._call_timeout):
                self._stop()
                raise ArchiveRetryable(Msg("Finance SDK %(op)s: no answer within %(call_timeout)ss; the SDK process "
                                           "was stopped", op=op, call_timeout=format(self._call_timeout, ".0f")),
                                       api=op, outcome_unknown=True)
            kind, payload = self._conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            self._stop()
            raise ArchiveRetryable(Msg("Finance SDK %(op)s: the SDK process ended unexpectedly; it restarts on the "
                                       "next call", op=op), api=op, outcome_unknown=True) from None
        if kind == "ok":
            return payload
        name, said, errcode, missing = payload
        message = read_stored(said)  # the child's Msg, template and values, so it is still translatable here
        if name == "ArchiveDecryptError":
            raise ArchiveDecryptError(message, missing_key=missing)
        if name == "ArchiveRejected":
            raise ArchiveRejected(message, api=op, errcode=errcode)
        if name == "ValueError":
            raise ValueError(message)
        raise ArchiveRetryable(message, api=op, errcode=errcode)

    def _call(self, op: str, *args: Any) -> Any:
        with self._lock:
            if self._proc is None or not self._proc.is_alive():
                self._stop()
                self._start()
            return self._exchange(op, args)

    def get_chat_data(self, seq: int, limit: int) -> list[EncryptedRecord]:
        check_limit(limit)
        return list(self._call("get_chat_data", seq, limit))

    def decrypt_data(self, random_key: str, encrypt_chat_msg: str) -> dict[str, Any]:
        try:
            return dict(self._call("decrypt_data", random_key, encrypt_chat_msg))
        except ArchiveRetryable as exc:
            # DecryptData is local and deterministic: the native code aborting on a record (it does on some
            # malformed input) would abort it again on every retry — the record is set aside, not retried
            raise ArchiveDecryptError(Msg("the native SDK aborted on this record (%(exc)s)",
                                          exc=message_of(exc))) from None

    def get_media_data(self, sdkfileid: str, indexbuf: str) -> MediaChunk:
        chunk = self._call("get_media_data", sdkfileid, indexbuf)
        assert isinstance(chunk, MediaChunk)
        return chunk

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._proc is not None and self._proc.is_alive():
                try:
                    self._conn.send(("close", ()))
                    self._proc.join(5)
                except (OSError, BrokenPipeError):
                    pass
            self._stop()


def _serve_sdk(conn: Any) -> None:
    """The child process of :class:`IsolatedSdk`: one OfficialSdk, one request at a time."""
    sdk: OfficialSdk | None = None
    while True:
        try:
            op, args = conn.recv()
        except (EOFError, OSError):
            return
        if op == "close":
            if sdk is not None:
                sdk.close()
            return
        try:
            if op == "init":
                corp_id, secret, timeout, proxy, proxy_password, library_path = args
                sdk = OfficialSdk(corp_id, secret, timeout=timeout, proxy=proxy, proxy_password=proxy_password,
                                  library_path=library_path)
                result: Any = None
            elif sdk is None:
                raise ArchiveRejected(Msg("the SDK is not initialised"), api=op)
            elif op == "get_chat_data":
                result = sdk.get_chat_data(*args)
            elif op == "decrypt_data":
                result = sdk.decrypt_data(*args)
            elif op == "get_media_data":
                result = sdk.get_media_data(*args)
            else:
                raise ValueError(Msg("unknown SDK operation %(op)s", op=repr(op)))
            conn.send(("ok", result))
        except (ArchiveDecryptError, ArchiveRejected, ArchiveRetryable, ValueError) as exc:
            # a pipe carries text: the Msg goes as its stored form (wording.stored) and is read back by the parent
            conn.send(("err", (type(exc).__name__, stored(message_of(exc)), getattr(exc, "errcode", None),
                               getattr(exc, "missing_key", False))))
        except Exception as exc:  # the child reports, the parent decides; never a secret in the message
            conn.send(("err", ("ArchiveRetryable", stored(Msg("Finance SDK %(op)s failed: %(error)s", op=op,
                                                              error=type(exc).__name__)), None, False)))


def check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_CHAT_DATA_LIMIT:
        raise ValueError(Msg("GetChatData takes a limit of 1..%(max_chat_data_limit)s, got %(limit)s",
                             max_chat_data_limit=MAX_CHAT_DATA_LIMIT, limit=limit))


# -- keys ----------------------------------------------------------------------------------------------


@dataclass
class Keyring:
    """The corp's archive private keys by ``publickey_ver``. Keys stay in memory only as loaded key
    objects; their PEM text is never kept or shown (``repr`` lists the versions)."""

    _keys: dict[int, rsa.RSAPrivateKey] = field(default_factory=dict)

    @classmethod
    def from_pems(cls, pems: Mapping[int, str]) -> Keyring:
        ring = cls()
        for version, pem in pems.items():
            ring.add(version, pem)
        return ring

    def add(self, version: int, pem: str) -> None:
        self._keys[int(version)] = load_private_key(pem)

    @property
    def versions(self) -> list[int]:
        return sorted(self._keys)

    def __repr__(self) -> str:
        return f"Keyring(versions={self.versions})"

    def random_key(self, record: EncryptedRecord) -> str:
        """RSA-decrypt (PKCS#1 v1.5) the record's ``encrypt_random_key`` with the key of its version."""
        key = self._keys.get(record.publickey_ver)
        if key is None:
            raise ArchiveDecryptError(Msg("no private key of version %(publickey_ver)s (have %(value)s): add it "
                                          "under the archive settings", publickey_ver=record.publickey_ver,
                                          value=self.versions or 'none'),
                                      missing_key=True)
        try:
            cipher = base64.b64decode(record.encrypt_random_key, validate=True)
            plain = key.decrypt(cipher, padding.PKCS1v15())
        except (binascii.Error, ValueError):
            raise ArchiveDecryptError(Msg("encrypt_random_key of %(value)s does not decrypt with key version "
                                          "%(publickey_ver)s: is it the right key?", value=record.msgid or 'a record',
                                          publickey_ver=record.publickey_ver)) from None
        try:
            return plain.decode("utf-8")
        except UnicodeDecodeError:
            raise ArchiveDecryptError(Msg("the decrypted random key is not text")) from None


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM (PKCS#1 ``BEGIN RSA PRIVATE KEY`` or PKCS#8), or the bare base64 body
    that WeCom's admin pages show. Errors never quote the key."""
    text = pem.strip()
    if "BEGIN" not in text:
        body = "".join(text.split())
        text = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(
            body[i:i + 64] for i in range(0, len(body), 64)) + "\n-----END RSA PRIVATE KEY-----"
    try:
        key = serialization.load_pem_private_key(text.encode("ascii", errors="strict"), password=None)
    except (ValueError, TypeError, UnicodeEncodeError, UnsupportedAlgorithm):
        raise ValueError(Msg("not an RSA private key in PEM (PKCS#1 or PKCS#8) without a password")) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(Msg("the key is not an RSA key"))
    if key.key_size < 2048:
        raise ValueError(Msg("the key has %(key_size)s bits; WeCom's archive keys have 2048", key_size=key.key_size))
    return key


# -- messages ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatMessage:
    """One decrypted archived message, with its readable text (what sensitive words match against)."""

    seq: int
    msgid: str
    action: str
    sender: str
    tolist: list[str]
    roomid: str
    msgtime: int
    msgtype: str
    text: str
    body: dict[str, Any]
    publickey_ver: int

    @property
    def sdkfileids(self) -> list[str]:
        """Media of this message to fetch with GetMediaData."""
        return list(_file_ids(self.body))


MEDIA_TYPES = frozenset({"image", "voice", "video", "file", "emotion", "meeting_voice_call", "voip_doc_share"})
#: message types that carry money between people
RED_PACKET_TYPES = frozenset({"redpacket", "external_redpacket"})


def _file_ids(body: Any) -> Iterator[str]:
    if isinstance(body, dict):
        for key, value in body.items():
            if key == "sdkfileid" and isinstance(value, str) and value:
                yield value
            else:
                yield from _file_ids(value)
    elif isinstance(body, list):
        for item in body:
            yield from _file_ids(item)


def readable_text(msgtype: str, body: Mapping[str, Any]) -> str:
    """The words a person reads in a message: the text of text/markdown, titles and descriptions of
    links, mini programs and news, file names, addresses, red-packet wishes, and the items of mixed
    and chat-record messages — never JSON keys or ids."""
    part = body.get(msgtype)
    if msgtype == "chatrecord" and isinstance(part, Mapping):
        return "\n".join(readable_text(str(i.get("type", "")).removeprefix("ChatRecord").lower(),
                                       {str(i.get("type", "")).removeprefix("ChatRecord").lower():
                                        _maybe_json(i.get("content"))})
                         for i in part.get("item") or [] if isinstance(i, Mapping)).strip()
    if msgtype == "mixed" and isinstance(part, Mapping):
        texts = []
        for item in part.get("item") or []:
            if isinstance(item, Mapping):
                kind = str(item.get("type") or "")
                texts.append(readable_text(kind, {kind: _maybe_json(item.get("content"))}))
        return "\n".join(t for t in texts if t).strip()
    if not isinstance(part, Mapping):
        return ""
    fields = ("content", "title", "description", "desc", "filename", "address", "wish", "displayname", "topic",
              "info", "name")
    texts = [str(part[f]) for f in fields if isinstance(part.get(f), str) and part.get(f)]
    for item in part.get("item") or []:
        if isinstance(item, Mapping):
            texts.extend(str(item[f]) for f in ("title", "description", "content") if isinstance(item.get(f), str))
    return "\n".join(texts).strip()


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return {"content": value}
    return value


def message_from(record: EncryptedRecord, plain: Mapping[str, Any]) -> ChatMessage:
    """A decrypted record as a :class:`ChatMessage` (switch messages have ``action`` switch and no msgtype)."""
    msgtype = str(plain.get("msgtype") or plain.get("action") or "")
    tolist = [str(t) for t in plain.get("tolist") or [] if t]
    return ChatMessage(seq=record.seq, msgid=str(plain.get("msgid") or record.msgid),
                       action=str(plain.get("action") or "send"), sender=str(plain.get("from") or plain.get("user")
                                                                              or ""),
                       tolist=tolist, roomid=str(plain.get("roomid") or ""),
                       msgtime=int(plain.get("msgtime") or plain.get("time") or 0), msgtype=msgtype,
                       text=readable_text(msgtype, plain), body=dict(plain), publickey_ver=record.publickey_ver)


@dataclass
class PullResult:
    """One GetChatData page, decrypted: the messages, the records that could not be decrypted (with
    why), and the highest seq seen (the cursor moves there once they are all stored)."""

    messages: list[ChatMessage] = field(default_factory=list)
    failed: list[tuple[EncryptedRecord, str, bool]] = field(default_factory=list)
    last_seq: int = 0
    fetched: int = 0


def pull_page(sdk: FinanceSdk, keyring: Keyring, seq: int, limit: int = MAX_CHAT_DATA_LIMIT) -> PullResult:
    """Fetch up to ``limit`` records after ``seq`` and decrypt each; a record that cannot be decrypted
    is returned in ``failed`` (never dropped), so the caller can keep it for a retry."""
    check_limit(limit)
    records = sdk.get_chat_data(seq, limit)
    result = PullResult(last_seq=seq, fetched=len(records))
    for record in sorted(records, key=lambda r: r.seq):
        result.last_seq = max(result.last_seq, record.seq)
        try:
            random_key = keyring.random_key(record)
            plain = sdk.decrypt_data(random_key, record.encrypt_chat_msg)
        except ArchiveDecryptError as exc:
            result.failed.append((record, str(exc), exc.missing_key))
            continue
        result.messages.append(message_from(record, plain))
    return result


def fetch_media(sdk: FinanceSdk, sdkfileid: str, *, max_bytes: int = 100 * 1024 * 1024,
                max_chunks: int = 10_000) -> Iterator[bytes]:
    """The chunks of one media file, following ``indexbuf`` until ``is_finish``; refuses files larger
    than ``max_bytes`` and an SDK that never finishes or never moves on."""
    indexbuf = ""
    total = 0
    for _ in range(max_chunks):
        chunk = sdk.get_media_data(sdkfileid, indexbuf)
        total += len(chunk.data)
        if total > max_bytes:
            raise ArchiveRejected(Msg("the media file is larger than %(max_bytes)s bytes", max_bytes=max_bytes),
                                  api="GetMediaData")
        yield chunk.data
        if chunk.is_finish:
            return
        if not chunk.indexbuf or chunk.indexbuf == indexbuf:
            raise ArchiveRejected(Msg("GetMediaData is not finished but gave no new indexbuf"), api="GetMediaData")
        indexbuf = chunk.indexbuf
    raise ArchiveRejected(Msg("GetMediaData did not finish in %(max_chunks)s chunks", max_chunks=max_chunks),
                          api="GetMediaData")
