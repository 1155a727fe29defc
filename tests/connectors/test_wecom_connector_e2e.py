"""新客欢迎, end to end: a real-format WeCom callback → /hooks/<id> of the real app → the event is
stored once → flows/welcome-new-contact.json starts on Temporal → the fake WeCom on 127.0.0.1 receives a
real-format send_welcome_msg with that callback's welcome_code and the rendered text.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from connectors.wecom.connector import WeComConnector
from designer.app import create_app
from engine import connectors as configured
from engine import flows as flowsvc
from engine.db import models
from engine.db.session import session_factory, transaction
from engine.router import Router
from engine.worker import build_worker
from tests.connectors.fake_wecom import (
    WECOM_CORP_ID,
    WECOM_KEY,
    WECOM_SECRET,
    WECOM_TOKEN,
    FakeWeCom,
    contact_event_xml,
    fake_wecom,
    wecom_callback,
    wecom_url_check,
)
from tests.waiting import until

__all__ = ["fake_wecom"]

FLOW = Path(__file__).resolve().parents[2] / "flows" / "welcome-new-contact.json"
HOOK = "/hooks/wecom-main"
EXTERNAL = "wmAJ2GCAAAXtWyujaWJHDDGi0mACH71w"
WELCOME_TEXT = "你好 张三，我是你的专属顾问小潮 🌊 以后上新、活动和售后问题都可以直接找我～"


@dataclass
class Stack:
    http: httpx.AsyncClient
    db_url: str
    fake: FakeWeCom

    def scalar(self, query: Any) -> Any:
        with session_factory(self.db_url)() as db:
            return db.scalar(query)


@pytest.fixture
async def stack(time_env: Any, db_url: str, fake_wecom: FakeWeCom, monkeypatch: pytest.MonkeyPatch
                ) -> AsyncIterator[Stack]:
    monkeypatch.setattr(configured, "connector_classes", lambda: {"wecom": WeComConnector})
    with transaction(db_url) as db:
        configured.save(db, "wecom-main", "wecom", "企业微信（测试）",
                        {"corp_id": WECOM_CORP_ID, "agent_id": 1000002, "api_base": fake_wecom.url},
                        {"token": WECOM_TOKEN, "encoding_aes_key": WECOM_KEY, "secret": WECOM_SECRET})
        flowsvc.save_draft(db, json.loads(FLOW.read_text(encoding="utf-8")), "test")
        flowsvc.publish(db, "welcome-new-contact", "test")
    queue = f"wecom-e2e-{uuid.uuid4().hex[:8]}"
    app = create_app(db_url, connect=False)
    app.state.router = Router(time_env.client, db_url, queue)
    async with build_worker(time_env.client, queue, db_url), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        yield Stack(http, db_url, fake_wecom)


async def test_a_wecom_callback_runs_the_welcome_journey_to_send_welcome_msg(stack: Stack) -> None:
    fake = stack.fake
    code = fake.add_contact(EXTERNAL, "zhangsan", name="张三", unionid="oUnionZhangsan")

    query, echo = wecom_url_check()  # saving the callback URL in the admin console
    verified = await stack.http.get(HOOK, params=query)
    assert verified.status_code == 200 and verified.text == echo

    push = wecom_callback(contact_event_xml("add_external_contact", EXTERNAL, "zhangsan", state="shop-qr-7",
                                            welcome_code=code))
    answer = await stack.http.post(HOOK, params=push.query, content=push.body, headers={"content-type": "text/xml"})
    assert answer.status_code == 200 and answer.text == "success"
    assert answer.headers["content-type"].startswith("text/plain")

    sent = await until(lambda: fake.calls("send_welcome_msg"), "the welcome message", timeout=15)
    assert len(sent) == 1, fake.requests
    request = sent[0]
    assert request.method == "POST" and request.path == "/cgi-bin/externalcontact/send_welcome_msg"
    assert request.query["access_token"].startswith("tok-")
    assert request.body == {"welcome_code": code, "text": {"content": WELCOME_TEXT}}
    assert request.answer == {"errcode": 0, "errmsg": "ok"}
    assert fake.delivered == [(EXTERNAL, "welcome", WELCOME_TEXT, [])]
    assert fake.calls("add_msg_template") == [] and fake.problems == []

    event = stack.scalar(select(models.EventRecord).where(models.EventRecord.source == "wecom-main"))
    assert event.type == "wecom.contact_added" and event.payload["welcome_code"] == code
    assert event.identities == {"wecom_external_userid": EXTERNAL, "wechat_unionid": "oUnionZhangsan"}
    customer = stack.scalar(select(models.Customer).where(models.Customer.id == event.customer_id))
    assert customer.name == "张三"
    assert customer.attributes["wecom_follow_user"] == "zhangsan"
    assert customer.attributes["wecom_add_state"] == "shop-qr-7"
    message = await until(lambda: stack.scalar(select(models.Message).where(
        models.Message.customer_id == event.customer_id, models.Message.status == "sent")),
        "the sent message", timeout=15)
    assert message.channel == "wecom" and message.node_id == "hello"
    assert message.workflow_id == f"journey/welcome-new-contact/{event.customer_id}"

    # WeCom retries the same push (it did not hear "success" in time): stored once, sent once
    again = wecom_callback(contact_event_xml("add_external_contact", EXTERNAL, "zhangsan", state="shop-qr-7",
                                             welcome_code=code, create_time=int(push.query["timestamp"])),
                           nonce="another-nonce")
    retried = await stack.http.post(HOOK, params=again.query, content=again.body)
    assert retried.status_code == 200 and retried.text == "success"
    await asyncio.sleep(0.5)
    assert stack.scalar(select(func.count()).select_from(models.EventRecord)) == 1
    assert len(fake.calls("send_welcome_msg")) == 1


async def test_a_forged_callback_gets_401_and_nothing_is_stored(stack: Stack) -> None:
    code = stack.fake.add_contact(EXTERNAL, "zhangsan")
    forged = wecom_callback(contact_event_xml("add_external_contact", EXTERNAL, welcome_code=code),
                            token="not-the-configured-token")
    answer = await stack.http.post(HOOK, params=forged.query, content=forged.body)
    assert answer.status_code == 401
    garbled = await stack.http.post(HOOK, params={"msg_signature": "0", "timestamp": "1", "nonce": "1"},
                                    content=b"<xml><Encrypt>%%%</Encrypt></xml>")
    assert garbled.status_code == 401
    unparsable = wecom_callback("<xml><MsgType>event</MsgType><Event>change_external_contact</Event>"
                                "<ChangeType>add_external_contact</ChangeType></xml>")
    bad = await stack.http.post(HOOK, params=unparsable.query, content=unparsable.body)
    assert bad.status_code == 400 and "ExternalUserID" in bad.text
    assert stack.scalar(select(func.count()).select_from(models.EventRecord)) == 0
    assert stack.fake.calls("send_welcome_msg") == []
