"""The Youzan open API client against a fake open.youzanyun.com on 127.0.0.1: the silent-grant token,
its cache and refresh, youzan.trade.get and the error answers."""

from __future__ import annotations

import pytest

from connectors.youzan.client import YouzanApiError, YouzanClient
from tests.connectors.fake_shops import YZ_CLIENT_ID, YZ_KDT, YZ_SECRET, FakeYouzan, fake_youzan, youzan_trade

__all__ = ["fake_youzan"]
KDT = str(YZ_KDT)


@pytest.fixture
def client(fake_youzan: FakeYouzan) -> YouzanClient:
    return YouzanClient(YZ_CLIENT_ID, YZ_SECRET, api_base=fake_youzan.url)


def test_the_token_is_fetched_once_and_sent_with_every_call(fake_youzan: FakeYouzan, client: YouzanClient) -> None:
    fake_youzan.trades["E1"] = youzan_trade("E1")
    for _ in range(3):
        assert client.get_trade(KDT, "E1")["order_info"]["tid"] == "E1"
    [fetch] = fake_youzan.calls("/auth/token")
    assert fetch.method == "POST" and fetch.json() == {"client_id": YZ_CLIENT_ID, "client_secret": YZ_SECRET,
                                                       "authorize_type": "silent", "grant_id": KDT, "refresh": False}
    calls = fake_youzan.calls("/api/youzan.trade.get/4.0.2")
    assert [c.query for c in calls] == [{"access_token": "yz-token-1"}] * 3
    assert all(c.json() == {"tid": "E1"} for c in calls) and fake_youzan.problems == []


def test_a_refused_token_is_replaced_once(fake_youzan: FakeYouzan, client: YouzanClient) -> None:
    fake_youzan.trades["E1"] = youzan_trade("E1")
    client.get_trade(KDT, "E1")
    fake_youzan.revoked.add("yz-token-1")
    client.get_trade(KDT, "E1")
    assert fake_youzan.issued == ["yz-token-1", "yz-token-2"]
    assert [c.query["access_token"] for c in fake_youzan.calls("/api/youzan.trade.get/4.0.2")] == [
        "yz-token-1", "yz-token-1", "yz-token-2"]


def test_an_expired_token_is_fetched_again(fake_youzan: FakeYouzan) -> None:
    now = [0.0]
    client = YouzanClient(YZ_CLIENT_ID, YZ_SECRET, api_base=fake_youzan.url, clock=lambda: now[0])
    fake_youzan.trades["E1"] = youzan_trade("E1")
    client.get_trade(KDT, "E1")
    now[0] += 6 * 86400
    client.get_trade(KDT, "E1")
    assert len(fake_youzan.issued) == 1
    now[0] += 86400  # past the 7 days (less the refresh margin)
    client.get_trade(KDT, "E1")
    assert len(fake_youzan.issued) == 2


def test_a_trade_youzan_does_not_have_yet_is_retryable(client: YouzanClient) -> None:
    with pytest.raises(YouzanApiError, match="no trade E404") as caught:
        client.get_trade(KDT, "E404")
    assert caught.value.retryable


def test_wrong_credentials_are_named_without_the_secret(fake_youzan: FakeYouzan) -> None:
    client = YouzanClient(YZ_CLIENT_ID, "typo-secret-123", api_base=fake_youzan.url)
    with pytest.raises(YouzanApiError, match="client_id/client_secret") as caught:
        client.get_trade(KDT, "E1")
    assert "typo-secret-123" not in str(caught.value) and not caught.value.retryable


def test_an_unavailable_platform_is_retryable(fake_youzan: FakeYouzan, client: YouzanClient) -> None:
    fake_youzan.down = True
    with pytest.raises(YouzanApiError, match="HTTP 503") as caught:
        client.get_trade(KDT, "E1")
    assert caught.value.retryable
    with pytest.raises(YouzanApiError, match="cannot reach") as unreachable:
        YouzanClient(YZ_CLIENT_ID, YZ_SECRET, api_base="http://127.0.0.1:9").get_trade(KDT, "E1")
    assert unreachable.value.retryable
