"""The 抖店 open API client against a fake openapi-fxg.jinritemai.com on 127.0.0.1 that checks every
request's signature (HMAC-SHA256 over app_key, method, param_json, timestamp, v): token.create,
order.orderDetail, the token cache and refresh, and error answers."""

from __future__ import annotations

import json

import pytest

from connectors.douyin.client import DouyinApiError, DouyinClient
from tests.connectors.fake_shops import DY_APP_KEY, DY_SECRET, DY_SHOP, FakeDouyin, douyin_detail, fake_douyin

__all__ = ["fake_douyin"]
ORDER = "6920000000000001234"


@pytest.fixture
def client(fake_douyin: FakeDouyin) -> DouyinClient:
    fake_douyin.details[ORDER] = douyin_detail(ORDER)
    return DouyinClient(DY_APP_KEY, DY_SECRET, DY_SHOP, api_base=fake_douyin.url)


def test_signed_requests_and_one_token(fake_douyin: FakeDouyin, client: DouyinClient) -> None:
    for _ in range(2):
        assert client.order_detail(ORDER)["pay_amount"] == 9900
    [token] = fake_douyin.calls("/token/create")
    assert token.method == "POST" and "access_token" not in token.query
    assert json.loads(token.body) == {"code": "", "grant_type": "authorization_self", "shop_id": DY_SHOP}
    details = fake_douyin.calls("/order/orderDetail")
    assert [d.query["access_token"] for d in details] == ["dy-token-1", "dy-token-1"]
    assert details[0].body == b'{"shop_order_id":"6920000000000001234"}'
    assert {"app_key", "method", "v", "timestamp", "sign_method", "sign"} <= set(details[0].query)
    assert fake_douyin.problems == []  # every signature and parameter checked out


def test_an_expired_token_is_replaced_once(fake_douyin: FakeDouyin, client: DouyinClient) -> None:
    client.order_detail(ORDER)
    fake_douyin.revoked.add("dy-token-1")
    client.order_detail(ORDER)
    assert fake_douyin.issued == ["dy-token-1", "dy-token-2"]


def test_a_wrong_secret_is_refused_and_never_shown(fake_douyin: FakeDouyin) -> None:
    wrong = DouyinClient(DY_APP_KEY, "not-the-secret", DY_SHOP, api_base=fake_douyin.url)
    with pytest.raises(DouyinApiError, match=r"isv\.invalid-sign") as caught:
        wrong.order_detail(ORDER)
    assert "not-the-secret" not in str(caught.value) and "not-the-secret" not in repr(wrong)


def test_business_errors_and_an_unavailable_platform(fake_douyin: FakeDouyin, client: DouyinClient) -> None:
    with pytest.raises(DouyinApiError, match="订单不存在") as missing:
        client.order_detail("404")
    assert missing.value.code == 50002
    fake_douyin.down = True
    with pytest.raises(DouyinApiError, match="HTTP 503") as down:
        client.order_detail(ORDER)
    assert down.value.retryable
