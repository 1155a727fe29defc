"""WeChat Official Account (微信公众号) server-URL signature, the one used in *every* message mode.

When the server URL is saved, and on every push, WeChat adds ``signature``, ``timestamp`` and
``nonce`` to the query string: ``signature = sha1_hex("".join(sorted([token, timestamp, nonce])))``
(no message body takes part). The GET verification echoes ``echostr`` back in plaintext once the
signature checks. In safe mode (安全模式) the body is additionally encrypted and signed with
``msg_signature``; that part is :class:`connectors.wecom.crypto.WeComCrypto` with the AppID as the
receive id, exported here as ``WeChatOACrypto``.
"""

from __future__ import annotations

import hashlib
import hmac

from connectors.wecom.errors import SignatureMismatch
from wording import Msg


def compute_url_signature(token: str, timestamp: str | int, nonce: str) -> str:
    """SHA1 hex of the sorted concatenation of token, timestamp and nonce."""
    parts = sorted([token, str(timestamp), nonce])
    return hashlib.sha1("".join(parts).encode("utf-8")).hexdigest()  # noqa: S324 - SHA1 is the protocol


def verify_url_signature(token: str, signature: str, timestamp: str | int, nonce: str) -> None:
    """Raise :class:`SignatureMismatch` unless ``signature`` is right for this token (constant time)."""
    expected = compute_url_signature(token, timestamp, nonce).encode("ascii")
    if not hmac.compare_digest(expected, signature.strip().lower().encode("utf-8")):
        raise SignatureMismatch(
            Msg("signature does not match SHA1(sort(token, timestamp, nonce)): check that the Token equals the one "
                "on the 公众号 服务器配置 page and that timestamp and nonce are passed as received")
        )
