"""/journeys (counts, filters, one journey, cancel — on the real Temporal dev server too) and /audit."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from engine import auth
from engine import flows as flowsvc
from engine.db import models
from engine.db.models import utcnow
from engine.db.session import session_factory, transaction
from engine.flow_templates import blank_flow
from engine.router import Router
from engine.settings import get_settings
from engine.worker import build_worker
from tests.designer.pages_kit import PASSWORD, Browser, add_users, audit_entries, build_app
from tests.engine.flowkit import WELCOME
from tests.waiting import until


@pytest.fixture
def app(db_url: str, cheap_passwords: None) -> FastAPI:
    add_users(db_url)
    with transaction(db_url) as db:
        flowsvc.save_draft(db, WELCOME, "marketer")
        flowsvc.publish(db, "welcome", "marketer")
        flowsvc.save_draft(db, blank_flow("payouts", "渠道分润", "settlement"), "finance")
        now = utcnow()
        rows = [("journey/welcome/c1", "welcome", "c1", "waiting", "wait1", None),
                ("journey/welcome/c2", "welcome", "c2", "running", "hello", None),
                ("journey/welcome/c3", "welcome", "c3", "converted", None, now),
                ("run/payouts/v1", "payouts", None, "waiting", "collect", None)]
        for i, (wid, flow, cid, status, node, ended) in enumerate(rows):
            db.add(models.Journey(workflow_id=wid, flow_id=flow, version=1, customer_id=cid, status=status,
                                  current_node=node, started_at=now - timedelta(minutes=10 - i), ended_at=ended))
        db.add(models.Customer(id="c1", name="赵六", attributes={}))
        db.add(models.Message(idempotency_key="journey/welcome/c1/hello/1", customer_id="c1", channel="wecom",
                              content="你好 赵六", status="sent", flow_id="welcome", node_id="hello",
                              workflow_id="journey/welcome/c1"))
    return build_app(db_url)


class FakeHandle:
    def __init__(self, sent: list[tuple[str, str, Any]], wid: str) -> None:
        self.sent, self.wid = sent, wid

    async def signal(self, name: str, arg: Any) -> None:
        self.sent.append((self.wid, name, arg))


class FakeClient:
    """Records signals; stands in for a Temporal client where only the page's wiring is tested."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any]] = []

    def get_workflow_handle(self, wid: str) -> FakeHandle:
        return FakeHandle(self.sent, wid)


class FakeRouter:
    def __init__(self) -> None:
        self.client = FakeClient()


def test_journeys_by_status_in_both_languages(app: FastAPI) -> None:
    ops = Browser(app, "ops")
    page = ops.get("/journeys").text
    assert re.search(r'data-status="waiting">等待中<b>2</b>', page)
    assert re.search(r'data-status="running">运行中<b>1</b>', page)
    assert re.search(r'data-status="converted">已转化<b>1</b>', page)
    assert "合计<b>4</b>" in page and "journey/welcome/c1" in page and "赵六" in page
    assert "工作流引擎（Temporal）当前没有连接" in page  # cancelling is not possible right now, and it says so
    waiting = ops.get("/journeys", params={"status": "waiting", "flow": "welcome"}).text
    assert "journey/welcome/c1" in waiting and "journey/welcome/c2" not in waiting and "run/payouts" not in waiting
    assert re.search(r'data-status="waiting">等待中<b>1</b>', waiting)  # counts follow the flow filter
    en = ops.get("/journeys?lang=en").text
    assert re.search(r'data-status="waiting">Waiting<b>2</b>', en) and "Current node" in en


def test_cancel_buttons_follow_the_flow_kind(app: FastAPI) -> None:
    page = Browser(app, "marketer").get("/journeys").text
    forms = re.findall(r'name="journey_id" value="([^"]+)"', page)
    assert forms == ["journey/welcome/c2", "journey/welcome/c1"]  # active ones of journey flows only
    assert "run/payouts/v1" in Browser(app, "finance").get("/journeys").text
    assert re.findall(r'name="journey_id" value="([^"]+)"', Browser(app, "finance").get("/journeys").text) == \
        ["run/payouts/v1"]


def test_one_journey(app: FastAPI) -> None:
    marketer = Browser(app, "marketer")
    page = marketer.get("/journeys/journey/welcome/c1")
    assert page.status_code == 200
    for shown in ("journey/welcome/c1", "welcome", "v1", "等待中", "wait1", "你好 赵六", "取消旅程",
                  'href="/customers/c1"'):
        assert shown in page.text, shown
    missing = marketer.get("/journeys/journey/welcome/nobody")
    assert missing.status_code == 404 and "找不到旅程" in missing.text
    assert "Cancel journey" in marketer.get("/journeys/journey/welcome/c1?lang=en").text


def test_cancel_without_temporal_says_so(app: FastAPI, db_url: str) -> None:
    r = Browser(app, "marketer").post_form("/journeys/cancel", {"journey_id": "journey/welcome/c1",
                                                                 "back": "/journeys?status=waiting"})
    assert r.status_code == 503 and "Temporal" in r.text and "make run" in r.text
    assert 'href="/journeys?status=waiting"' in r.text
    en = Browser(app, "marketer", lang="en").post_form("/journeys/cancel", {"journey_id": "journey/welcome/c1"})
    assert en.status_code == 503 and "The workflow engine (Temporal) is not connected" in en.text
    assert not audit_entries(db_url, "journey.cancel_requested")


