"""Taobao's message service (TMC) and the single-record APIs, for the loopback TOP router (FakeTop).

As TOP documents them (open.taobao.com API 21986 ``taobao.tmc.messages.consume``, 21985
``taobao.tmc.messages.confirm``, 54 ``taobao.trade.fullinfo.get``, ``taobao.refund.get``):

* consume takes no session (an app-level API); ``group_name`` names a user group and is an error when
  the app has no such group; ``quantity`` is 10–200 (default 100); the answer is
  ``{"tmc_messages_consume_response": {"messages": {"tmc_message": [...]}}}``, and ``{}`` when empty;
* a consumed message is *in flight* until confirmed: ``s_message_ids`` removes it, ``f_message_ids``
  puts it back at once, and :meth:`TmcMixin.redeliver` puts back whatever was never confirmed (what TMC
  does after its redelivery delay);
* ``raw_consume`` answers are served as they are, before the queue (a recorded genuine answer);
* a trade or refund that does not exist is error 15 with ``isv.trade-not-exist`` /
  ``isv.refund-not-exist``.
"""

from __future__ import annotations

import json
from typing import Any


class TmcMixin:
    """State and answers of the message service; FakeTop calls :meth:`tmc_answer` and :meth:`record_answer`."""

    trades: list[dict[str, Any]]
    refunds: list[dict[str, Any]]

    def init_tmc(self) -> None:
        self.tmc_queue: list[dict[str, Any]] = []
        self.tmc_in_flight: dict[str, dict[str, Any]] = {}
        self.tmc_confirmed: list[str] = []
        self.tmc_failed: list[str] = []
        self.tmc_groups: set[str] = set()
        self.raw_consume: list[bytes] = []
        #: TMC not switched on for the app: every consume answers this error
        self.tmc_closed = False

    @staticmethod
    def error(code: int, msg: str, sub_code: str = "", sub_msg: str = "") -> dict[str, Any]:
        raise NotImplementedError  # FakeTop's

    def push(self, topic: str, content: dict[str, Any], *, message_id: int, user_nick: str = "潮汐旗舰店",
             user_id: int = 3423456789, pub_time: str = "2026-11-23 15:29:58") -> None:
        """Put a message on the queue, shaped as TOP lists it (``content`` is JSON text)."""
        self.tmc_queue.append({"user_id": user_id, "user_nick": user_nick,
                               "content": json.dumps(content, ensure_ascii=False, separators=(",", ":")),
                               "id": message_id, "pub_time": pub_time, "pub_app_key": "12497914", "topic": topic})

    def redeliver(self) -> None:
        """What TMC does with messages nobody confirmed: they come again."""
        self.tmc_queue[:0] = list(self.tmc_in_flight.values())
        self.tmc_in_flight.clear()

    def tmc_answer(self, form: dict[str, str]) -> Any:
        method = form["method"]
        group = form.get("group_name", "")
        if group and group not in self.tmc_groups:
            return self.error(15, "Remote service error", "isv.group-not-exist", f"分组 {group} 不存在")
        if method == "taobao.tmc.messages.consume":
            if self.tmc_closed:
                return self.error(15, "Remote service error", "isv.tmc-not-open", "应用未开通消息服务")
            quantity = int(form.get("quantity") or 100)
            if not 10 <= quantity <= 200:
                return self.error(41, "Invalid arguments:quantity")
            if self.raw_consume:
                return self.raw_consume.pop(0)
            taken, self.tmc_queue = self.tmc_queue[:quantity], self.tmc_queue[quantity:]
            for message in taken:
                self.tmc_in_flight[str(message["id"])] = message
            body: dict[str, Any] = {"request_id": "15rf6w7dsqx7y"}
            if taken:
                body["messages"] = {"tmc_message": taken}
            return {"tmc_messages_consume_response": body}
        if method == "taobao.tmc.messages.confirm":
            done = [i for i in form.get("s_message_ids", "").split(",") if i]
            again = [i for i in form.get("f_message_ids", "").split(",") if i]
            if len(done) > 200 or len(again) > 200:
                return self.error(41, "Invalid arguments:s_message_ids")
            for message_id in done:
                self.tmc_confirmed.append(message_id)
                self.tmc_in_flight.pop(message_id, None)
            for message_id in again:
                self.tmc_failed.append(message_id)
                message = self.tmc_in_flight.pop(message_id, None)
                if message is not None:
                    self.tmc_queue.append(message)
            return {"tmc_messages_confirm_response": {"is_success": True, "request_id": "3ofrxkprxl0t"}}
        return self.error(22, "Invalid method")

    def record_answer(self, form: dict[str, str]) -> Any:
        if form["method"] == "taobao.trade.fullinfo.get":
            found = next((t for t in self.trades if str(t.get("tid")) == form.get("tid")), None)
            if found is None:
                return self.error(15, "Remote service error", "isv.trade-not-exist", "交易不存在")
            return {"trade_fullinfo_get_response": {"trade": dict(found), "request_id": "10f2x9lwq0c1k"}}
        found = next((r for r in self.refunds if str(r.get("refund_id")) == form.get("refund_id")), None)
        if found is None:
            return self.error(15, "Remote service error", "isv.refund-not-exist", "退款不存在")
        return {"refund_get_response": {"refund": dict(found), "request_id": "10f2x9lwq0c1k"}}
