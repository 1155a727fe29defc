"""WeCom outbound: the API client and deliver() against a fake qyapi.weixin.qq.com on 127.0.0.1.

Token caching and refresh, the client-side rate limiter, errcode → retryable / rejected, the
welcome_code's single use and 20-second life, and how deliver() picks send_welcome_msg or
add_msg_template.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.base import OutboundMessage
from connectors.wecom.api_errors import (
    WeComCredentialsRejected,
    WeComRejected,
    WeComRetryable,
    WelcomeCodeUnusable,
)
from connectors.wecom.client import WeComClient, attachments_for, shared_client
from connectors.wecom.connector import WeComConnector, WeComSecrets, WeComSettings
from connectors.wecom.ratelimit import TokenBucket
from connectors.wecom.tokens import AccessTokenCache
from tests.connectors.fake_wecom import (
    WECOM_CORP_ID,
    WECOM_KEY,
    WECOM_SECRET,
    WECOM_TOKEN,
    FakeWeCom,
    Reply,
    fake_wecom,
)

__all__ = ["fake_wecom"]

EXTERNAL = "wmCustomer0001abcdef"


@pytest.fixture
def client(fake_wecom: FakeWeCom) -> WeComClient:
    return WeComClient(WECOM_CORP_ID, WECOM_SECRET, api_base=fake_wecom.url, rate_per_second=1000)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


# --- the access token --------------------------------------------------------------------------------

def test_the_token_is_fetched_once_and_reused(fake_wecom: FakeWeCom, client: WeComClient) -> None:
    fake_wecom.add_contact(EXTERNAL, "zhangsan")
    for _ in range(3):
        client.add_msg_template([EXTERNAL], "hi", sender="zhangsan")
    [fetch] = fake_wecom.calls("gettoken")
    assert fetch.query == {"corpid": WECOM_CORP_ID, "corpsecret": WECOM_SECRET}
    tokens = {c.query["access_token"] for c in fake_wecom.calls("add_msg_template")}
    assert len(tokens) == 1 and fake_wecom.problems == []


def test_the_token_is_cached_until_shortly_before_it_expires() -> None:
    clock, served = Clock(), iter(["t1", "t2", "t3"])
    cache = AccessTokenCache(lambda timeout: (next(served), 7200), clock=clock)
    assert cache.get() == "t1"
    clock.now += 7200 - 301
    assert cache.get() == "t1"
    clock.now += 2  # within the 300 s margin
    assert cache.get() == "t2"
    short = AccessTokenCache(lambda timeout: ("s", 60), clock=clock)
    short.get()
    assert short._valid_until == clock.now + 30  # a short lifetime keeps half of it


@pytest.mark.parametrize(("expire", "errcode"), [("expire_tokens", 42001), ("revoke_tokens", 40014)])
def test_an_expired_or_invalid_token_is_refreshed_once(fake_wecom: FakeWeCom, client: WeComClient, expire: str,
                                                       errcode: int) -> None:
    fake_wecom.add_contact(EXTERNAL, "zhangsan")
    client.add_msg_template([EXTERNAL], "one")
    getattr(fake_wecom, expire)()
    client.add_msg_template([EXTERNAL], "two")
    calls = fake_wecom.calls("add_msg_template")
    assert [c.answer.get("errcode") for c in calls] == [0, errcode, 0]
    assert len(fake_wecom.calls("gettoken")) == 2
    assert calls[1].query["access_token"] != calls[2].query["access_token"]


def test_a_token_rejected_twice_in_a_row_is_not_retried_forever(fake_wecom: FakeWeCom, client: WeComClient) -> None:
    fake_wecom.add_contact(EXTERNAL, "zhangsan")
    fake_wecom.fail_next("add_msg_template", 40014, 40014)
    with pytest.raises(WeComRejected) as caught:
        client.add_msg_template([EXTERNAL], "hi")
    assert caught.value.errcode == 40014 and len(fake_wecom.calls("add_msg_template")) == 2


def test_concurrent_callers_share_one_token_fetch(fake_wecom: FakeWeCom, client: WeComClient) -> None:
    fake_wecom.fail_next("gettoken", Reply({"errcode": 0, "access_token": fake_wecom.new_token(), "expires_in": 7200},
                                           delay=0.3))
    fake_wecom.add_contact(EXTERNAL, "zhangsan")
    threads = [threading.Thread(target=client.add_msg_template, args=([EXTERNAL], "hi")) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(fake_wecom.calls("gettoken")) == 1 and len(fake_wecom.calls("add_msg_template")) == 8


def test_wrong_credentials_are_rejected_for_good(fake_wecom: FakeWeCom) -> None:
    bad_secret = WeComClient(WECOM_CORP_ID, "s3cr3t-typo", api_base=fake_wecom.url)
    with pytest.raises(WeComCredentialsRejected, match="secret") as caught:
        bad_secret.add_msg_template([EXTERNAL], "hi")
    assert caught.value.retryable is False and caught.value.errcode == 40001
    assert "s3cr3t-typo" not in str(caught.value) and "access_token=" not in str(caught.value)
    with pytest.raises(WeComCredentialsRejected, match="CorpID"):
        WeComClient("wwNotMyCorp", WECOM_SECRET, api_base=fake_wecom.url).add_msg_template([EXTERNAL], "hi")


# --- errcode mapping ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("answer", "retryable"), [
    (-1, True), (45009, True), (45033, True),
    (Reply({"errmsg": "bad gateway"}, status=502), True), (Reply({}, status=503), True),
    (Reply(b"<html>busy</html>"), True),
    (40003, False), (48002, False), (60020, False), (40058, False), (Reply({}, status=404), False),
])
def test_errcodes_map_to_retryable_or_rejected(fake_wecom: FakeWeCom, client: WeComClient, answer: Any,
                                               retryable: bool) -> None:
    fake_wecom.add_contact(EXTERNAL, "zhangsan")
    fake_wecom.fail_next("add_msg_template", answer)
    with pytest.raises(WeComRetryable if retryable else WeComRejected) as caught:
        client.add_msg_template([EXTERNAL], "hi")
    assert caught.value.retryable is retryable
    assert "access_token" not in str(caught.value)
    client.add_msg_template([EXTERNAL], "hi")  # the next call goes through


def test_frequency_limits_carry_a_retry_hint(fake_wecom: FakeWeCom, client: WeComClient) -> None:
    fake_wecom.fail_next("add_msg_template", 45009)
    with pytest.raises(WeComRetryable, match="frequency") as caught:
        client.add_msg_template([EXTERNAL], "hi")
    assert caught.value.retry_after == 60 and caught.value.errcode == 45009


def test_timeouts_and_refused_connections_are_retryable(fake_wecom: FakeWeCom) -> None:
    slow = WeComClient(WECOM_CORP_ID, WECOM_SECRET, api_base=fake_wecom.url, timeout=0.2)
    slow.tokens.get()
    fake_wecom.fail_next("add_msg_template", Reply({"errcode": 0, "msgid": "late"}, delay=0.6))
    with pytest.raises(WeComRetryable, match="timeout") as caught:
        slow.add_msg_template([EXTERNAL], "hi")
    assert caught.value.outcome_unknown is True
    nobody = WeComClient(WECOM_CORP_ID, WECOM_SECRET, api_base="http://127.0.0.1:9", timeout=0.5)
    with pytest.raises(WeComRetryable, match="cannot connect") as refused:
        nobody.add_msg_template([EXTERNAL], "hi")
    assert refused.value.outcome_unknown is False


# --- the rate limiter ---------------------------------------------------------------------------------

def test_token_bucket_allows_a_burst_then_paces() -> None:
    clock = Clock()
    bucket = TokenBucket(5, 2, clock=clock, sleep=clock.sleep)
    assert [bucket.reserve() for _ in range(2)] == [0.0, 0.0]
    assert bucket.reserve() == pytest.approx(0.2)
    assert bucket.reserve() == pytest.approx(0.4)  # queued behind the previous reservation
    assert bucket.reserve(timeout=0.5) is None  # would wait 0.6 s: refused, nothing taken
    assert bucket.reserve(timeout=0.6) == pytest.approx(0.6)
    clock.now += 10
    assert bucket.reserve() == 0.0  # refilled (capped at the capacity)
    assert bucket.acquire() is True and clock.slept == []
    assert bucket.acquire() is True and clock.slept == [pytest.approx(0.2)]


def test_token_bucket_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0)
    with pytest.raises(ValueError):
        TokenBucket(1, 0.5)


def test_the_client_paces_its_calls(fake_wecom: FakeWeCom) -> None:
    fake_wecom.add_contact(EXTERNAL, "zhangsan")
    paced = WeComClient(WECOM_CORP_ID, WECOM_SECRET, api_base=fake_wecom.url, rate_per_second=20, burst=1)
    started = time.monotonic()
    for _ in range(6):  # gettoken + 6 sends = 7 requests at 20/s after a burst of 1: ≥ 0.3 s
        paced.add_msg_template([EXTERNAL], "hi")
    assert time.monotonic() - started >= 0.29


def test_a_call_that_would_wait_too_long_for_the_limiter_is_retryable(fake_wecom: FakeWeCom) -> None:
    client = WeComClient(WECOM_CORP_ID, WECOM_SECRET, api_base=fake_wecom.url, rate_per_second=0.5, burst=1,
                         max_wait=0.1)
    client.tokens.get()  # takes the only token
    with pytest.raises(WeComRetryable, match="rate limit"):
        client.add_msg_template([EXTERNAL], "hi")
    assert fake_wecom.calls("add_msg_template") == []


# --- welcome messages ---------------------------------------------------------------------------------

def test_send_welcome_msg_request_shape(fake_wecom: FakeWeCom, client: WeComClient) -> None:
    code = fake_wecom.add_contact(EXTERNAL, "zhangsan")
    fake_wecom.foreign_pic_urls = True  # the request's shape only: WeCom takes its own pic_urls (test_wecom_media)
    client.send_welcome_msg(code, "你好", attachments_for(["https://cdn.example.com/a.png?x=1",
                                                         "https://shop.example.com/p/42"]))
    [call] = fake_wecom.calls("send_welcome_msg")
    assert call.body == {"welcome_code": code, "text": {"content": "你好"}, "attachments": [
        {"msgtype": "image", "image": {"pic_url": "https://cdn.example.com/a.png?x=1"}},
        {"msgtype": "link", "link": {"title": "42", "url": "https://shop.example.com/p/42"}}]}
    assert fake_wecom.delivered[0][:3] == (EXTERNAL, "welcome", "你好") and fake_wecom.problems == []


def test_a_welcome_code_works_once(fake_wecom: FakeWeCom, client: WeComClient) -> None:
    code = fake_wecom.add_contact(EXTERNAL, "zhangsan")
    client.send_welcome_msg(code, "first")
    with pytest.raises(WelcomeCodeUnusable) as local:
        client.send_welcome_msg(code, "second")  # refused here, without asking WeCom
    assert local.value.retryable is False and len(fake_wecom.calls("send_welcome_msg")) == 1
    other = WeComClient(WECOM_CORP_ID, WECOM_SECRET, api_base=fake_wecom.url)  # another process
    with pytest.raises(WelcomeCodeUnusable, match="41051") as remote:
        other.send_welcome_msg(code, "third")
    assert remote.value.errcode == 41051 and remote.value.retryable is False
    assert [d[2] for d in fake_wecom.delivered] == ["first"]


def test_an_expired_welcome_code_is_a_permanent_failure(fake_wecom: FakeWeCom, client: WeComClient) -> None:
    code = fake_wecom.add_contact(EXTERNAL, "zhangsan")
    with pytest.raises(WelcomeCodeUnusable, match="old"):
        client.send_welcome_msg(code, "late", issued_at=time.time() - 21)  # refused locally
    assert fake_wecom.calls("send_welcome_msg") == []
    fake_wecom.now = lambda: time.time() + 25  # WeCom's own clock says the code has expired
    with pytest.raises(WelcomeCodeUnusable, match="welcome_code"):
        client.send_welcome_msg(code, "late")


def test_a_retry_after_an_unanswered_attempt_asks_wecom_again(fake_wecom: FakeWeCom) -> None:
    client = WeComClient(WECOM_CORP_ID, WECOM_SECRET, api_base=fake_wecom.url, timeout=0.2)
    code = fake_wecom.add_contact(EXTERNAL, "zhangsan")
    fake_wecom.fail_next("send_welcome_msg", Reply({"errcode": -1}, delay=0.5))
    with pytest.raises(WeComRetryable):
        client.send_welcome_msg(code, "hi")
    assert client.welcome_state(code) == "unknown"
    client.send_welcome_msg(code, "hi")
    assert client.welcome_state(code) == "sent" and len(fake_wecom.delivered) == 1


# --- mass sends and tags --------------------------------------------------------------------------------

def test_add_msg_template_request_shape_and_fail_list(fake_wecom: FakeWeCom, client: WeComClient) -> None:
    fake_wecom.add_contact(EXTERNAL, "zhangsan")
    result = client.add_msg_template([EXTERNAL, "wmStranger", EXTERNAL], "上新了", sender="zhangsan")
    [call] = fake_wecom.calls("add_msg_template")
    assert call.body == {"chat_type": "single", "external_userid": [EXTERNAL, "wmStranger"], "allow_select": False,
                         "sender": "zhangsan", "text": {"content": "上新了"}}
    assert result.msgid.startswith("msg") and result.fail_list == ["wmStranger"]
    with pytest.raises(ValueError):
        client.add_msg_template([], "x")
    with pytest.raises(WeComRejected, match="4000"):
        client.add_msg_template([EXTERNAL], "长" * 1400)


def test_tags_are_created_then_marked(fake_wecom: FakeWeCom, client: WeComClient) -> None:
    fake_wecom.add_contact(EXTERNAL, "zhangsan")
    ids = client.ensure_corp_tags("Tideflow", ["尝鲜客", "VIP"])
    assert set(ids) == {"尝鲜客", "VIP"}
    assert client.ensure_corp_tags("Tideflow", ["VIP", "复购"])["VIP"] == ids["VIP"]  # reuses the group and tag
    assert len(fake_wecom.tag_groups) == 1 and len(fake_wecom.tag_groups[0]["tag"]) == 3
    client.mark_tag("zhangsan", EXTERNAL, add_tag=[ids["尝鲜客"], ids["VIP"]])
    client.mark_tag("zhangsan", EXTERNAL, remove_tag=[ids["VIP"]])
    assert fake_wecom.contacts[EXTERNAL]["tags"] == {ids["尝鲜客"]}
    assert fake_wecom.calls("mark_tag")[0].body == {"userid": "zhangsan", "external_userid": EXTERNAL,
                                                   "add_tag": [ids["尝鲜客"], ids["VIP"]]}
    with pytest.raises(WeComRejected) as caught:
        client.mark_tag("zhangsan", EXTERNAL, add_tag=["et-no-such-tag"])
    assert caught.value.errcode == 40068
    assert fake_wecom.problems == []


def test_shared_clients_are_per_account(fake_wecom: FakeWeCom) -> None:
    a = shared_client(WECOM_CORP_ID, WECOM_SECRET, api_base=fake_wecom.url)
    assert shared_client(WECOM_CORP_ID, WECOM_SECRET, api_base=fake_wecom.url + "/") is a
    assert shared_client(WECOM_CORP_ID, "rotated", api_base=fake_wecom.url) is not a
    assert WECOM_SECRET not in repr(a)


# --- deliver() -------------------------------------------------------------------------------------------

def connector_config(fake: FakeWeCom, **settings: Any) -> tuple[WeComSettings, WeComSecrets]:
    return (WeComSettings.model_validate({"corp_id": WECOM_CORP_ID, "api_base": fake.url, **settings}),
            WeComSecrets.model_validate({"token": WECOM_TOKEN, "encoding_aes_key": WECOM_KEY, "secret": WECOM_SECRET}))


def message(key: str = "journey/welcome/c1/hello/1", content: str = "你好 张三", *, event: dict[str, Any] | None = None,
            customer: dict[str, Any] | None = None, external: str | None = EXTERNAL,
            options: dict[str, Any] | None = None) -> OutboundMessage:
    return OutboundMessage(key=key, channel="wecom", content=content, customer=customer or {"id": "c1"},
                           identities={"wecom_external_userid": external} if external else {},
                           options=options or {"channel": "wecom"}, event=event or {})


def contact_added(code: str, *, seconds_ago: float = 0.0, user_id: str = "zhangsan",
                  customer_id: str = "c1") -> dict[str, Any]:
    """The journey's current event as send_message hands it over (engine.events.signal_payload)."""
    return {"id": "wecom-main:add_external_contact:x", "type": "wecom.contact_added", "source": "wecom-main",
            "customer_id": customer_id,
            "occurred_at": datetime.fromtimestamp(int(time.time() - seconds_ago), UTC).isoformat(),
            "payload": {"change_type": "add_external_contact", "user_id": user_id, "state": "",
                        "welcome_code": code}}