def test_cancel_signals_the_workflow(app: FastAPI, db_url: str) -> None:
    router = FakeRouter()
    app.state.router = router
    marketer = Browser(app, "marketer")
    assert "当前没有连接" not in marketer.get("/journeys").text
    r = marketer.post_form("/journeys/cancel", {"journey_id": "journey/welcome/c1", "back": "/journeys?flow=welcome"})
    assert r.status_code == 303
    assert r.headers["location"] == "/journeys?flow=welcome&notice=cancel_sent&id=journey%2Fwelcome%2Fc1"
    assert "已向旅程 journey/welcome/c1 发送取消信号" in marketer.get(r.headers["location"]).text
    assert router.client.sent == [("journey/welcome/c1", "cancel", "by marketer")]
    [entry] = audit_entries(db_url, "journey.cancel_requested", "journey/welcome/c1")
    assert entry.actor == "marketer"


@pytest.mark.parametrize(("role", "journey", "status", "text"), [
    ("marketer", "run/payouts/v1", 403, "结算"),  # a marketer cannot touch settlement runs
    ("agent", "journey/welcome/c1", 403, "没有权限"),
    ("developer", "journey/welcome/c1", 403, "运营"),  # reads flows, edits none
    ("marketer", "journey/welcome/c3", 409, "已转化"),  # already ended
    ("marketer", "journey/nope", 404, "找不到旅程"),
])
def test_cancel_refusals(app: FastAPI, role: str, journey: str, status: int, text: str) -> None:
    router = FakeRouter()
    app.state.router = router
    r = Browser(app, role).post_form("/journeys/cancel", {"journey_id": journey})
    assert r.status_code == status and text in r.text
    assert router.client.sent == []


# --- the real thing: a journey waiting on the Temporal dev server is cancelled from the page -------


@pytest.fixture
def queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"pages-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("TIDEFLOW_TASK_QUEUE", name)
    get_settings.cache_clear()
    yield name
    get_settings.cache_clear()


async def _login(http: httpx.AsyncClient, username: str) -> str:
    await http.get("/login")
    r = await http.post("/login", data={"username": username, "password": PASSWORD,
                                        "csrf_token": http.cookies.get("tideflow_login_csrf") or ""})
    assert r.status_code == 303, r.text
    return str((await http.get("/api/me")).json()["csrf_token"])


async def _journey_status(db_url: str, wid: str, want: str, timeout: float = 20) -> str:
    def status() -> str:
        with session_factory(db_url)() as db:
            journey = db.get(models.Journey, wid)
            return journey.status if journey else "missing"

    return str(await until(lambda: status() == want and want, f"journey {wid} to be {want}", timeout, interval=0.1))


async def test_cancel_on_the_temporal_dev_server(dev_env: Any, db_url: str, queue: str, cheap_passwords: None) -> None:
    add_users(db_url)
    with transaction(db_url) as db:
        flowsvc.save_draft(db, WELCOME, "marketer")
        flowsvc.publish(db, "welcome", "marketer")
        token = auth.create_token(db, auth.find_user(db, "developer"), "events")  # type: ignore[arg-type]
    app = build_app(db_url)
    app.state.router = Router(dev_env.client, db_url, queue)
    transport = httpx.ASGITransport(app=app)
    async with build_worker(dev_env.client, queue, db_url), \
            httpx.AsyncClient(transport=transport, base_url="http://test",
                              headers={"Authorization": f"Bearer {token}"}) as api, \
            httpx.AsyncClient(transport=transport, base_url="http://test") as browser:
        event = {"id": "e-1", "type": "wecom.contact_added", "customer": {"phone": "13800138000"},
                 "profile": {"name": "张三", "attributes": {"orders_count": 0}}}
        started = (await api.post("/api/events", json=event)).json()["started"]
        assert len(started) == 1
        wid = started[0]
        assert await _journey_status(db_url, wid, "waiting") == "waiting"  # in wait1 (one day)

        csrf = await _login(browser, "marketer")
        r = await browser.post("/journeys/cancel", data={"journey_id": wid, "csrf_token": csrf, "back": "/journeys"})
        assert r.status_code == 303, r.text
        assert await _journey_status(db_url, wid, "cancelled") == "cancelled"
        page = (await browser.get("/journeys?status=cancelled")).text
        assert wid in page and "已取消" in page


def test_audit_log_is_for_admins_newest_first_and_paginated(app: FastAPI, db_url: str) -> None:
    with transaction(db_url) as db:
        for i in range(60):
            auth.audit(db, "script", "test.step", f"t{i}", {"i": i, "api_token": "secret"})
    admin = Browser(app, "admin")
    first = admin.get("/audit")
    assert first.status_code == 200 and "审计日志" in first.text
    assert first.text.index(">t59<") < first.text.index(">t58<") and ">t9<" not in first.text
    assert "secret" not in first.text  # the audit writer scrubs secret-looking keys
    assert "第 1 / 2 页" in first.text and 'href="/audit?page=2"' in first.text
    second = admin.get("/audit?page=2").text
    assert ">t9<" in second and "flow.published" in second and "user.created" in second
    filtered = admin.get("/audit", params={"action": "flow.", "actor": "MARKETER"}).text
    assert "flow.published" in filtered and "test.step" not in filtered and "user.created" not in filtered
    en = admin.get("/audit?lang=en").text
    assert "Audit log" in en and "Page 1 of 2" in en
    for role in ("marketer", "ops", "agent", "finance", "developer"):
        other = Browser(app, role)
        r = other.get("/audit")
        # admins and auditors read the audit log (engine/read_policy.py): the page names both roles
        assert r.status_code == 403 and "审计员" in r.text and "test.step" not in r.text
        # the JSON API has the same rule as the page
        r = other.get("/api/audit")
        assert r.status_code == 403 and "test.step" not in r.text
    assert admin.get("/api/audit", params={"limit": 1}).json()[0]["action"]
