"""The loopback WeCom's media APIs: ``media/upload`` (temporary, 3 days) and ``media/uploadimg`` (a
permanent URL), multipart with the field ``media``, JPG/PNG only, WeCom's size limits and error codes."""

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

    def _media_init(self) -> None:
        self.media: dict[str, bytes] = {}
        self.images: dict[str, bytes] = {}
        self._media_serial = itertools.count(1)

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
