"""WeCom staff handover (客户联系 › 离职继承 / 在职继承): move customers and customer groups from one
staff member to another, and read how the moves went.

Every rule below is enforced here, before a request leaves (a call that breaks one raises
``ValueError`` naming the rule), and by the loopback fake (tests/connectors/fake_wecom_transfer.py).
Sources, checked against WeCom's server API documentation (developer.work.weixin.qq.com, document
paths in brackets; see docs/workforce.md for the quotes):

==========================================  ==========================================================
``resigned/transfer_customer`` [94081]      a **resigned** member's customers to a colleague; at most
                                            100 ``external_userid`` per call; per customer errcode 0
                                            means "takeover starts, automatic after 24 h"
``transfer_customer`` [92125]               an **employed** member's customers (在职转接): the same 100 per
                                            call, plus ``transfer_success_msg`` (≤ 200 characters) that
                                            the customer receives; each customer at most twice in 90
                                            natural days
``resigned/transfer_result`` [94082],       per customer: status 1 done, 2 waiting (``takeover_time`` is
``transfer_result`` [94088]                 the future automatic takeover), 3 the customer refused, 4
                                            the new owner's customer limit was reached; pages of at most
                                            1,000 by ``cursor``
``get_unassigned_list`` [92124]             resigned members' customers still to assign; ``page_size``
                                            at most 1,000, paged by ``cursor``
``groupchat/transfer`` [92127],             group owners: 1–100 ``chat_id_list`` per call; at most 300
``groupchat/onjob_transfer`` [95703]        of one owner's groups a day; an employed owner's group at
                                            most twice in 90 days
``user/get`` [90196]                        a member: departments, ``direct_leader``, ``status``
                                            (1 active, 2 disabled, 4 not activated, 5 left the corp)
==========================================  ==========================================================

Both members must have logged in to WeCom within the past year (the resigned member: within the
year before leaving, and left less than a year ago). No API tells the last login, so the planner
warns from what Tideflow saw (activities/workforce/handover.py) and the per-customer errcode says
the rest. Frequency limits (errcode 45009 / 45033) raise :class:`WeComRetryable` with a
``retry_after`` hint like every other call of the client.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.wecom.api_errors import WeComRejected
from connectors.wecom.client import WeComClient
from wording import Msg

#: external_userid per transfer call (both transfer_customer APIs)
MAX_CUSTOMERS_PER_CALL = 100
#: chat ids per group-owner transfer call (both groupchat transfer APIs): 1..100
MAX_CHATS_PER_CALL = 100
#: one owner's groups that may be handed over per day
MAX_CHATS_PER_OWNER_PER_DAY = 300
#: a customer (or an employed owner's group) may be transferred at most this often …
MAX_TRANSFERS_IN_WINDOW = 2
#: … within this many natural days
TRANSFER_WINDOW_DAYS = 90
#: the automatic takeover happens this long after the transfer call
TAKEOVER_DELAY_HOURS = 24
#: members who have not logged in for this long cannot hand over or take over
LOGIN_WITHIN_DAYS = 365
#: transfer_success_msg length (characters)
MAX_SUCCESS_MSG_CHARS = 200
#: get_unassigned_list / transfer_result page size
MAX_PAGE = 1000

#: transfer_result status → what it means (the only final one that moves the customer is 1)
TRANSFER_STATUS = {1: "done", 2: "waiting", 3: "refused", 4: "limit_reached", 5: "no_record"}
FINAL_STATUSES = frozenset({1, 3, 4, 5})

#: per-customer / per-chat errcodes of the transfer calls (全局错误码, document path 90313)
TRANSFER_ERRCODES: dict[int, str] = {
    40096: "not a valid external_userid",
    40097: "the handover member has not left the corp (use the in-service transfer)",
    40098: "the takeover member has not completed real-name verification",
    40099: "the takeover member has reached the customer limit",
    40100: "this customer is already being transferred",
    40128: "transferred too often (at most twice in 90 days)",
    40129: "this customer is already being transferred",
    40130: "the handover and the takeover member are the same",
    40131: "the customer is not a contact of the handover member",
    90500: "the owner of this group has not left the corp",
    90501: "not an external group chat",
}


@dataclass(frozen=True)
class TransferOutcome:
    """One customer's (or chat's) answer to a transfer call: errcode 0 = the takeover has started."""

    id: str
    errcode: int
    errmsg: str = ""

    @property
    def started(self) -> bool:
        return self.errcode == 0

    @property
    def reason(self) -> str:
        return TRANSFER_ERRCODES.get(self.errcode, self.errmsg or f"errcode {self.errcode}")


@dataclass(frozen=True)
class TransferState:
    """One customer's takeover state from transfer_result."""

    external_userid: str
    status: int
    #: unix seconds: when the takeover happened, or (status 2) when it will happen
    takeover_time: int = 0

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def meaning(self) -> str:
        return TRANSFER_STATUS.get(self.status, f"status {self.status}")


