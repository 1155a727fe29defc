"""The TOP client and the trade/refund mapping against a loopback TOP router (tests/connectors/shop_platforms.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from connectors.polling import ShopApiRejected, ShopApiRetryable, pages_backward, yuan_to_fen
from connectors.taobao.client import TopClient, response_key, top_error
from connectors.taobao.connector import TaobaoConnector, TaobaoSecrets, TaobaoSettings
from connectors.taobao.orders import trade_events
from connectors.taobao.signing import sign
from tests.connectors.shop_platforms import (
    TOP_APP_KEY,
    TOP_SECRET,
    TOP_SESSION,
    FakeTop,
    cst,
    top_refund,
    top_trade,
)

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def top() -> Iterator[FakeTop]:
    with FakeTop() as server:
        yield server  # type: ignore[misc]


def client(top: FakeTop, **kw: str) -> TopClient:
    return TopClient(TOP_APP_KEY, kw.get("secret", TOP_SECRET), kw.get("session", TOP_SESSION),
                     gateway_url=top.url, sign_method=kw.get("sign_method", "hmac-sha256"))


def settings(top: FakeTop, **overrides: object) -> TaobaoSettings:
    return TaobaoSettings.model_validate({"app_key": TOP_APP_KEY, "shop": "tb-flagship", "gateway_url": top.url,
                                          **overrides})


def secrets() -> TaobaoSecrets:
    return TaobaoSecrets.model_validate({"app_secret": TOP_SECRET, "session_key": TOP_SESSION})


@pytest.mark.parametrize("method", ["md5", "hmac", "hmac-sha256"])
def test_a_signed_call_the_router_accepts(top: FakeTop, method: str) -> None:
    top.trades.append(top_trade(2231958349, NOW - timedelta(minutes=1)))
    with client(top, sign_method=method) as c:
        trades, total = c.trades_sold_increment(NOW - timedelta(minutes=10), NOW, 1, 50, "tid,status")
    assert total == 1 and trades[0]["tid_str"] == "2231958349"
    [form] = top.calls
    assert form["method"] == "taobao.trades.sold.increment.get" and form["sign_method"] == method
    assert form["session"] == TOP_SESSION and form["format"] == "json" and form["v"] == "2.0"
    assert form["start_modified"] == cst(NOW - timedelta(minutes=10)) and form["end_modified"] == cst(NOW)
    assert form["use_has_next"] == "false" and form["page_no"] == "1" and form["page_size"] == "50"
    assert form["sign"] == sign(form, TOP_SECRET, method)
    assert TOP_SECRET not in repr(c) and TOP_SESSION not in repr(c)


def test_wrong_credentials_are_rejected_with_what_to_fix(top: FakeTop) -> None:
    with client(top, secret="not-the-secret") as c, pytest.raises(ShopApiRejected) as bad_sign:
        c.trades_sold_increment(NOW - timedelta(minutes=5), NOW, 1, 50, "tid")
    assert bad_sign.value.code == "25" and "app_secret" in str(bad_sign.value)
    with client(top, session="expired-session") as c, pytest.raises(ShopApiRejected) as expired:
        c.trades_sold_increment(NOW - timedelta(minutes=5), NOW, 1, 50, "tid")
    assert expired.value.code == "27" and "authorise" in str(expired.value)
    assert "expired-session" not in str(expired.value) and TOP_SECRET not in str(bad_sign.value)


@pytest.mark.parametrize(("body", "retryable", "after"), [
    ({"code": 7, "msg": "App Call Limited", "sub_code": "accesscontrol.limited-by-app-access-count",
      "sub_msg": "This ban will last for 23 more seconds"}, True, 23.0),
    ({"code": 15, "msg": "Remote service error", "sub_code": "isp.top-remote-connection-timeout"}, True, None),
    ({"code": 10, "msg": "Service Currently Unavailable"}, True, None),
    ({"code": 27, "msg": "Invalid session", "sub_code": "invalid-sessionkey"}, False, None),
    ({"code": 11, "msg": "Insufficient isv permissions", "sub_code": "isv.permission-api-package-empty"}, False, None),
    ({"code": 15, "msg": "Remote service error", "sub_code": "isv.invalid-parameter"}, False, None),
])
def test_error_codes_split_into_retry_and_do_not(body: dict[str, object], retryable: bool,
                                                 after: float | None) -> None:
    error = top_error("taobao.trades.sold.increment.get", body)
    assert error.retryable is retryable and isinstance(error, ShopApiRetryable if retryable else ShopApiRejected)
    assert error.retry_after == after and str(body["code"]) in str(error)


def test_transport_failures_are_retryable(top: FakeTop) -> None:
    top.fail_next({"error": "bad gateway"}, status=502)
    top.fail_next(b"<html>maintenance</html>")
    top.fail_next(FakeTop.error(7, "App Call Limited", "accesscontrol.limited-by-app-access-count",
                                "This ban will last for 1 more seconds"))
    with client(top) as c:
        for _ in range(3):
            with pytest.raises(ShopApiRetryable):
                c.refunds_receive(NOW - timedelta(minutes=5), NOW, 1, 50, "refund_id")
    with TopClient(TOP_APP_KEY, TOP_SECRET, TOP_SESSION, gateway_url="http://127.0.0.1:9/router/rest",
                   timeout=2) as dead, pytest.raises(ShopApiRetryable):
        dead.call("taobao.trades.sold.increment.get", {})


def test_response_key_and_amounts() -> None:
    assert response_key("taobao.trades.sold.increment.get") == "trades_sold_increment_get_response"
    assert response_key("taobao.refunds.receive.get") == "refunds_receive_get_response"
    assert yuan_to_fen("129.00", "x") == 12900 and yuan_to_fen("0.07", "x") == 7 and yuan_to_fen("200.07", "x") == 20007
    assert yuan_to_fen(None, "x") == 0
    with pytest.raises(ValueError, match="payment"):
        yuan_to_fen("12,9", "payment")


def test_backward_paging_loses_nothing_when_an_order_moves_out_while_paging(top: FakeTop) -> None:
    start = NOW - timedelta(hours=2)
    top.trades.extend(top_trade(1000 + i, start + timedelta(minutes=i)) for i in range(1, 118))
    moved: list[str] = []

    def modify_one_after_the_first_page(form: dict[str, str]) -> None:
        # while we page, the buyer pays for the newest-but-one order: its modified time leaves the window
        if len([c for c in top.calls if c.get("method", "").startswith("taobao.trades")]) == 2 and not moved:
            with top.lock:
                trade = next(t for t in top.trades if t["tid"] == 1116)
                trade["modified"] = cst(NOW + timedelta(minutes=5))
            moved.append("1116")

    top.before = modify_one_after_the_first_page
    with client(top) as c:
        pages = list(pages_backward(lambda n: c.trades_sold_increment(start, NOW, n, 50, "tid"), 50))
    seen = {t["tid"] for page in pages for t in page}
    # paging forward, the record that moved up from page 2 into page 1 (tid 1067) would be skipped
    assert moved and seen >= {1000 + i for i in range(1, 118)} - {1116}
    assert [form["page_no"] for form in top.calls] == ["1", "3", "2", "1"]


def test_a_trade_maps_to_canonical_events_in_fen() -> None:
    paid = top_trade(2231958349, NOW, "WAIT_SELLER_SEND_GOODS", payment="129.00", mobile="13800138000")
    [event] = trade_events(paid, shop="tb-flagship", channel="tmall", attribution={"store": "TM01"})
    assert event["id"] == "tmall:tb-flagship:2231958349:paid" and event["type"] == "order.paid"
    assert event["customer"] == {"taobao_buyer": "AAHk5d-EAAeGwJedwSFu0XXX", "phone": "13800138000"}
    payload = event["payload"]
    assert payload["amount_fen"] == 12900 and payload["channel"] == "tmall" and payload["attribution"] == {
        "store": "TM01"}
    assert payload["items"] == [{"sku": "TEE-BLK-M", "name": "纯棉圆领T恤 黑色 M", "quantity": 1, "price_fen": 12900,
                                 "category": "50000436"}]
    # masked phones are not identities; a trade seen already shipped also reports its payment
    shipped = top_trade(77, NOW, "WAIT_BUYER_CONFIRM_GOODS")
    events = trade_events(shipped, shop="tb-flagship", channel="taobao")
    assert [e["type"] for e in events] == ["order.paid", "order.shipped"]
    assert all(e["customer"] == {"taobao_buyer": "AAHk5d-EAAeGwJedwSFu0XXX"} for e in events)
    # a trade that maps to no event is kept raw as one unmapped record, never dropped
    [[new_status], [no_buyer]] = [trade_events({**shipped, **change}, shop="s", channel="taobao")
                                  for change in ({"status": "SOMETHING_NEW"}, {"buyer_open_uid": ""})]
    assert new_status["unmapped"].kind == "trade:SOMETHING_NEW" and new_status["unmapped"].message_id == "77"
    assert "SOMETHING_NEW is not one Tideflow maps" in new_status["unmapped"].reason
    assert "no buyer id" in no_buyer["unmapped"].reason and '"tid": 77' in no_buyer["unmapped"].raw


def test_the_connector_polls_orders_and_refunds_of_a_window(top: FakeTop) -> None:
    top.trades.append(top_trade(501, NOW - timedelta(minutes=3), "TRADE_FINISHED"))
    top.trades.append(top_trade(502, NOW - timedelta(hours=3)))  # outside the window
    top.refunds.append(top_refund(9001, 501, NOW - timedelta(minutes=2), "SUCCESS", refund_fee="64.50"))
    connector = TaobaoConnector()
    window = (NOW - timedelta(minutes=10), NOW)
    orders = [e for page in connector.poll_window("orders", *window, settings(top), secrets()) for e in page]
    refunds = [e for page in connector.poll_window("refunds", *window, settings(top), secrets()) for e in page]
    assert [e["id"] for e in orders] == ["taobao:tb-flagship:501:paid", "taobao:tb-flagship:501:completed"]
    [refund] = refunds
    assert refund["type"] == "refund.completed" and refund["payload"]["amount_fen"] == 6450
    assert refund["payload"]["order_id"] == "501" and refund["payload"]["reason"] == "不想要了 — 尺码偏小"
    assert list(connector.poll_window("refunds", *window, settings(top, refunds=False), secrets())) == []
    with pytest.raises(ValueError, match="session_key"):
        list(connector.poll_window("orders", *window, settings(top),
                                   TaobaoSecrets.model_validate({"app_secret": TOP_SECRET})))
