"""Fake Youzan, Shopify and 抖店 platforms on 127.0.0.1 that speak the real protocols.

Each fake serves the platform's API the connector calls (tokens, order detail), checks every request
the way the platform would (signatures, tokens, headers) and records protocol violations in
``problems`` (a test asserts it stays empty), and builds signed pushes the way the platform sends them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from connectors.base import Connector
from connectors.douyin.signing import compute_event_sign as douyin_event_sign
from connectors.douyin.signing import sign_request
from connectors.shopify.verify import compute_hmac
from connectors.youzan.signing import compute_event_sign as youzan_event_sign
from designer.app import create_app
from engine import connectors as configured
from engine.db import models
from engine.db.session import session_factory, transaction
from tests.connectors.loopback import LoopbackServer, Reply, Request

Route = Callable[[Request], Reply]


class FakePlatform(LoopbackServer):
    """An HTTP server on 127.0.0.1 answering by path (exact, or the longest matching prefix ending in '/')."""

    methods = ("GET", "POST")

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self.problems: list[str] = []
        self.down = False  # answer 503 to everything (the platform is having a bad day)
        self.lock = threading.Lock()
        super().__init__()

    def serve(self, request: Request) -> Reply:
        with self.lock:
            self.requests.append(request)
        route = self.route_for(request.path)
        if self.down:
            return Reply(503, {"error": "down"})
        if route is None:
            self.problems.append(f"unexpected {request.method} {request.path}")
            return Reply(404, {"error": "no such path"})
        return route(request)

    def route_for(self, path: str) -> Route | None:
        if path in self.routes:
            return self.routes[path]
        prefixes = [p for p in self.routes if p.endswith("/") and path.startswith(p)]
        return self.routes[max(prefixes, key=len)] if prefixes else None

    def calls(self, path: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path == path or (path.endswith("/") and r.path.startswith(path))]


# --- Youzan ---------------------------------------------------------------------------------------------

YZ_CLIENT_ID = "yz5f3c2a1b0d9e8f7a"
YZ_SECRET = "yzsecret-0a1b2c3d4e5f6a7b8c9d"
YZ_KDT = 44770011
YZ_TRADE_GET = "/api/youzan.trade.get/4.0.2"


def youzan_trade(tid: str, *, phone: str = "13800138000", payment: str = "129.00", status: str = "TRADE_PAID",
                 open_id: str = "yzOpen-778899") -> dict[str, Any]:
    """A ``full_order_info`` as youzan.trade.get and the TradeCreate/TradePaid pushes carry it."""
    return {
        "order_info": {"tid": tid, "status": status, "created": "2026-11-23 10:00:00",
                       "pay_time": "2026-11-23 10:01:30", "consign_time": "", "update_time": "2026-11-23 10:01:30",
                       "type": 0},
        "buyer_info": {"buyer_phone": phone, "yz_open_id": open_id, "fans_id": 19582175287, "fans_type": 1},
        "pay_info": {"payment": payment, "total_fee": payment, "post_fee": "0.00"},
        "orders": [{"oid": f"{tid}-1", "item_id": 3301, "sku_id": 88001, "title": "冷萃咖啡 12 支装", "num": 1,
                    "price": payment, "payment": payment}],
    }


class FakeYouzan(FakePlatform):
    """open.youzanyun.com: ``/auth/token`` and ``youzan.trade.get``; signs pushes with Event-Sign."""

    def __init__(self) -> None:
        super().__init__()
        self.trades: dict[str, dict[str, Any]] = {}
        self.issued: list[str] = []
        self.revoked: set[str] = set()
        self.client_id, self.kdt = YZ_CLIENT_ID, YZ_KDT  # the app and shop the silent grant is for
        self.routes["/auth/token"] = self._token
        self.routes[YZ_TRADE_GET] = self._trade_get

    @property
    def current(self) -> str:
        return self.issued[-1] if self.issued else ""

    def _token(self, request: Request) -> Reply:
        body = request.json()
        expected = {"client_id": self.client_id, "client_secret": YZ_SECRET, "authorize_type": "silent",
                    "grant_id": str(self.kdt), "refresh": False}
        if body != expected:
            self.problems.append(f"auth/token body {sorted(body)} is not the silent-grant shape")
            return Reply(200, {"success": False, "code": 40001, "message": "invalid client"})
        token = f"yz-token-{len(self.issued) + 1}"
        self.issued.append(token)
        expires = int((time.time() + 7 * 86400) * 1000)
        return Reply(200, {"success": True, "code": 200, "data": {"access_token": token, "expires": expires,
                                                                  "scope": "trade", "authority_id": str(self.kdt)}})

    def _trade_get(self, request: Request) -> Reply:
        if request.method != "POST" or not request.headers.get("content-type", "").startswith("application/json"):
            self.problems.append("youzan.trade.get must be a JSON POST")
        token = request.query.get("access_token", "")
        if token not in self.issued or token in self.revoked:
            return Reply(200, {"gw_err_resp": {"err_code": 4201, "err_msg": "access_token invalid"}})
        tid = str(request.json().get("tid", ""))
        trade = self.trades.get(tid)
        if trade is None:
            return Reply(200, {"success": True, "code": 200, "data": {}})
        return Reply(200, {"success": True, "code": 200, "data": {"full_order_info": trade}})

    def push(self, kind: str, msg: dict[str, Any], *, secret: str = YZ_SECRET, msg_id: str = "m-1",
             test: bool = False, encode: bool = True) -> tuple[bytes, dict[str, str]]:
        """A push body and headers as Youzan sends them (msg URL-encoded unless ``encode`` is False)."""
        envelope: dict[str, Any] = {
            "client_id": YZ_CLIENT_ID, "kdt_id": YZ_KDT, "kdt_name": "潮汐咖啡旗舰店", "root_kdt_id": YZ_KDT,
            "id": str(msg.get("tid") or (msg.get("full_order_info") or {}).get("order_info", {}).get("tid", "")),
            "type": kind, "status": "", "msg_id": msg_id, "version": 1795413690, "sendCount": 1,
            "msg": quote(json.dumps(msg, ensure_ascii=False, separators=(",", ":"))) if encode else msg,
            "test": test, "mode": 1, "sign": "ignored-body-sign"}
        body = json.dumps(envelope, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", "Event-Type": kind, "Client-Id": YZ_CLIENT_ID,
                   "Event-Sign": youzan_event_sign(YZ_CLIENT_ID, secret, body)}
        return body, headers


@pytest.fixture
def fake_youzan() -> Iterator[FakeYouzan]:
    with FakeYouzan() as server:
        yield server


# --- Shopify --------------------------------------------------------------------------------------------

SHOP = "tideflow-demo.myshopify.com"
SHOPIFY_SECRET = "shpss_0123456789abcdef0123456789abcdef"
SHOPIFY_TOKEN = "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"
SHOPIFY_VERSION = "2025-07"


def shopify_order(order_id: int, *, phone: str | None = "+8613800138000", email: str = "li.lei@example.com",
                  total: str = "199.00", currency: str = "USD", customer_id: int = 7010001) -> dict[str, Any]:
    return {
        "id": order_id, "name": "#1001", "email": email, "phone": None, "created_at": "2026-11-23T10:00:00+08:00",
        "updated_at": "2026-11-23T10:05:00+08:00", "cancelled_at": None, "currency": currency,
        "total_price": total, "financial_status": "paid", "test": False,
        "discount_codes": [{"code": "WELCOME10", "amount": "10.00", "type": "fixed_amount"}],
        "customer": {"id": customer_id, "email": email, "phone": phone, "first_name": "Lei", "last_name": "Li"},
        "line_items": [{"id": 1, "product_id": 632910392, "variant_id": 808950810, "sku": "COLD-BREW-12",
                        "title": "Cold brew 12-pack", "quantity": 1, "price": total, "total_discount": "0.00",
                        "product_type": "coffee"}],
    }


class FakeShopify(FakePlatform):
    """A shop's Admin API (orders) with X-Shopify-Access-Token checks, 429s on demand; signs webhooks."""

    def __init__(self) -> None:
        super().__init__()
        self.orders: dict[int, dict[str, Any]] = {}
        self.throttle: list[str] = []  # Retry-After values for the next answers (429 each)
        self.routes[f"/admin/api/{SHOPIFY_VERSION}/orders/"] = self._order

    def _order(self, request: Request) -> Reply:
        if request.headers.get("x-shopify-access-token") != SHOPIFY_TOKEN:
            return Reply(401, {"errors": "[API] Invalid API key or access token"})
        if self.throttle:
            return Reply(429, {"errors": "Exceeded 2 calls per second"}, headers={"Retry-After": self.throttle.pop(0)})
        name = request.path.rsplit("/", 1)[-1]
        if not name.endswith(".json"):
            self.problems.append(f"order path {request.path} lacks .json")
        order = self.orders.get(int(name.removesuffix(".json")))
        return Reply(200, {"order": order}) if order else Reply(404, {"errors": "Not Found"})

    @staticmethod
    def webhook(topic: str, payload: dict[str, Any], webhook_id: str = "b54557e4-8a5f-4d70-bcd0-43a7c9e1a001",
                *, secret: str = SHOPIFY_SECRET, shop: str = SHOP, raw: bytes | None = None
                ) -> tuple[bytes, dict[str, str]]:
        """A signed webhook of ``payload`` (or of the ``raw`` body bytes as given, e.g. a published fixture)."""
        body = raw if raw is not None else json.dumps(payload).encode()
        return body, {"Content-Type": "application/json", "X-Shopify-Topic": topic, "X-Shopify-Shop-Domain": shop,
                      "X-Shopify-Webhook-Id": webhook_id, "X-Shopify-API-Version": SHOPIFY_VERSION,
                      "X-Shopify-Triggered-At": "2026-11-23T02:05:00.000000Z",
                      "X-Shopify-Hmac-Sha256": compute_hmac(secret, body)}


