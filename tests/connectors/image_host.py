"""An image host on loopback: the pictures a message's attachments point to (pic_url), as a shop's CDN serves them."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

import pytest

import activities  # noqa: F401  (installs the engine's SSRF guard for image fetches: engine/outbound.py)
from tests.connectors.loopback import LoopbackServer, Reply, Request


def png(width: int = 2) -> bytes:
    """A real (tiny) PNG, so the bytes are what an image host serves."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(width))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, width, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class ImageHost(LoopbackServer):
    def __init__(self) -> None:
        super().__init__()
        self.files = {"/poster.png": png(), "/notes.txt": b"not an image", "/huge.png": png() + b"\0" * (11 << 20)}
        self.fetched: list[str] = []

    def serve(self, request: Request) -> Reply:
        self.fetched.append(request.path)
        body = self.files.get(request.path)
        return Reply(200, body, "image/png") if body is not None else Reply(404, {"error": "nope"})


@pytest.fixture
def host() -> Iterator[ImageHost]:
    with ImageHost() as server:
        yield server
