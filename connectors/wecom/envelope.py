"""The envelopes around WXBizMsgCrypt ciphertext: the callback body in, the passive reply out.

XML (WeCom apps, WeChat Official Account safe mode)::

    <xml><ToUserName><![CDATA[corp]]></ToUserName><Encrypt><![CDATA[…]]></Encrypt>
         <AgentID><![CDATA[1000002]]></AgentID></xml>

    <xml><Encrypt><![CDATA[…]]></Encrypt><MsgSignature><![CDATA[…]]></MsgSignature>
         <TimeStamp>1476422779</TimeStamp><Nonce><![CDATA[…]]></Nonce></xml>

JSON (WeCom smart robots, the "JSON callback" variant): ``{"encrypt": "…"}`` in, and
``{"encrypt", "msgsignature", "timestamp", "nonce"}`` out.

Only the envelope is handled here; the signature and the cipher live in ``crypto``.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from connectors.wecom.errors import BadEnvelope
from wording import Msg, message_of

_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class CallbackEnvelope:
    """What the callback body carries besides the ciphertext (all optional but ``encrypt``)."""

    encrypt: str
    to_user_name: str | None = None
    agent_id: str | None = None


def _as_bytes(body: str | bytes) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else body


def parse_callback_xml(body: str | bytes) -> CallbackEnvelope:
    """Read ``Encrypt`` (required), ``ToUserName`` and ``AgentID`` from a POSTed XML body.

    Any document type declaration is refused: the platforms never send one, and refusing it closes
    the entity-expansion and external-entity attacks on the XML parser.
    """
    raw = _as_bytes(body)
    if _DTD.search(raw):
        raise BadEnvelope(Msg("the callback XML contains a DOCTYPE/ENTITY declaration, which WeCom never sends"))
    try:
        root = ET.fromstring(raw)  # noqa: S314 - DTDs refused above; expat does not fetch external entities
    except ET.ParseError as exc:
        raise BadEnvelope(Msg("the callback body is not well-formed XML (%(exc)s); pass the raw request body",
                              exc=message_of(exc))) from exc
    if root.tag != "xml":
        raise BadEnvelope(Msg("the callback XML root is <%(tag)s>, expected <xml>", tag=root.tag))
    encrypt = root.findtext("Encrypt")
    if not encrypt:
        raise BadEnvelope(
            Msg("the callback XML has no <Encrypt> element: the push is in plaintext mode, or this is not an "
                "encrypted callback (switch the app to safe mode / 安全模式)")
        )
    return CallbackEnvelope(
        encrypt=encrypt, to_user_name=root.findtext("ToUserName"), agent_id=root.findtext("AgentID")
    )


def _cdata(value: str) -> str:
    if "]]>" in value:
        raise ValueError(Msg("%(value)s cannot be put in a CDATA section (it contains ']]>')", value=repr(value)))
    return f"<![CDATA[{value}]]>"


def _timestamp(timestamp: str | int) -> str:
    text = str(timestamp)
    if not text.isascii() or not text.isdigit():
        raise ValueError(Msg("timestamp must be a string of digits (unix seconds), got %(text)s", text=repr(text)))
    return text


def build_reply_xml(encrypt: str, msg_signature: str, timestamp: str | int, nonce: str) -> str:
    """The encrypted passive-reply body: Encrypt, MsgSignature, TimeStamp, Nonce."""
    return (
        f"<xml><Encrypt>{_cdata(encrypt)}</Encrypt>"
        f"<MsgSignature>{_cdata(msg_signature)}</MsgSignature>"
        f"<TimeStamp>{_timestamp(timestamp)}</TimeStamp>"
        f"<Nonce>{_cdata(nonce)}</Nonce></xml>"
    )


def parse_callback_json(body: str | bytes) -> CallbackEnvelope:
    """Read ``encrypt`` (required), ``tousername`` and ``agentid`` from a POSTed JSON body."""
    try:
        data = json.loads(_as_bytes(body))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadEnvelope(Msg("the callback body is not JSON (%(exc)s); pass the raw request body",
                              exc=message_of(exc))) from exc
    if not isinstance(data, dict):
        raise BadEnvelope(Msg("the callback JSON is not an object"))
    encrypt = data.get("encrypt")
    if not isinstance(encrypt, str) or not encrypt:
        raise BadEnvelope(Msg("the callback JSON has no \"encrypt\" string: is this an encrypted callback?"))
    to_user, agent = data.get("tousername"), data.get("agentid")
    return CallbackEnvelope(
        encrypt=encrypt,
        to_user_name=None if to_user is None else str(to_user),
        agent_id=None if agent is None else str(agent),
    )


def build_reply_json(encrypt: str, msg_signature: str, timestamp: str | int, nonce: str) -> str:
    """The encrypted passive-reply body of the JSON variant."""
    body = {
        "encrypt": encrypt,
        "msgsignature": msg_signature,
        "timestamp": _timestamp(timestamp),
        "nonce": nonce,
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))
