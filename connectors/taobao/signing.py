"""Taobao Open Platform (TOP, 淘宝开放平台) API request signing.

From the TOP "API调用协议" (open.taobao.com docId=101617):

1. take every request parameter, system and business alike, except ``sign`` itself and any
   parameter whose value is empty;
2. sort them by parameter name (ASCII order) and concatenate ``name + value`` with no separator;
3. digest, by ``sign_method``:

   * ``md5``: ``MD5(secret + concatenation + secret)``
   * ``hmac``: ``HMAC-MD5(key=secret, concatenation)``
   * ``hmac-sha256``: ``HMAC-SHA256(key=secret, concatenation)``

4. hex-encode in **upper case**.

``sign_method`` itself is a request parameter, so it takes part in the signature like any other.
Values are signed as sent, before URL encoding. ``timestamp`` is ``yyyy-MM-dd HH:mm:ss`` in GMT+8
and must be within 10 minutes of the gateway's clock.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone

from wording import Msg

SIGN_METHODS = ("md5", "hmac", "hmac-sha256")
"""The ``sign_method`` values TOP accepts."""

CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "GMT+8")
"""GMT+8 without DST: China has observed no daylight saving since 1991."""

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"


def canonical_string(params: Mapping[str, str | None]) -> str:
    """``name1value1name2value2…`` over the non-empty parameters other than ``sign``, sorted by name."""
    return "".join(f"{name}{params[name]}" for name in sorted(params) if name != "sign" and params[name])


def sign(params: Mapping[str, str | None], secret: str, sign_method: str) -> str:
    """The upper-case hex ``sign`` of ``params`` under ``secret`` with ``sign_method``."""
    if sign_method not in SIGN_METHODS:
        allowed = ", ".join(repr(m) for m in SIGN_METHODS)
        raise ValueError(Msg("unknown TOP sign_method %(sign_method)s; allowed: %(allowed)s",
                             sign_method=repr(sign_method), allowed=allowed))
    data = canonical_string(params).encode("utf-8")
    key = secret.encode("utf-8")
    if sign_method == "md5":
        digest = hashlib.md5(key + data + key).digest()  # noqa: S324 - MD5 is what the protocol specifies
    elif sign_method == "hmac":
        digest = hmac.new(key, data, hashlib.md5).digest()
    else:
        digest = hmac.new(key, data, hashlib.sha256).digest()
    return digest.hex().upper()


def format_timestamp(moment: datetime) -> str:
    """``moment`` as TOP's ``timestamp`` parameter: ``YYYY-MM-DD HH:MM:SS`` in GMT+8.

    ``moment`` must be timezone-aware, so a server running in UTC cannot sign an 8-hour-old request.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(Msg("timestamp needs a timezone-aware datetime, e.g. datetime.now(UTC)"))
    return moment.astimezone(CHINA_STANDARD_TIME).strftime(TIMESTAMP_FORMAT)


def now_timestamp() -> str:
    """The current time as TOP's ``timestamp`` parameter."""
    return format_timestamp(datetime.now(UTC))
