"""The WeCom / WeChat message-encryption scheme ("WXBizMsgCrypt"), byte for byte.

Used by WeCom (企业微信) callbacks, WeCom third-party suite callbacks, WeCom smart robots and the
WeChat Official Account's "safe mode" (安全模式). Only the receive id differs:

==============================  ===========================================
who pushes                      receive_id
==============================  ===========================================
WeCom self-built app callback   the CorpID (``ww…`` / ``wx…``)
WeCom third-party suite         the suite_id (or the CorpID, per event)
WeCom smart robot               ``""`` (empty string)
WeChat Official Account         the AppID (``wx…``), see ``connectors.wechat_oa``
==============================  ===========================================

The protocol:

* ``msg_signature = sha1_hex("".join(sorted([token, timestamp, nonce, encrypt])))``
* ``aes_key = base64decode(EncodingAESKey + "=")`` — 43 characters in, 32 bytes out;
  ``iv = aes_key[:16]``; cipher AES-256-CBC.
* plaintext block = ``random(16 bytes) + len(msg) as 4-byte big-endian + msg (UTF-8) + receive_id``,
  PKCS#7-padded to a multiple of **32** bytes (not AES's 16), then encrypted and base64-encoded.

The signature is always checked (in constant time) *before* anything is decrypted, so a forged
message never reaches the cipher and padding errors cannot be used as an oracle.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import string
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from connectors.wecom.envelope import CallbackEnvelope, build_reply_xml, parse_callback_xml
from connectors.wecom.errors import BadCiphertext, BadKey, ReceiveIdMismatch, SignatureMismatch
from wording import Msg

ENCODING_AES_KEY_LENGTH = 43
"""An EncodingAESKey is 43 characters of base64 (a 32-byte key without its trailing ``=``)."""

PAD_BLOCK_SIZE = 32
"""The scheme pads with PKCS#7 to 32-byte blocks, whatever AES's own 16-byte block size."""

RANDOM_PREFIX_LENGTH = 16
_LENGTH_PREFIX = struct.Struct(">I")
_AES_BLOCK = 16
_BASE64_ALPHABET = frozenset(string.ascii_letters + string.digits + "+/")


def compute_signature(token: str, timestamp: str | int, nonce: str, encrypt: str) -> str:
    """``msg_signature``: SHA1 hex of the lexicographically sorted concatenation of the four values."""
    parts = sorted([token, str(timestamp), nonce, encrypt])
    return hashlib.sha1("".join(parts).encode("utf-8")).hexdigest()  # noqa: S324 - SHA1 is the protocol


def decode_aes_key(encoding_aes_key: str) -> bytes:
    """Turn a 43-character EncodingAESKey into the 32-byte AES key, or raise :class:`BadKey`.

    The key itself is never put into the error message; only its length or the offending positions.
    """
    where = "copy it again from the admin console (应用 › 接收消息 › 设置API接收, or 服务器配置)"
    if len(encoding_aes_key) != ENCODING_AES_KEY_LENGTH:
        raise BadKey(
            Msg("EncodingAESKey must be exactly %(encoding_aes_key_length)s characters, got %(count)s; %(where)s "
                "without quotes, spaces or a trailing '='", encoding_aes_key_length=ENCODING_AES_KEY_LENGTH,
                count=len(encoding_aes_key), where=where)
        )
    bad = [i for i, ch in enumerate(encoding_aes_key) if ch not in _BASE64_ALPHABET]
    if bad:
        raise BadKey(Msg("EncodingAESKey has characters outside base64 (A-Z a-z 0-9 + /) at positions %(bad)s; "
                         "%(where)s", bad=bad, where=where))
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error as exc:  # pragma: no cover - unreachable after the checks above
        raise BadKey(Msg("EncodingAESKey is not valid base64; %(where)s", where=where)) from exc
    if len(key) != 32:  # pragma: no cover - 43 base64 characters always give 32 bytes
        raise BadKey(Msg("EncodingAESKey decodes to %(count)s bytes instead of 32; %(where)s", count=len(key),
                         where=where))
    return key