@pytest.fixture
def fake_shopify() -> Iterator[FakeShopify]:
    with FakeShopify() as server:
        yield server


# --- 抖店 ------------------------------------------------------------------------------------------------

DY_APP_KEY = "7102938475610293847"
DY_SECRET = "dy-secret-9a8b7c6d-5e4f-3a2b-1c0d"
DY_SHOP = "88776655"


def douyin_detail(order_id: str, *, open_id: str = "1@#dyOpenBuyer001", pay_amount: int = 9900,
                  post_tel: str = "") -> dict[str, Any]:
    """``shop_order_detail`` as order.orderDetail answers it (amounts in fen, the phone encrypted)."""
    return {"order_id": order_id, "shop_id": int(DY_SHOP), "order_status": 2, "pay_amount": pay_amount,
            "post_amount": 0, "create_time": 1795413600, "pay_time": 1795413690, "doudian_open_id": open_id,
            "encrypt_post_tel": "#E2h7Nc#dK5y3pQ==*CgkIARCtHCABKAESPgo8", "post_tel": post_tel,
            "sku_order_list": [{"order_id": f"{order_id}1", "sku_id": 1730001, "product_id": 3500001,
                                "product_name": "冷萃咖啡 12 支装", "item_num": 1, "pay_amount": pay_amount,
                                "origin_amount": pay_amount}]}


