"""The WeCom fake's contact ways (「联系我」), scans and adds through them, and friend deletions — a mixin
of :class:`tests.connectors.fake_wecom.FakeWeCom`, speaking WeCom's field names and enforcing its rules:

* ``add_contact_way`` / ``update_contact_way`` / ``get_contact_way`` / ``del_contact_way`` with ``type``,
  ``scene``, ``state``, ``remark``, ``skip_verify``, ``user``, ``party``, ``is_temp``, ``config_id``,
  ``qr_code``;
* ``state`` and ``remark`` at most 30 characters; at most 100 members per contact way, members of the
  listed departments counted (``fake.departments``); at most ``max_contact_ways`` (500,000) per corp;
  temporary ways only for a corp whose industry allows them (``temp_allowed``), single-person, and
  good for one add;
* a scan-and-add (:meth:`ContactWayFake.scan_and_add`) picks a member of the way, makes the friendship
  and returns the ``add_external_contact`` callback with ``State`` and — unless the member has a
  welcome configured in the admin console (``console_welcome``) or already chatted with the customer
  (``chatted``) — a ``WelcomeCode`` (valid 20 s, once: FakeWeCom.api_send_welcome_msg);
* deletions: :meth:`ContactWayFake.customer_deletes` (``del_follow_user``) and
  :meth:`ContactWayFake.staff_deletes` (``del_external_contact``).

The documentation names no errcode for the limits; the fake answers 40058 (invalid parameter) with an
errmsg naming the limit, 41011 for a missing ``config_id`` and 41044 for an unknown one (choices, said
here). Another app sending the same welcome_code first is scripted with :meth:`another_app_sends`
(41096).
"""

from __future__ import annotations

import itertools
import threading
from typing import Any


