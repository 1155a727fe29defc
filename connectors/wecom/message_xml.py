"""The decrypted (or plain-mode) message XML of WeCom and WeChat Official Account pushes.

Both platforms push flat documents — ``<xml><ToUserName>…</ToUserName><CreateTime>…</CreateTime>
<MsgType>…</MsgType>…</xml>`` — whose children are plain text or CDATA. This module reads them into
a ``{tag: text}`` dict and derives the stable event ids Tideflow dedupes on. It does no I/O.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from connectors.errors import ConnectorProtocolError
from wording import Msg, message_of

_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
#: the largest decrypted message we read; pushes are a few hundred bytes
MAX_MESSAGE_BYTES = 256 * 1024


class MalformedMessage(ConnectorProtocolError, ValueError):
    """The (decrypted) push is not the platform's flat ``<xml>…</xml>`` message document."""


def parse_message(document: str | bytes) -> dict[str, str]:
    """Read the direct children of ``<xml>`` into a dict (tag → text, ``""`` for an empty element).

    Nested elements (``ScanCodeInfo``, ``SendPicsInfo`` …) are read as ``Parent.Child`` one level
    deep. A document type declaration is refused: the platforms never send one.
    """
    raw = document.encode("utf-8") if isinstance(document, str) else document
    if len(raw) > MAX_MESSAGE_BYTES:
        raise MalformedMessage(Msg("the message is %(count)s bytes; pushes are never larger than "
                                   "%(max_message_bytes)s", count=len(raw), max_message_bytes=MAX_MESSAGE_BYTES))
    if _DTD.search(raw):
        raise MalformedMessage(Msg("the message XML contains a DOCTYPE/ENTITY declaration, which the platform never "
                                   "sends"))
    try:
        root = ET.fromstring(raw)  # noqa: S314 - DTDs refused above; expat fetches no external entities
    except ET.ParseError as exc:
        raise MalformedMessage(Msg("the message is not well-formed XML (%(exc)s)", exc=message_of(exc))) from None
    if root.tag != "xml":
        raise MalformedMessage(Msg("the message root is <%(tag)s>, expected <xml>", tag=root.tag))
    fields: dict[str, str] = {}
    for child in root:
        fields[child.tag] = (child.text or "").strip() if len(child) else (child.text or "")
        for grandchild in child:
            fields[f"{child.tag}.{grandchild.tag}"] = grandchild.text or ""
    return fields


def require(fields: dict[str, str], *names: str) -> None:
    """Raise :class:`MalformedMessage` naming the first of ``names`` that is missing or empty."""
    for name in names:
        if not fields.get(name, "").strip():
            raise MalformedMessage(Msg("the message has no <%(name)s>", name=name))


def occurred_at(create_time: str | None) -> str | None:
    """``CreateTime`` (unix seconds) as an ISO 8601 UTC timestamp, or None when absent or not a number."""
    text = (create_time or "").strip()
    if not text.isascii() or not text.isdigit():
        return None
    seconds = int(text)
    if seconds > 10**11:  # a millisecond timestamp, which some WeCom events use
        seconds //= 1000
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def stable_id(kind: str, *parts: str) -> str:
    """An event id derived from the fields that identify one push (the platform gives none).

    ``kind`` stays readable; the parts are hashed, so the id fits Tideflow's 120-character limit
    whatever their length, and a redelivery of the same push maps to the same id.
    """
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:40]
    return f"{kind}:{digest}"
