"""抖店 (Douyin shop, op.jinritemai.com) open-API request signing and push verification.

Request signing, as the 抖店 "签名算法" guide (op.jinritemai.com/docs/guide-docs/10/23) and its
sample code in Go, Java and PHP describe it:

* ``param_json`` is the business parameters serialised as JSON with the keys of every object
  sorted (recursively), no whitespace, and nothing escaped that need not be: the guide's own
  example value ``"&<>='/ô汉😀"`` is sent as is — no ``\\u`` escapes, no ``\\/``, no HTML escaping.
  An empty parameter set is ``{}``.
* the string to sign is::

      app_secret + "app_key" + app_key + "method" + method + "param_json" + param_json
                 + "timestamp" + timestamp + "v" + v + app_secret

  i.e. the five fields in that fixed order, each as ``name + value``, wrapped in the secret.
* ``sign = HMAC-SHA256(key=app_secret, string_to_sign)``, lower-case hex, sent with
  ``sign_method=hmac-sha256``. The older ``md5`` method (``MD5(string_to_sign)``, lower-case hex)
  still works but is announced for removal; it is here for completeness.
* ``timestamp`` is unix seconds in the current guide (``now - 300 s <= timestamp <= now + 300 s``);
  older integrations sent ``yyyy-MM-dd HH:mm:ss`` in GMT+8. It is signed as the same text that is sent.
* ``v`` is ``"2"``; ``access_token`` and ``sign_method`` are sent but **not** signed.

Push verification (消息推送): each push carries the headers ``app-id`` and ``event-sign`` with
``event-sign = MD5(app_key + raw body + app_secret)`` in lower-case hex, computed over the body bytes
exactly as received. A push whose ``event-sign-method`` header says ``hmac-sha256`` is signed with
HMAC-SHA256 (key ``app_secret``) over the same text.

No published input/output vector could be found for either (the guide points to an online signing
tool instead); the tests pin the exact string to sign and digests computed by an independent
implementation (the ``openssl`` command line).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any, Literal

from connectors.errors import SignatureVerificationError
from wording import Msg

API_VERSION = "2"
SignMethod = Literal["hmac-sha256", "md5"]


class DouyinSignatureError(SignatureVerificationError):
    """A 抖店 push did not verify."""


def marshal_param_json(business_params: Mapping[str, Any]) -> str:
    """``param_json``: compact JSON, every object's keys sorted, non-ASCII and ``/`` left unescaped."""
    return json.dumps(business_params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def string_to_sign(
    *, app_key: str, app_secret: str, method: str, param_json: str, timestamp: str | int, v: str = API_VERSION
) -> str:
    """The exact text that is digested (secret + fixed-order name/value pairs + secret)."""
    pattern = f"app_key{app_key}method{method}param_json{param_json}timestamp{timestamp}v{v}"
    return f"{app_secret}{pattern}{app_secret}"


def sign_request(
    *,
    app_key: str,
    app_secret: str,
    method: str,
    param_json: str,
    timestamp: str | int,
    v: str = API_VERSION,
    sign_method: SignMethod = "hmac-sha256",
) -> str:
    """The ``sign`` query parameter of one open-API call (lower-case hex)."""
    text = string_to_sign(
        app_key=app_key, app_secret=app_secret, method=method, param_json=param_json, timestamp=timestamp, v=v
    ).encode("utf-8")
    if sign_method == "hmac-sha256":
        return hmac.new(app_secret.encode("utf-8"), text, hashlib.sha256).hexdigest()
    if sign_method == "md5":
        return hashlib.md5(text).hexdigest()  # noqa: S324 - the legacy protocol method
    raise ValueError(Msg("unknown 抖店 sign_method %(sign_method)s; allowed: 'hmac-sha256', 'md5'",
                         sign_method=repr(sign_method)))


def compute_event_sign(app_key: str, app_secret: str, body: bytes, method: SignMethod = "md5") -> str:
    """``event-sign`` of a push body: MD5 hex of ``app_key + body + app_secret`` (the default), or with
    ``event-sign-method: hmac-sha256`` the HMAC-SHA256 (key ``app_secret``) of that same text."""
    data = app_key.encode("utf-8") + body + app_secret.encode("utf-8")
    if method == "hmac-sha256":
        return hmac.new(app_secret.encode("utf-8"), data, hashlib.sha256).hexdigest()
    if method == "md5":
        return hashlib.md5(data).hexdigest()  # noqa: S324 - MD5 is what the push protocol specifies
    raise DouyinSignatureError(Msg("unknown event-sign-method %(value)s; allowed: 'md5', 'hmac-sha256'",
                                   value=repr(str(method)[:20])))


def verify_event_sign(
    app_key: str, app_secret: str, body: bytes, event_sign: str, *, app_id: str | None = None,
    method: SignMethod = "md5",
) -> None:
    """Raise :class:`DouyinSignatureError` unless the push is signed for this app (constant time).

    ``body`` is the raw request body; ``event_sign`` and ``app_id`` are the ``event-sign`` and
    ``app-id`` headers (``app_id`` is checked only when given).
    """
    if app_id is not None and app_id.strip() != app_key:
        raise DouyinSignatureError(
            Msg("the push is for app-id %(value)s, not this app's app_key: route pushes by their app-id header, or "
                "check which app's push URL points here", value=repr(app_id.strip()))
        )
    expected = compute_event_sign(app_key, app_secret, body, method).encode("ascii")
    if not hmac.compare_digest(expected, event_sign.strip().lower().encode("utf-8")):
        digest = "MD5" if method == "md5" else "HMAC-SHA256"
        raise DouyinSignatureError(
            Msg("event-sign does not match %(digest)s(app_key + body + app_secret): check the app_secret, and verify "
                "the raw body bytes as received, before any JSON parsing or re-encoding", digest=digest)
        )
