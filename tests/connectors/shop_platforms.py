"""Loopback HTTP servers that speak the Taobao Open Platform (TOP) router and JD's JOS ``routerjson``
protocols, with an in-memory shop behind them — for the client, sync and end-to-end tests.

Both check what the real gateways check (method, app key, session / access token, the timestamp's
format and age, the signature) and answer with their error envelopes when something is wrong. The
shops page the way the platforms do: TOP newest-modified first, JOS oldest-modified first, with
``total_results`` / ``orderTotal``.
"""

from __future__ import annotations

import json
import re
import threading
from abc import abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl

from connectors.jd import signing as jd_signing
from connectors.taobao import signing as top_signing
from tests.connectors.fake_top_tmc import TmcMixin
from tests.connectors.loopback import LoopbackServer, Reply, Request

CST = timezone(timedelta(hours=8))
TOP_APP_KEY, TOP_SECRET, TOP_SESSION = "12345678", "top-app-secret-0a1b2c3d4e5f", "6100a2b3c4d5e6f7session"
JOS_APP_KEY, JOS_SECRET, JOS_TOKEN = "D1E2F3A4B5C6", "jos-app-secret-9f8e7d6c", "jos-access-token-0f1e2d3c"
_TS = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{3}\+0800)?$")


def cst(moment: datetime) -> str:
    """``moment`` as the platforms write times: yyyy-MM-dd HH:mm:ss in GMT+8."""
    return moment.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S")


def parse_cst(text: str) -> datetime:
    return datetime.strptime(text[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=CST)


class Platform(LoopbackServer):
    """The HTTP plumbing: every POSTed form is parsed, recorded and answered by ``answer``."""

    methods = ("POST",)

    def __init__(self) -> None:
        self.calls: list[dict[str, str]] = []
        self.errors: list[tuple[int, Any]] = []  # scripted (HTTP status, JSON body) answers, used first
        #: called with the form before each answer (a test changes the shop mid-paging with it)
        self.before: Callable[[dict[str, str]], None] | None = None
        self.lock = threading.Lock()
        super().__init__()

    def serve(self, request: Request) -> Reply:
        form = dict(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True))
        with self.lock:
            self.calls.append(form)
            scripted = self.errors.pop(0) if self.errors else None
        if self.before is not None:
            self.before(form)
        status, body = scripted if scripted else (200, self.answer(form))
        data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        return Reply(status, data, content_type="application/json;charset=UTF-8")

    @abstractmethod
    def answer(self, form: dict[str, str]) -> Any:
        """The JSON answer to one API call (its form fields)."""

    def fail_next(self, body: Any, status: int = 200) -> None:
        with self.lock:
            self.errors.append((status, body))

    def calls_of(self, method: str) -> list[dict[str, str]]:
        return [c for c in self.calls if c.get("method") == method]


def _fresh(timestamp: str, limit: timedelta) -> bool:
    return bool(_TS.match(timestamp)) and abs(datetime.now(UTC) - parse_cst(timestamp)) <= limit


