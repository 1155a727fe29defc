"""WeCom customer groups (客户群) and enterprise mass sends (企业群发) to customers and groups.

Sources (developer.work.weixin.qq.com document paths; quotes in docs/workforce.md):

==========================================  ==========================================================
``groupchat/list`` [92120]                  group ids by owner and status; ``limit`` 1..1000, paged by
                                            ``cursor``
``groupchat/get`` [92122]                   one group: name, owner, notice, ``member_list`` (type 1 staff,
                                            2 external contact; ``join_time``, ``join_scene``), admins
``add_msg_template`` [92135]                a mass-send task: ``chat_type`` single (≤ 10,000
                                            ``external_userid``) or group (``sender`` required; ≤ 2,000
                                            ``chat_id_list``); at most 9 attachments; nothing is sent
                                            until the sender confirms in the WeCom client. Each customer
                                            / group receives at most as many enterprise mass messages a
                                            month as the month has days (the corp may set 7 a week or 1
                                            a day instead)
``get_groupmsg_task`` [93338]               per sender: status 0 not sent yet, 2 sent (confirmed)
``get_groupmsg_send_result`` [93338]        per recipient: 0 not sent, 1 sent, 2 not a friend (any
                                            more), 3 already received another mass message (the limit)
``cancel_groupmsg_send`` [97610]            stop a task senders have not confirmed yet
``remind_groupmsg_send`` [97610]            remind the senders again (at most 3 times in 24 h)
``groupchat/add_join_way`` [92229]          a group QR code (scene 2) for up to 5 groups; ``get_join_way``
                                            returns its ``qr_code`` URL (usable as a welcome message's
                                            image attachment)
==========================================  ==========================================================
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.wecom.api_errors import WeComRejected
from connectors.wecom.client import MAX_ATTACHMENTS, MAX_MASS_RECIPIENTS, WeComClient, _check_text
from wording import Msg

#: chat ids per group mass-send task
MAX_GROUP_RECIPIENTS = 2000
#: groupchat/list, get_groupmsg_task and get_groupmsg_send_result page size
MAX_LIST_PAGE = 1000
#: chat ids per group join way (QR code)
MAX_JOIN_WAY_CHATS = 5
#: reminders per task per 24 hours
MAX_REMINDERS_PER_DAY = 3

#: get_groupmsg_send_result status → meaning
SEND_STATUS = {0: "not_sent", 1: "sent", 2: "not_friend", 3: "already_received"}
#: get_groupmsg_task status → meaning
TASK_STATUS = {0: "waiting", 2: "sent"}
#: groupchat/list status_filter values
GROUP_STATUS = {0: "normal", 1: "resigned_pending", 2: "resigned_transferring", 3: "resigned_done"}


@dataclass(frozen=True)
class GroupMember:
    userid: str
    #: 1 a staff member, 2 an external contact (customer)
    type: int
    join_time: int = 0
    #: 1 invited directly, 2 invited by link, 3 scanned the group QR code
    join_scene: int = 0
    invitor: str = ""
    name: str = ""
    unionid: str = ""

    @property
    def external(self) -> bool:
        return self.type == 2


@dataclass(frozen=True)
class GroupChat:
    chat_id: str
    name: str = ""
    owner: str = ""
    create_time: int = 0
    notice: str = ""
    members: list[GroupMember] = field(default_factory=list)
    admins: list[str] = field(default_factory=list)
    member_version: str = ""


@dataclass(frozen=True)
class TemplateResult:
    msgid: str
    fail_list: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SendTask:
    userid: str
    #: 0 waiting for the sender's confirmation, 2 sent
    status: int
    send_time: int = 0


@dataclass(frozen=True)
class SendResult:
    """One recipient's outcome: ``recipient`` is the external_userid (single) or the chat_id (group)."""

    recipient: str
    userid: str
    status: int
    send_time: int = 0

    @property
    def meaning(self) -> str:
        return SEND_STATUS.get(self.status, f"status {self.status}")


def _paged(fetch: Any, what: str) -> Iterator[Any]:
    cursor = ""
    for _ in range(100_000):
        rows, cursor = fetch(cursor)
        yield from rows
        if not cursor:
            return
    raise WeComRejected(Msg("WeCom %(what)s kept answering a next_cursor", what=what), api=what)


