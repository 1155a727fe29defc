"""The loopback WeCom's media APIs: ``media/upload`` (temporary, 3 days) and ``media/uploadimg`` (a
permanent URL), multipart with the field ``media``, JPG/PNG only, WeCom's size limits and error codes.

Message attachments are checked against them (:meth:`MediaApis.attachment_problem`, called for
``send_welcome_msg`` and ``add_msg_template``): an image's ``media_id`` must be one this fake issued
(WeCom's 40007 "invalid media_id" otherwise), and its ``pic_url`` one WeCom serves — "仅可使用上传图片接口得到的
链接" (document/path/92135) — that is, issued by ``media/uploadimg`` or on WeCom's own image host. What WeCom
answers for a foreign pic_url is not documented: the fake answers 40058 (invalid parameter), its choice, and
records a problem. A request-shape test may set ``foreign_pic_urls = True`` to let one through."""

from __future__ import annotations

import itertools
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

#: media/upload: 图片 10MB; media/uploadimg: 5B ~ 2MB
LIMITS = {"media/upload": 10 * 1024 * 1024, "media/uploadimg": 2 * 1024 * 1024}


def multipart_file(content_type: str, raw: bytes) -> tuple[str, str, bytes] | None:
    """(field name, filename, bytes) of the first file part of a multipart/form-data body."""
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    for part in message.iter_parts():
        filename = part.get_filename()
        if filename is not None:
            return str(part.get_param("name", header="content-disposition") or ""), filename, \
                part.get_payload(decode=True) or b""
    return None


class MediaApis:
    """Mixed into FakeWeCom: uploads are kept in ``media`` (media_id → bytes) and ``images`` (url → bytes)."""

    media_routes = {"/cgi-bin/media/upload": ("POST", "media/upload"),
                    "/cgi-bin/media/uploadimg": ("POST", "media/uploadimg")}

    #: WeCom's own image host: URLs on it are WeCom's (uploadimg answers, group QR codes)
    wecom_image_host = "https://wework.qpic.cn/"

    def _media_init(self) -> None:
        self.media: dict[str, bytes] = {}
        self.images: dict[str, bytes] = {}
        self._media_serial = itertools.count(1)
        self.foreign_pic_urls = False

    def attachment_problem(self, api: str, attachments: list[Any]) -> dict[str, Any] | None:
        """WeCom's answer to a message whose image attachment names media it did not issue; None when fine."""
        for attachment in attachments:
            image = attachment.get("image") if attachment.get("msgtype") == "image" else None
            if not isinstance(image, dict):
                continue
            media_id, pic_url = image.get("media_id"), image.get("pic_url")
            if media_id is not None and media_id not in self.media:
                self.problem(f"{api}: image media_id {str(media_id)[:40]!r} was never uploaded")  # type: ignore[attr-defined]
                return {"errcode": 40007, "errmsg": "invalid media_id"}
            if media_id is None and isinstance(pic_url, str) and not self.foreign_pic_urls \
                    and pic_url not in self.images and not pic_url.startswith(self.wecom_image_host):
                self.problem(f"{api}: image pic_url {pic_url[:60]!r} is not a URL WeCom issued")  # type: ignore[attr-defined]
                return {"errcode": 40058, "errmsg": "invalid pic_url: only urls of the uploadimg api"}
        return None

    def upload(self, api: str, query: dict[str, str], content_type: str, raw: bytes) -> dict[str, Any]:
        if (bad := self.check_token(query)) is not None:  # type: ignore[attr-defined]
            return bad  # type: ignore[no-any-return]
        if api == "media/upload" and query.get("type") != "image":
            self.problem(f"{api}: type {query.get('type')!r}")  # type: ignore[attr-defined]
            return {"errcode": 40004, "errmsg": "invalid media type"}
        if not content_type.startswith("multipart/form-data"):
            self.problem(f"{api}: not multipart ({content_type!r})")  # type: ignore[attr-defined]
            return {"errcode": 41001, "errmsg": "media data missing"}
        found = multipart_file(content_type, raw)
        if found is None or found[0] != "media":
            self.problem(f"{api}: no 'media' file part")  # type: ignore[attr-defined]
            return {"errcode": 41001, "errmsg": "media data missing"}
        _, filename, content = found
        if not content.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")):
            return {"errcode": 40005, "errmsg": "invalid file type"}
        if not 5 <= len(content) <= LIMITS[api]:
            return {"errcode": 40006, "errmsg": "invalid meida size"}
        serial = next(self._media_serial)
        if api == "media/upload":
            media_id = f"MEDIA_{serial}_{filename}"
            self.media[media_id] = content
            return {"errcode": 0, "errmsg": "ok", "type": "image", "media_id": media_id,
                    "created_at": str(int(self.now()))}  # type: ignore[attr-defined]
        url = f"https://wework.qpic.cn/wwpic/{serial}/0"
        self.images[url] = content
        return {"errcode": 0, "errmsg": "ok", "url": url}