def test_deliver_uses_a_fresh_welcome_code(fake_wecom: FakeWeCom) -> None:
    code = fake_wecom.add_contact(EXTERNAL, "zhangsan")
    s, c = connector_config(fake_wecom)
    provider_id = WeComConnector().deliver(message(event=contact_added(code)), s, c)
    assert provider_id.startswith("welcome:")
    [call] = fake_wecom.calls("send_welcome_msg")
    assert call.body == {"welcome_code": code, "text": {"content": "你好 张三"}}
    assert fake_wecom.calls("add_msg_template") == []


def test_deliver_is_idempotent_per_key(fake_wecom: FakeWeCom) -> None:
    code = fake_wecom.add_contact(EXTERNAL, "zhangsan")
    s, c = connector_config(fake_wecom)
    first = WeComConnector().deliver(message(event=contact_added(code)), s, c)
    assert WeComConnector().deliver(message(event=contact_added(code)), s, c) == first  # a retried activity
    later = WeComConnector().deliver(message(key="journey/welcome/c1/coupon/1", content="送你一张券",
                                             event=contact_added(code)), s, c)
    assert not later.startswith("welcome:")  # the code is spent: a mass-send task from the same staff member
    assert len(fake_wecom.calls("send_welcome_msg")) == 1
    assert fake_wecom.tasks == [{"msgid": later, "sender": "zhangsan", "external_userid": [EXTERNAL],
                                 "text": "送你一张券"}]