def list_groups_page(client: WeComClient, *, owners: Sequence[str] = (), status_filter: int = 0, cursor: str = "",
                     limit: int = MAX_LIST_PAGE) -> tuple[list[tuple[str, int]], str]:
    """One page of (chat_id, status) and the next cursor."""
    if not 1 <= limit <= MAX_LIST_PAGE:
        raise ValueError(Msg("groupchat/list pages hold 1..%(max_list_page)s groups, got %(limit)s",
                             max_list_page=MAX_LIST_PAGE, limit=limit))
    if status_filter not in GROUP_STATUS:
        raise ValueError(Msg("status_filter must be one of %(value)s", value=sorted(GROUP_STATUS)))
    body: dict[str, Any] = {"status_filter": status_filter, "limit": limit}
    if owners:
        body["owner_filter"] = {"userid_list": list(owners)}
    if cursor:
        body["cursor"] = cursor
    data = client.call("POST", "/cgi-bin/externalcontact/groupchat/list", "groupchat/list", body=body)
    rows = [(str(g.get("chat_id") or ""), int(g.get("status") or 0))
            for g in data.get("group_chat_list") or [] if isinstance(g, dict) and g.get("chat_id")]
    return rows, str(data.get("next_cursor") or "")


def list_groups(client: WeComClient, *, owners: Sequence[str] = (), status_filter: int = 0
                ) -> Iterator[tuple[str, int]]:
    """Every (chat_id, status) of these owners (all owners when empty)."""
    return _paged(lambda cursor: list_groups_page(client, owners=owners, status_filter=status_filter,
                                                  cursor=cursor), "groupchat/list")


def get_group(client: WeComClient, chat_id: str) -> GroupChat:
    """One group with its members (groupchat/get, need_name 1)."""
    if not chat_id:
        raise ValueError(Msg("get_group needs a chat_id"))
    data = client.call("POST", "/cgi-bin/externalcontact/groupchat/get", "groupchat/get",
                       body={"chat_id": chat_id, "need_name": 1})
    chat = data.get("group_chat")
    if not isinstance(chat, dict):
        raise WeComRejected(Msg("WeCom groupchat/get answered without a group_chat"), api="groupchat/get")
    members = []
    for m in chat.get("member_list") or []:
        if not isinstance(m, dict) or not m.get("userid"):
            continue
        invitor = m.get("invitor") if isinstance(m.get("invitor"), dict) else {}
        members.append(GroupMember(userid=str(m["userid"]), type=int(m.get("type") or 0),
                                   join_time=int(m.get("join_time") or 0), join_scene=int(m.get("join_scene") or 0),
                                   invitor=str((invitor or {}).get("userid") or ""), name=str(m.get("name") or ""),
                                   unionid=str(m.get("unionid") or "")))
    admins = [str(a.get("userid")) for a in chat.get("admin_list") or [] if isinstance(a, dict) and a.get("userid")]
    return GroupChat(chat_id=str(chat.get("chat_id") or chat_id), name=str(chat.get("name") or ""),
                     owner=str(chat.get("owner") or ""), create_time=int(chat.get("create_time") or 0),
                     notice=str(chat.get("notice") or ""), members=members, admins=admins,
                     member_version=str(chat.get("member_version") or ""))


def _content(body: dict[str, Any], text: str | None, attachments: Sequence[dict[str, Any]]) -> None:
    if not text and not attachments:
        raise ValueError(Msg("a mass send needs a text or at least one attachment"))
    if len(attachments) > MAX_ATTACHMENTS:
        raise ValueError(Msg("WeCom takes at most %(max_attachments)s attachments per mass send, got %(count)s",
                             max_attachments=MAX_ATTACHMENTS, count=len(attachments)))
    _check_text(text)
    if text:
        body["text"] = {"content": text}
    if attachments:
        body["attachments"] = list(attachments)


def add_single_template(client: WeComClient, sender: str, external_userids: Sequence[str], text: str | None,
                        attachments: Sequence[dict[str, Any]] = ()) -> TemplateResult:
    """A 1:1 mass-send task (chat_type single) from ``sender`` to at most 10,000 of their customers."""
    recipients = list(dict.fromkeys(u for u in external_userids if u))
    if not sender:
        raise ValueError(Msg("a mass send through owning staff needs the sender"))
    if not recipients:
        raise ValueError(Msg("a single mass send needs at least one external_userid"))
    if len(recipients) > MAX_MASS_RECIPIENTS:
        raise ValueError(Msg("WeCom takes at most %(max_mass_recipients)s customers per mass-send task, got %(count)s",
                             max_mass_recipients=MAX_MASS_RECIPIENTS, count=len(recipients)))
    body: dict[str, Any] = {"chat_type": "single", "sender": sender, "external_userid": recipients}
    _content(body, text, attachments)
    return _template(client, body)


def add_group_template(client: WeComClient, sender: str, chat_ids: Sequence[str], text: str | None,
                       attachments: Sequence[dict[str, Any]] = ()) -> TemplateResult:
    """A group mass-send task (chat_type group) from the groups' owner ``sender`` to at most 2,000 groups."""
    chats = list(dict.fromkeys(c for c in chat_ids if c))
    if not sender:
        raise ValueError(Msg("a group mass send needs the sender (the groups' owner)"))
    if not chats:
        raise ValueError(Msg("a group mass send needs at least one chat_id"))
    if len(chats) > MAX_GROUP_RECIPIENTS:
        raise ValueError(Msg("WeCom takes at most %(max_group_recipients)s groups per group mass-send task, got "
                             "%(count)s", max_group_recipients=MAX_GROUP_RECIPIENTS, count=len(chats)))
    body: dict[str, Any] = {"chat_type": "group", "sender": sender, "chat_id_list": chats}
    _content(body, text, attachments)
    return _template(client, body)


