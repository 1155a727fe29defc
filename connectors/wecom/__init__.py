"""WeCom (企业微信) connector. The protocol layer: the WXBizMsgCrypt callback encryption scheme."""

from connectors.wecom.crypto import WeComCrypto, compute_signature, decode_aes_key
from connectors.wecom.envelope import (
    CallbackEnvelope,
    build_reply_json,
    build_reply_xml,
    parse_callback_json,
    parse_callback_xml,
)
from connectors.wecom.errors import (
    BadCiphertext,
    BadEnvelope,
    BadKey,
    ReceiveIdMismatch,
    SignatureMismatch,
    WeComCryptoError,
)

__all__ = [
    "BadCiphertext",
    "BadEnvelope",
    "BadKey",
    "CallbackEnvelope",
    "ReceiveIdMismatch",
    "SignatureMismatch",
    "WeComCrypto",
    "WeComCryptoError",
    "build_reply_json",
    "build_reply_xml",
    "compute_signature",
    "decode_aes_key",
    "parse_callback_json",
    "parse_callback_xml",
]
