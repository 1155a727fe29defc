"""Genuine Youzan pushes (recorded from a live shop, tests/connectors/fixtures/youzan/README.md) through the
real app: their ``msg`` is form-encoded (a space is '+'), which our own encoder never produces."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest
from fastapi.testclient import TestClient

from connectors.youzan.connector import YouzanConnector
from connectors.youzan.inbound import decode_msg, events_from_push, parse_push
from connectors.youzan.signing import compute_event_sign
from engine import connector_ops
from engine.db.session import session_factory
from tests.connectors.fake_shops import YZ_SECRET, FakeYouzan, book, fake_youzan, hook_client, stored

__all__ = ["fake_youzan"]
RECORDED = Path(__file__).parent / "fixtures" / "youzan"
CLIENT_ID = "c346b8b39599aaa677"  # the app of the recorded pushes
KDT = 13027865
TID = "E20210307175649090904167"
HOOK = "/hooks/youzan-live"


def recorded(name: str) -> bytes:
    return (RECORDED / f"{name}.json").read_bytes().strip()


def signed(body: bytes) -> dict[str, str]:
    kind = json.loads(body)["type"]
    return {"Content-Type": "application/json", "Event-Type": kind, "Client-Id": CLIENT_ID,
            "Event-Sign": compute_event_sign(CLIENT_ID, YZ_SECRET, body)}


def test_a_form_encoded_msg_decodes_plus_as_space_and_keeps_an_encoded_plus() -> None:
    assert decode_msg("%7B%22t%22%3A%222021-03-07+17%3A57%3A51%22%7D") == {"t": "2021-03-07 17:57:51"}
    assert decode_msg("%7B%22p%22%3A%22%2B86+138%22%7D") == {"p": "+86 138"}


def test_the_recorded_buyer_pay_push_becomes_order_paid_at_its_pay_time() -> None:
    push = parse_push(recorded("trade_TradeBuyerPay"))
    [event] = events_from_push(push)
    assert event["type"] == "order.paid" and event["id"] == f"youzan:{KDT}:{TID}:paid"
    assert event["occurred_at"] == "2021-03-07T17:57:51+08:00"
    assert event["customer"] == {"youzan_buyer": "yCKLYMKT630114409934508032"}
    payload = event["payload"]
    assert (payload["amount_fen"], payload["created_at"], payload["paid_at"]) == (
        1, "2021-03-07T17:56:50+08:00", "2021-03-07T17:57:51+08:00")
    assert payload["items"] == [{"sku": "495651017", "name": "元气森林气泡水", "quantity": 1, "price_fen": 1,
                                 "category": ""}]


@pytest.fixture
def hooks(db_url: str, monkeypatch: pytest.MonkeyPatch, fake_youzan: FakeYouzan) -> TestClient:
    fake_youzan.client_id, fake_youzan.kdt = CLIENT_ID, KDT
    return hook_client(db_url, monkeypatch, "youzan-live", YouzanConnector,
                       {"client_id": CLIENT_ID, "api_base": fake_youzan.url}, {"client_secret": YZ_SECRET})


def test_recorded_pushes_through_the_app_pay_then_ship_partly_then_complete(
        hooks: TestClient, db_url: str, fake_youzan: FakeYouzan) -> None:
    paid = recorded("trade_TradeBuyerPay")
    trade: dict[str, Any] = json.loads(unquote_plus(json.loads(paid)["msg"]))["full_order_info"]
    fake_youzan.trades[TID] = {**trade, "order_info": {**trade["order_info"], "status": "TRADE_SUCCESS",
                                                       "success_time": "2021-03-07 18:06:22"}}
    answers = [hooks.post(HOOK, content=body, headers=signed(body)) for body in (
        paid, recorded("trade_TradePartlySellerShip"), recorded("trade_TradeSuccess"), paid)]
    assert [(a.status_code, a.json()) for a in answers] == [(200, {"code": 0, "msg": "success"})] * 4
    events = stored(db_url, "youzan-live")
    assert [(e.type, e.occurred_at.isoformat()[:19]) for e in events] == [
        ("order.paid", "2021-03-07T09:57:51"), ("order.completed", "2021-03-07T10:06:22")]  # UTC
    [order], _ = book(db_url)
    assert (order.order_id, order.status, order.amount_fen) == (TID, "completed", 1)
    assert fake_youzan.problems == []
    with session_factory(db_url)() as db:  # the partial shipment maps to no event: kept raw, counted
        total, by_kind, [kept] = connector_ops.unmapped(db, "youzan-live")
    assert (total, by_kind, kept.message_id) == (1, {"trade_TradePartlySellerShip": 1},
                                                 "ef7b2402-5240-4b40-b223-11cbc0604a6c")