class FakeDouyin(FakePlatform):
    """openapi-fxg.jinritemai.com: token.create and order.orderDetail with real sign checks; signs pushes."""

    def __init__(self) -> None:
        super().__init__()
        self.details: dict[str, dict[str, Any]] = {}
        self.issued: list[str] = []
        self.revoked: set[str] = set()
        self.routes["/token/create"] = self._token
        self.routes["/order/orderDetail"] = self._detail

    @property
    def current(self) -> str:
        return self.issued[-1] if self.issued else ""

    def _check(self, request: Request, method: str) -> dict[str, Any] | None:
        q = request.query
        param_json = request.body.decode()
        if q.get("method") != method or q.get("app_key") != DY_APP_KEY or q.get("v") != "2":
            self.problems.append(f"{method}: common parameters wrong: {sorted(q)}")
        if q.get("sign_method") != "hmac-sha256":
            self.problems.append(f"{method}: sign_method {q.get('sign_method')}")
        if abs(int(q.get("timestamp") or 0) - time.time()) > 300:
            self.problems.append(f"{method}: timestamp out of the 300 s window")
        expected = sign_request(app_key=DY_APP_KEY, app_secret=DY_SECRET, method=method, param_json=param_json,
                                timestamp=q.get("timestamp", ""))
        if q.get("sign") != expected:
            self.problems.append(f"{method}: bad sign")
            return None
        params = json.loads(param_json)
        if json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False) != param_json:
            self.problems.append(f"{method}: param_json is not sorted and compact")
        return dict(params)

    def _token(self, request: Request) -> Reply:
        params = self._check(request, "token.create")
        if params is None:
            return Reply(200, {"code": 40004, "msg": "签名校验失败", "sub_code": "isv.invalid-sign", "data": {}})
        if params != {"code": "", "grant_type": "authorization_self", "shop_id": DY_SHOP} or \
                "access_token" in request.query:
            self.problems.append(f"token.create params {params}")
        token = f"dy-token-{len(self.issued) + 1}"
        self.issued.append(token)
        return Reply(200, {"code": 10000, "msg": "success", "sub_code": "", "sub_msg": "", "log_id": "L1",
                           "data": {"access_token": token, "expires_in": 604800, "refresh_token": "r",
                                    "scope": "SCOPE", "shop_id": int(DY_SHOP), "shop_name": "潮汐抖音小店"}})

    def _detail(self, request: Request) -> Reply:
        params = self._check(request, "order.orderDetail")
        if params is None:
            return Reply(200, {"code": 40004, "msg": "签名校验失败", "sub_code": "isv.invalid-sign", "data": {}})
        token = request.query.get("access_token", "")
        if token not in self.issued or token in self.revoked:
            return Reply(200, {"code": 30002, "msg": "access_token已过期", "sub_code": "isv.access-token-expired",
                               "data": {}})
        detail = self.details.get(str(params.get("shop_order_id")))
        if detail is None:
            return Reply(200, {"code": 50002, "msg": "业务处理失败", "sub_code": "isv.business-failed:订单不存在",
                               "data": {}})
        return Reply(200, {"code": 10000, "msg": "success", "data": {"shop_order_detail": detail}})

    @staticmethod
    def push(*messages: tuple[str, str, dict[str, Any]], secret: str = DY_SECRET,
             app_id: str = DY_APP_KEY) -> tuple[bytes, dict[str, str]]:
        """A push of ``(tag, msg_id, data)`` messages, ``data`` JSON-encoded as a string like 抖店 does."""
        body = json.dumps([{"tag": tag, "msg_id": msg_id, "data": json.dumps(data, separators=(",", ":"))}
                           for tag, msg_id, data in messages], separators=(",", ":")).encode()
        return body, {"Content-Type": "application/json", "app-id": app_id,
                      "event-sign": douyin_event_sign(DY_APP_KEY, secret, body)}


