"""Youzan pushes: parsing and normalising (pure), then through the real app at /hooks/<id> with a fake
open.youzanyun.com on 127.0.0.1 for the thin messages that need youzan.trade.get."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from connectors.errors import ConnectorProtocolError
from connectors.youzan.connector import YouzanConnector
from connectors.youzan.inbound import (
    ORDER_TYPES,
    REFUND_TYPES,
    decode_msg,
    events_from_push,
    needs_trade,
    parse_push,
    yuan_to_fen,
)
from engine.db import models
from engine.db.session import session_factory
from tests.connectors.fake_shops import (
    YZ_CLIENT_ID,
    YZ_KDT,
    YZ_SECRET,
    FakeYouzan,
    add_through_settings_page,
    book,
    fake_youzan,
    hook_client,
    stored,
    youzan_trade,
)

__all__ = ["fake_youzan"]
HOOK = "/hooks/youzan-main"
TID = "E20261123100000012300001"


# --- pure --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "fen"), [("129.00", 12900), ("0.01", 1), ("129", 12900), (129, 12900),
                                            ("1999.5", 199950), (" 0 ", 0)])
def test_yuan_to_fen(value: Any, fen: int) -> None:
    assert yuan_to_fen(value, "payment") == fen


@pytest.mark.parametrize("value", ["1.001", "-1.00", 1.5, "abc", None, True, "NaN"])
def test_yuan_to_fen_refuses(value: Any) -> None:
    with pytest.raises(ConnectorProtocolError, match="payment"):
        yuan_to_fen(value, "payment")


def test_decode_msg() -> None:
    assert decode_msg(quote('{"tid":"E1","note":"冷萃 咖啡"}')) == {"tid": "E1", "note": "冷萃 咖啡"}
    assert decode_msg('%7B%22note%22%3A%22a+b%2Bc%22%7D') == {"note": "a b+c"}  # form encoding
    assert decode_msg({"refund_id": "R1"}) == {"refund_id": "R1"}
    assert decode_msg("") == {}
    with pytest.raises(ConnectorProtocolError, match="not URL-encoded JSON"):
        decode_msg("%7Bnot json")


def push_body(kind: str, msg: Any, **extra: Any) -> bytes:
    return json.dumps({"client_id": YZ_CLIENT_ID, "kdt_id": YZ_KDT, "id": TID, "type": kind, "msg_id": "m1",
                       "version": 1795413690, "msg": msg, **extra}, ensure_ascii=False).encode()


def test_a_paid_push_becomes_a_canonical_order_paid_event() -> None:
    push = parse_push(push_body("trade_TradePaid", quote(json.dumps({"full_order_info": youzan_trade(TID)}))))
    assert not needs_trade(push)
    [event] = events_from_push(push)
    assert event == {
        "id": f"youzan:{YZ_KDT}:{TID}:paid", "type": "order.paid",
        "customer": {"phone": "13800138000", "youzan_buyer": "yzOpen-778899"},
        "occurred_at": "2026-11-23T10:01:30+08:00",
        "payload": {"order_id": TID, "shop": str(YZ_KDT), "channel": "youzan", "status": "paid", "amount_fen": 12900,
                    "currency": "CNY", "created_at": "2026-11-23T10:00:00+08:00",
                    "paid_at": "2026-11-23T10:01:30+08:00", "attribution": {},
                    "items": [{"sku": "88001", "name": "冷萃咖啡 12 支装", "quantity": 1, "price_fen": 12900,
                               "category": ""}]}}


@pytest.mark.parametrize(("kind", "status"), sorted(ORDER_TYPES.items()))
def test_every_trade_type_maps_to_its_order_status(kind: str, status: str) -> None:
    push = parse_push(push_body(kind, quote(json.dumps({"tid": TID, "update_time": "2026-11-25 09:00:00"}))))
    assert needs_trade(push)
    [event] = events_from_push(push, youzan_trade(TID))
    assert event["type"] == f"order.{status}" and event["id"].endswith(f":{status}")


@pytest.mark.parametrize(("kind", "status"), sorted(REFUND_TYPES.items()))
def test_every_refund_type_maps_to_its_refund_status(kind: str, status: str) -> None:
    msg = {"tid": TID, "refund_id": "2026112310000395", "refunded_fee": "29.90", "oids": f"{TID}-1",
           "refund_reason_desc": "其他", "update_time": "2026-11-24 12:00:00", "refund_type": "REFUND_ONLY"}
    push = parse_push(push_body(kind, msg if kind.startswith("youzan_") else quote(json.dumps(msg))))
    assert needs_trade(push)
    [event] = events_from_push(push, youzan_trade(TID))
    assert event["type"] == f"refund.{status}"
    assert event["payload"]["amount_fen"] == 2990 and event["payload"]["order_id"] == TID
    assert event["payload"]["items"][0]["sku"] == "88001"
    assert event["occurred_at"] == "2026-11-24T12:00:00+08:00"


def test_an_encrypted_phone_is_left_out_and_other_types_give_nothing() -> None:
    trade = youzan_trade(TID, phone="$eTS8t8hAECdXKgNtV6DIfw==$1$")
    push = parse_push(push_body("trade_TradeCreate", quote(json.dumps({"full_order_info": trade}))))
    assert events_from_push(push)[0]["customer"] == {"youzan_buyer": "yzOpen-778899"}
    assert events_from_push(parse_push(push_body("trade_TradeMemoModified", quote('{"tid":"E1"}')))) == []


@pytest.mark.parametrize(("body", "problem"), [
    (b"{", "not JSON"), (b"[]", "JSON object"), (json.dumps({"kdt_id": 1}).encode(), "no 'type'"),
    (json.dumps({"type": "trade_TradePaid"}).encode(), "kdt_id"),
    (json.dumps({"type": "trade_TradePaid", "kdt_id": 1, "msg": 5}).encode(), "'msg'"),
])
def test_envelopes_that_do_not_parse(body: bytes, problem: str) -> None:
    with pytest.raises(ConnectorProtocolError, match=problem):
        parse_push(body)


# --- through the app ------------------------------------------------------------------------------------

@pytest.fixture
def hooks(db_url: str, monkeypatch: pytest.MonkeyPatch, fake_youzan: FakeYouzan) -> TestClient:
    return hook_client(db_url, monkeypatch, "youzan-main", YouzanConnector,
                       {"client_id": YZ_CLIENT_ID, "api_base": fake_youzan.url}, {"client_secret": YZ_SECRET})


def test_a_signed_push_is_stored_once_and_lands_in_the_order_book(hooks: TestClient, db_url: str,
                                                                   fake_youzan: FakeYouzan) -> None:
    body, headers = fake_youzan.push("trade_TradePaid", {"full_order_info": youzan_trade(TID)})
    first = hooks.post(HOOK, content=body, headers=headers)
    assert first.status_code == 200 and first.json() == {"code": 0, "msg": "success"}
    again = hooks.post(HOOK, content=body, headers={**headers, "sendCount": "2"})  # Youzan pushed it again
    assert again.status_code == 200
    [event] = stored(db_url, "youzan-main")
    assert event.type == "order.paid" and event.external_id == f"youzan:{YZ_KDT}:{TID}:paid"
    [order], _ = book(db_url)
    assert (order.channel, order.shop, order.order_id, order.status, order.amount_fen) == (
        "youzan", str(YZ_KDT), TID, "paid", 12900)
    assert order.customer_id == event.customer_id
    assert fake_youzan.requests == []  # a full push needs no API call


def test_a_bad_signature_is_refused_and_nothing_is_stored(hooks: TestClient, db_url: str,
                                                          fake_youzan: FakeYouzan) -> None:
    body, headers = fake_youzan.push("trade_TradePaid", {"full_order_info": youzan_trade(TID)}, secret="not-ours")
    r = hooks.post(HOOK, content=body, headers=headers)
    assert r.status_code == 401 and r.json()["detail"]["field"] == "signature" and YZ_SECRET not in r.text
    _, good = fake_youzan.push("trade_TradePaid", {"full_order_info": youzan_trade(TID)})
    assert hooks.post(HOOK, content=body.replace(b"129.00", b"1.00"), headers=good).status_code == 401
    assert hooks.post(HOOK, content=body, headers={**good, "Client-Id": "someone-else"}).status_code == 401
    assert hooks.post(HOOK, content=body, headers={"Content-Type": "application/json"}).status_code == 401
    assert hooks.post(HOOK, content=b"not json", headers={"Content-Type": "application/json"}).status_code == 401
    assert stored(db_url, "youzan-main") == []


def test_the_test_push_is_answered_without_events(hooks: TestClient, db_url: str, fake_youzan: FakeYouzan) -> None:
    body, headers = fake_youzan.push("", {}, test=True)
    assert hooks.post(HOOK, content=body, headers=headers).json() == {"code": 0, "msg": "success"}
    unsigned = {k: v for k, v in headers.items() if k != "Event-Sign"}
    assert hooks.post(HOOK, content=body, headers=unsigned).json() == {"code": 0, "msg": "success"}
    assert stored(db_url, "youzan-main") == []


def test_a_push_that_does_not_parse_is_a_400_naming_the_problem(hooks: TestClient, fake_youzan: FakeYouzan) -> None:
    body, headers = fake_youzan.push("trade_TradePaid", {"full_order_info": youzan_trade(TID, payment="12.345")})
    r = hooks.post(HOOK, content=body, headers=headers)
    assert r.status_code == 400 and "pay_info.payment" in r.json()["detail"]["message"]
    bad = b'{"type": "trade_TradePaid", "kdt_id": 1, "msg": "%7Bbroken"}'
    from connectors.youzan.signing import compute_event_sign
    r = hooks.post(HOOK, content=bad, headers={"Event-Sign": compute_event_sign(YZ_CLIENT_ID, YZ_SECRET, bad)})
    assert r.status_code == 400 and "not URL-encoded JSON" in r.json()["detail"]["message"]


def test_thin_pushes_are_completed_with_trade_get(hooks: TestClient, db_url: str, fake_youzan: FakeYouzan) -> None:
    fake_youzan.trades[TID] = youzan_trade(TID, status="WAIT_BUYER_CONFIRM_GOODS")
    body, headers = fake_youzan.push("trade_TradeSellerShip", {"tid": TID, "update_time": "2026-11-24 08:00:00"})
    assert hooks.post(HOOK, content=body, headers=headers).status_code == 200
    refund_msg = {"tid": TID, "refund_id": "R-2026-1", "refunded_fee": "129.00", "oids": f"{TID}-1",
                  "update_time": "2026-11-25 08:00:00", "refund_type": "REFUND_ONLY", "version": 1}
    body, headers = fake_youzan.push("youzan_trade_RefundSuccess", refund_msg, encode=False, msg_id="m-2")
    assert hooks.post(HOOK, content=body, headers=headers).status_code == 200
    shipped, refunded = stored(db_url, "youzan-main")
    assert shipped.type == "order.shipped" and shipped.identities == {"phone": "13800138000",
                                                                     "youzan_buyer": "yzOpen-778899"}
    assert shipped.occurred_at.isoformat().startswith("2026-11-24T00:00:00")  # 08:00 China time
    assert refunded.type == "refund.completed" and refunded.customer_id == shipped.customer_id
    [order], [refund] = book(db_url)
    assert order.status == "refunded" and order.refunded_fen == 12900
    assert (refund.refund_id, refund.amount_fen, refund.status) == ("R-2026-1", 12900, "completed")
    [fetch] = fake_youzan.calls("/auth/token")
    assert [c.json() for c in fake_youzan.calls("/api/youzan.trade.get/4.0.2")] == [{"tid": TID}, {"tid": TID}]
    assert fake_youzan.problems == [] and fetch.json()["grant_id"] == str(YZ_KDT)


def test_when_youzan_cannot_be_reached_the_push_is_answered_503_and_kept_for_later(
        hooks: TestClient, db_url: str, fake_youzan: FakeYouzan) -> None:
    fake_youzan.trades[TID] = youzan_trade(TID)
    body, headers = fake_youzan.push("trade_TradeSuccess", {"tid": TID})
    fake_youzan.down = True
    r = hooks.post(HOOK, content=body, headers=headers)
    assert r.status_code == 503 and "success" not in r.text and stored(db_url, "youzan-main") == []
    fake_youzan.down = False
    assert hooks.post(HOOK, content=body, headers=headers).status_code == 200  # Youzan's next try
    assert [e.type for e in stored(db_url, "youzan-main")] == ["order.completed"]


@pytest.mark.usefixtures("cheap_passwords")
def test_the_settings_page_adds_a_youzan_connector(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    add_through_settings_page(db_url, monkeypatch, YouzanConnector, "youzan-main", {
        "settings.client_id": YZ_CLIENT_ID, "settings.api_base": "https://open.youzanyun.com",
        "settings.api_timeout_seconds": "3", "secrets.client_secret": YZ_SECRET})
    with session_factory(db_url)() as db:
        row = db.get(models.ConnectorConfig, "youzan-main")
        assert row is not None and row.settings["client_id"] == YZ_CLIENT_ID and YZ_SECRET not in row.secrets
