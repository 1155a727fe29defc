"""The fake WeCom's customer groups, mass-send tasks and app messages, mixed into :class:`FakeWeCom`.

WeCom's behaviour kept here (connectors/wecom/groupchat.py cites the documentation):

* ``groupchat/list`` pages of at most 1,000 by cursor, filtered by owner and status;
  ``groupchat/get`` with ``member_list`` (type 1 staff, 2 external), ``join_time``, ``join_scene``;
* ``add_msg_template``: chat_type single (≤ 10,000 external_userid, the sender's own customers;
  others go to ``fail_list``) or group (``sender`` required, ≤ 2,000 chat ids the sender owns);
  at most 9 attachments. **Nothing is sent until the sender confirms** (:meth:`confirm`, the
  staff member pressing "send" in the WeCom client): until then ``get_groupmsg_task`` says 0 and
  every recipient's ``get_groupmsg_send_result`` status is 0;
* at confirmation each recipient gets status 1 sent, 2 not a friend (any more), or 3 already
  received another mass message — the corp's limit per recipient: as many a month as the month
  has days (``quota_policy`` "month_days"), or 7 a week ("week_7") or 1 a day ("day_1"), in
  China time;
* ``cancel_groupmsg_send`` stops what is not confirmed; ``remind_groupmsg_send`` at most 3 times
  in 24 h (the fake answers 41075 on the 4th — its choice);
* ``groupchat/add_join_way`` / ``get_join_way``: a group QR code for 1–5 groups;
* ``message/send``: app messages to staff, ``invaliduser`` for unknown members.

The group change callbacks (``change_external_chat``) are built with :func:`group_event_xml`.
"""

from __future__ import annotations

import calendar
import itertools
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

CHINA = timezone(timedelta(hours=8))


