"""Official Account, end to end: a safe-mode subscribe push → /hooks/<id> of the real app → a journey on
Temporal → the fake api.weixin.qq.com receives the customer-service message; an unsubscribe opts out."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from connectors.wechat_oa.connector import WeChatOAConnector
from designer.app import create_app
from engine import connectors as configured
from engine import flows as flowsvc
from engine.db import models
from engine.db.session import session_factory, transaction
from engine.router import Router
from engine.worker import build_worker
from tests.connectors.fake_wecom import OA_APPID, OA_KEY, OA_SECRET, OA_TOKEN, FakeWeChatOA, fake_oa, oa_event_xml
from tests.connectors.fake_wecom import oa_safe_push as safe_push
from tests.engine.flowkit import flow
from tests.waiting import until

__all__ = ["fake_oa"]

HOOK = "/hooks/wechat-oa"
OPENID = "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
FLOW = flow(
    "oa-welcome",
    [("start", "trigger.event", {"event": "wechat.subscribed"}),
     ("hello", "action.send_message", {"channel": "wechat_oa", "template": "感谢关注！回复「券」领取新人礼",
                                       "category": "transactional"})],
    [("start", "out", "hello")],
)


def scalar(db_url: str, query: Any) -> Any:
    with session_factory(db_url)() as db:
        return db.scalar(query)


@pytest.fixture
async def http(time_env: Any, db_url: str, fake_oa: FakeWeChatOA, monkeypatch: pytest.MonkeyPatch
               ) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setattr(configured, "connector_classes", lambda: {"wechat_oa": WeChatOAConnector})
    with transaction(db_url) as db:
        configured.save(db, "wechat-oa", "wechat_oa", "公众号（测试）", {"app_id": OA_APPID, "api_base": fake_oa.url},
                        {"token": OA_TOKEN, "encoding_aes_key": OA_KEY, "app_secret": OA_SECRET})
        flowsvc.save_draft(db, FLOW, "test")
        flowsvc.publish(db, "oa-welcome", "test")
    queue = f"oa-e2e-{uuid.uuid4().hex[:8]}"
    app = create_app(db_url, connect=False)
    app.state.router = Router(time_env.client, db_url, queue)
    async with build_worker(time_env.client, queue, db_url), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


async def test_a_subscribe_push_sends_the_welcome_through_the_official_account(
        http: httpx.AsyncClient, db_url: str, fake_oa: FakeWeChatOA) -> None:
    fake_oa.follow(OPENID, unionid="oUnion-OA-1")
    push = safe_push(oa_event_xml(OPENID, "subscribe", event_key="qrscene_store-42"))
    answer = await http.post(HOOK, params=push.query, content=push.body)
    assert answer.status_code == 200 and answer.text == "success"

    await until(lambda: fake_oa.delivered, "the welcome sent through the official account", timeout=15)
    assert fake_oa.delivered == [(OPENID, "custom", "感谢关注！回复「券」领取新人礼")]
    [call] = fake_oa.calls("message/custom/send")
    assert call.body == {"touser": OPENID, "msgtype": "text", "text": {"content": "感谢关注！回复「券」领取新人礼"}}
    assert call.query["access_token"] == fake_oa.current and fake_oa.problems == []

    event = scalar(db_url, select(models.EventRecord).where(models.EventRecord.type == "wechat.subscribed"))
    assert event.identities == {"wechat_openid": OPENID, "wechat_unionid": "oUnion-OA-1"}
    assert event.payload["scene"] == "store-42"

    left = safe_push(oa_event_xml(OPENID, "unsubscribe"))
    assert (await http.post(HOOK, params=left.query, content=left.body)).text == "success"
    customer = scalar(db_url, select(models.Customer).where(models.Customer.id == event.customer_id))
    assert customer.consent.get("wechat_oa") == "opted_out"


async def test_a_push_with_a_bad_signature_is_refused(http: httpx.AsyncClient, db_url: str) -> None:
    push = safe_push(oa_event_xml(OPENID, "subscribe"), token="not-our-token")
    assert (await http.post(HOOK, params=push.query, content=push.body)).status_code == 401
    assert scalar(db_url, select(func.count()).select_from(models.EventRecord)) == 0
