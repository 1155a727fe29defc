"""The conversation archive end to end without WeCom: the Finance SDK double hands out records in the SDK's
shapes (keys RSA-encrypted under two key versions) → pull from the cursor → decrypt → store masked, once →
sensitive words and behaviours → compliance ticket with the passage and context → the supervisor's WeCom
app message (the fake) → keys encrypted at rest, a missing key version kept for later, retention."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from activities.workforce import chat_archive, compliance
from activities.workforce.runtime import ensure_sync
from activities.workforce.workflows import sync_workflow_id
from connectors.wecom.archive import ArchiveRetryable
from connectors.wecom.connector import WeComConnector
from engine import connectors as configured
from engine.db import models
from engine.db import workforce_models as wf
from engine.db.models import utcnow
from engine.db.session import session_factory, transaction
from engine.worker import build_worker
from tests.connectors.fake_wecom import WECOM_CORP_ID, WECOM_KEY, WECOM_SECRET, WECOM_TOKEN, FakeWeCom, fake_wecom
from tests.connectors.finance_sdk_double import FinanceSdkDouble, private_pem
from tests.waiting import until

__all__ = ["fake_wecom"]
CONNECTOR = "wecom-main"


@pytest.fixture
def double() -> Iterator[FinanceSdkDouble]:
    sdk = FinanceSdkDouble()
    chat_archive.set_sdk_factory(lambda connector_id, settings, secrets: sdk)
    yield sdk
    chat_archive.set_sdk_factory(None)


@pytest.fixture
def corp(db_url: str, fake_wecom: FakeWeCom, double: FinanceSdkDouble, monkeypatch: pytest.MonkeyPatch) -> FakeWeCom:
    monkeypatch.setattr(configured, "connector_classes", lambda: {"wecom": WeComConnector})
    fake_wecom.add_staff("zhangsan", departments=(7,), direct_leader=("boss",))
    fake_wecom.add_staff("boss")
    now = utcnow()
    with transaction(db_url) as db:
        configured.save(db, CONNECTOR, "wecom", "企业微信", {"corp_id": WECOM_CORP_ID, "agent_id": 1000002,
                                                            "api_base": fake_wecom.url},
                        {"token": WECOM_TOKEN, "encoding_aes_key": WECOM_KEY, "secret": WECOM_SECRET,
                         "archive_secret": "archive-secret"})
        db.add(wf.WorkforceSettings(connector_id=CONNECTOR, archive_enabled=True))
        db.add(wf.WeComStaff(connector_id=CONNECTOR, userid="zhangsan", name="张三", departments=[7],
                             leaders=["boss"], status="active"))
        for version in (1, 2):
            chat_archive.add_key(db, CONNECTOR, version, private_pem(version), "admin", now)
        sales = compliance.save_list(db, team="7", name="销售禁语", direction="staff", departments=[7])
        compliance.add_words(db, sales.id, [("保证收益", "keyword", "high"), (r"返现\d+元", "regex", "critical")])
        anyone = compliance.save_list(db, team="客服", name="客户投诉", direction="customer")
        compliance.add_words(db, anyone.id, [("投诉", "keyword", "medium")])
    return fake_wecom


def rows(db_url: str, query: Any) -> list[Any]:
    with session_factory(db_url)() as db:
        return list(db.scalars(query))


def test_archived_chats_are_stored_once_masked_matched_and_alerted(corp: FakeWeCom, db_url: str,
                                                                   double: FinanceSdkDouble) -> None:
    double.text("wmCust01", ["zhangsan"], "你好，我的手机是13800138000，之前买的理财怎么样", version=1)
    hit = double.text("zhangsan", ["wmCust01"], "放心，这款产品保证收益，下单还返现200元", version=2)
    double.text("zhangsan", ["wmCust01"], "直接打款到卡号6222021234567894就行", version=2)
    double.text("wmCust01", ["zhangsan"], "我要投诉你们", version=1)
    double.text("zhangsan", ["wmCust01"], "换了新密钥的消息", version=3)  # no key of version 3 yet
    double.image("wmCust01", ["zhangsan"], b"\x89PNG" + bytes(3000))
    sdk = chat_archive.sdk_for(db_url, CONNECTOR)

    stats = chat_archive.pull(db_url, CONNECTOR, sdk, utcnow(), limit=4)
    assert (stats["fetched"], stats["stored"], stats["undecryptable"], stats["media"]) == (6, 5, 1, 1)
    assert [c for c in double.calls if c[0] == "GetChatData"] == [("GetChatData", (0, 4)), ("GetChatData", (4, 4))]
    stored = rows(db_url, select(wf.ArchivedMessage).order_by(wf.ArchivedMessage.seq))
    assert [m.direction for m in stored] == ["customer", "staff", "staff", "customer", "staff", "customer"]
    assert "13800138000" not in stored[0].text and "138****8000" in stored[0].text  # masked at rest
    assert "6222021234567894" not in stored[2].text and "13800138000" not in str(stored[0].body)
    assert stored[4].status == "undecryptable" and stored[5].media[0]["status"] == "stored"
    assert len({m.customer_id for m in stored if m.status == "stored"}) == 1

    hits = rows(db_url, select(wf.SensitiveHit).order_by(wf.SensitiveHit.id))
    assert sorted((h.msgid == hit.msgid, h.rule.split(":")[0], h.word, h.severity) for h in hits) == sorted([
        (True, "word", "保证收益", "high"), (True, "word", r"返现\d+元", "critical"),
        (False, "behaviour", "bank_card", "high"), (False, "behaviour", "money_transfer", "high"),
        (False, "word", "投诉", "medium")])
    # the customer's phone number is not a staff behaviour; the customer-scope word hit the customer's message
    ticket = rows(db_url, select(models.Ticket).where(models.Ticket.id == next(
        h.ticket_id for h in hits if h.msgid == hit.msgid)))[0]
    assert ticket.type_key == "compliance" and ticket.priority == "P1" and ticket.group_key == "compliance"
    assert "保证收益" in ticket.description and "上下文 Context" in ticket.description
    assert "138****8000" in ticket.description and "13800138000" not in ticket.description
    assert len(rows(db_url, select(models.Ticket))) == 3  # one per message with hits

    assert compliance.deliver_alerts(db_url, CONNECTOR) == {"sent": 3}
    alerts = corp.gstate.app_messages
    assert {tuple(a["to"]) for a in alerts} == {("boss",)} and any("保证收益" in a["text"] for a in alerts)
    assert compliance.deliver_alerts(db_url, CONNECTOR) == {}  # never twice

    again = chat_archive.pull(db_url, CONNECTOR, sdk, utcnow())
    assert (again["fetched"], again["stored"]) == (0, 0)
    with transaction(db_url) as db:
        chat_archive.add_key(db, CONNECTOR, 3, private_pem(3), "admin", utcnow())
        [key] = [k for k in db.scalars(select(wf.ArchiveKey)) if k.version == 3]
        assert "PRIVATE" not in key.secret and private_pem(3)[40:80] not in key.secret  # encrypted at rest
    assert chat_archive.retry_undecryptable(db_url, CONNECTOR, sdk, utcnow()) == 1
    assert [m.text for m in rows(db_url, select(wf.ArchivedMessage).where(wf.ArchivedMessage.seq == 5))] == [
        "换了新密钥的消息"]

    with transaction(db_url) as db:
        assert chat_archive.purge(db, 30, utcnow() + timedelta(days=31)) == 6
    dashboard = compliance.dashboard(session_factory(db_url)(), utcnow() - timedelta(days=1),
                                     utcnow() + timedelta(days=1))
    assert dashboard["total"] == 5 and dashboard["per_staff"][0]["staff"] == "zhangsan"
    assert {r["team"]: r["total"] for r in dashboard["per_team"]} == {"7": 4, "客服": 1}


def test_a_failure_mid_pull_loses_and_repeats_nothing(corp: FakeWeCom, db_url: str, double: FinanceSdkDouble) -> None:
    for i in range(7):
        double.text("zhangsan", ["wmCust02"], f"第{i}条 保证收益")
    sdk = chat_archive.sdk_for(db_url, CONNECTOR)
    original = double.get_chat_data
    calls = {"n": 0}

    def flaky(seq: int, limit: int) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise ArchiveRetryable("network", api="GetChatData", errcode=10001)
        return original(seq, limit)

    double.get_chat_data = flaky  # type: ignore[method-assign]
    with pytest.raises(ArchiveRetryable):
        chat_archive.pull(db_url, CONNECTOR, sdk, utcnow(), limit=3)
    with session_factory(db_url)() as db:
        assert db.get(wf.ArchiveCursor, CONNECTOR).seq == 3
    chat_archive.pull(db_url, CONNECTOR, sdk, utcnow(), limit=3)
    with session_factory(db_url)() as db:
        assert db.scalar(select(func.count()).select_from(wf.ArchivedMessage)) == 7
        assert db.scalar(select(func.count()).select_from(wf.SensitiveHit)) == 7
        assert db.get(wf.ArchiveCursor, CONNECTOR).seq == 7


async def test_msgaudit_notify_pulls_through_the_sync_workflow(time_env: Any, corp: FakeWeCom, db_url: str,
                                                               double: FinanceSdkDouble) -> None:
    queue = f"archive-{uuid.uuid4().hex[:8]}"
    async with build_worker(time_env.client, queue, db_url):
        assert await ensure_sync(time_env.client, CONNECTOR, queue, interval_seconds=3600)
        assert not await ensure_sync(time_env.client, CONNECTOR, queue)  # one per connector
        double.text("wmCust03", ["zhangsan"], "在吗")
        handle = time_env.client.get_workflow_handle(sync_workflow_id(CONNECTOR))

        async def count() -> int:
            def n() -> int:
                with session_factory(db_url)() as db:
                    return int(db.scalar(select(func.count()).select_from(wf.ArchivedMessage)) or 0)

            return await asyncio.to_thread(n)

        async def count_is(wanted: int) -> bool:
            return await count() == wanted

        await until(lambda: count_is(1), "1 archived message")
        double.text("zhangsan", ["wmCust03"], "在的")
        await handle.signal("archive_notify")  # the msgaudit_notify callback
        await until(lambda: count_is(2), "2 archived messages")
        await handle.signal("stop")
        assert await handle.result() == "stopped"
