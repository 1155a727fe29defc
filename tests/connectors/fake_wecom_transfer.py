"""The fake WeCom's staff handover APIs (离职继承 / 在职继承), mixed into :class:`FakeWeCom`.

It keeps WeCom's rules with WeCom's field names and errcodes (connectors/wecom/transfer.py cites
the documentation):

* at most 100 customers / 1–100 chats per call (a bigger call is a *problem*: Tideflow must never
  send one);
* a started customer transfer waits 24 h (status 2, ``takeover_time`` in the future), then becomes
  1 done, 3 refused (scripted with :meth:`refuse`) or 4 the takeover member's customer limit was
  reached — and the refusals and limits are queued as ``transfer_fail`` pushes
  (``FailReason`` customer_refused / customer_limit_exceed) in :attr:`transfer_fail_pushes`;
* a customer at most twice in 90 days (errcode 40128), one transfer at a time (40129);
* the resigned API only for members who left (status 5; 40097 otherwise), the in-service API only
  for members still there;
* the takeover member must be active, verified (40098) and have logged in within a year, the
  handover member too (or, resigned, within the year before leaving);
* group owners: 1–100 chats per call, at most 300 of one owner's groups a day, an employed owner's
  group at most twice in 90 days.

The clock is controllable: :meth:`advance` moves the fake's time (the 24 h takeover happens when a
test says so). What the documentation does not say, the fake chooses and says so here: the errcode
for "has not logged in within a year" (41054, WeCom's "member not activated" code), an in-service
transfer of a member who left (40131), and for groups: over the 300-a-day limit 90503, transferred
too often 90504, a dismissed group 90505.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

DAY = 86_400.0
YEAR = 365 * DAY


@dataclass
class Transfer:
    external_userid: str
    handover: str
    takeover: str
    resigned: bool
    started_at: float
    message: str = ""
    #: 2 until settled, then 1 / 3 / 4
    status: int = 2
    takeover_time: float = 0.0


@dataclass
class TransferState:
    #: userid → {"name", "departments", "main_department", "direct_leader", "status", "last_login",
    #:           "real_name", "customer_limit", "left_at"}
    staff: dict[str, dict[str, Any]] = field(default_factory=dict)
    transfers: list[Transfer] = field(default_factory=list)
    by_customer: dict[str, list[Transfer]] = field(default_factory=dict)
    refusing: set[str] = field(default_factory=set)
    #: (ExternalUserID, UserID (the takeover member), FailReason, CreateTime) for transfer_fail pushes
    transfer_fail_pushes: list[tuple[str, str, str, int]] = field(default_factory=list)
    #: chat_id → times its owner was transferred (fake seconds)
    group_transfers: dict[str, list[float]] = field(default_factory=dict)
    #: (handover owner, day number) → groups handed over that day
    groups_per_day: dict[tuple[str, int], int] = field(default_factory=dict)
    offset: float = 0.0
    cursors: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


class FakeWeComTransfer:
    """Mixin: staff directory (user/get), customer lists and the transfer APIs."""

    routes_transfer: dict[str, tuple[str, str]] = {
        "/cgi-bin/user/get": ("GET", "user/get"),
        "/cgi-bin/externalcontact/list": ("GET", "externalcontact/list"),
        "/cgi-bin/externalcontact/get_unassigned_list": ("POST", "get_unassigned_list"),
        "/cgi-bin/externalcontact/transfer_customer": ("POST", "transfer_customer"),
        "/cgi-bin/externalcontact/resigned/transfer_customer": ("POST", "resigned/transfer_customer"),
        "/cgi-bin/externalcontact/transfer_result": ("POST", "transfer_result"),
        "/cgi-bin/externalcontact/resigned/transfer_result": ("POST", "resigned/transfer_result"),
        "/cgi-bin/externalcontact/groupchat/transfer": ("POST", "groupchat/transfer"),
        "/cgi-bin/externalcontact/groupchat/onjob_transfer": ("POST", "groupchat/onjob_transfer"),
    }

    # provided by FakeWeCom / FakePlatform
    lock: Any
    contacts: dict[str, dict[str, Any]]
    delivered: list[tuple[str, str, str, list[Any]]]

    def problem(self, text: str) -> None: ...

    def check_token(self, query: dict[str, str]) -> dict[str, Any] | None: ...

    # -- state and clock ------------------------------------------------------------------------------
    @property
    def xfer(self) -> TransferState:
        state = self.__dict__.get("_xfer")
        if state is None:
            state = self.__dict__["_xfer"] = TransferState()
        return state

    def clock(self) -> float:
        import time

        return time.time() + self.xfer.offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward (e.g. past the 24 h takeover)."""
        with self.lock:
            self.xfer.offset += seconds
            self.now = self.clock  # tokens and welcome codes age with it

    def add_staff(self, userid: str, name: str = "", *, departments: tuple[int, ...] = (1,),
                  direct_leader: tuple[str, ...] = (), last_login_days_ago: float = 1, real_name: bool = True,
                  customer_limit: int = 50_000) -> None:
        with self.lock:
            self.xfer.staff[userid] = {"name": name or userid, "departments": list(departments),
                                       "main_department": departments[0] if departments else 1,
                                       "direct_leader": list(direct_leader), "status": 1,
                                       "last_login": self.clock() - last_login_days_ago * DAY,
                                       "real_name": real_name, "customer_limit": customer_limit, "left_at": None}

    def resign(self, userid: str) -> None:
        """The member leaves the corp (status 5)."""
        with self.lock:
            member = self.xfer.staff[userid]
            member["status"], member["left_at"] = 5, self.clock()

    def refuse(self, *external_userids: str) -> None:
        """These customers will refuse their pending takeover (status 3, FailReason customer_refused)."""
        with self.lock:
            self.xfer.refusing.update(external_userids)

    def owner_of(self, external_userid: str) -> list[str]:
        with self.lock:
            return list(self.contacts.get(external_userid, {}).get("follow_users", []))

    # -- settling pending takeovers -------------------------------------------------------------------
    def settle(self) -> None:
        """Carry out every takeover whose 24 h are over."""
        with self.lock:
            now = self.clock()
            due = [t for t in self.xfer.transfers if t.status == 2 and t.takeover_time <= now]
            if not due:
                return
            counts = self._customer_counts()
            for t in due:
                contact = self.contacts.get(t.external_userid)
                taker = self.xfer.staff.get(t.takeover, {})
                count = counts.get(t.takeover, 0)
                if t.external_userid in self.xfer.refusing:
                    t.status = 3
                    self.xfer.transfer_fail_pushes.append((t.external_userid, t.takeover, "customer_refused",
                                                           int(t.takeover_time)))
                    if t.resigned and contact is not None and t.handover in contact["follow_users"]:
                        contact["follow_users"].remove(t.handover)  # a resigned member's customer is lost
                elif count >= int(taker.get("customer_limit", 50_000)):
                    t.status = 4
                    self.xfer.transfer_fail_pushes.append((t.external_userid, t.takeover, "customer_limit_exceed",
                                                           int(t.takeover_time)))
                else:
                    t.status = 1
                    if contact is not None:
                        if t.handover in contact["follow_users"]:
                            contact["follow_users"].remove(t.handover)
                            counts[t.handover] = counts.get(t.handover, 1) - 1
                        if t.takeover not in contact["follow_users"]:
                            contact["follow_users"].append(t.takeover)
                            counts[t.takeover] = counts.get(t.takeover, 0) + 1
                    if not t.resigned:
                        self.delivered.append((t.external_userid, f"transfer:{t.takeover}",
                                               t.message or "default transfer message", []))

    # -- helpers --------------------------------------------------------------------------------------
    def _customer_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for contact in self.contacts.values():
            for userid in contact["follow_users"]:
                counts[userid] = counts.get(userid, 0) + 1
        return counts

    def _active_recently(self, userid: str, *, resigned_ok: bool) -> int:
        """0 or the errcode why ``userid`` may not take part in a transfer."""
        member = self.xfer.staff.get(userid)
        if member is None:
            return 60111
        now = self.clock()
        if member["status"] == 5:
            if not resigned_ok:
                return 40131
            left = member["left_at"] or now
            if now - left > YEAR or left - member["last_login"] > YEAR:
                return 41054
            return 0
        if now - member["last_login"] > YEAR:
            return 41054
        return 0

    def _ids(self, api: str, body: dict[str, Any], key: str, low: int, high: int) -> list[str] | dict[str, Any]:
        ids = body.get(key)
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids) or not low <= len(ids) <= high:
            self.problem(f"{api}: {key} must be a list of {low}..{high} ids, got {ids!r}")
            return {"errcode": 40058, "errmsg": f"invalid {key}"}
        return ids

    # -- APIs -----------------------------------------------------------------------------------------
    def api_user_get(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if (bad := self.check_token(query)) is not None:
            return bad
        with self.lock:
            member = self.xfer.staff.get(query.get("userid", ""))
            if member is None:
                return {"errcode": 60111, "errmsg": "userid not found"}
            return {"errcode": 0, "errmsg": "ok", "userid": query["userid"], "name": member["name"],
                    "department": member["departments"], "main_department": member["main_department"],
                    "direct_leader": member["direct_leader"], "status": member["status"]}

    def api_externalcontact_list(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if (bad := self.check_token(query)) is not None:
            return bad
        userid = query.get("userid", "")
        with self.lock:
            if userid not in self.xfer.staff:
                return {"errcode": 60111, "errmsg": "userid not found"}
            found = [e for e, c in self.contacts.items() if userid in c["follow_users"]]
        return {"errcode": 0, "errmsg": "ok", "external_userid": found}

    def api_get_unassigned_list(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if (bad := self.check_token(query)) is not None:
            return bad
        size = body.get("page_size", 1000)
        if not isinstance(size, int) or not 1 <= size <= 1000:
            self.problem(f"get_unassigned_list: page_size must be 1..1000, got {size!r}")
            return {"errcode": 40058, "errmsg": "invalid page_size"}
        cursor = body.get("cursor", "")
        with self.lock:
            self.settle()
            moving = {t.external_userid for t in self.xfer.transfers if t.status == 2}
            rows = [{"handover_userid": u, "external_userid": e, "dimission_time": int(self.xfer.staff[u]["left_at"])}
                    for e, c in sorted(self.contacts.items()) for u in c["follow_users"]
                    if self.xfer.staff.get(u, {}).get("status") == 5 and e not in moving]
        start = int(cursor[2:]) if isinstance(cursor, str) and cursor.startswith("c:") else 0
        if cursor and not (isinstance(cursor, str) and cursor.startswith("c:")):
            return {"errcode": 40058, "errmsg": "invalid cursor"}
        page = rows[start:start + size]
        last = start + size >= len(rows)
        return {"errcode": 0, "errmsg": "ok", "info": page, "is_last": last,
                "next_cursor": "" if last else f"c:{start + size}"}

    def _transfer(self, query: dict[str, str], body: dict[str, Any], *, resigned: bool) -> dict[str, Any]:
        api = "resigned/transfer_customer" if resigned else "transfer_customer"
        if (bad := self.check_token(query)) is not None:
            return bad
        handover, takeover = body.get("handover_userid"), body.get("takeover_userid")
        if not isinstance(handover, str) or not isinstance(takeover, str):
            self.problem(f"{api}: handover_userid and takeover_userid must be strings")
            return {"errcode": 40058, "errmsg": "invalid userid"}
        ids = self._ids(api, body, "external_userid", 1, 100)
        if isinstance(ids, dict):
            return ids
        message = body.get("transfer_success_msg")
        if resigned and message is not None:
            self.problem(f"{api}: transfer_success_msg belongs to the in-service API")
        if message is not None and (not isinstance(message, str) or len(message) > 200):
            self.problem(f"{api}: transfer_success_msg must be at most 200 characters")
            return {"errcode": 40058, "errmsg": "invalid transfer_success_msg"}
        with self.lock:
            self.settle()
            now = self.clock()
            if handover == takeover:
                return {"errcode": 40130, "errmsg": "handover and takeover are the same"}
            giver = self.xfer.staff.get(handover)
            if giver is None or self.xfer.staff.get(takeover) is None:
                return {"errcode": 60111, "errmsg": "userid not found"}
            if resigned and giver["status"] != 5:
                return {"errcode": 40097, "errmsg": "the member has not resigned"}
            if not resigned and giver["status"] == 5:
                return {"errcode": 40131, "errmsg": "the member has resigned: use resigned/transfer_customer"}
            for who, resigned_ok in ((handover, resigned), (takeover, False)):
                code = self._active_recently(who, resigned_ok=resigned_ok)
                if code:
                    return {"errcode": code, "errmsg": f"{who} has not logged in within a year"}
            if not self.xfer.staff[takeover]["real_name"]:
                return {"errcode": 40098, "errmsg": "takeover member not verified"}
            results = []
            held = self._customer_counts().get(takeover, 0)
            for external in ids:
                contact = self.contacts.get(external)
                history = self.xfer.by_customer.get(external, [])
                if contact is None:
                    code = 40096
                elif handover not in contact["follow_users"]:
                    code = 40131
                elif any(t.status == 2 for t in history):
                    code = 40129
                elif sum(1 for t in history if now - t.started_at < 90 * DAY) >= 2:
                    code = 40128
                elif held >= self.xfer.staff[takeover]["customer_limit"]:
                    code = 40099
                else:
                    code = 0
                    started = Transfer(external, handover, takeover, resigned, now, message or "", 2, now + DAY)
                    self.xfer.transfers.append(started)
                    self.xfer.by_customer.setdefault(external, []).append(started)
                results.append({"external_userid": external, "errcode": code})
        return {"errcode": 0, "errmsg": "ok", "customer": results}

    def api_transfer_customer(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        return self._transfer(query, body, resigned=False)

    def api_resigned_transfer_customer(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        return self._transfer(query, body, resigned=True)

    def _result(self, query: dict[str, str], body: dict[str, Any], *, resigned: bool) -> dict[str, Any]:
        if (bad := self.check_token(query)) is not None:
            return bad
        handover, takeover = body.get("handover_userid"), body.get("takeover_userid")
        cursor = body.get("cursor", "")
        with self.lock:
            self.settle()
            rows = [{"external_userid": t.external_userid, "status": t.status, "takeover_time": int(t.takeover_time)
                     if t.status in (1, 2) else 0}
                    for t in self.xfer.transfers
                    if t.handover == handover and t.takeover == takeover and t.resigned == resigned]
        start = int(cursor[2:]) if isinstance(cursor, str) and cursor.startswith("r:") else 0
        page = rows[start:start + 1000]
        more = start + 1000 < len(rows)
        return {"errcode": 0, "errmsg": "ok", "customer": page, "next_cursor": f"r:{start + 1000}" if more else ""}

    def api_transfer_result(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        return self._result(query, body, resigned=False)

    def api_resigned_transfer_result(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        return self._result(query, body, resigned=True)

    def _group_transfer(self, query: dict[str, str], body: dict[str, Any], *, resigned: bool) -> dict[str, Any]:
        api = "groupchat/transfer" if resigned else "groupchat/onjob_transfer"
        if (bad := self.check_token(query)) is not None:
            return bad
        ids = self._ids(api, body, "chat_id_list", 1, 100)
        if isinstance(ids, dict):
            return ids
        new_owner = body.get("new_owner")
        groups: dict[str, dict[str, Any]] = getattr(self, "groups", {})
        failed = []
        with self.lock:
            now = self.clock()
            if not isinstance(new_owner, str) or new_owner not in self.xfer.staff:
                return {"errcode": 60111, "errmsg": "new_owner not found"}
            code = self._active_recently(new_owner, resigned_ok=False)
            if code:
                return {"errcode": code, "errmsg": "new owner has not logged in within a year"}
            for chat_id in ids:
                group = groups.get(chat_id)
                if group is None:
                    failed.append({"chat_id": chat_id, "errcode": 90501, "errmsg": "chat is not external group chat"})
                    continue
                owner = group["owner"]
                member = self.xfer.staff.get(owner, {})
                day = (owner, int(now // DAY))
                history = [t for t in self.xfer.group_transfers.get(chat_id, []) if now - t < 90 * DAY]
                if group.get("dismissed"):
                    failed.append({"chat_id": chat_id, "errcode": 90505, "errmsg": "the group was dismissed"})
                elif resigned and member.get("status") != 5:
                    failed.append({"chat_id": chat_id, "errcode": 90500,
                                   "errmsg": "the owner of this chat is not resigned"})
                elif not resigned and member.get("status") == 5:
                    failed.append({"chat_id": chat_id, "errcode": 90500, "errmsg": "the owner has resigned"})
                elif self.xfer.groups_per_day.get(day, 0) >= 300:
                    failed.append({"chat_id": chat_id, "errcode": 90503,
                                   "errmsg": "300 groups of this owner were already transferred today"})
                elif not resigned and len(history) >= 2:
                    failed.append({"chat_id": chat_id, "errcode": 90504, "errmsg": "transferred too often"})
                else:
                    self.xfer.groups_per_day[day] = self.xfer.groups_per_day.get(day, 0) + 1
                    self.xfer.group_transfers.setdefault(chat_id, []).append(now)
                    group["owner"] = new_owner
                    group.setdefault("owner_changes", []).append((owner, new_owner, now))
        return {"errcode": 0, "errmsg": "ok", "failed_chat_list": failed}

    def api_groupchat_transfer(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        return self._group_transfer(query, body, resigned=True)

    def api_groupchat_onjob_transfer(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        return self._group_transfer(query, body, resigned=False)
