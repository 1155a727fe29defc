"""QR images and posters are read back by an independent decoder (zxing-cpp), not by our own encoder."""

from __future__ import annotations

import io
from xml.etree import ElementTree

import pytest
import zxingcpp
from PIL import Image

from activities.growth import qr

URL = "https://wework.qpic.cn/wwpic/cfg00000001af7b/0"


def decode(data: bytes) -> list[str]:
    with Image.open(io.BytesIO(data)) as image:
        return [r.text for r in zxingcpp.read_barcodes(image.convert("RGB"))]


def test_png_decodes_to_the_code_url() -> None:
    assert decode(qr.png(URL)) == [URL]
    assert decode(qr.png("tfc1b 门店A")) == ["tfc1b 门店A"]


def test_svg_is_well_formed_and_scales() -> None:
    data = qr.svg(URL, scale=4, title="门店A")
    root = ElementTree.fromstring(data)  # noqa: S314 (our own output)
    assert root.tag.endswith("svg") and "门店A" in data.decode()
    assert int(root.attrib["width"]) == int(root.attrib["height"]) > 100


def test_poster_carries_a_readable_code_on_a_background() -> None:
    background = io.BytesIO()
    Image.new("RGB", (800, 1200), "#ffcc00").save(background, format="JPEG")
    made = qr.poster(URL, qr.PosterLayout(qr_x=250, qr_y=800, qr_size=300, title="邀请 3 位好友得 30 元券"),
                     background=background.getvalue())
    with Image.open(io.BytesIO(made)) as image:
        assert image.size == (800, 1200)
        assert image.getpixel((10, 10)) != (255, 255, 255)  # the background is there
    assert decode(made) == [URL]
    assert decode(qr.poster(URL)) == [URL]


@pytest.mark.parametrize("bad", [
    {"layout": qr.PosterLayout(qr_x=600, qr_size=300)},  # sticks out of a 750-wide poster
    {"layout": qr.PosterLayout(qr_size=50)},
    {"layout": qr.PosterLayout(width=99999)},
])
def test_bad_layouts_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        qr.poster(URL, **bad)


def test_huge_backgrounds_and_contents_are_refused() -> None:
    big = io.BytesIO()
    Image.new("RGB", (5000, 10), "white").save(big, format="PNG")
    with pytest.raises(ValueError, match="at most"):
        qr.poster(URL, background=big.getvalue())
    with pytest.raises(ValueError):
        qr.png("x" * 1001)
    with pytest.raises(ValueError):
        qr.png(URL, scale=0)
