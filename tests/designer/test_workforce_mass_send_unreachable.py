"""A mass send while the workflow engine (Temporal) is not reachable: the API answers 503 with Retry-After (not a
409 conflict) naming Temporal and what to do, the page says the same with its Retry-After, and nothing is stored
half-way — no mass send ``sending`` that nothing will ever start, no recipients holding their allowance, no
message-log rows. Both with no connection at all (the web process started without Temporal) and with one that
fails when the workflow is started (Temporal went away after the mass send was stored)."""

from __future__ import annotations

import sqlite3
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from temporalio.service import RPCError, RPCStatusCode

from activities.workforce.runtime import START_ATTEMPTS
from engine.db import workforce_models as wf
from engine.db.session import session_factory, transaction
from engine.events import EventIn, store
from tests.activities.workforce.mass_send_kit import stored
from tests.connectors.fake_wecom import FakeWeCom
from tests.designer.pages_kit import Browser, audit_entries
from tests.designer.workforce_pages_kit import app, fake_wecom

__all__ = ["app", "fake_wecom"]
SEND = {"connector_id": "wecom-main", "chat_type": "single", "text": "双十一会员专享"}


class GoneTemporal:
    """A client whose server went away: every workflow start fails as an unreachable Temporal does."""

    def __init__(self) -> None:
        self.starts = 0

    async def start_workflow(self, *args: Any, **kwargs: Any) -> Any:
        self.starts += 1
        raise RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")


@pytest.fixture
def contact(db_url: str, fake_wecom: FakeWeCom) -> None:
    """A customer zhangsan may send to, once a day (so a send left stored would hold the day's allowance)."""
    with transaction(db_url) as db:
        db.add(wf.WorkforceSettings(connector_id="wecom-main", mass_quota_policy="day_1", at_limit="exclude"))
    store(EventIn(id="seed-wmC1", type="customer.updated", customer={"wecom_external_userid": "wmC1"},
                  profile={"name": "林女士", "attributes": {"wecom_follow_user": "zhangsan"}}), db_url)


def check_refusals(app: FastAPI, db_url: str) -> None:
    marketer = Browser(app, "marketer")
    api = marketer.client.post("/api/workforce/mass-sends", json=SEND, headers={"X-CSRF-Token": marketer.csrf})
    assert api.status_code == 503, api.text
    assert api.headers["Retry-After"] == "5"
    detail = api.json()["detail"]
    assert detail["field"] == "temporal" and "Temporal" in detail["message"] and "not reachable" in detail["message"]
    assert "nothing was stored" in detail["message"] and detail["fix"]
    page = marketer.post_form("/workforce/mass-sends", {"chat_type": "single", "text": SEND["text"], "action": "send"})
    assert page.status_code == 503 and page.headers["Retry-After"] == "5"
    assert "暂时无法完成" in page.text and "无法连接工作流引擎（Temporal）" in page.text
    english = Browser(app, "marketer", "en")
    page = english.post_form("/workforce/mass-sends", {"chat_type": "single", "text": SEND["text"], "action": "send"})
    assert page.status_code == 503 and "not reachable" in page.text
    assert stored(db_url) == (0, 0, 0)
    assert audit_entries(db_url, "workforce.mass_send_created") == []


def test_without_a_connection_to_temporal_nothing_is_stored(app: FastAPI, db_url: str, contact: None) -> None:
    assert app.state.router is None  # the web process started without Temporal
    check_refusals(app, db_url)


def test_when_temporal_refuses_the_start_the_stored_send_is_withdrawn(app: FastAPI, db_url: str,
                                                                      contact: None) -> None:
    gone = GoneTemporal()
    app.state.router = SimpleNamespace(client=gone, task_queue="q")  # connected once, the server is gone now
    check_refusals(app, db_url)
    # each request stored its send, tried to start it a few times, and took it back
    assert gone.starts == 3 * START_ATTEMPTS
    marketer = Browser(app, "marketer")  # the allowance the withdrawn sends reserved is free again
    preview = marketer.client.post("/api/workforce/mass-sends/preview", json=SEND,
                                   headers={"X-CSRF-Token": marketer.csrf})
    assert preview.status_code == 200, preview.text
    assert (preview.json()["allowed"], preview.json()["at_limit"]) == (1, 0)


def test_a_send_that_cannot_be_withdrawn_is_shown_failed_with_its_reason(app: FastAPI, db_url: str,
                                                                         contact: None) -> None:
    """The withdrawal is refused by the database too (a trigger, as a disk error would): the send ends failed, the
    problem page names it and says nothing was sent, and its page shows it failed and why — not "sending"."""
    app.state.router = SimpleNamespace(client=GoneTemporal(), task_queue="q")
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as db:
        db.execute("CREATE TRIGGER refuse_delete BEFORE DELETE ON mass_sends "
                   "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END")
    marketer = Browser(app, "marketer")
    page = marketer.post_form("/workforce/mass-sends", {"chat_type": "single", "text": SEND["text"], "action": "send"})
    with session_factory(db_url)() as db:
        [send] = db.scalars(select(wf.MassSend))
    assert page.status_code == 503 and page.headers["Retry-After"] == "5"
    assert f"群发 {send.id} 未能启动" in page.text and "已标记为失败" in page.text and "没有发出任何消息" in page.text
    assert send.status == "failed"
    shown = marketer.get(f"/workforce/mass-sends/{send.id}")
    assert shown.status_code == 200
    assert "失败" in shown.text and "发送中" not in shown.text and "收件人的群发额度已释放" in shown.text
    assert "未发送：群发未能启动" in shown.text
    english = Browser(app, "marketer", "en").get(f"/workforce/mass-sends/{send.id}")
    assert "did not start this mass send" in english.text and "not sent: the mass send was not started" in english.text
    api = marketer.client.post("/api/workforce/mass-sends", json=SEND, headers={"X-CSRF-Token": marketer.csrf})
    assert api.status_code == 503 and api.json()["detail"]["field"] == "temporal"
    assert "was not started: it is marked failed" in api.json()["detail"]["message"]
    assert audit_entries(db_url, "workforce.mass_send_created") == []