class FakeTop(TmcMixin, Platform):
    """A TOP router with one Taobao shop: ``trades`` and ``refunds`` as the APIs return them, and the
    app's message service (tests/connectors/fake_top_tmc.py)."""

    def __init__(self) -> None:
        super().__init__()
        self.trades: list[dict[str, Any]] = []
        self.refunds: list[dict[str, Any]] = []
        self.init_tmc()
        self.url += "/router/rest"

    @staticmethod
    def error(code: int, msg: str, sub_code: str = "", sub_msg: str = "") -> dict[str, Any]:
        body: dict[str, Any] = {"code": code, "msg": msg, "request_id": "10f2x9lwq0c1k"}
        if sub_code:
            body.update(sub_code=sub_code, sub_msg=sub_msg)
        return {"error_response": body}

    def answer(self, form: dict[str, str]) -> Any:
        if form.get("app_key") != TOP_APP_KEY:
            return self.error(29, "Invalid app Key")
        if not _fresh(form.get("timestamp", ""), timedelta(minutes=10)):
            return self.error(31, "Invalid timestamp")
        method = form.get("sign_method", "md5")
        if form.get("sign") != top_signing.sign(form, TOP_SECRET, method):
            return self.error(25, "Invalid signature")
        if form["method"].startswith("taobao.tmc.") and form.get("format") == "json":
            return self.tmc_answer(form)  # app-level APIs: no session
        if form.get("session") != TOP_SESSION:
            return self.error(27, "Invalid session", "invalid-sessionkey", "SessionKey非法")
        if form.get("format") != "json" or form.get("v") != "2.0":
            return self.error(33, "Invalid format")
        if form["method"] == "taobao.trades.sold.increment.get":
            return self._page(form, self.trades, "trades_sold_increment_get_response", "trades", "trade")
        if form["method"] == "taobao.refunds.receive.get":
            return self._page(form, self.refunds, "refunds_receive_get_response", "refunds", "refund")
        if form["method"] in ("taobao.trade.fullinfo.get", "taobao.refund.get"):
            return self.record_answer(form)
        return self.error(22, "Invalid method")

    def _page(self, form: dict[str, str], records: list[dict[str, Any]], key: str, outer: str,
              inner: str) -> Any:
        start, end = parse_cst(form["start_modified"]), parse_cst(form["end_modified"])
        if end - start > timedelta(days=1) or end < start:
            return self.error(15, "Remote service error", "isv.invalid-parameter:start_modified",
                              "end_modified - start_modified 不能超过一天")
        size, page = int(form.get("page_size", 40)), int(form.get("page_no", 1))
        with self.lock:
            found = sorted((r for r in records if start <= parse_cst(r["modified"]) <= end),
                           key=lambda r: r["modified"], reverse=True)
        chunk = [dict(r) for r in found[(page - 1) * size:page * size]]
        body: dict[str, Any] = {outer: {inner: chunk}, "request_id": "3ofrxkprxl0t"}
        if form.get("use_has_next") == "true":
            body["has_next"] = page * size < len(found)
        else:
            body["total_results"] = len(found)
        return {key: body}