def test_a_message_a_day_later_goes_out_as_a_mass_send_task(fake_wecom: FakeWeCom) -> None:
    code = fake_wecom.add_contact(EXTERNAL, "lisi")
    s, c = connector_config(fake_wecom)
    provider_id = WeComConnector().deliver(message(event=contact_added(code, seconds_ago=86_400, user_id="lisi")),
                                           s, c)
    assert fake_wecom.calls("send_welcome_msg") == []
    assert fake_wecom.tasks[0]["msgid"] == provider_id and fake_wecom.tasks[0]["sender"] == "lisi"


@pytest.mark.parametrize(("event", "customer", "default", "sender"), [
    ({}, {"id": "c1", "wecom_follow_user": "wangwu"}, None, "wangwu"),
    ({}, {"id": "c1"}, "duty-desk", "duty-desk"),
    ({}, {"id": "c1"}, None, None),
    ({"type": "order.paid", "payload": {"user_id": "shop-user"}}, {"id": "c1"}, None, None),
])
def test_the_sender_of_a_mass_send(fake_wecom: FakeWeCom, event: dict[str, Any], customer: dict[str, Any],
                                   default: str | None, sender: str | None) -> None:
    for user in ("wangwu", "duty-desk"):
        fake_wecom.add_contact(EXTERNAL, user)
    s, c = connector_config(fake_wecom, default_sender=default)
    WeComConnector().deliver(message(event=event, customer=customer), s, c)
    assert fake_wecom.tasks[0]["sender"] == sender