@pytest.fixture
def fake_douyin() -> Iterator[FakeDouyin]:
    with FakeDouyin() as server:
        yield server


# --- the real app, with one connector configured ------------------------------------------------------

def hook_client(db_url: str, monkeypatch: pytest.MonkeyPatch, connector_id: str, cls: type[Connector],
                settings: dict[str, Any], secrets: dict[str, Any]) -> TestClient:
    """The designer app (no Temporal: events are stored, routing stays pending) with ``cls`` configured as
    ``connector_id``; post to ``/hooks/<connector_id>`` without logging in, as the platform does."""
    monkeypatch.setattr(configured, "connector_classes", lambda: {cls.kind: cls})
    with transaction(db_url) as db:
        configured.save(db, connector_id, cls.kind, connector_id, settings, secrets)
    return TestClient(create_app(db_url, connect=False))


def stored(db_url: str, source: str) -> list[models.EventRecord]:
    with session_factory(db_url)() as db:
        return list(db.scalars(select(models.EventRecord).where(models.EventRecord.source == source)
                               .order_by(models.EventRecord.id)))


def book(db_url: str) -> tuple[list[models.Order], list[models.Refund]]:
    with session_factory(db_url)() as db:
        return (list(db.scalars(select(models.Order).order_by(models.Order.id))),
                list(db.scalars(select(models.Refund).order_by(models.Refund.id))))


def customers(db_url: str) -> list[models.Customer]:
    with session_factory(db_url)() as db:
        return list(db.scalars(select(models.Customer).where(models.Customer.merged_into.is_(None))))


def add_through_settings_page(db_url: str, monkeypatch: pytest.MonkeyPatch, cls: type[Connector], connector_id: str,
                              form: dict[str, str]) -> str:
    """Add ``cls`` through the admin's settings page form (as a person would) after checking the page
    offers its kind with every Settings and Secrets field; returns the page showing the saved connector. It
    creates users and logs in: the calling test asks for ``cheap_passwords``."""
    from designer.connectors import api as api_connectors
    from tests.designer.pages_kit import Browser, add_users
    from tests.e2e.browser import include_once

    monkeypatch.setattr(configured, "connector_classes", lambda: {cls.kind: cls})
    app = create_app(db_url, connect=False)
    include_once(app, api_connectors.router)
    add_users(db_url)
    admin = Browser(app, "admin")
    page = admin.get("/settings/connectors").text
    assert f'id="add-{cls.kind}"' in page and cls.label["zh-CN"] in page
    for prefix, model in (("settings", cls.Settings), ("secrets", cls.Secrets)):
        for name in model.model_fields:
            assert f'name="{prefix}.{name}"' in page, f"{prefix}.{name} has no input"
    saved = admin.post_form("/settings/connectors", {"kind": cls.kind, "id": connector_id, "name": connector_id,
                                                    "enabled": "true", **form})
    assert saved.status_code == 303, saved.text
    shown = admin.get("/settings/connectors").text
    assert f"/hooks/{connector_id}" in shown
    for key, value in form.items():
        if key.startswith("secrets.") and value:
            assert value not in shown
    return shown