class FakeJos(Platform):
    """A JOS routerjson with one JD POP shop: ``orders`` and refund ``applies``."""

    def __init__(self) -> None:
        super().__init__()
        self.orders: list[dict[str, Any]] = []
        self.applies: list[dict[str, Any]] = []
        self.services: list[dict[str, Any]] = []  # 售后服务单 (jingdong.asc.query.list)
        self.url += "/routerjson"

    @staticmethod
    def error(code: str, zh: str, en: str) -> dict[str, Any]:
        return {"error_response": {"code": code, "zh_desc": zh, "en_desc": en}}

    def answer(self, form: dict[str, str]) -> Any:
        if form.get("app_key") != JOS_APP_KEY:
            return self.error("21", "无效App Key", "Invalid app_key")
        if form.get("v") != "2.0":
            return self.error("5", "不支持的版本号", "Unsupported Version")
        if not _fresh(form.get("timestamp", ""), timedelta(minutes=6)):
            return self.error("8", "非法的时间戳参数", "Invalid Timestamp")
        if form.get("sign") != jd_signing.sign(form, JOS_SECRET):
            return self.error("12", "无效签名", "Invalid Signature")
        if form.get("access_token") != JOS_TOKEN:
            return self.error("19", "无效access_token", "Invalid access_token")
        params = json.loads(form[jd_signing.PARAM_JSON])
        method = form["method"]
        if method in ("jingdong.pop.order.search", "jingdong.pop.order.enSearch"):
            return self._orders(method, params)
        if method == "jingdong.pop.afs.soa.refundapply.queryPageList":
            return self._applies(params)
        if method == "jingdong.asc.query.list":
            return self._services(params)
        return self.error("15", "不存在的方法名", "Invalid Method")

    def _services(self, params: dict[str, Any]) -> Any:
        """As the JOS gateway answers jingdong.asc.query.list (``pageResult.data``, ``code`` "0")."""
        if not params.get("buId") or not params.get("operatePin") or not params.get("operateNick"):
            return {"jingdong_asc_query_list_responce": {"code": "1", "msg": "buId/operatePin/operateNick 必填"}}
        by = next((b for b in ("apply", "approve") if f"{b}TimeBegin" in params), None)
        if by is None:
            return {"jingdong_asc_query_list_responce": {"code": "1", "msg": "时间条件必填"}}
        start, end = parse_cst(params[f"{by}TimeBegin"]), parse_cst(params[f"{by}TimeEnd"])
        size, page = int(params["pageSize"]), int(params["pageNumber"])
        with self.lock:
            found = sorted((s for s in self.services if s.get(f"{by}Time")
                            and start <= parse_cst(s[f"{by}Time"]) <= end), key=lambda s: s[f"{by}Time"])
        chunk = [dict(s) for s in found[(page - 1) * size:page * size]]
        return {"jingdong_asc_query_list_responce": {"code": "0", "pageResult": {
            "totalCount": len(found), "pageNumber": page, "pageSize": size, "data": chunk}}}

    def _orders(self, method: str, params: dict[str, Any]) -> Any:
        start, end = parse_cst(params["start_date"]), parse_cst(params["end_date"])
        states = set(str(params.get("order_state") or "").split(","))
        if not params.get("optional_fields") or not params.get("order_state"):
            return self.error("40", "缺少必选参数", "Missing Required Arguments")
        if end - start > timedelta(days=31):
            return {method.replace(".", "_") + "_responce": {"code": "0", "searchorderinfo_result": {
                "apiResult": {"success": False, "englishErrCode": "time span exceeds one month",
                              "chineseErrCode": "开始时间和结束时间不得相差超过1个月", "numberCode": 10200005}}}}
        field = "modified" if int(params.get("dateType", 0)) != 1 else "orderStartTime"
        size, page = int(params["page_size"]), int(params["page"])
        with self.lock:
            found = sorted((o for o in self.orders
                            if start <= parse_cst(o[field]) <= end and o["orderState"] in states),
                           key=lambda o: o[field])
        chunk = [dict(o) for o in found[(page - 1) * size:page * size]]
        return {method.replace(".", "_") + "_responce": {"code": "0", "searchorderinfo_result": {
            "apiResult": {"success": True, "englishErrCode": "success", "chineseErrCode": "成功",
                          "numberCode": 10100000},
            "orderInfoList": chunk, "orderTotal": len(found)}}}

    def _applies(self, params: dict[str, Any]) -> Any:
        by = "apply" if "applyTimeStart" in params else "check"
        start, end = parse_cst(params[f"{by}TimeStart"]), parse_cst(params[f"{by}TimeEnd"])
        size, page = int(params["pageSize"]), int(params["pageIndex"])
        if not 1 <= size <= 50 or not 1 <= page <= 100:
            return {"jingdong_pop_afs_soa_refundapply_queryPageList_responce": {"code": "0", "queryResult": {
                "success": False, "errorCode": "PARAM_ERROR", "errorMessage": "pageIndex 1-100, pageSize 1-50"}}}
        with self.lock:
            found = sorted((a for a in self.applies if a.get(f"{by}Time")
                            and start <= parse_cst(a[f"{by}Time"]) <= end), key=lambda a: a[f"{by}Time"])
        chunk = [dict(a) for a in found[(page - 1) * size:page * size]]
        return {"jingdong_pop_afs_soa_refundapply_queryPageList_responce": {"code": "0", "queryResult": {
            "success": True, "totalCount": len(found), "result": chunk}}}


# -- realistic records -----------------------------------------------------------------------------------