@dataclass(frozen=True)
class UnassignedCustomer:
    handover_userid: str
    external_userid: str
    dimission_time: int = 0


@dataclass(frozen=True)
class Member:
    """A staff member as user/get describes them."""

    userid: str
    name: str = ""
    departments: list[int] = field(default_factory=list)
    main_department: int | None = None
    direct_leader: list[str] = field(default_factory=list)
    #: 1 active, 2 disabled, 4 not activated, 5 left the corp
    status: int = 1

    @property
    def resigned(self) -> bool:
        return self.status == 5


def _ids(values: Sequence[str], what: str, limit: int) -> list[str]:
    unique = list(dict.fromkeys(v for v in values if v))
    if not unique:
        raise ValueError(Msg("a transfer needs at least one %(what)s", what=what))
    if len(unique) > limit:
        raise ValueError(Msg("WeCom takes at most %(limit)s %(what)ss per transfer call, got %(count)s; split the "
                             "batch (the handover planner does)", limit=limit, what=what, count=len(unique)))
    return unique


def _check_members(handover_userid: str, takeover_userid: str) -> None:
    if not handover_userid or not takeover_userid:
        raise ValueError(Msg("a transfer needs handover_userid and takeover_userid"))
    if handover_userid == takeover_userid:
        raise ValueError(Msg("the handover and the takeover member are the same (WeCom errcode 40130)"))


def _outcomes(data: dict[str, Any], key: str, id_key: str) -> list[TransferOutcome]:
    return [TransferOutcome(str(row.get(id_key) or ""), int(row.get("errcode") or 0), str(row.get("errmsg") or ""))
            for row in data.get(key) or [] if isinstance(row, dict)]


def transfer_customers(client: WeComClient, handover_userid: str, takeover_userid: str,
                       external_userids: Sequence[str], *, resigned: bool,
                       transfer_success_msg: str | None = None) -> list[TransferOutcome]:
    """Start moving up to 100 customers; one outcome per customer (errcode 0: takeover after 24 h).

    ``resigned`` picks ``resigned/transfer_customer`` (离职继承) or ``transfer_customer`` (在职转接; the
    customer is told, with ``transfer_success_msg`` or WeCom's default text)."""
    _check_members(handover_userid, takeover_userid)
    ids = _ids(external_userids, "external_userid", MAX_CUSTOMERS_PER_CALL)
    body: dict[str, Any] = {"handover_userid": handover_userid, "takeover_userid": takeover_userid,
                            "external_userid": ids}
    if resigned:
        if transfer_success_msg:
            raise ValueError(Msg("transfer_success_msg is for in-service transfers; a resigned member's customers "
                                 "are not told"))
        api, path = "resigned/transfer_customer", "/cgi-bin/externalcontact/resigned/transfer_customer"
    else:
        if transfer_success_msg:
            if len(transfer_success_msg) > MAX_SUCCESS_MSG_CHARS:
                raise ValueError(Msg("transfer_success_msg is %(count)s characters; WeCom takes at most "
                                     "%(max_success_msg_chars)s", count=len(transfer_success_msg),
                                     max_success_msg_chars=MAX_SUCCESS_MSG_CHARS))
            body["transfer_success_msg"] = transfer_success_msg
        api, path = "transfer_customer", "/cgi-bin/externalcontact/transfer_customer"
    data = client.call("POST", path, api, body=body)
    outcomes = _outcomes(data, "customer", "external_userid")
    answered = {o.id for o in outcomes}
    missing = [i for i in ids if i not in answered]
    if missing:
        raise WeComRejected(Msg("WeCom %(api)s answered without a result for %(count)s customer(s)", api=api,
                                count=len(missing)), api=api)
    return outcomes


def transfer_result_page(client: WeComClient, handover_userid: str, takeover_userid: str, *, resigned: bool,
                         cursor: str = "") -> tuple[list[TransferState], str]:
    """One page (≤ 1,000) of takeover states for a (handover, takeover) pair, and the next cursor ("" = last)."""
    _check_members(handover_userid, takeover_userid)
    body: dict[str, Any] = {"handover_userid": handover_userid, "takeover_userid": takeover_userid}
    if cursor:
        body["cursor"] = cursor
    if resigned:
        api, path = "resigned/transfer_result", "/cgi-bin/externalcontact/resigned/transfer_result"
    else:
        api, path = "transfer_result", "/cgi-bin/externalcontact/transfer_result"
    data = client.call("POST", path, api, body=body)
    states = [TransferState(str(row.get("external_userid") or ""), int(row.get("status") or 0),
                            int(row.get("takeover_time") or 0))
              for row in data.get("customer") or [] if isinstance(row, dict)]
    return states, str(data.get("next_cursor") or "")


