"""WeCom callback messages (decrypted XML) → Tideflow events. Pure: no I/O.

客户联系 pushes ``MsgType`` ``event`` / ``Event`` ``change_external_contact`` to the app's callback
URL, with a ``ChangeType``:

=============================  ==========================  =========================================
ChangeType                     Tideflow event              meaning
=============================  ==========================  =========================================
add_external_contact           ``wecom.contact_added``     a staff member added a customer (or the
                                                           customer added them); carries
                                                           ``WelcomeCode`` unless the corp has a
                                                           welcome message configured in the console
add_half_external_contact      ``wecom.contact_added``     the customer added the member without
                                                           verification (免验证); also carries a code
edit_external_contact          ``wecom.contact_edited``    remark / description / corp tags changed
del_external_contact           ``wecom.contact_deleted``   the staff member deleted the customer
del_follow_user                ``wecom.contact_deleted``   the customer deleted the staff member
=============================  ==========================  =========================================

``transfer_fail`` becomes ``wecom.transfer_failed`` (payload ``fail_reason``). Pushes that are not about
one customer become *notices* (:func:`notices_from_callback`): a member left or changed
(``change_contact``), a customer group changed (``change_external_chat``), new archived chats
(``msgaudit_notify``). Corp-tag events and the app's own events are acknowledged and produce nothing.
A text message to the app becomes ``wecom.message_received`` only when its sender is an external
contact (an ``external_userid``, ``wm…`` / ``wo…``): messages staff members send to the app are not
customer events.

WeCom callbacks carry no message id; the event id is derived from (ToUserName, ChangeType,
ExternalUserID, UserID, CreateTime), so WeCom's retries of one push dedupe to one event.
"""

from __future__ import annotations

from typing import Any

from connectors.wecom.message_xml import occurred_at, parse_message, require, stable_id

CONTACT_EVENTS = {
    "add_external_contact": "wecom.contact_added",
    "add_half_external_contact": "wecom.contact_added",
    "edit_external_contact": "wecom.contact_edited",
    "del_external_contact": "wecom.contact_deleted",
    "del_follow_user": "wecom.contact_deleted",
    # a customer refused a handover or the takeover member's limit was reached (FailReason customer_refused /
    # customer_limit_exceed; UserID is the takeover member)
    "transfer_fail": "wecom.transfer_failed",
}
WELCOME_CHANGES = frozenset({"add_external_contact", "add_half_external_contact"})
#: external_userid prefixes (WeChat users ``wm…``, WeCom users of other corps ``wo…``)
EXTERNAL_PREFIXES = ("wm", "wo")


def is_external_userid(value: str) -> bool:
    return value.startswith(EXTERNAL_PREFIXES)


def events_from_callback(document: str | bytes) -> list[dict[str, Any]]:
    """The Tideflow events (``POST /api/events`` shape, without ``source``) in one decrypted callback."""
    fields = parse_message(document)
    msg_type = fields.get("MsgType", "")
    if msg_type == "event" and fields.get("Event") == "change_external_contact":
        event = _contact_event(fields)
        return [event] if event else []
    if msg_type == "text":
        event = _text_event(fields)
        return [event] if event else []
    return []


def _contact_event(fields: dict[str, str]) -> dict[str, Any] | None:
    change = fields.get("ChangeType", "")
    event_type = CONTACT_EVENTS.get(change)
    if event_type is None:
        return None
    require(fields, "ExternalUserID", "CreateTime")
    external = fields["ExternalUserID"].strip()
    user_id = fields.get("UserID", "").strip()
    payload: dict[str, Any] = {"change_type": change, "user_id": user_id, "state": fields.get("State", "")}
    if change in WELCOME_CHANGES:
        payload["welcome_code"] = fields.get("WelcomeCode", "")
    if fields.get("Source"):  # del_external_contact: DELETE_BY_TRANSFER when a transfer removed the contact
        payload["source"] = fields["Source"]
    if fields.get("FailReason"):
        payload["fail_reason"] = fields["FailReason"]
    event: dict[str, Any] = {
        "id": stable_id(change, fields.get("ToUserName", ""), external, user_id, fields["CreateTime"]),
        "type": event_type,
        "customer": {"wecom_external_userid": external},
        "occurred_at": occurred_at(fields["CreateTime"]),
        "payload": payload,
    }
    if change in WELCOME_CHANGES and user_id:
        attributes = {"wecom_follow_user": user_id}
        if payload["state"]:
            attributes["wecom_add_state"] = payload["state"]
        event["profile"] = {"attributes": attributes}
    return event


def _text_event(fields: dict[str, str]) -> dict[str, Any] | None:
    sender = fields.get("FromUserName", "").strip()
    if not is_external_userid(sender):
        return None
    require(fields, "CreateTime")
    msg_id = fields.get("MsgId", "").strip()
    event_id = f"msg:{msg_id}" if msg_id else stable_id("msg", sender, fields["CreateTime"], fields.get("Content", ""))
    return {
        "id": event_id,
        "type": "wecom.message_received",
        "customer": {"wecom_external_userid": sender},
        "occurred_at": occurred_at(fields["CreateTime"]),
        "payload": {"msg_type": "text", "content": fields.get("Content", ""), "msg_id": msg_id,
                    "agent_id": fields.get("AgentID", "")},
    }


#: change_contact ChangeTypes about members (通讯录回调通知 › 成员变更)
MEMBER_CHANGES = frozenset({"create_user", "update_user", "delete_user"})


def notices_from_callback(document: str | bytes) -> list[dict[str, Any]]:
    """The notices (not customer events) in one decrypted callback."""
    fields = parse_message(document)
    if fields.get("MsgType") != "event":
        return []
    event = fields.get("Event", "")
    at = occurred_at(fields["CreateTime"]) if fields.get("CreateTime") else None
    if event == "change_contact" and fields.get("ChangeType") in MEMBER_CHANGES and fields.get("UserID"):
        notice: dict[str, Any] = {"kind": "member_changed", "change_type": fields["ChangeType"],
                                  "userid": fields["UserID"].strip(), "occurred_at": at}
        if fields.get("Status"):  # update_user: 1 active, 2 disabled, 5 left (退出企业)
            notice["status"] = fields["Status"]
        return [notice]
    if event == "change_external_chat" and fields.get("ChatId"):
        members = _member_list(document)
        return [{"kind": "group_changed", "chat_id": fields["ChatId"].strip(),
                 "change_type": fields.get("ChangeType", ""), "update_detail": fields.get("UpdateDetail", ""),
                 "members": members, "occurred_at": at}]
    if event == "msgaudit_notify":
        return [{"kind": "archive_notify", "occurred_at": at}]
    return []


def _member_list(document: str | bytes) -> list[str]:
    """``MemChangeList``: ``<Item>`` children (the current format) or comma-separated text (the old one)."""
    import xml.etree.ElementTree as ET

    raw = document.encode("utf-8") if isinstance(document, str) else document
    node = ET.fromstring(raw).find("MemChangeList")  # noqa: S314 - parse_message refused DTDs already
    if node is None:
        return []
    items = [(i.text or "").strip() for i in node.findall("Item") if (i.text or "").strip()]
    return items or [m.strip() for m in (node.text or "").split(",") if m.strip()]
