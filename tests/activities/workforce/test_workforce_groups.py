"""Customer groups synced from the fake WeCom, their changes as customer events (stored once), the
change_external_chat / change_contact callbacks as notices, and a departure notice planning a handover."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from activities.workforce import groups
from activities.workforce.common import store_events, wecom_client
from connectors.wecom.connector import WeComConnector
from connectors.wecom.events import notices_from_callback
from engine import connectors as configured
from engine.db import models
from engine.db import workforce_models as wf
from engine.db.models import utcnow
from engine.db.session import session_factory, transaction
from engine.notices import NoticeContext, dispatch
from tests.connectors.fake_wecom import WECOM_CORP_ID, WECOM_KEY, WECOM_SECRET, WECOM_TOKEN, FakeWeCom, fake_wecom
from tests.connectors.fake_wecom_groupchat import group_event_xml

__all__ = ["fake_wecom"]
CONNECTOR = "wecom-main"


@pytest.fixture
def corp(db_url: str, fake_wecom: FakeWeCom, monkeypatch: pytest.MonkeyPatch) -> FakeWeCom:
    monkeypatch.setattr(configured, "connector_classes", lambda: {"wecom": WeComConnector})
    with transaction(db_url) as db:
        configured.save(db, CONNECTOR, "wecom", "企业微信", {"corp_id": WECOM_CORP_ID, "api_base": fake_wecom.url},
                        {"token": WECOM_TOKEN, "encoding_aes_key": WECOM_KEY, "secret": WECOM_SECRET})
    for userid in ("zhangsan", "lisi"):
        fake_wecom.add_staff(userid, departments=(7,))
    fake_wecom.add_group("wrA", "zhangsan", "VIP 群", members=("wmOld", "lisi"))
    return fake_wecom


def sync(db_url: str) -> list[dict[str, Any]]:
    client, _ = wecom_client(db_url, CONNECTOR)
    events = groups.sync_all(db_url, client, CONNECTOR, utcnow())["events"]
    store_events(db_url, CONNECTOR, events)
    return events


def stored(db_url: str) -> list[tuple[str, str]]:
    with session_factory(db_url)() as db:
        return [(e.type, e.identities["wecom_external_userid"]) for e in db.scalars(
            select(models.EventRecord).order_by(models.EventRecord.id))]


def test_group_changes_become_customer_events_once(corp: FakeWeCom, db_url: str) -> None:
    assert sync(db_url) == []  # the first sync imports what exists
    corp.add_group("wrNew", "lisi", "新品群")
    corp.join("wrNew", "wmFresh", scene=3)
    corp.join("wrA", "wmJoin", scene=3)
    corp.leave("wrA", "wmOld")
    events = sync(db_url)
    assert sorted((e["type"], e["customer"]["wecom_external_userid"]) for e in events) == [
        ("wecom.group_created", "wmFresh"), ("wecom.group_member_joined", "wmJoin"),
        ("wecom.group_member_left", "wmOld")]
    joined = next(e for e in events if e["type"] == "wecom.group_member_joined")
    assert joined["payload"]["join_scene"] == 3 and joined["payload"]["group_name"] == "VIP 群"
    assert sync(db_url) == []  # nothing changed: nothing new
    corp.groups["wrA"]["owner"] = "lisi"
    corp.groups["wrA"]["version"] += 1
    corp.dismiss("wrNew")
    events = sync(db_url)
    assert sorted((e["type"], e["customer"]["wecom_external_userid"]) for e in events) == [
        ("wecom.group_dismissed", "wmFresh"), ("wecom.group_owner_changed", "wmJoin")]
    assert sorted(stored(db_url)) == [("wecom.group_created", "wmFresh"), ("wecom.group_dismissed", "wmFresh"),
                                      ("wecom.group_member_joined", "wmJoin"), ("wecom.group_member_left", "wmOld"),
                                      ("wecom.group_owner_changed", "wmJoin")]
    store_events(db_url, CONNECTOR, events)  # the same changes seen again are duplicates
    assert len(stored(db_url)) == 5
    with session_factory(db_url)() as db:
        attrs = {i.value: db.get(models.Customer, i.customer_id).attributes
                 for i in db.scalars(select(models.Identity))}
        assert attrs["wmJoin"]["wecom_groups"] == ["wrA"] and attrs["wmOld"]["wecom_groups"] == []
        assert attrs["wmFresh"]["wecom_groups"] == []
        assert db.get(wf.WeComGroup, (CONNECTOR, "wrNew")).status == "dismissed"
        join_id = db.scalar(select(models.Identity.customer_id).where(models.Identity.value == "wmJoin"))
        assert groups.members_of(db, CONNECTOR, ["wrA"]) == {"wmJoin": join_id}


def test_callbacks_become_notices() -> None:
    [notice] = notices_from_callback(group_event_xml("wrA", "update", update_detail="add_member",
                                                     members=("wmJoin", "wmTwo"), join_scene=3))
    assert notice["kind"] == "group_changed" and notice["members"] == ["wmJoin", "wmTwo"]
    old_format = ("<xml><ToUserName>ww</ToUserName><CreateTime>1</CreateTime><MsgType>event</MsgType>"
                  "<Event>change_external_chat</Event><ChatId>wrA</ChatId><ChangeType>update</ChangeType>"
                  "<MemChangeList><![CDATA[wmA,wmB]]></MemChangeList></xml>")
    assert notices_from_callback(old_format)[0]["members"] == ["wmA", "wmB"]
    left = ("<xml><ToUserName>ww</ToUserName><FromUserName>sys</FromUserName><CreateTime>1700000000</CreateTime>"
            "<MsgType>event</MsgType><Event>change_contact</Event><ChangeType>delete_user</ChangeType>"
            "<UserID>zhangsan</UserID></xml>")
    assert notices_from_callback(left) == [{"kind": "member_changed", "change_type": "delete_user",
                                            "userid": "zhangsan", "occurred_at": "2023-11-14T22:13:20+00:00"}]
    audit = ("<xml><ToUserName>ww</ToUserName><FromUserName>sys</FromUserName><CreateTime>1</CreateTime>"
             "<MsgType>event</MsgType><AgentID>2000004</AgentID><Event>msgaudit_notify</Event></xml>")
    assert notices_from_callback(audit)[0]["kind"] == "archive_notify"


async def test_a_departure_notice_plans_the_handover(corp: FakeWeCom, db_url: str) -> None:
    corp.add_contact("wmC1", "zhangsan")
    corp.resign("zhangsan")
    notice = {"kind": "member_changed", "change_type": "delete_user", "userid": "zhangsan"}
    failed = await dispatch(NoticeContext(CONNECTOR, "wecom", db_url), [notice])
    assert failed == 0
    with session_factory(db_url)() as db:
        handover = db.scalar(select(wf.Handover))
        assert (handover.handover_userid, handover.trigger, handover.status, handover.mode) == (
            "zhangsan", "callback", "planned", "resigned")
        assert db.get(wf.WeComStaff, (CONNECTOR, "zhangsan")).status == "resigned"
    # a notice a handler cannot act on is logged, never raised
    assert await dispatch(NoticeContext("nowhere", "wecom", db_url), [notice]) == 1