def test_a_welcome_code_of_another_customer_is_not_used(fake_wecom: FakeWeCom) -> None:
    code = fake_wecom.add_contact(EXTERNAL, "zhangsan")
    s, c = connector_config(fake_wecom)
    WeComConnector().deliver(message(event=contact_added(code, customer_id="someone-else")), s, c)
    assert fake_wecom.calls("send_welcome_msg") == [] and len(fake_wecom.tasks) == 1


def test_an_explicit_welcome_code_option_is_used(fake_wecom: FakeWeCom) -> None:
    code = fake_wecom.add_contact(EXTERNAL, "zhangsan")
    s, c = connector_config(fake_wecom)
    WeComConnector().deliver(message(options={"channel": "wecom", "welcome_code": code}), s, c)
    assert fake_wecom.calls("send_welcome_msg")[0].body["welcome_code"] == code


def test_a_used_welcome_code_fails_the_delivery_for_good(fake_wecom: FakeWeCom) -> None:
    code = fake_wecom.add_contact(EXTERNAL, "zhangsan")
    fake_wecom.used_codes.add(code)  # another app of the corp was quicker
    s, c = connector_config(fake_wecom)
    with pytest.raises(WelcomeCodeUnusable) as caught:
        WeComConnector().deliver(message(event=contact_added(code)), s, c)
    assert caught.value.retryable is False