def _template(client: WeComClient, body: dict[str, Any]) -> TemplateResult:
    data = client.call("POST", "/cgi-bin/externalcontact/add_msg_template", "add_msg_template", body=body)
    msgid = data.get("msgid")
    if not isinstance(msgid, str) or not msgid:
        raise WeComRejected(Msg("WeCom add_msg_template answered without a msgid"), api="add_msg_template")
    return TemplateResult(msgid, [str(u) for u in data.get("fail_list") or [] if u])


def send_tasks(client: WeComClient, msgid: str) -> list[SendTask]:
    """Each sender's state of a mass send: waiting for confirmation (0) or sent (2)."""
    def page(cursor: str) -> tuple[list[SendTask], str]:
        body: dict[str, Any] = {"msgid": msgid, "limit": MAX_LIST_PAGE}
        if cursor:
            body["cursor"] = cursor
        data = client.call("POST", "/cgi-bin/externalcontact/get_groupmsg_task", "get_groupmsg_task", body=body)
        return ([SendTask(str(t.get("userid") or ""), int(t.get("status") or 0), int(t.get("send_time") or 0))
                 for t in data.get("task_list") or [] if isinstance(t, dict)], str(data.get("next_cursor") or ""))

    return list(_paged(page, "get_groupmsg_task"))


def send_results(client: WeComClient, msgid: str, userid: str) -> list[SendResult]:
    """Per-recipient outcomes of one sender's part of a mass send."""
    def page(cursor: str) -> tuple[list[SendResult], str]:
        body: dict[str, Any] = {"msgid": msgid, "userid": userid, "limit": MAX_LIST_PAGE}
        if cursor:
            body["cursor"] = cursor
        data = client.call("POST", "/cgi-bin/externalcontact/get_groupmsg_send_result", "get_groupmsg_send_result",
                           body=body)
        rows = [SendResult(str(r.get("external_userid") or r.get("chat_id") or ""), str(r.get("userid") or userid),
                           int(r.get("status") or 0), int(r.get("send_time") or 0))
                for r in data.get("detail_list") or [] if isinstance(r, dict)]
        return rows, str(data.get("next_cursor") or "")

    return list(_paged(page, "get_groupmsg_send_result"))


def cancel_send(client: WeComClient, msgid: str) -> None:
    """Stop a mass send that senders have not confirmed yet."""
    client.call("POST", "/cgi-bin/externalcontact/cancel_groupmsg_send", "cancel_groupmsg_send",
                body={"msgid": msgid})


def remind_send(client: WeComClient, msgid: str) -> None:
    """Notify the senders again (WeCom allows 3 reminders per task in 24 hours)."""
    client.call("POST", "/cgi-bin/externalcontact/remind_groupmsg_send", "remind_groupmsg_send",
                body={"msgid": msgid})


def add_join_way(client: WeComClient, chat_ids: Sequence[str], *, state: str = "", remark: str = "") -> str:
    """A group QR code (scene 2) for 1–5 groups; its config_id."""
    chats = list(dict.fromkeys(c for c in chat_ids if c))
    if not 1 <= len(chats) <= MAX_JOIN_WAY_CHATS:
        raise ValueError(Msg("a group QR code covers 1..%(max_join_way_chats)s groups, got %(count)s",
                             max_join_way_chats=MAX_JOIN_WAY_CHATS, count=len(chats)))
    if len(state) > 30:
        raise ValueError(Msg("state is at most 30 characters"))
    body: dict[str, Any] = {"scene": 2, "chat_id_list": chats}
    if state:
        body["state"] = state
    if remark:
        body["remark"] = remark[:30]
    data = client.call("POST", "/cgi-bin/externalcontact/groupchat/add_join_way", "groupchat/add_join_way", body=body)
    config_id = data.get("config_id")
    if not isinstance(config_id, str) or not config_id:
        raise WeComRejected(Msg("WeCom groupchat/add_join_way answered without a config_id"),
                            api="groupchat/add_join_way")
    return config_id


def join_way_qr(client: WeComClient, config_id: str) -> str:
    """The QR code image URL of a group join way."""
    data = client.call("POST", "/cgi-bin/externalcontact/groupchat/get_join_way", "groupchat/get_join_way",
                       body={"config_id": config_id})
    way = data.get("join_way") if isinstance(data.get("join_way"), dict) else {}
    qr = (way or {}).get("qr_code")
    if not isinstance(qr, str) or not qr:
        raise WeComRejected(Msg("WeCom groupchat/get_join_way answered without a qr_code"),
                            api="groupchat/get_join_way")
    return qr
