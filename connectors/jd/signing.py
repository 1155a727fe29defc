"""JD Open Platform (京东开放平台, JOS) API request signing.

From the JOS 开发规范 "API签名" (help.jd.com/jos, open.jd.com dev-guide):

1. take every request parameter except ``sign`` and empty values — the system parameters
   ``method``, ``access_token``, ``app_key``, ``timestamp``, ``v`` and the business parameters,
   which JOS carries as one JSON string in ``360buy_param_json``;
2. sort by name (ASCII order, so ``360buy_param_json`` comes first) and concatenate ``name + value``;
3. ``MD5(app_secret + concatenation + app_secret)``, hex in **upper case**.

``360buy_param_json`` is signed exactly as sent; :func:`param_json` gives the compact, key-sorted
form JOS documents. ``timestamp`` is ``yyyy-MM-dd HH:mm:ss`` in GMT+8; the newer SDKs send
``yyyy-MM-dd HH:mm:ss.SSS+0800``, which :func:`format_timestamp` produces with ``millis=True``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from wording import Msg

PARAM_JSON = "360buy_param_json"
CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "GMT+8")
API_VERSION = "2.0"


def canonical_string(params: Mapping[str, str | None]) -> str:
    """``name1value1name2value2…`` over the non-empty parameters other than ``sign``, sorted by name."""
    return "".join(f"{name}{params[name]}" for name in sorted(params) if name != "sign" and params[name])


def sign(params: Mapping[str, str | None], app_secret: str) -> str:
    """The upper-case hex MD5 ``sign`` of ``params`` under ``app_secret``."""
    secret = app_secret.encode("utf-8")
    data = canonical_string(params).encode("utf-8")
    return hashlib.md5(secret + data + secret).hexdigest().upper()  # noqa: S324 - MD5 is the protocol


def param_json(business_params: Mapping[str, Any]) -> str:
    """Business parameters as JOS wants them in ``360buy_param_json``: compact, keys sorted, UTF-8."""
    return json.dumps(business_params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def format_timestamp(moment: datetime, *, millis: bool = False) -> str:
    """``moment`` in GMT+8 as ``yyyy-MM-dd HH:mm:ss`` (or ``…ss.SSS+0800`` with ``millis``)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(Msg("timestamp needs a timezone-aware datetime, e.g. datetime.now(timezone.utc)"))
    local = moment.astimezone(CHINA_STANDARD_TIME)
    if millis:
        return local.strftime("%Y-%m-%d %H:%M:%S.") + f"{local.microsecond // 1000:03d}+0800"
    return local.strftime("%Y-%m-%d %H:%M:%S")


def system_params(
    *,
    app_key: str,
    method: str,
    business_params: Mapping[str, Any],
    timestamp: str,
    access_token: str | None = None,
    v: str = API_VERSION,
) -> dict[str, str]:
    """The parameters of one JOS call under their JOS names, not yet signed.

    Add ``sign`` with ``params["sign"] = sign(params, app_secret)``.
    """
    params = {"method": method, "app_key": app_key, "timestamp": timestamp, "v": v}
    params[PARAM_JSON] = param_json(business_params)
    if access_token:
        params["access_token"] = access_token
    return params