def test_an_unanswered_welcome_attempt_then_used_counts_as_sent(fake_wecom: FakeWeCom) -> None:
    """The first attempt reached WeCom but its answer was lost; the retry learns the code is used: that
    was us, so the delivery succeeds (unconfirmed) instead of failing or sending a second message."""
    code = fake_wecom.add_contact(EXTERNAL, "zhangsan")
    s, c = connector_config(fake_wecom)
    client = shared_client(WECOM_CORP_ID, WECOM_SECRET, api_base=fake_wecom.url, rate_per_second=10.0)
    client.timeout = 0.2
    fake_wecom.fail_next("send_welcome_msg", Reply({"errcode": 0, "errmsg": "ok"}, delay=0.5))
    fake_wecom.used_codes.add(code)  # what WeCom did with the attempt whose answer we lost
    with pytest.raises(WeComRetryable):
        WeComConnector().deliver(message(event=contact_added(code)), s, c)
    assert WeComConnector().deliver(message(event=contact_added(code)), s, c).endswith(":unconfirmed")
    assert fake_wecom.tasks == []


def test_a_customer_without_external_userid_or_no_longer_a_contact_is_rejected(fake_wecom: FakeWeCom) -> None:
    s, c = connector_config(fake_wecom)
    with pytest.raises(WeComRejected, match="external_userid"):
        WeComConnector().deliver(message(external=None), s, c)
    with pytest.raises(WeComRejected, match="not a contact") as caught:
        WeComConnector().deliver(message(external="wmGone000000001"), s, c)
    assert caught.value.retryable is False and "wmGone000000001" not in str(caught.value)