def transfer_results(client: WeComClient, handover_userid: str, takeover_userid: str, *,
                     resigned: bool) -> Iterator[TransferState]:
    """Every takeover state of the pair, page after page."""
    cursor = ""
    for _ in range(100_000):  # a cursor that never ends is WeCom's bug, not a reason to loop forever
        states, cursor = transfer_result_page(client, handover_userid, takeover_userid, resigned=resigned,
                                              cursor=cursor)
        yield from states
        if not cursor:
            return
    raise WeComRejected(Msg("WeCom transfer_result kept answering a next_cursor"), api="transfer_result")


def unassigned_page(client: WeComClient, *, cursor: str = "", page_size: int = MAX_PAGE
                    ) -> tuple[list[UnassignedCustomer], str, bool]:
    """One page of resigned members' customers still to assign: (rows, next cursor, is_last)."""
    if not 1 <= page_size <= MAX_PAGE:
        raise ValueError(Msg("get_unassigned_list pages hold 1..%(max_page)s rows, got %(page_size)s",
                             max_page=MAX_PAGE, page_size=page_size))
    body: dict[str, Any] = {"page_size": page_size}
    if cursor:
        body["cursor"] = cursor
    data = client.call("POST", "/cgi-bin/externalcontact/get_unassigned_list", "get_unassigned_list", body=body)
    rows = [UnassignedCustomer(str(r.get("handover_userid") or ""), str(r.get("external_userid") or ""),
                               int(r.get("dimission_time") or 0))
            for r in data.get("info") or [] if isinstance(r, dict)]
    nxt = str(data.get("next_cursor") or "")
    return rows, nxt, bool(data.get("is_last")) or not nxt


def unassigned_customers(client: WeComClient, handover_userid: str | None = None) -> Iterator[UnassignedCustomer]:
    """Every unassigned customer (of one resigned member, or of all), following the cursor."""
    cursor = ""
    for _ in range(100_000):
        rows, cursor, last = unassigned_page(client, cursor=cursor)
        yield from (r for r in rows if handover_userid is None or r.handover_userid == handover_userid)
        if last:
            return
    raise WeComRejected(Msg("WeCom get_unassigned_list kept answering a next_cursor"), api="get_unassigned_list")


def customers_of(client: WeComClient, userid: str) -> list[str]:
    """The external_userids a member has as contacts (externalcontact/list)."""
    if not userid:
        raise ValueError(Msg("customers_of needs a userid"))
    data = client.call("GET", "/cgi-bin/externalcontact/list", "externalcontact/list", params={"userid": userid})
    return [str(u) for u in data.get("external_userid") or [] if u]


def transfer_groups(client: WeComClient, chat_ids: Sequence[str], new_owner: str, *,
                    resigned: bool) -> list[TransferOutcome]:
    """Hand 1–100 groups to ``new_owner``; the groups that failed, with their errcode (an empty list: all moved).

    Group owner transfers take effect at once (no 24 h wait)."""
    if not new_owner:
        raise ValueError(Msg("a group transfer needs new_owner"))
    ids = _ids(chat_ids, "chat_id", MAX_CHATS_PER_CALL)
    if resigned:
        api, path = "groupchat/transfer", "/cgi-bin/externalcontact/groupchat/transfer"
    else:
        api, path = "groupchat/onjob_transfer", "/cgi-bin/externalcontact/groupchat/onjob_transfer"
    data = client.call("POST", path, api, body={"chat_id_list": ids, "new_owner": new_owner})
    return _outcomes(data, "failed_chat_list", "chat_id")


def get_member(client: WeComClient, userid: str) -> Member:
    """A staff member's departments, leaders and status (user/get)."""
    if not userid:
        raise ValueError(Msg("get_member needs a userid"))
    data = client.call("GET", "/cgi-bin/user/get", "user/get", params={"userid": userid})
    departments = [int(d) for d in data.get("department") or [] if isinstance(d, int | str) and str(d).isdigit()]
    main = data.get("main_department")
    return Member(userid=str(data.get("userid") or userid), name=str(data.get("name") or ""), departments=departments,
                  main_department=int(main) if isinstance(main, int | str) and str(main).isdigit() else None,
                  direct_leader=[str(u) for u in data.get("direct_leader") or [] if u],
                  status=int(data.get("status") or 1))
