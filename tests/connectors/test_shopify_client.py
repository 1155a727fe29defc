"""The Shopify Admin API client against a fake shop on 127.0.0.1: the versioned order path, the access
token header, 429 with Retry-After waited out within the limit, and errors that say what to check."""

from __future__ import annotations

import pytest

from connectors.shopify.client import ShopifyAdminClient, ShopifyApiError, retry_after
from tests.connectors.fake_shops import SHOP, SHOPIFY_TOKEN, FakeShopify, fake_shopify, shopify_order

__all__ = ["fake_shopify"]


def client(fake: FakeShopify, token: str = SHOPIFY_TOKEN, max_wait: float = 4.0,
           slept: list[float] | None = None) -> ShopifyAdminClient:
    return ShopifyAdminClient(SHOP, token, api_base=fake.url, max_wait=max_wait,
                              sleep=(slept.append if slept is not None else lambda _s: None))


def test_get_order_request_shape(fake_shopify: FakeShopify) -> None:
    fake_shopify.orders[4501] = shopify_order(4501)
    assert client(fake_shopify).get_order(4501)["id"] == 4501
    [call] = fake_shopify.requests
    assert call.method == "GET" and call.path == "/admin/api/2025-07/orders/4501.json"
    assert call.headers["x-shopify-access-token"] == SHOPIFY_TOKEN and call.headers["accept"] == "application/json"
    assert fake_shopify.problems == []


def test_429_waits_for_retry_after_then_succeeds(fake_shopify: FakeShopify) -> None:
    fake_shopify.orders[4501] = shopify_order(4501)
    fake_shopify.throttle.extend(["1.5", "2"])
    slept: list[float] = []
    assert client(fake_shopify, slept=slept).get_order(4501)["id"] == 4501
    assert slept == [1.5, 2.0] and len(fake_shopify.requests) == 3


def test_429_beyond_the_wait_limit_is_retryable(fake_shopify: FakeShopify) -> None:
    fake_shopify.throttle.extend(["3", "3"])
    slept: list[float] = []
    with pytest.raises(ShopifyApiError, match="Retry-After 3s") as caught:
        client(fake_shopify, max_wait=4.0, slept=slept).get_order(4501)
    assert caught.value.retryable and caught.value.status == 429 and slept == [3.0]


def test_a_wrong_token_says_what_to_check_and_never_shows_it(fake_shopify: FakeShopify) -> None:
    with pytest.raises(ShopifyApiError, match="read_orders") as caught:
        client(fake_shopify, token="shpat_wrong_token_value").get_order(4501)
    assert not caught.value.retryable and "shpat_wrong_token_value" not in str(caught.value)
    assert "shpat" not in repr(client(fake_shopify))


def test_not_found_unavailable_and_bad_ids(fake_shopify: FakeShopify) -> None:
    with pytest.raises(ShopifyApiError, match="404") as missing:
        client(fake_shopify).get_order(999)
    assert not missing.value.retryable
    fake_shopify.down = True
    with pytest.raises(ShopifyApiError, match="503") as down:
        client(fake_shopify).get_order(999)
    assert down.value.retryable
    with pytest.raises(ValueError, match="not a Shopify order id"):
        client(fake_shopify).get_order("../shop.json")


@pytest.mark.parametrize(("header", "seconds"), [("2.0", 2.0), ("10", 10.0), (None, 2.0), ("soon", 2.0)])
def test_retry_after(header: str | None, seconds: float) -> None:
    assert retry_after(header) == seconds
