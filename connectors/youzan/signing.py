"""Youzan Cloud (有赞云) message-push verification.

Every push is POSTed as JSON with the header ``Event-Sign`` (alongside ``Event-Type`` and
``Client-Id``). Per the 有赞云 "消息推送数据 MD5 校验示例" (developers.youzanyun.com) and
doc.youzanyun.com's push guide::

    Event-Sign = MD5(client_id + entity + client_secret)   # lower-case hex

where ``entity`` is the request body exactly as received — do not URL-decode or re-serialise it.
"""

from __future__ import annotations

import hashlib
import hmac

from connectors.errors import SignatureVerificationError
from wording import Msg


class YouzanSignatureError(SignatureVerificationError):
    """A Youzan push did not verify."""


def compute_event_sign(client_id: str, client_secret: str, body: bytes) -> str:
    """``Event-Sign`` of a push body: MD5 hex of ``client_id + body + client_secret``."""
    data = client_id.encode("utf-8") + body + client_secret.encode("utf-8")
    return hashlib.md5(data).hexdigest()  # noqa: S324 - MD5 is what the push protocol specifies


def verify_event_sign(
    client_id: str, client_secret: str, body: bytes, event_sign: str, *, header_client_id: str | None = None
) -> None:
    """Raise :class:`YouzanSignatureError` unless ``event_sign`` signs ``body`` (constant time).

    ``header_client_id`` is the ``Client-Id`` header, checked against ``client_id`` when given.
    """
    if header_client_id is not None and header_client_id.strip() != client_id:
        raise YouzanSignatureError(
            Msg("the push is for Client-Id %(value)s, not this app's client_id: check which app's push URL points "
                "here", value=repr(header_client_id.strip()))
        )
    expected = compute_event_sign(client_id, client_secret, body).encode("ascii")
    if not hmac.compare_digest(expected, event_sign.strip().lower().encode("utf-8")):
        raise YouzanSignatureError(
            Msg("Event-Sign does not match MD5(client_id + body + client_secret): check the client_secret, and "
                "verify the raw body bytes as received, before any decoding or JSON parsing")
        )
