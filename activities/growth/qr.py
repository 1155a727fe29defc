"""QR code images of channel codes (PNG and SVG, drawn by segno) and posters (Pillow) — pure: bytes in,
bytes out, no network.

The content encoded is the platform's code URL: WeCom's ``qr_code`` link of the contact way (scanning it
in WeChat opens the add-friend page) or the OA's ``url`` of a parametric code. Drawing it ourselves
(instead of downloading WeCom's image) gives any size, SVG for print, and a poster in one step.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Literal

import segno
from PIL import Image, ImageDraw, ImageFont

from engine.text import Msg

#: error correction H survives a logo or print damage over up to ~30 % of the symbol
ERROR = "h"
MAX_CONTENT = 1000
MAX_POSTER_SIDE = 4000


def _qr(content: str) -> segno.QRCode:
    if not content or len(content) > MAX_CONTENT:
        raise ValueError(Msg("QR content must be 1 to %(limit)s characters",
                             limit=MAX_CONTENT))
    return segno.make_qr(content, error=ERROR)


def png(content: str, *, scale: int = 10, border: int = 4) -> bytes:
    if not 1 <= scale <= 40 or not 0 <= border <= 10:
        raise ValueError(Msg("scale is 1 to 40 pixels per module, border 0 to 10 modules"))
    out = io.BytesIO()
    _qr(content).save(out, kind="png", scale=scale, border=border)
    return out.getvalue()


def svg(content: str, *, scale: int = 10, border: int = 4, title: str = "") -> bytes:
    if not 1 <= scale <= 40 or not 0 <= border <= 10:
        raise ValueError(Msg("scale is 1 to 40 pixels per module, border 0 to 10 modules"))
    out = io.BytesIO()
    _qr(content).save(out, kind="svg", scale=scale, border=border, title=title[:100] or None, xmldecl=False)
    return out.getvalue()


@dataclass(frozen=True)
class PosterLayout:
    """Where the QR code and the text go on the poster (pixels of the background)."""

    width: int = 750
    height: int = 1334
    qr_x: int = 225
    qr_y: int = 880
    qr_size: int = 300
    title: str = ""
    subtitle: str = ""
    background_color: str = "#fff6e5"
    text_color: str = "#333333"


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
                 "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
                 "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            continue
    return ImageFont.load_default(size)


def poster(content: str, layout: PosterLayout = PosterLayout(), *, background: bytes | None = None,
           kind: Literal["png", "jpeg"] = "png") -> bytes:
    """A poster: the background image (or a plain colour), the title and the QR code where the layout says."""
    if background is not None:
        with Image.open(io.BytesIO(background)) as opened:
            if max(opened.size) > MAX_POSTER_SIDE:
                raise ValueError(Msg("the background is %(width)s×%(height)s; at most %(limit)s "
                                     "pixels a side",
                                     width=opened.size[0], height=opened.size[1], limit=MAX_POSTER_SIDE))
            canvas = opened.convert("RGB")
    else:
        if not 100 <= layout.width <= MAX_POSTER_SIDE or not 100 <= layout.height <= MAX_POSTER_SIDE:
            raise ValueError(Msg("the poster is 100 to %(limit)s pixels a side",
                                 limit=MAX_POSTER_SIDE))
        canvas = Image.new("RGB", (layout.width, layout.height), layout.background_color)
    w, h = canvas.size
    if layout.qr_size < 100 or layout.qr_x < 0 or layout.qr_y < 0 or layout.qr_x + layout.qr_size > w \
            or layout.qr_y + layout.qr_size > h:
        raise ValueError(Msg("the QR code (%(qr_size)spx at %(qr_x)s,%(qr_y)s) must fit inside the "
                             "%(w)s×%(h)s poster and be at least 100px",
                             qr_size=layout.qr_size, qr_x=layout.qr_x, qr_y=layout.qr_y, w=w, h=h))
    with Image.open(io.BytesIO(png(content, scale=10, border=2))) as code:
        canvas.paste(code.convert("RGB").resize((layout.qr_size, layout.qr_size), Image.Resampling.NEAREST),
                     (layout.qr_x, layout.qr_y))
    draw = ImageDraw.Draw(canvas)
    if layout.title:
        font = _font(max(16, w // 14))
        draw.text((w // 2, h // 8), layout.title[:40], fill=layout.text_color, font=font, anchor="mm")
    if layout.subtitle:
        draw.text((w // 2, h // 8 + w // 9), layout.subtitle[:60], fill=layout.text_color, font=_font(max(12, w // 26)),
                  anchor="mm")
    out = io.BytesIO()
    canvas.save(out, format="PNG" if kind == "png" else "JPEG", quality=90)
    return out.getvalue()