@dataclass
class GroupState:
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: msgid → {"chat_type", "text", "attachments", "senders": {userid: {"status", "send_time", "recipients"}},
    #:          "results": {(userid, recipient): status}, "cancelled": bool, "reminders": [times]}
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: recipient → times they received an enterprise mass message
    received: dict[str, list[float]] = field(default_factory=dict)
    join_ways: dict[str, dict[str, Any]] = field(default_factory=dict)
    app_messages: list[dict[str, Any]] = field(default_factory=list)
    serial: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


def quota_window(policy: str, at: float) -> tuple[float, float, int]:
    """(start, end, limit) of the receiving window around ``at`` (China time)."""
    local = datetime.fromtimestamp(at, CHINA)
    if policy == "day_1":
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return start.timestamp(), (start + timedelta(days=1)).timestamp(), 1
    if policy == "week_7":
        start = (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
        return start.timestamp(), (start + timedelta(days=7)).timestamp(), 7
    days = calendar.monthrange(local.year, local.month)[1]
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start.timestamp(), (start + timedelta(days=days)).timestamp(), days


class FakeWeComGroupChat:
    """Mixin: customer groups, mass-send tasks with staff confirmation, group QR codes, app messages."""

    routes_groupchat: dict[str, tuple[str, str]] = {
        "/cgi-bin/externalcontact/groupchat/list": ("POST", "groupchat/list"),
        "/cgi-bin/externalcontact/groupchat/get": ("POST", "groupchat/get"),
        "/cgi-bin/externalcontact/get_groupmsg_task": ("POST", "get_groupmsg_task"),
        "/cgi-bin/externalcontact/get_groupmsg_send_result": ("POST", "get_groupmsg_send_result"),
        "/cgi-bin/externalcontact/cancel_groupmsg_send": ("POST", "cancel_groupmsg_send"),
        "/cgi-bin/externalcontact/remind_groupmsg_send": ("POST", "remind_groupmsg_send"),
        "/cgi-bin/externalcontact/groupchat/add_join_way": ("POST", "groupchat/add_join_way"),
        "/cgi-bin/externalcontact/groupchat/get_join_way": ("POST", "groupchat/get_join_way"),
        "/cgi-bin/message/send": ("POST", "message/send"),
    }
    quota_policy = "month_days"

    # provided by FakeWeCom / FakePlatform / the transfer mixin
    lock: Any
    contacts: dict[str, dict[str, Any]]

    def problem(self, text: str) -> None: ...

    def check_token(self, query: dict[str, str]) -> dict[str, Any] | None: ...

    def clock(self) -> float:
        return time.time()

    @property
    def gstate(self) -> GroupState:
        state = self.__dict__.get("_gstate")
        if state is None:
            state = self.__dict__["_gstate"] = GroupState()
        return state

    @property
    def groups(self) -> dict[str, dict[str, Any]]:
        return self.gstate.groups

    # -- scripting ------------------------------------------------------------------------------------
    def add_group(self, chat_id: str, owner: str, name: str = "", members: tuple[str, ...] = (),
                  notice: str = "") -> None:
        """A group owned by ``owner``; members are external userids (wm…/wo…) or staff userids."""
        with self.lock:
            now = int(self.clock())
            self.groups[chat_id] = {
                "name": name or chat_id, "owner": owner, "create_time": now, "notice": notice, "dismissed": False,
                "members": [{"userid": owner, "type": 1, "join_time": now, "join_scene": 1, "invitor": ""}],
                "version": 1,
            }
            for member in members:
                self.join(chat_id, member)

    def join(self, chat_id: str, userid: str, scene: int = 1, invitor: str = "") -> None:
        with self.lock:
            group = self.groups[chat_id]
            if any(m["userid"] == userid for m in group["members"]):
                return
            kind = 2 if userid.startswith(("wm", "wo")) else 1
            group["members"].append({"userid": userid, "type": kind, "join_time": int(self.clock()),
                                     "join_scene": scene, "invitor": invitor or group["owner"]})
            group["version"] += 1

    def leave(self, chat_id: str, userid: str) -> None:
        with self.lock:
            group = self.groups[chat_id]
            group["members"] = [m for m in group["members"] if m["userid"] != userid]
            group["version"] += 1

    def dismiss(self, chat_id: str) -> None:
        with self.lock:
            self.groups[chat_id]["dismissed"] = True

    def confirm(self, msgid: str, sender: str) -> None:
        """``sender`` confirms the mass send in the WeCom client: each recipient's outcome is decided."""
        with self.lock:
            task = self.gstate.tasks[msgid]
            part = task["senders"][sender]
            if task["cancelled"] or part["status"] == 2:
                return
            now = self.clock()
            part["status"], part["send_time"] = 2, int(now)
            for recipient in part["recipients"]:
                if task["chat_type"] == "single":
                    contact = self.contacts.get(recipient)
                    friend = contact is not None and sender in contact["follow_users"]
                else:
                    group = self.groups.get(recipient)
                    friend = group is not None and not group["dismissed"] and group["owner"] == sender
                if not friend:
                    status = 2
                else:
                    start, end, limit = quota_window(self.quota_policy, now)
                    got = [t for t in self.gstate.received.get(recipient, []) if start <= t < end]
                    if len(got) >= limit:
                        status = 3
                    else:
                        status = 1
                        self.gstate.received.setdefault(recipient, []).append(now)
                task["results"][(sender, recipient)] = (status, int(now) if status == 1 else 0)

    def receive_mass_message(self, recipient: str, at: float | None = None) -> None:
        """Count a mass message the recipient got outside Tideflow (a staff member's own mass send)."""
        with self.lock:
            self.gstate.received.setdefault(recipient, []).append(self.clock() if at is None else at)

    def register_template(self, msgid: str, chat_type: str, sender: str | None, recipients: list[str],
                          fail: list[str], text: str, attachments: list[Any]) -> None:
        """Called by add_msg_template: the task waits for each sender's confirmation."""
        with self.lock:
            senders: dict[str, dict[str, Any]] = {}
            for recipient in recipients:
                if recipient in fail:
                    continue
                if chat_type == "single":
                    owners = [sender] if sender else list(self.contacts.get(recipient, {}).get("follow_users", []))[:1]
                else:
                    owners = [sender or self.groups[recipient]["owner"]]
                for owner in owners:
                    part = senders.setdefault(owner, {"status": 0, "send_time": 0, "recipients": []})
                    part["recipients"].append(recipient)
            self.gstate.tasks[msgid] = {"chat_type": chat_type, "text": text, "attachments": attachments,
                                        "senders": senders, "results": {}, "cancelled": False, "reminders": []}

    # -- APIs -----------------------------------------------------------------------------------------
    def api_groupchat_list(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if (bad := self.check_token(query)) is not None:
            return bad
        limit = body.get("limit")
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            self.problem(f"groupchat/list: limit must be 1..1000, got {limit!r}")
            return {"errcode": 40058, "errmsg": "invalid limit"}
        owners = (body.get("owner_filter") or {}).get("userid_list")
        status_filter = body.get("status_filter", 0)
        cursor = body.get("cursor", "")
        with self.lock:
            staff = getattr(self, "xfer", None)
            rows = []
            for chat_id, group in sorted(self.groups.items()):
                if group["dismissed"] or (owners and group["owner"] not in owners):
                    continue
                resigned = staff is not None and staff.staff.get(group["owner"], {}).get("status") == 5
                status = 1 if resigned else 0
                if status_filter and status != status_filter:
                    continue
                rows.append({"chat_id": chat_id, "status": status})
        start = int(cursor[2:]) if isinstance(cursor, str) and cursor.startswith("g:") else 0
        page = rows[start:start + limit]
        more = start + limit < len(rows)
        return {"errcode": 0, "errmsg": "ok", "group_chat_list": page, "next_cursor": f"g:{start + limit}" if more
                else ""}

    def api_groupchat_get(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if (bad := self.check_token(query)) is not None:
            return bad
        chat_id = body.get("chat_id")
        with self.lock:
            group = self.groups.get(chat_id) if isinstance(chat_id, str) else None
            if group is None or group["dismissed"]:
                return {"errcode": 40050, "errmsg": "chatid not found"}
            members = []
            for m in group["members"]:
                row = {"userid": m["userid"], "type": m["type"], "join_time": m["join_time"],
                       "join_scene": m["join_scene"], "invitor": {"userid": m["invitor"]}, "group_nickname": ""}
                if body.get("need_name"):
                    row["name"] = self.contacts.get(m["userid"], {}).get("name", "") or m["userid"]
                members.append(row)
            return {"errcode": 0, "errmsg": "ok", "group_chat": {
                "chat_id": chat_id, "name": group["name"], "owner": group["owner"],
                "create_time": group["create_time"], "notice": group["notice"], "member_list": members,
                "admin_list": [], "member_version": f"v{group['version']}"}}

    def group_template(self, body: dict[str, Any]) -> dict[str, Any]:
        """add_msg_template with chat_type group (called from FakeWeCom.api_add_msg_template)."""
        chats, sender = body.get("chat_id_list"), body.get("sender")
        if not isinstance(sender, str) or not sender:
            self.problem("add_msg_template: a group mass send needs the sender")
            return {"errcode": 41048, "errmsg": "sender missing"}
        if not isinstance(chats, list) or not all(isinstance(c, str) and c for c in chats) \
                or not 1 <= len(chats) <= 2000:
            self.problem(f"add_msg_template: chat_id_list must be a list of 1..2000 ids, got {chats!r}")
            return {"errcode": 40058, "errmsg": "invalid chat_id_list"}
        with self.lock:
            fail = [c for c in chats if c not in self.groups or self.groups[c]["dismissed"]
                    or self.groups[c]["owner"] != sender]
        return {"fail_list": fail, "recipients": chats}

    def api_get_groupmsg_task(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if (bad := self.check_token(query)) is not None:
            return bad
        limit = body.get("limit", 500)
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            self.problem(f"get_groupmsg_task: limit must be 1..1000, got {limit!r}")
        with self.lock:
            task = self.gstate.tasks.get(str(body.get("msgid")))
            if task is None:
                return {"errcode": 41063, "errmsg": "msgid not found"}
            rows = [{"userid": u, "status": p["status"], "send_time": p["send_time"]}
                    for u, p in sorted(task["senders"].items())]
        return {"errcode": 0, "errmsg": "ok", "task_list": rows, "next_cursor": ""}

    def api_get_groupmsg_send_result(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if (bad := self.check_token(query)) is not None:
            return bad
        limit = body.get("limit", 500)
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            self.problem(f"get_groupmsg_send_result: limit must be 1..1000, got {limit!r}")
            return {"errcode": 40058, "errmsg": "invalid limit"}
        userid = body.get("userid")
        cursor = body.get("cursor", "")
        with self.lock:
            task = self.gstate.tasks.get(str(body.get("msgid")))
            if task is None:
                return {"errcode": 41063, "errmsg": "msgid not found"}
            part = task["senders"].get(userid)
            if part is None:
                return {"errcode": 0, "errmsg": "ok", "detail_list": [], "next_cursor": ""}
            key = "external_userid" if task["chat_type"] == "single" else "chat_id"
            rows = []
            for recipient in part["recipients"]:
                status, sent = task["results"].get((userid, recipient), (0, 0))
                rows.append({key: recipient, "userid": userid, "status": status, "send_time": sent})
        start = int(cursor[2:]) if isinstance(cursor, str) and cursor.startswith("s:") else 0
        page = rows[start:start + limit]
        more = start + limit < len(rows)
        return {"errcode": 0, "errmsg": "ok", "detail_list": page, "next_cursor": f"s:{start + limit}" if more else ""}

    def api_cancel_groupmsg_send(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if (bad := self.check_token(query)) is not None:
            return bad
        with self.lock:
            task = self.gstate.tasks.get(str(body.get("msgid")))
            if task is None:
                return {"errcode": 41063, "errmsg": "msgid not found"}
            task["cancelled"] = True
        return {"errcode": 0, "errmsg": "ok"}

    def api_remind_groupmsg_send(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if (bad := self.check_token(query)) is not None:
            return bad
        with self.lock:
            task = self.gstate.tasks.get(str(body.get("msgid")))
            if task is None:
                return {"errcode": 41063, "errmsg": "msgid not found"}
            now = self.clock()
            recent = [t for t in task["reminders"] if now - t < 86_400]
            if len(recent) >= 3:
                return {"errcode": 41075, "errmsg": "remind too often"}
            task["reminders"].append(now)
        return {"errcode": 0, "errmsg": "ok"}

    def api_groupchat_add_join_way(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if (bad := self.check_token(query)) is not None:
            return bad
        chats = body.get("chat_id_list")
        if body.get("scene") not in (1, 2) or not isinstance(chats, list) or not 1 <= len(chats) <= 5:
            self.problem(f"groupchat/add_join_way: scene 1|2 and 1..5 chat ids, got {body!r}")
            return {"errcode": 40058, "errmsg": "invalid parameter"}
        with self.lock:
            if any(c not in self.groups for c in chats):
                return {"errcode": 40050, "errmsg": "chatid not found"}
            config_id = f"join-{next(self.gstate.serial)}"
            self.gstate.join_ways[config_id] = {"config_id": config_id, "scene": body["scene"], "chat_id_list": chats,
                                                "state": body.get("state", ""),
                                                "qr_code": f"https://wework.qpic.cn/wwpic/{config_id}.png"}
        return {"errcode": 0, "errmsg": "ok", "config_id": config_id}

    def api_groupchat_get_join_way(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if (bad := self.check_token(query)) is not None:
            return bad
        with self.lock:
            way = self.gstate.join_ways.get(str(body.get("config_id")))
        if way is None:
            return {"errcode": 41044, "errmsg": "config_id not found"}
        return {"errcode": 0, "errmsg": "ok", "join_way": dict(way)}

    def api_message_send(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if (bad := self.check_token(query)) is not None:
            return bad
        touser, text = body.get("touser"), body.get("text")
        if body.get("msgtype") != "text" or not isinstance(touser, str) or not isinstance(body.get("agentid"), int) \
                or not (isinstance(text, dict) and isinstance(text.get("content"), str)):
            self.problem(f"message/send: expected a text app message, got {body!r}")
            return {"errcode": 40058, "errmsg": "invalid parameter"}
        if len(text["content"].encode()) > 2048:
            self.problem("message/send: text over 2048 bytes")
            return {"errcode": 45002, "errmsg": "content size out of limit"}
        staff = getattr(self, "xfer", None)
        known = set(staff.staff) if staff is not None else set()
        users = touser.split("|")
        invalid = [u for u in users if u not in known]
        with self.lock:
            self.gstate.app_messages.append({"to": [u for u in users if u in known], "text": text["content"],
                                             "agentid": body["agentid"]})
        return {"errcode": 0, "errmsg": "ok", "invaliduser": "|".join(invalid), "msgid": f"app{len(users)}"}


def group_event_xml(chat_id: str, change_type: str, *, update_detail: str = "", members: tuple[str, ...] = (),
                    join_scene: int = 0, quit_scene: int = 0, create_time: int | None = None,
                    corp_id: str = "ww-corp") -> str:
    """A ``change_external_chat`` push as WeCom sends it (客户联系 › 回调通知 › 客户群事件)."""
    def cdata(v: str) -> str:
        return f"<![CDATA[{v}]]>"

    parts = [f"<ToUserName>{cdata(corp_id)}</ToUserName>", f"<FromUserName>{cdata('sys')}</FromUserName>",
             f"<CreateTime>{create_time if create_time is not None else int(time.time())}</CreateTime>",
             f"<MsgType>{cdata('event')}</MsgType>", f"<Event>{cdata('change_external_chat')}</Event>",
             f"<ChatId>{cdata(chat_id)}</ChatId>", f"<ChangeType>{cdata(change_type)}</ChangeType>"]
    if update_detail:
        parts.append(f"<UpdateDetail>{cdata(update_detail)}</UpdateDetail>")
        parts.append(f"<JoinScene>{join_scene}</JoinScene><QuitScene>{quit_scene}</QuitScene>")
        parts.append(f"<MemChangeCnt>{len(members)}</MemChangeCnt>")
        parts.append("<MemChangeList>" + "".join(f"<Item>{cdata(m)}</Item>" for m in members) + "</MemChangeList>")
    return "<xml>" + "".join(parts) + "</xml>"


