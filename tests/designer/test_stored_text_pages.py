"""Reasons saved when they happened are shown in the reader's language (wording.stored): a connector's last sync
error, a channel's staff-sync refusal, a quarantined event's reason and a journey's failure, each written by the
code that writes it in production, read on its page in Chinese and in English — while the JSON API keeps giving
the English sentence in the same field. A legacy plain-English reason is still shown as it is."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from activities.growth import channels
from activities.growth.channels import ChannelSpec
from engine import connector_ops, journey_failures, quarantine
from engine import connectors as configured
from engine import flows as flowsvc
from engine.db import models
from engine.db.connector_models import ConnectorSyncState
from engine.db.growth_models import GrowthChannel
from engine.db.session import session_factory, transaction
from engine.text import Msg, verbatim
from tests.activities.growth.growth_kit import connect_wecom
from tests.connectors.fake_wecom import FakeWeCom, Reply, fake_wecom
from tests.designer.pages_kit import Browser, add_users, build_app
from tests.engine.flowkit import WELCOME
from wording.stored import MAX_REASON

__all__ = ["fake_wecom"]

pytestmark = pytest.mark.usefixtures("cheap_passwords")
HOOK = "shop-hook"


def _both(app: FastAPI, username: str, path: str) -> tuple[str, str]:
    """The page at ``path`` as a Chinese and as an English reader sees it."""
    chinese = Browser(app, username).get(path + "?lang=zh-CN")
    english = Browser(app, username, "en").get(path + "?lang=en")
    assert chinese.status_code == english.status_code == 200, (chinese.text[-500:], english.text[-500:])
    return chinese.text, english.text


@pytest.fixture
def app(db_url: str) -> FastAPI:
    add_users(db_url)
    with transaction(db_url) as db:
        configured.save(db, HOOK, "webhook", "Shop webhook", {}, {"secret": "s" * 32}, enabled=True)
    return build_app(db_url)


def test_a_connectors_last_error_is_shown_in_the_readers_language(db_url: str, app: FastAPI) -> None:
    connector_ops.record_attempt(db_url, HOOK, error=Msg(
        "message queue: %(error)s: %(detail)s", error="ShopApiRetryable", detail=verbatim("App Call Limited")))
    chinese, english = _both(app, "admin", "/settings/connectors")
    assert "消息队列：ShopApiRetryable：App Call Limited" in chinese and "message queue:" not in chinese
    assert "message queue: ShopApiRetryable: App Call Limited" in english
    status = Browser(app, "admin", "en").get(f"/api/connectors/{HOOK}/status").json()
    assert status["last_error"] == "message queue: ShopApiRetryable: App Call Limited"
    with session_factory(db_url)() as db:
        row = db.get(ConnectorSyncState, HOOK)
        assert row is not None and row.last_error and row.last_error.startswith("tideflow-msg:")


def test_a_legacy_english_last_error_and_a_broken_one_are_shown_as_they_are(db_url: str, app: FastAPI) -> None:
    for legacy in ("ReadTimeout: ReadTimeout", 'tideflow-msg:{"t": "%(a)s", "v": {"a": ["not", "a", "text"]}}'):
        connector_ops.record_attempt(db_url, HOOK, error="placeholder")
        with transaction(db_url) as db:  # as written before the stored form (or broken since)
            row = db.get(ConnectorSyncState, HOOK)
            assert row is not None
            row.last_error = legacy
        chinese, english = _both(app, "admin", "/settings/connectors")
        shown = legacy.replace('"', "&#34;")
        assert shown in chinese and shown in english
        assert Browser(app, "admin", "en").get(f"/api/connectors/{HOOK}/status").json()["last_error"] == legacy


def test_a_long_connector_error_is_clipped_and_still_translated(db_url: str, app: FastAPI) -> None:
    connector_ops.record_attempt(db_url, HOOK, error=Msg("%(error)s: %(detail)s", error="ShopApiError",
                                                         detail=verbatim("x" * 10_000)))
    with session_factory(db_url)() as db:
        row = db.get(ConnectorSyncState, HOOK)
        assert row is not None and row.last_error and len(row.last_error) <= MAX_REASON
    chinese, english = _both(app, "admin", "/settings/connectors")
    assert "ShopApiError：xxx" in chinese and "…" in chinese and "ShopApiError: xxx" in english


def test_an_unmapped_orders_reason_is_shown_in_the_readers_language(db_url: str, app: FastAPI) -> None:
    from connectors.jd.orders import order_events

    [record] = order_events({"orderId": "J-1", "orderState": "LOCKED_FOREVER", "pin": "buyer-1"}, shop="jd-1")
    connector_ops.store_unmapped(db_url, HOOK, [record["unmapped"]])
    chinese, english = _both(app, "admin", f"/settings/connectors/{HOOK}/unmapped")
    assert "订单：订单状态 &#39;LOCKED_FOREVER&#39; 没有对应的事件" in chinese and "is not mapped" not in chinese
    assert "order: state &#39;LOCKED_FOREVER&#39; is not mapped" in english
    api = Browser(app, "admin", "en").get(f"/api/connectors/{HOOK}/unmapped").json()
    assert api["messages"][0]["reason"] == "order: state 'LOCKED_FOREVER' is not mapped"


def test_a_channels_staff_sync_refusal_is_shown_in_the_readers_language(db_url: str, app: FastAPI,
                                                                        fake_wecom: FakeWeCom,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    connect_wecom(db_url, fake_wecom, monkeypatch)
    now = datetime.now(UTC)
    spec = ChannelSpec.model_validate({"key": "store-a", "name": "门店A", "staff": ["zhangsan"], "remark": "门店A"})
    channels.create_channel(db_url, spec, "marketer", now)
    fake_wecom.fail_next("update_contact_way", Reply.errcode(40003, "invalid userid lisi"))
    channels.update_channel(db_url, "store-a", spec.model_copy(update={"staff": ["lisi"]}), "marketer", now)
    with session_factory(db_url)() as db:
        kept = db.scalar(select(GrowthChannel.sync_error).where(GrowthChannel.key == "store-a"))
    assert kept and kept.startswith("tideflow-msg:")
    chinese, english = _both(app, "marketer", "/growth/channels/store-a")
    assert "企业微信拒绝了员工变更：" in chinese and "invalid userid lisi" in chinese
    assert "WeCom refused the staff change" not in chinese and "answered errcode" not in chinese
    assert "WeCom refused the staff change: WeCom update_contact_way answered errcode 40003" in english
    api = Browser(app, "marketer", "en").get("/api/growth/channels/store-a").json()
    assert api["sync_error"].startswith("WeCom refused the staff change: WeCom update_contact_way answered errcode")
    assert "invalid userid lisi" in api["sync_error"]


def test_a_quarantined_events_reason_is_shown_in_the_readers_language(db_url: str, app: FastAPI) -> None:
    failure = LookupError(Msg("no connector '%(connector_id)s'", connector_id="shop-9"))
    with transaction(db_url) as db:
        entry = quarantine.put(db, "event", "api:e1", quarantine.reason(failure),
                               {"id": "api:e1", "type": "order.paid", "payload": {}}, attempts=5).id
    chinese, english = _both(app, "admin", f"/quarantine/{entry}")
    assert "LookupError：没有连接器「shop-9」" in chinese and "no connector" not in chinese
    assert "LookupError: no connector &#39;shop-9&#39;" in english
    listing_zh, listing_en = _both(app, "admin", "/quarantine")
    assert "没有连接器「shop-9」" in listing_zh and "no connector &#39;shop-9&#39;" in listing_en
    api = Browser(app, "admin", "en").get("/api/quarantine").json()
    [shown] = [e for e in api["entries"] if e["id"] == entry]
    assert shown["error"] == "LookupError: no connector 'shop-9'"


def test_a_quarantine_reason_masks_phones_in_its_values(db_url: str) -> None:
    said = quarantine.reason(ValueError(Msg("no customer with phone %(phone)s", phone="13812345678")))
    assert "13812345678" not in said and said.template == "%(error)s: %(detail)s"


def test_an_event_rows_error_goes_to_the_quarantine_as_it_was_kept(db_url: str) -> None:
    """The event row keeps the stored form and hands it to the quarantine: read back once, never wrapped twice."""
    kept = quarantine.kept(quarantine.reason(KeyError(Msg("no connector '%(connector_id)s'", connector_id="x"))))
    assert quarantine.kept(kept) == kept
    with transaction(db_url) as db:
        entry = quarantine.put(db, "event", "api:e2", kept, {"id": "api:e2"})
        assert quarantine.describe(entry)["error"] == "KeyError: no connector 'x'"
        assert quarantine.error_kind("event", entry.error) == "other"


def test_a_journeys_failure_is_shown_in_the_readers_language(db_url: str, app: FastAPI) -> None:
    wid = "journey/welcome/c1"
    with transaction(db_url) as db:
        flowsvc.save_draft(db, WELCOME, "marketer")
        flowsvc.publish(db, "welcome", "marketer")
        db.add(models.Customer(id="c1", name="赵六", attributes={}))
        db.add(models.Journey(workflow_id=wid, flow_id="welcome", version=1, customer_id="c1", status="failed",
                              current_node="hello", started_at=datetime(2026, 12, 1, tzinfo=UTC)))
    journey_failures.store(db_url, journey_failures._history_gone(wid), "welcome")
    english_reason = "the reason is no longer known: the workflow engine no longer keeps this journey&#39;s history"
    for path in (f"/journeys/{wid}", "/journeys/failures"):
        chinese, english = _both(app, "marketer", path)
        assert "原因已无从得知" in chinese and "no longer known" not in chinese, path
        assert english_reason in english, path
    one = Browser(app, "marketer", "en").get(f"/api/journeys/{wid}").json()
    assert one["failure"]["error"].startswith("the reason is no longer known: the workflow engine")
    failed = Browser(app, "marketer").get("/api/journeys/failed").json()
    assert failed["journeys"][0]["failure"]["error"] == one["failure"]["error"]


def test_growth_page_refusals_come_back_in_the_readers_language(db_url: str, app: FastAPI) -> None:
    """A growth form's refusal travels to the page in ``?error=``: it is put there in the reader's language."""
    from tests.activities.growth.growth_kit import make_campaign

    make_campaign(db_url, "spring")
    english = ("the status must be active, paused or ended", "campaign &#39;spring&#39; exists",
               "campaign &#39;nope&#39; does not exist", "the decision must be approve or reject")
    for lang, expected in (("zh-CN", ("状态只能是", "活动「spring」已存在", "活动「nope」不存在", "审核结果只能是")),
                           ("en", english)):
        mia = Browser(app, "marketer", lang)
        mia.get(f"/growth/campaigns?lang={lang}")  # the choice, remembered for the posts
        shown = []
        for path, form in (("/growth/campaigns/spring/status", {"status": "bogus"}),
                           ("/growth/campaigns", {"name": "x", "campaign_id": "spring", "goal": "3",
                                                  "starts_at": "2026-12-01T10:00", "ends_at": "2026-12-20T10:00",
                                                  "staff": "zhangsan"}),
                           ("/growth/campaigns/nope/status", {"status": "paused"}),
                           ("/growth/review/1", {"decision": "maybe"})):
            moved = mia.post_form(path, form)
            assert moved.status_code == 303 and "error=" in moved.headers["location"], (path, moved.text[-300:])
            shown.append(mia.get(moved.headers["location"]).text)
        for page, words in zip(shown, expected, strict=True):
            assert words in page, (lang, words)
        assert "status: active" not in "".join(shown)
    assert Browser(app, "ops").get("/growth/review").status_code == 200
