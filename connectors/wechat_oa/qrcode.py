"""WeChat Official Account parametric QR codes (生成带参数的二维码), through the account's
:class:`~connectors.wechat_oa.client.WeChatOAClient`.

``POST /cgi-bin/qrcode/create``: ``action_name`` ``QR_STR_SCENE`` (temporary, ``expire_seconds`` up to
30 days) or ``QR_LIMIT_STR_SCENE`` (permanent; the account has at most 100,000), ``action_info.scene
.scene_str`` (1–64 characters) → ``ticket``, ``expire_seconds``, ``url`` (the content the QR image
encodes; Tideflow draws the image itself with segno, activities/growth/qr.py).

A follower who scans it gets an event with the scene: ``subscribe`` with ``EventKey`` ``qrscene_<scene>``
when they follow through it, ``SCAN`` with ``EventKey`` ``<scene>`` when they already follow
(connectors/wechat_oa/connector.py turns both into events).
"""

from __future__ import annotations

from dataclasses import dataclass

from connectors.wechat_oa.client import WeChatOAClient, WeChatOARejected
from wording import Msg

MAX_SCENE_STR = 64
MAX_TEMP_SECONDS = 30 * 24 * 3600
MAX_PERMANENT = 100_000


@dataclass(frozen=True)
class ParamQrCode:
    ticket: str
    url: str
    #: None for a permanent code
    expire_seconds: int | None


def create_qrcode(client: WeChatOAClient, scene_str: str, *, permanent: bool = True,
                  expire_seconds: int = MAX_TEMP_SECONDS) -> ParamQrCode:
    if not 1 <= len(scene_str) <= MAX_SCENE_STR:
        raise ValueError(Msg("scene_str is %(count)s characters; WeChat takes 1 to %(max_scene_str)s",
                             count=len(scene_str), max_scene_str=MAX_SCENE_STR))
    body: dict[str, object] = {"action_name": "QR_LIMIT_STR_SCENE" if permanent else "QR_STR_SCENE",
                               "action_info": {"scene": {"scene_str": scene_str}}}
    if not permanent:
        if not 60 <= expire_seconds <= MAX_TEMP_SECONDS:
            raise ValueError(Msg("expire_seconds of a temporary code is 60 to %(max_temp_seconds)s (30 days)",
                                 max_temp_seconds=MAX_TEMP_SECONDS))
        body["expire_seconds"] = expire_seconds
    data = client.call("POST", "/cgi-bin/qrcode/create", "qrcode/create", body=body)
    ticket, url = data.get("ticket"), data.get("url")
    if not isinstance(ticket, str) or not ticket or not isinstance(url, str) or not url:
        raise WeChatOARejected(Msg("WeChat qrcode/create answered without a ticket and url"), api="qrcode/create")
    expires = data.get("expire_seconds")
    return ParamQrCode(ticket=ticket, url=url, expire_seconds=int(expires) if isinstance(expires, int) else None)
