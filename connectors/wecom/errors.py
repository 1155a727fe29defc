"""Typed errors of the WeCom / WeChat message-encryption scheme (WXBizMsgCrypt).

The official sample code reports these as integer codes (-40001 … -40011); here each is a class
whose message says what is wrong and what to check.
"""

from __future__ import annotations

from connectors.errors import ConnectorProtocolError, SignatureVerificationError


class WeComCryptoError(ConnectorProtocolError):
    """Base class of every WeCom / WeChat message-crypto error."""


class BadKey(WeComCryptoError, ValueError):
    """The EncodingAESKey is not 43 characters of base64 that decode to a 32-byte AES key."""


class SignatureMismatch(WeComCryptoError, SignatureVerificationError):
    """msg_signature does not match SHA1(sort(token, timestamp, nonce, encrypt))."""


class BadCiphertext(WeComCryptoError):
    """The Encrypt / echostr value is not valid base64 AES-256-CBC output of this scheme."""


class ReceiveIdMismatch(WeComCryptoError):
    """The message decrypted, but it was addressed to another CorpID / AppID / suite id."""


class BadEnvelope(WeComCryptoError):
    """The callback body is not the expected ``<xml>…<Encrypt>…</Encrypt>…</xml>`` envelope."""