def top_trade(tid: int, modified: datetime, status: str = "WAIT_SELLER_SEND_GOODS", *, payment: str = "129.00",
              buyer: str = "AAHk5d-EAAeGwJedwSFu0XXX", mobile: str = "138****8000") -> dict[str, Any]:
    """A trade as taobao.trades.sold.increment.get returns it (JSON, ``format=json``)."""
    return {
        "tid": tid, "tid_str": str(tid), "status": status, "type": "fixed", "payment": payment, "post_fee": "0.00",
        "total_fee": "139.00", "created": cst(modified - timedelta(minutes=5)),
        "pay_time": cst(modified - timedelta(minutes=4)) if status not in ("WAIT_BUYER_PAY",) else None,
        "modified": cst(modified), "buyer_open_uid": buyer, "receiver_mobile": mobile, "seller_nick": "潮汐旗舰店",
        "orders": {"order": [{"oid": tid, "num_iid": 612345678901, "sku_id": "4938475629384",
                              "outer_sku_id": "TEE-BLK-M", "title": "纯棉圆领T恤 黑色 M", "num": 1,
                              "price": "139.00", "payment": payment, "cid": 50000436,
                              "status": status}]},
    }


def top_refund(refund_id: int, tid: int, modified: datetime, status: str = "WAIT_SELLER_AGREE", *,
               refund_fee: str = "129.00", buyer: str = "AAHk5d-EAAeGwJedwSFu0XXX") -> dict[str, Any]:
    return {"refund_id": str(refund_id), "tid": tid, "oid": tid, "status": status, "refund_fee": refund_fee,
            "total_fee": "139.00", "payment": "129.00", "created": cst(modified - timedelta(minutes=1)),
            "modified": cst(modified), "reason": "不想要了", "desc": "尺码偏小", "title": "纯棉圆领T恤 黑色 M",
            "num": 1, "num_iid": 612345678901, "sku": "4938475629384", "price": "139.00",
            "buyer_open_uid": buyer, "order_status": "WAIT_SELLER_SEND_GOODS", "refund_phase": "onsale"}


def jd_order(order_id: int, modified: datetime, state: str = "WAIT_SELLER_STOCK_OUT", *,
             payment: str = "259.80", buyer: str = "o-JD-buyer-5f2a", mobile: str = "13900139000") -> dict[str, Any]:
    """An order as jingdong.pop.order.search returns it in orderInfoList."""
    return {
        "orderId": str(order_id), "venderId": "10086", "orderType": "22", "payType": "4-在线支付",
        "orderState": state, "orderStateRemark": "等待出库", "orderTotalPrice": "279.80",
        "orderSellerPrice": "259.80", "orderPayment": payment, "freightPrice": "0.00", "sellerDiscount": "20.00",
        "orderStartTime": cst(modified - timedelta(minutes=10)),
        "paymentConfirmTime": cst(modified - timedelta(minutes=9)), "modified": cst(modified),
        "consigneeInfo": {"fullname": "李四", "mobile": mobile, "telephone": "", "province": "北京",
                          "city": "北京市", "county": "朝阳区", "fullAddress": "北京朝阳区某某路 1 号"},
        "itemInfoList": [{"skuId": "100012043978", "wareId": "100012043978", "skuName": "保温杯 500ml 白色",
                          "jdPrice": "129.90", "itemTotal": "2", "outerSkuId": "CUP-500-WHT", "productNo": ""}],
        "open_id_buyer": buyer, "xid_buyer": "xid-" + buyer, "pin": "",
    }


def jd_apply(apply_id: int, order_id: int, applied: datetime, status: int = 0, *, checked: datetime | None = None,
             amount_fen: int = 25980, buyer: str = "o-JD-buyer-5f2a") -> dict[str, Any]:
    """A refund application as refundapply.queryPageList returns it (applyRefundSum in fen)."""
    return {"id": apply_id, "orderId": str(order_id), "buyerId": "jd_pin_masked", "buyerName": "李*",
            "openIdBuyer": buyer, "applyTime": cst(applied), "checkTime": cst(checked) if checked else "",
            "status": status, "applyRefundSum": amount_fen, "reason": "商品降价", "checkUserName": ""}
