"""The JOS client and the JD order/refund mapping against a loopback JOS routerjson
(tests/connectors/shop_platforms.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from connectors.jd.client import JosClient, jos_error, response_key
from connectors.jd.connector import JdConnector, JdSecrets, JdSettings
from connectors.jd.orders import order_events, refund_apply_events
from connectors.jd.signing import PARAM_JSON, sign
from connectors.polling import ShopApiRejected, ShopApiRetryable, WindowTooLarge
from tests.connectors.shop_platforms import (
    JOS_APP_KEY,
    JOS_SECRET,
    JOS_TOKEN,
    FakeJos,
    cst,
    jd_apply,
    jd_order,
)

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def jos() -> Iterator[FakeJos]:
    with FakeJos() as server:
        yield server  # type: ignore[misc]


def client(jos: FakeJos, token: str = JOS_TOKEN, secret: str = JOS_SECRET) -> JosClient:
    return JosClient(JOS_APP_KEY, secret, token, gateway_url=jos.url)


def settings(jos: FakeJos, **overrides: object) -> JdSettings:
    return JdSettings.model_validate({"app_key": JOS_APP_KEY, "shop": "jd-pop-1", "gateway_url": jos.url,
                                      **overrides})


def secrets() -> JdSecrets:
    return JdSecrets.model_validate({"app_secret": JOS_SECRET, "access_token": JOS_TOKEN})


def test_a_signed_order_search_by_modified_time(jos: FakeJos) -> None:
    jos.orders.append(jd_order(300123456789, NOW - timedelta(minutes=1)))
    with client(jos) as c:
        orders, total = c.order_search("jingdong.pop.order.search", NOW - timedelta(minutes=5), NOW, 1, 100,
                                       "WAIT_SELLER_STOCK_OUT", "orderId,orderState")
    assert total == 1 and orders[0]["orderId"] == "300123456789"
    [form] = jos.calls
    assert form["method"] == "jingdong.pop.order.search" and form["v"] == "2.0"
    assert form["access_token"] == JOS_TOKEN and form["sign"] == sign(form, JOS_SECRET)
    params = json.loads(form[PARAM_JSON])
    assert params == {"dateType": 0, "end_date": cst(NOW), "optional_fields": "orderId,orderState", "order_state":
                      "WAIT_SELLER_STOCK_OUT", "page": "1", "page_size": "100", "sortType": 0,
                      "start_date": cst(NOW - timedelta(minutes=5))}
    assert form[PARAM_JSON] == json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert JOS_SECRET not in repr(c) and JOS_TOKEN not in repr(c)


def test_errors_split_into_retry_and_do_not(jos: FakeJos) -> None:
    with client(jos, token="tok-stale-4b3a") as c, pytest.raises(ShopApiRejected) as expired:
        c.order_search("jingdong.pop.order.search", NOW - timedelta(minutes=5), NOW, 1, 100, "FINISHED_L", "orderId")
    assert expired.value.code == "19" and "authorise" in str(expired.value)
    assert "tok-stale-4b3a" not in str(expired.value)
    with client(jos, secret="wrong") as c, pytest.raises(ShopApiRejected, match="app_secret"):
        c.refund_applies("apply", NOW - timedelta(minutes=5), NOW, 1, 50)
    jos.fail_next(FakeJos.error("2", "限制时间内调用失败次数", "App Call Limited"))
    jos.fail_next({"oops": True}, status=503)
    with client(jos) as c:
        with pytest.raises(ShopApiRetryable) as limited:
            c.refund_applies("apply", NOW - timedelta(minutes=5), NOW, 1, 50)
        assert limited.value.retry_after == 60.0
        with pytest.raises(ShopApiRetryable):
            c.refund_applies("apply", NOW - timedelta(minutes=5), NOW, 1, 50)
        # a business failure inside a 200 answer
        with pytest.raises(ShopApiRejected, match="pageIndex"):
            c.refund_applies("apply", NOW - timedelta(minutes=5), NOW, 101, 50)
        with pytest.raises(ShopApiRejected, match="1个月"):
            c.order_search("jingdong.pop.order.search", NOW - timedelta(days=40), NOW, 1, 100, "FINISHED_L", "orderId")
    assert jos_error("x", {"code": "65", "zh_desc": "系统处理超时"}).retryable
    assert not jos_error("x", {"code": "24", "zh_desc": "该商家无权调用API"}).retryable
    assert response_key("jingdong.pop.order.enSearch") == "jingdong_pop_order_enSearch_responce"


def test_an_order_maps_to_canonical_events() -> None:
    paid = jd_order(300123456789, NOW)
    [event] = order_events(paid, shop="jd-pop-1", attribution={"store": "JD01"})
    assert event["id"] == "jd:jd-pop-1:300123456789:paid" and event["type"] == "order.paid"
    assert event["customer"] == {"jd_buyer": "o-JD-buyer-5f2a", "phone": "13900139000"}
    assert event["payload"]["amount_fen"] == 25980 and event["payload"]["channel"] == "jd"
    assert event["payload"]["items"] == [{"sku": "CUP-500-WHT", "name": "保温杯 500ml 白色", "quantity": 2,
                                          "price_fen": 12990, "category": ""}]
    finished = order_events({**paid, "orderState": "FINISHED_L", "consigneeInfo": {"mobile": "encrypted=="}},
                            shop="jd-pop-1")
    assert [e["type"] for e in finished] == ["order.paid", "order.completed"]
    assert finished[0]["customer"] == {"jd_buyer": "o-JD-buyer-5f2a"}
    assert order_events({**paid, "orderState": "LOCKED"}, shop="jd-pop-1") == []


def test_refund_applications_map_by_status() -> None:
    assert refund_apply_events(jd_apply(7001, 1, NOW), shop="s")[0]["type"] == "refund.requested"
    [done] = refund_apply_events(jd_apply(7001, 1, NOW - timedelta(hours=1), 1, checked=NOW), shop="s")
    assert done["type"] == "refund.completed" and done["payload"]["amount_fen"] == 25980
    assert datetime.fromisoformat(done["occurred_at"]) == NOW  # decided at checkTime
    assert refund_apply_events(jd_apply(7001, 1, NOW, 11), shop="s")[0]["type"] == "refund.rejected"
    [kept] = refund_apply_events(jd_apply(7001, 1, NOW, 42), shop="s")  # an undocumented status: kept raw
    assert kept["unmapped"].kind == "refundapply:42" and '"status": 42' in kept["unmapped"].raw


def test_the_connector_polls_both_refund_views_and_refuses_deep_paging(jos: FakeJos) -> None:
    jos.orders.append(jd_order(11, NOW - timedelta(minutes=2), "WAIT_GOODS_RECEIVE_CONFIRM"))
    jos.applies.append(jd_apply(7001, 11, NOW - timedelta(minutes=3)))
    jos.applies.append(jd_apply(7002, 12, NOW - timedelta(days=2), 1, checked=NOW - timedelta(minutes=1)))
    connector, window = JdConnector(), (NOW - timedelta(minutes=10), NOW)
    orders = [e["id"] for page in connector.poll_window("orders", *window, settings(jos), secrets()) for e in page]
    assert orders == ["jd:jd-pop-1:11:paid", "jd:jd-pop-1:11:shipped"]
    refunds = [e["id"] for page in connector.poll_window("refunds", *window, settings(jos), secrets()) for e in page]
    assert refunds == ["jd:jd-pop-1:refund:7001:requested", "jd:jd-pop-1:refund:7002:completed"]
    methods = [(c["method"], sorted(json.loads(c[PARAM_JSON]))[0]) for c in jos.calls[1:]]
    assert methods == [("jingdong.pop.afs.soa.refundapply.queryPageList", "applyTimeEnd"),
                       ("jingdong.pop.afs.soa.refundapply.queryPageList", "checkTimeEnd")]

    jos.applies[:] = [jd_apply(8000 + i, 12, NOW - timedelta(seconds=i % 500)) for i in range(5001)]
    with pytest.raises(WindowTooLarge):
        list(connector.poll_window("refunds", *window, settings(jos), secrets()))
