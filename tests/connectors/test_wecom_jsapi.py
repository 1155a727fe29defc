"""WeCom sign-in and JS-SDK signatures (connectors/wecom/jsapi.py) against WeCom's published example and
against the fake qyapi.weixin.qq.com on 127.0.0.1, whose signature check is its own SHA-1 of the
documented string."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from connectors.wecom.api_errors import WeComRejected, WeComRetryable
from connectors.wecom.jsapi import (
    APP_TICKETS_PER_HOUR,
    HourlyBudget,
    WeComApp,
    check_page_url,
    jsapi_signature,
    oauth_url,
    reset_shared_apps,
    shared_app,
)
from tests.connectors.fake_wecom import WECOM_CORP_ID, WECOM_SECRET, FakeWeCom, serve
from tests.connectors.fake_wecom_jsapi import SIDEBAR_AGENT_ID, expire_all

PAGE = "https://scrm.example.com/sidebar?entry=single_chat_tools"


class Clock:
    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> Iterator[FakeWeCom]:
    reset_shared_apps()
    f = FakeWeCom()
    f.now = clock
    yield from serve(f)
    reset_shared_apps()
    assert not f.problems, f.problems


@pytest.fixture
def app(fake: FakeWeCom, clock: Clock) -> Iterator[WeComApp]:
    a = WeComApp(WECOM_CORP_ID, SIDEBAR_AGENT_ID, WECOM_SECRET, api_base=fake.url, rate_per_second=10_000,
                 clock=clock, wall_clock=clock, corp_budget=HourlyBudget(400, clock=clock))
    yield a
    a.close()


def test_signature_matches_wecom_published_example() -> None:
    # developer.work.weixin.qq.com/document/path/96909 (JS-SDK 签名算法 › 示例): these inputs, this output
    ticket = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg"
    assert jsapi_signature(ticket, "Wm3WZYTPz0wzccnW", 1414587457, "http://mp.weixin.qq.com?params=value") == \
        "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
    # the WeChat JS-SDK doc's example (same algorithm, URL without a query string)
    assert jsapi_signature(ticket, "Wm3WZYTPz0wzccnW", "1414587457", "http://mp.weixin.qq.com") == \
        "f4d90daf4b3bca3078ab155816175ba34c443a7b"
    # the fragment is not signed; nothing is URL-encoded
    assert jsapi_signature(ticket, "Wm3WZYTPz0wzccnW", 1414587457, "http://mp.weixin.qq.com?params=value#/x?y") == \
        "0f9de62fce790f9a083d5c99e95740ceb90c27ed"


def test_the_fake_accepts_what_the_app_signs_and_nothing_else(fake: FakeWeCom, app: WeComApp) -> None:
    corp = app.config_signature(PAGE + "#/customer")
    agent = app.agent_config_signature(PAGE)
    assert corp.url == PAGE and re.fullmatch(r"[0-9a-f]{40}", corp.signature) and len(corp.nonce_str) == 16
    assert fake.verify_signature("corp", PAGE + "#anything", corp.timestamp, corp.nonce_str, corp.signature) == ""
    assert fake.verify_signature("agent", PAGE, agent.timestamp, agent.nonce_str, agent.signature) == ""
    # a corp signature does not pass agentConfig, another page or another timestamp
    assert fake.verify_signature("agent", PAGE, corp.timestamp, corp.nonce_str, corp.signature) == "invalid signature"
    assert fake.verify_signature("corp", PAGE + "&x=1", corp.timestamp, corp.nonce_str, corp.signature) != ""
    assert fake.verify_signature("corp", PAGE, corp.timestamp + 1, corp.nonce_str, corp.signature) != ""
    assert app.config_signature(PAGE).nonce_str != corp.nonce_str


def test_tickets_are_cached_until_shortly_before_they_expire(fake: FakeWeCom, app: WeComApp, clock: Clock) -> None:
    for _ in range(30):
        app.config_signature(PAGE)
        app.agent_config_signature(PAGE)
    assert len(fake.calls("get_jsapi_ticket")) == 1 and len(fake.calls("ticket/get")) == 1
    assert fake.calls("ticket/get")[0].query["type"] == "agent_config"
    clock.now += 7200 - 301  # still inside the 300 s margin before expiry
    app.config_signature(PAGE)
    assert len(fake.calls("get_jsapi_ticket")) == 1
    clock.now += 2  # now inside the margin: fetched afresh, and the new ticket verifies
    fresh = app.config_signature(PAGE)
    assert len(fake.calls("get_jsapi_ticket")) == 2
    assert fake.verify_signature("corp", PAGE, fresh.timestamp, fresh.nonce_str, fresh.signature) == ""


def test_expired_tickets_no_longer_verify(fake: FakeWeCom, app: WeComApp) -> None:
    sig = app.agent_config_signature(PAGE)
    expire_all(fake)
    assert fake.verify_signature("agent", PAGE, sig.timestamp, sig.nonce_str, sig.signature) == "invalid signature"


def test_hourly_limit_is_kept_on_our_side(fake: FakeWeCom, app: WeComApp, clock: Clock) -> None:
    assert app.app_budget.limit == APP_TICKETS_PER_HOUR == 100 and app.corp_budget.limit == 400
    app.app_budget = HourlyBudget(5, clock=clock)  # WeCom's 100 takes 100 round trips; the rule is the same
    # something keeps throwing the cached ticket away: we still fetch at most the limit in any hour
    for _ in range(5):
        app.agent_config_signature(PAGE)
        app.agent_ticket.invalidate(app.agent_ticket.get())
    clock.now += 1800
    with pytest.raises(WeComRetryable, match="5 jsapi tickets in the last hour") as refused:
        app.agent_config_signature(PAGE)
    assert refused.value.retry_after == pytest.approx(1800)
    assert len(fake.calls("ticket/get")) == 5  # the 6th never reached WeCom
    clock.now += 1801
    app.agent_config_signature(PAGE)
    assert len(fake.calls("ticket/get")) == 6


def test_wecom_frequency_refusal_is_retryable(fake: FakeWeCom, app: WeComApp) -> None:
    fake.ticket_limits["corp"] = 0
    with pytest.raises(WeComRetryable) as refused:
        app.config_signature(PAGE)
    assert refused.value.errcode == 45009


def test_oauth_code_becomes_a_userid_once(fake: FakeWeCom, app: WeComApp, clock: Clock) -> None:
    code = fake.issue_oauth_code("zhangsan")
    visitor = app.visitor(code)
    assert visitor.userid == "zhangsan" and visitor.member
    with pytest.raises(WeComRejected) as again:
        app.visitor(code)
    assert again.value.errcode == 40029
    late = fake.issue_oauth_code("lisi")
    clock.now += 301  # codes expire after 5 minutes
    with pytest.raises(WeComRejected):
        app.visitor(late)
    outsider = app.visitor(fake.issue_oauth_code(None, "oOutsider1"))
    assert outsider.openid == "oOutsider1" and not outsider.member


def test_malformed_codes_and_urls_never_reach_wecom(fake: FakeWeCom, app: WeComApp) -> None:
    for code in ("", "x" * 513, "代码", "a\nb"):
        with pytest.raises(ValueError, match="OAuth code"):
            app.visitor(code)
    for url in ("javascript:alert(1)", "/sidebar", "https://user:pw@scrm.example.com/", "https://a/" + "x" * 2100,
                "ftp://scrm.example.com/"):
        with pytest.raises(ValueError, match="page URL"):
            check_page_url(url)
    assert fake.requests == []


def test_oauth_redirect_through_the_fake_authorize_page(fake: FakeWeCom, app: WeComApp) -> None:
    url = oauth_url(WECOM_CORP_ID, "http://127.0.0.1:1/sidebar/oauth?next=/sidebar", state="s1x",
                    agent_id=SIDEBAR_AGENT_ID, base=fake.url)
    parts = urlsplit(url)
    assert parts.fragment == "wechat_redirect"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query == {"appid": WECOM_CORP_ID, "redirect_uri": "http://127.0.0.1:1/sidebar/oauth?next=/sidebar",
                     "response_type": "code", "scope": "snsapi_base", "state": "s1x",
                     "agentid": str(SIDEBAR_AGENT_ID)}
    fake.client_user = "wangwu"
    page = httpx.get(url.split("#")[0]).text
    target = re.search(r'url=([^"]+)"', page)
    assert target is not None
    back = parse_qs(urlsplit(target.group(1).replace("&amp;", "&")).query)
    assert back["state"] == ["s1x"] and back["next"] == ["/sidebar"]
    assert app.visitor(back["code"][0]).userid == "wangwu"
    fake.trusted_hosts = {"scrm.example.com"}
    assert "可信域名" in httpx.get(url.split("#")[0]).text
    with pytest.raises(ValueError, match="state"):
        oauth_url(WECOM_CORP_ID, "https://x/", state="no spaces allowed")


def test_shared_app_is_one_per_corp_and_app(fake: FakeWeCom) -> None:
    one = shared_app(WECOM_CORP_ID, SIDEBAR_AGENT_ID, WECOM_SECRET, api_base=fake.url)
    assert shared_app(WECOM_CORP_ID, SIDEBAR_AGENT_ID, WECOM_SECRET, api_base=fake.url) is one
    assert shared_app(WECOM_CORP_ID, SIDEBAR_AGENT_ID + 1, WECOM_SECRET, api_base=fake.url) is not one
    assert WECOM_SECRET not in repr(one)
    with pytest.raises(ValueError, match="AgentId"):
        WeComApp(WECOM_CORP_ID, 0, WECOM_SECRET, api_base=fake.url)


def test_a_ticket_wecom_ended_early_is_replaced_at_most_once_a_minute(fake: FakeWeCom, app: WeComApp,
                                                                      clock: Clock) -> None:
    stale = app.agent_config_signature(PAGE)
    app.config_signature(PAGE)
    expire_all(fake)  # WeCom ended the tickets before their expires_in
    assert fake.verify_signature("agent", PAGE, stale.timestamp, stale.nonce_str, stale.signature) != ""
    assert not app.refresh_tickets()  # fetched just now: kept, however often a page retries
    clock.now += 60
    assert app.refresh_tickets()
    fresh = app.agent_config_signature(PAGE)
    assert fake.verify_signature("agent", PAGE, fresh.timestamp, fresh.nonce_str, fresh.signature) == ""
    assert len(fake.calls("ticket/get")) == 2 and len(fake.calls("get_jsapi_ticket")) == 1
    assert not app.refresh_tickets()
