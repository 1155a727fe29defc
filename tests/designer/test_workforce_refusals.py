"""What the workforce pages (and the workforce API) answer when a request cannot be carried out, one class at a
time, each with its own status and a message that says what is wrong and how to fix it, in both languages:

* bad input → 422 naming the field and the fix (a mass send without text, a strategy without its colleague, a
  mass-send attachment that is not a URL);
* something that does not exist → 404 (a member WeCom does not know);
* a state that does not allow it → 409 (executing a handover that is not planned, pulling the archive of a
  connector without the archive Secret, linking sidebar staff with no sidebar app configured);
* WeCom refused → 502 saying WeCom refused, with its errcode and what to check (a permission the connector's
  app lacks), never "no such member" and never a 500;
* WeCom busy or rate-limited → 503 with Retry-After.

Against the loopback WeCom, whose answers are scripted per API (``fail_next``)."""

from __future__ import annotations

from types import SimpleNamespace

from fastapi import FastAPI
from sqlalchemy import select

from engine.db import workforce_models as wf
from engine.db.models import utcnow
from engine.db.session import session_factory, transaction
from tests.connectors.fake_wecom import FakeWeCom, fake_wecom
from tests.designer.pages_kit import Browser
from tests.designer.workforce_pages_kit import app

__all__ = ["app", "fake_wecom"]
PERMISSION = 48002  # the secret's app may not call this API (a credentials / permission refusal)
REFUSED = 40003  # an invalid UserID (any other refusal)
BUSY = -1  # system busy: worth trying again


def test_wecom_refusing_a_permission_is_a_502_that_says_so(app: FastAPI, fake_wecom: FakeWeCom) -> None:
    ops = Browser(app, "ops")
    fake_wecom.fail_next("user/get", PERMISSION)
    page = ops.post_form("/workforce/staff/depart", {"userid": "zhangsan"})
    assert page.status_code == 502
    assert "企业微信拒绝了请求" in page.text and "48002" in page.text and "连接器" in page.text
    assert "没有成员" not in page.text  # it is not an unknown member
    fake_wecom.fail_next("user/get", PERMISSION)
    english = Browser(app, "ops", "en").post_form("/workforce/staff/depart", {"userid": "zhangsan"})
    assert english.status_code == 502 and "WeCom refused" in english.text and "Connectors" in english.text
    fake_wecom.fail_next("user/get", PERMISSION)
    api = ops.client.post("/api/workforce/handovers", json={"connector_id": "wecom-main", "userid": "zhangsan"},
                          headers={"X-CSRF-Token": ops.csrf})
    assert api.status_code == 502 and api.json()["detail"]["field"] == "connector_id"
    assert "48002" in api.json()["detail"]["message"] and api.json()["detail"]["fix"]


def test_wecom_refusing_a_later_call_is_a_502_not_a_server_error(app: FastAPI, fake_wecom: FakeWeCom) -> None:
    """The member is found, then listing their customers is refused: the page says WeCom refused, and why."""
    ops = Browser(app, "ops")
    fake_wecom.fail_next("externalcontact/list", REFUSED)
    page = ops.post_form("/workforce/staff/depart", {"userid": "zhangsan"})
    assert page.status_code == 502 and "企业微信拒绝了请求" in page.text and "40003" in page.text
    fake_wecom.fail_next("externalcontact/list", REFUSED)
    api = ops.client.post("/api/workforce/handovers", json={"connector_id": "wecom-main", "userid": "zhangsan"},
                          headers={"X-CSRF-Token": ops.csrf})
    assert api.status_code == 502 and api.json()["detail"]["field"] == "wecom"
    fake_wecom.fail_next("groupchat/list", PERMISSION)
    synced = ops.post_form("/workforce/groups/sync", {})
    assert synced.status_code == 502 and "48002" in synced.text


def test_wecom_busy_is_a_503_with_retry_after(app: FastAPI, fake_wecom: FakeWeCom) -> None:
    ops = Browser(app, "ops")
    fake_wecom.fail_next("groupchat/list", *[BUSY] * 10)
    page = ops.post_form("/workforce/groups/sync", {})
    assert page.status_code == 503 and page.headers["Retry-After"] == "5"
    assert "暂时无法完成" in page.text and "企业微信繁忙" in page.text and "一分钟后再试" in page.text
    fake_wecom.script.clear()
    english = Browser(app, "ops", "en")
    fake_wecom.fail_next("user/get", *[BUSY] * 10)
    page = english.post_form("/workforce/staff/depart", {"userid": "zhangsan"})
    assert page.status_code == 503 and "WeCom is busy" in page.text and "try again in a minute" in page.text


def test_a_member_wecom_does_not_know_is_a_404(app: FastAPI, fake_wecom: FakeWeCom) -> None:
    page = Browser(app, "ops").post_form("/workforce/staff/depart", {"userid": "nobody"})
    assert page.status_code == 404 and "nobody" in page.text and "请检查 userid" in page.text


def test_bad_input_is_a_422_naming_the_field_and_the_fix(app: FastAPI, fake_wecom: FakeWeCom) -> None:
    marketer = Browser(app, "marketer")
    empty = marketer.post_form("/workforce/mass-sends", {"chat_type": "single", "text": "", "action": "preview"})
    assert empty.status_code == 422 and "群发需要文本或附件" in empty.text and "请填写文本" in empty.text
    english = Browser(app, "marketer", "en")
    bad_url = english.post_form("/workforce/mass-sends", {"chat_type": "single", "text": "hi",
                                                          "attachments": "ftp://x/a.png", "action": "preview"})
    assert bad_url.status_code == 422
    assert "attachments" in bad_url.text and "is not an http(s) URL" in bad_url.text
    assert "validation error" not in bad_url.text  # pydantic's own report is not shown
    no_colleague = Browser(app, "ops", "en").post_form("/workforce/staff/depart", {
        "userid": "zhangsan", "strategy": "colleague"})
    assert no_colleague.status_code == 422 and "colleague" in no_colleague.text
    assert "validation error" not in no_colleague.text


async def test_executing_a_handover_that_is_not_planned_is_a_409(app: FastAPI, db_url: str,
                                                                 fake_wecom: FakeWeCom) -> None:
    ops = Browser(app, "ops")
    planned = ops.post_form("/workforce/staff/depart", {"userid": "zhangsan"})
    handover_id = int(planned.headers["location"].rsplit("/", 1)[1])
    with transaction(db_url) as db:
        found = db.get(wf.Handover, handover_id)
        assert found is not None
        found.status, found.finished_at = "done", utcnow()
    app.state.router = SimpleNamespace(client=SimpleNamespace(), task_queue="q")  # refused before any start
    page = ops.post_form(f"/workforce/handovers/{handover_id}/execute", {})
    assert page.status_code == 409 and "只有计划中的交接可以开始执行" in page.text
    with session_factory(db_url)() as db:
        assert db.scalar(select(wf.Handover.workflow_id).where(wf.Handover.id == handover_id)) is None


def test_pulling_the_archive_without_its_secret_is_a_409_saying_where_to_add_it(app: FastAPI,
                                                                                fake_wecom: FakeWeCom) -> None:
    page = Browser(app, "ops").post_form("/workforce/compliance/pull", {})
    assert page.status_code == 409 and "会话内容存档 Secret" in page.text and "连接器" in page.text