def _pkcs7_pad(data: bytes) -> bytes:
    amount = PAD_BLOCK_SIZE - len(data) % PAD_BLOCK_SIZE
    return data + bytes([amount]) * amount


def _pkcs7_unpad(data: bytes) -> bytes:
    amount = data[-1] if data else 0
    if not 1 <= amount <= PAD_BLOCK_SIZE or amount > len(data) or data[-amount:] != bytes([amount]) * amount:
        raise BadCiphertext(
            Msg("the message decrypted to invalid padding: the EncodingAESKey does not match the one configured in "
                "the admin console (the signature was fine, so the token is right)")
        )
    return data[:-amount]


class WeComCrypto:
    """Verify, decrypt and encrypt WeCom / WeChat callback messages for one (token, key, receive id).

    ``token`` and ``encoding_aes_key`` are the values configured in the admin console; ``receive_id`` is
    the CorpID, suite_id, AppID or ``""`` (see the module docstring). The same class serves the WeChat
    Official Account's safe mode, under the alias ``connectors.wechat_oa.WeChatOACrypto``.
    """

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        if not token:
            raise ValueError(Msg("token must not be empty: use the Token configured next to the EncodingAESKey"))
        self._token = token
        self._key = decode_aes_key(encoding_aes_key)
        self._receive_id = receive_id

    def __repr__(self) -> str:  # never show the token or key
        return f"{type(self).__name__}(receive_id={self._receive_id!r})"

    @property
    def receive_id(self) -> str:
        return self._receive_id

    # --- signatures -------------------------------------------------------------------------------

    def signature(self, timestamp: str | int, nonce: str, encrypt: str) -> str:
        """The ``msg_signature`` of an encrypted value under this token."""
        return compute_signature(self._token, timestamp, nonce, encrypt)

    def verify_signature(self, msg_signature: str, timestamp: str | int, nonce: str, encrypt: str) -> None:
        """Raise :class:`SignatureMismatch` unless ``msg_signature`` signs ``encrypt`` (constant time)."""
        expected = self.signature(timestamp, nonce, encrypt).encode("ascii")
        given = msg_signature.strip().lower().encode("utf-8")
        if hmac.compare_digest(expected, given):
            return
        if " " in encrypt:
            raise SignatureMismatch(Msg(
                "msg_signature does not match SHA1(sort(token, timestamp, nonce, encrypt)): check that the "
                "Token matches the admin console and that timestamp, nonce and the encrypted value are passed "
                "exactly as received. The encrypted value contains a space: a '+' was probably form-decoded into "
                "' '; URL-decode the query string exactly once, with percent-decoding only."))
        raise SignatureMismatch(Msg(
            "msg_signature does not match SHA1(sort(token, timestamp, nonce, encrypt)): check that the "
            "Token matches the admin console and that timestamp, nonce and the encrypted value are passed "
            "exactly as received."))

    # --- the three operations of the official sample code ---------------------------------------------

    def verify_url(self, msg_signature: str, timestamp: str | int, nonce: str, echostr: str) -> str:
        """Answer the GET URL-verification request: verify, decrypt and return the plaintext echostr.

        ``echostr`` must be the URL-decoded query value; reply with the returned string as the body.
        """
        return self.decrypt(msg_signature, timestamp, nonce, echostr)

    def decrypt(self, msg_signature: str, timestamp: str | int, nonce: str, encrypt: str) -> str:
        """Verify ``msg_signature`` over ``encrypt``, decrypt it and check the receive id."""
        self.verify_signature(msg_signature, timestamp, nonce, encrypt)
        return self._decrypt(encrypt)

    def encrypt(
        self, plaintext: str, timestamp: str | int, nonce: str, *, random_prefix: bytes | None = None
    ) -> tuple[str, str]:
        """Encrypt ``plaintext`` and sign it: returns ``(base64 ciphertext, msg_signature)``.

        ``random_prefix`` (16 bytes) exists for reproducible tests; leave it out in production.
        """
        if random_prefix is None:
            random_prefix = secrets.token_bytes(RANDOM_PREFIX_LENGTH)
        elif len(random_prefix) != RANDOM_PREFIX_LENGTH:
            raise ValueError(Msg("random_prefix must be %(random_prefix_length)s bytes, got %(count)s",
                                 random_prefix_length=RANDOM_PREFIX_LENGTH, count=len(random_prefix)))
        message = plaintext.encode("utf-8")
        block = random_prefix + _LENGTH_PREFIX.pack(len(message)) + message + self._receive_id.encode("utf-8")
        encryptor = self._cipher().encryptor()
        ciphertext = encryptor.update(_pkcs7_pad(block)) + encryptor.finalize()
        encrypt = base64.b64encode(ciphertext).decode("ascii")
        return encrypt, self.signature(timestamp, nonce, encrypt)

    # --- envelope conveniences --------------------------------------------------------------------

    def decrypt_callback(self, msg_signature: str, timestamp: str | int, nonce: str, body: str | bytes) -> str:
        """Parse a POSTed ``<xml><Encrypt>…</Encrypt></xml>`` body, verify and decrypt it."""
        envelope: CallbackEnvelope = parse_callback_xml(body)
        return self.decrypt(msg_signature, timestamp, nonce, envelope.encrypt)

    def encrypt_reply(self, plaintext: str, timestamp: str | int, nonce: str) -> str:
        """Encrypt a passive-reply message and wrap it in the reply XML envelope."""
        encrypt, msg_signature = self.encrypt(plaintext, timestamp, nonce)
        return build_reply_xml(encrypt, msg_signature, timestamp, nonce)

    # --- internals --------------------------------------------------------------------------------

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))

    def _decrypt(self, encrypt: str) -> str:
        try:
            ciphertext = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadCiphertext(
                Msg("the encrypted value is not valid base64: pass the <Encrypt> text or the URL-decoded echostr "
                    "exactly as received")
            ) from exc
        if not ciphertext or len(ciphertext) % _AES_BLOCK:
            raise BadCiphertext(
                Msg("the encrypted value decodes to %(count)s bytes, not a non-zero multiple of the AES block size "
                    "%(aes_block)s: it was truncated or altered in transit", count=len(ciphertext),
                    aes_block=_AES_BLOCK)
            )
        decryptor = self._cipher().decryptor()
        block = _pkcs7_unpad(decryptor.update(ciphertext) + decryptor.finalize())
        header = RANDOM_PREFIX_LENGTH + _LENGTH_PREFIX.size
        if len(block) < header:
            raise BadCiphertext(Msg("the decrypted message is shorter than its 20-byte header: wrong EncodingAESKey?"))
        (length,) = _LENGTH_PREFIX.unpack_from(block, RANDOM_PREFIX_LENGTH)
        if length > len(block) - header:
            raise BadCiphertext(
                Msg("the decrypted message claims %(length)s bytes but only %(count)s follow: wrong EncodingAESKey?",
                    length=length, count=len(block) - header)
            )
        message, receive_id = block[header : header + length], block[header + length :]
        if not hmac.compare_digest(receive_id, self._receive_id.encode("utf-8")):
            raise ReceiveIdMismatch(
                Msg("the message is addressed to receive id %(value)s, but this crypto was set up for "
                    "%(receive_id)s: use the CorpID for a self-built WeCom app, the suite_id for third-party suite "
                    "callbacks, the AppID for a WeChat Official Account, or '' for a smart robot",
                    value=repr(receive_id.decode('utf-8', 'replace')), receive_id=repr(self._receive_id))
            )
        try:
            return message.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadCiphertext(Msg("the decrypted message is not UTF-8 text")) from exc