class ContactWayFake:
    """Mixin: needs FakePlatform's ``lock``, ``now``, ``check_token``, ``problem``, ``fail_next`` and
    FakeWeCom's ``contacts``, ``welcome_codes``, ``add_contact``, ``corp_id``."""

    contact_way_routes = {
        "/cgi-bin/externalcontact/add_contact_way": ("POST", "add_contact_way"),
        "/cgi-bin/externalcontact/update_contact_way": ("POST", "update_contact_way"),
        "/cgi-bin/externalcontact/get_contact_way": ("POST", "get_contact_way"),
        "/cgi-bin/externalcontact/del_contact_way": ("POST", "del_contact_way"),
    }
    max_contact_ways = 500_000
    max_members = 100

    lock: threading.RLock
    contacts: dict[str, dict[str, Any]]
    welcome_codes: dict[str, tuple[str, float]]
    corp_id: str

    def init_contact_ways(self) -> None:
        #: config_id → the way as get_contact_way returns it (plus "adds")
        self.contact_ways: dict[str, dict[str, Any]] = {}
        #: department id → member userids
        self.departments: dict[int, list[str]] = {}
        #: members with a welcome message configured in the admin console: their adds carry no WelcomeCode
        self.console_welcome: set[str] = set()
        #: (external_userid, userid) pairs that have chatted before: no WelcomeCode either
        self.chatted: set[tuple[str, str]] = set()
        self.temp_allowed = False
        self._way_serial = itertools.count(1)
        self._turn: dict[str, int] = {}

    # -- checks ---------------------------------------------------------------------------------------
    def _way_fields(self, api: str, body: dict[str, Any], creating: bool) -> dict[str, Any] | None:
        bad = {"errcode": 40058, "errmsg": ""}
        for name in ("state", "remark"):
            value = body.get(name)
            if value is not None and (not isinstance(value, str) or len(value) > 30):
                return {**bad, "errmsg": f"invalid {name}: at most 30 characters"}
        user, party = body.get("user"), body.get("party")
        if user is not None and (not isinstance(user, list) or not all(isinstance(u, str) and u for u in user)):
            self.problem(f"{api}: user must be a list of userids, got {user!r}")
            return {**bad, "errmsg": "invalid user"}
        if party is not None and (not isinstance(party, list) or not all(isinstance(p, int) for p in party)):
            self.problem(f"{api}: party must be a list of department ids, got {party!r}")
            return {**bad, "errmsg": "invalid party"}
        if creating:
            kind, scene = body.get("type"), body.get("scene")
            if kind not in (1, 2):
                return {"errcode": 41037, "errmsg": "missing contact way type"}
            if scene not in (1, 2):
                return {**bad, "errmsg": "invalid scene"}
            if kind == 1 and (len(user or []) != 1 or party):
                return {**bad, "errmsg": "type 1 takes exactly one user"}
            if body.get("is_temp"):
                if not self.temp_allowed:
                    return {"errcode": 41055, "errmsg": "temp contact way not allowed for this corp's industry"}
                if kind != 1:
                    return {**bad, "errmsg": "temp contact way must be single (type 1)"}
        members = set(user or [])
        for dept in party or []:
            if dept not in self.departments:
                return {"errcode": 60123, "errmsg": f"invalid party id {dept}"}
            members.update(self.departments[dept])
        if len(members) > self.max_members:
            return {**bad, "errmsg": f"invalid user: {len(members)} members, at most {self.max_members} "
                                     "(department members counted)"}
        return None

    # -- APIs -------------------------------------------------------------------------------------------
    def api_add_contact_way(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if (bad := self.check_token(query)) is not None:  # type: ignore[attr-defined]
            return bad  # type: ignore[no-any-return]
        if (refused := self._way_fields("add_contact_way", body, creating=True)) is not None:
            return refused
        with self.lock:
            permanent = sum(1 for w in self.contact_ways.values() if not w["is_temp"])
            if not body.get("is_temp") and permanent >= self.max_contact_ways:
                return {"errcode": 40058, "errmsg": f"contact way count reach limit {self.max_contact_ways}"}
            config_id = f"cfg{next(self._way_serial):08x}{abs(hash(self.corp_id)) % 0xFFFF:04x}"
            way = {"config_id": config_id, "type": body["type"], "scene": body["scene"],
                   "style": body.get("style", 1), "remark": body.get("remark", ""),
                   "skip_verify": body.get("skip_verify", True), "state": body.get("state", ""),
                   "user": list(body.get("user") or []), "party": list(body.get("party") or []),
                   "is_temp": bool(body.get("is_temp", False)), "adds": 0}
            if body["scene"] == 2:
                way["qr_code"] = f"https://wework.qpic.cn/wwpic/{config_id}/0"
            self.contact_ways[config_id] = way
        answer = {"errcode": 0, "errmsg": "ok", "config_id": config_id}
        if "qr_code" in way:
            answer["qr_code"] = way["qr_code"]
        return answer

    def _way(self, body: dict[str, Any]) -> dict[str, Any] | tuple[dict[str, Any]]:
        config_id = body.get("config_id")
        if not isinstance(config_id, str) or not config_id:
            return ({"errcode": 41011, "errmsg": "missing config_id"},)
        way = self.contact_ways.get(config_id)
        if way is None:
            return ({"errcode": 41044, "errmsg": "invalid config_id"},)
        return way

    def api_update_contact_way(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if (bad := self.check_token(query)) is not None:  # type: ignore[attr-defined]
            return bad  # type: ignore[no-any-return]
        if (refused := self._way_fields("update_contact_way", body, creating=False)) is not None:
            return refused
        with self.lock:
            way = self._way(body)
            if isinstance(way, tuple):
                return way[0]
            if way["type"] == 1 and body.get("user") is not None and len(body["user"]) != 1:
                return {"errcode": 40058, "errmsg": "type 1 takes exactly one user"}
            for name in ("state", "remark", "skip_verify", "user", "party", "style"):
                if name in body:
                    way[name] = body[name]
        return {"errcode": 0, "errmsg": "ok"}

    def api_get_contact_way(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if (bad := self.check_token(query)) is not None:  # type: ignore[attr-defined]
            return bad  # type: ignore[no-any-return]
        with self.lock:
            way = self._way(body)
            if isinstance(way, tuple):
                return way[0]
            return {"errcode": 0, "errmsg": "ok", "contact_way": {k: v for k, v in way.items() if k != "adds"}}

    def api_del_contact_way(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if (bad := self.check_token(query)) is not None:  # type: ignore[attr-defined]
            return bad  # type: ignore[no-any-return]
        with self.lock:
            way = self._way(body)
            if isinstance(way, tuple):
                return way[0]
            del self.contact_ways[way["config_id"]]
        return {"errcode": 0, "errmsg": "ok"}

    # -- what customers and staff do -------------------------------------------------------------------
    def members_of(self, config_id: str) -> list[str]:
        way = self.contact_ways[config_id]
        members = list(way["user"])
        for dept in way["party"]:
            members += [u for u in self.departments.get(dept, []) if u not in members]
        return members

    def scan_and_add(self, config_id: str, external_userid: str, *, name: str = "", avatar: str = "",
                     unionid: str = "", create_time: int | None = None) -> tuple[str, str, str]:
        """A customer scans the way's QR code and adds a member: (the callback XML, the member, the
        WelcomeCode or "" when WeCom would send none)."""
        with self.lock:
            way = self.contact_ways.get(config_id)
            if way is None:
                raise LookupError(f"no contact way {config_id}: the QR code no longer works")
            if way["is_temp"] and way["adds"] >= 1:
                raise LookupError("a temporary contact way works for one add")
            members = self.members_of(config_id)
            if not members:
                raise LookupError("the contact way has no members")
            turn = self._turn.get(config_id, 0)
            self._turn[config_id] = turn + 1
            member = members[turn % len(members)]
            way["adds"] += 1
            code = self.add_contact(external_userid, member, name=name, unionid=unionid)  # type: ignore[attr-defined]
            self.contacts[external_userid]["avatar"] = avatar
            if member in self.console_welcome or (external_userid, member) in self.chatted:
                self.welcome_codes.pop(code, None)
                code = ""
            when = create_time if create_time is not None else int(self.now())  # type: ignore[attr-defined]
        from tests.connectors.fake_wecom import contact_event_xml

        xml = contact_event_xml("add_external_contact", external_userid, member, create_time=when,
                                state=way["state"], welcome_code=code, corp_id=self.corp_id)
        return xml, member, code

    def another_app_sends(self, code: str) -> None:
        """Another app of the corp takes this welcome_code first: our send_welcome_msg gets 41096."""
        self.fail_next("send_welcome_msg", _reply(41096, "welcome msg is being sent by other app"))  # type: ignore[attr-defined]

    def customer_deletes(self, external_userid: str, user_id: str, *, create_time: int | None = None) -> str:
        """The customer deletes the member (del_follow_user)."""
        from tests.connectors.fake_wecom import contact_event_xml

        self._unfollow(external_userid, user_id)
        return contact_event_xml("del_follow_user", external_userid, user_id, create_time=create_time,
                                 corp_id=self.corp_id)

    def staff_deletes(self, external_userid: str, user_id: str, *, create_time: int | None = None) -> str:
        """The member deletes the customer (del_external_contact)."""
        from tests.connectors.fake_wecom import contact_event_xml

        self._unfollow(external_userid, user_id)
        return contact_event_xml("del_external_contact", external_userid, user_id, create_time=create_time,
                                 corp_id=self.corp_id)

    def _unfollow(self, external_userid: str, user_id: str) -> None:
        with self.lock:
            contact = self.contacts.get(external_userid)
            if contact is not None and user_id in contact["follow_users"]:
                contact["follow_users"].remove(user_id)


def _reply(code: int, errmsg: str) -> Any:
    from tests.connectors.fake_wecom import Reply

    return Reply.errcode(code, errmsg)


class ParamQrFake:
    """Mixin of :class:`tests.connectors.fake_wecom.FakeWeChatOA`: ``qrcode/create`` (生成带参数的二维码) with
    ``action_name`` QR_STR_SCENE / QR_LIMIT_STR_SCENE, ``scene_str`` 1–64 characters, temporary codes at
    most 30 days, at most 100,000 permanent codes (``max_permanent``); :meth:`scan` makes the push."""

    qrcode_routes = {"/cgi-bin/qrcode/create": ("POST", "qrcode/create")}
    max_permanent = 100_000
    lock: threading.RLock

    def init_qrcodes(self) -> None:
        #: ticket → {"scene_str", "permanent", "url", "expires_at"}
        self.qrcodes: dict[str, dict[str, Any]] = {}
        self._qr_serial = itertools.count(1)

    def api_qrcode_create(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if (bad := self.check_token(query)) is not None:  # type: ignore[attr-defined]
            return bad  # type: ignore[no-any-return]
        action = body.get("action_name")
        scene = (body.get("action_info") or {}).get("scene") or {}
        scene_str = scene.get("scene_str")
        if action not in ("QR_SCENE", "QR_STR_SCENE", "QR_LIMIT_SCENE", "QR_LIMIT_STR_SCENE"):
            self.problem(f"qrcode/create: action_name {action!r}")  # type: ignore[attr-defined]
            return {"errcode": 40053, "errmsg": "invalid action info"}
        if not isinstance(scene_str, str) or not 1 <= len(scene_str) <= 64:
            return {"errcode": 40053, "errmsg": "invalid action info: scene_str is 1 to 64 characters"}
        permanent = action.startswith("QR_LIMIT")
        expire = body.get("expire_seconds", 60)
        if not permanent and (not isinstance(expire, int) or not 60 <= expire <= 2_592_000):
            return {"errcode": 40009, "errmsg": "invalid expire_seconds"}
        with self.lock:
            if permanent and sum(1 for q in self.qrcodes.values() if q["permanent"]) >= self.max_permanent:
                return {"errcode": 45027, "errmsg": "permanent qrcode count reach limit"}
            ticket = f"gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xLz{next(self._qr_serial):06d}"
            url = f"http://weixin.qq.com/q/{ticket[-12:]}"
            self.qrcodes[ticket] = {"scene_str": scene_str, "permanent": permanent, "url": url}
        answer: dict[str, Any] = {"ticket": ticket, "url": url}
        if not permanent:
            answer["expire_seconds"] = expire
        return answer

    def scan(self, ticket: str, openid: str, *, following: bool, create_time: int | None = None) -> str:
        """The push a scan of this code makes: ``SCAN`` for a follower, ``subscribe`` with ``qrscene_``
        for someone who follows through it."""
        from tests.connectors.fake_wecom import oa_event_xml

        scene = self.qrcodes[ticket]["scene_str"]
        extra = f"<Ticket><![CDATA[{ticket}]]></Ticket>"
        if following:
            return oa_event_xml(openid, "SCAN", event_key=scene, create_time=create_time, extra=extra)
        self.follow(openid)  # type: ignore[attr-defined]
        return oa_event_xml(openid, "subscribe", event_key=f"qrscene_{scene}", create_time=create_time, extra=extra)
