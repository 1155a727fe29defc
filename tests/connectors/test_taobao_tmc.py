"""Taobao's message service (TMC) through the TOP API (connectors/taobao/tmc.py, engine/shop_sync.py)
against the loopback TOP router: a recorded genuine consume answer, trade and refund messages mapped to the
poller's events (and deduplicated with it), other sellers and topics kept unmapped, confirmation only
after storing, redelivery after failures, and a queue that fails without stopping the windows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from connectors.jd.connector import JdConnector
from connectors.polling import ShopApiRetryable
from connectors.taobao.client import TopClient
from connectors.taobao.connector import TaobaoConnector
from engine import connector_ops, shop_sync
from engine import connectors as configured
from engine.db import models
from engine.db.connector_models import UnmappedMessage
from engine.db.session import session_factory
from tests.connectors.shop_platforms import TOP_APP_KEY, TOP_SECRET, TOP_SESSION, FakeTop, top_refund, top_trade
from tests.connectors.taobao_sync_kit import SHOP, configure_taobao, counts, cursor, event_ids
from wording.stored import stored_english

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "taobao"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(autouse=True)
def polled_kinds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(configured, "connector_classes", lambda: {"taobao": TaobaoConnector, "jd": JdConnector})


@pytest.fixture
def top() -> Iterator[FakeTop]:
    with FakeTop() as server:
        yield server  # type: ignore[misc]


def with_tmc(db_url: str, top: FakeTop, **settings: Any) -> None:
    configure_taobao(db_url, top, backfill_hours=0, tmc=True, poll_interval_seconds=600, **settings)


def unmapped(db_url: str) -> list[UnmappedMessage]:
    """The kept messages, each reason as the English it says (it is stored as a Msg: wording.stored)."""
    with session_factory(db_url)() as db:
        rows = list(db.scalars(select(UnmappedMessage).order_by(UnmappedMessage.id)))
        for row in rows:
            db.expunge(row)
            row.reason = stored_english(row.reason)
        return rows


def fail_after(top: FakeTop, after: Any, body: dict[str, Any]) -> None:
    """Answer ``body`` to the request that follows the first one ``after(form)`` picks."""
    def hook(form: dict[str, str]) -> None:
        if after(form):
            top.before = None
            top.fail_next(body)

    top.before = hook


def poll(db_url: str) -> shop_sync.PollResult:
    return shop_sync.poll_connector(db_url, SHOP, now=datetime.now(UTC))


def test_the_recorded_consume_answer_is_read_and_its_64_bit_id_confirmed_exactly(top: FakeTop) -> None:
    top.raw_consume.append((FIXTURES / "tmc_messages_consume_response.json").read_bytes())
    with TopClient(TOP_APP_KEY, TOP_SECRET, TOP_SESSION, gateway_url=top.url) as client:
        messages = client.tmc_consume()
        assert len(messages) == 1 and messages[0]["id"] == 7104300007405429232
        assert messages[0]["topic"] == "taobao_item_ItemStockChanged"
        client.tmc_confirm("", ["7104300007405429232"], [])
    consume, confirm = top.calls_of("taobao.tmc.messages.consume")[0], top.calls_of("taobao.tmc.messages.confirm")[0]
    assert "session" not in consume and "group_name" not in consume and consume["quantity"] == "100"
    assert confirm["s_message_ids"] == "7104300007405429232" and "f_message_ids" not in confirm


def test_a_topic_that_is_no_order_is_kept_unmapped_and_confirmed(db_url: str, top: FakeTop) -> None:
    with_tmc(db_url, top)
    top.raw_consume.append((FIXTURES / "tmc_messages_consume_response.json").read_bytes())
    result = poll(db_url)
    kept = unmapped(db_url)
    assert [(u.kind, u.message_id) for u in kept] == [("taobao_item_ItemStockChanged", "7104300007405429232")]
    assert "gives no order or refund event" in kept[0].reason and '"num_iid\\":15380658823' in kept[0].raw
    assert top.calls_of("taobao.tmc.messages.confirm")[0]["s_message_ids"] == "7104300007405429232"
    assert result.interval == 10 and counts(db_url)["events"] == 0


def test_trade_and_refund_messages_become_the_pollers_events_once(db_url: str, top: FakeTop) -> None:
    with_tmc(db_url, top)
    created = json.loads((FIXTURES / "sandbox_trade_create.json").read_text())  # TOP sandbox's TradeCreate
    tid = created["tid"]
    top.trades.append(top_trade(tid, NOW - timedelta(seconds=30), "WAIT_BUYER_PAY"))
    top.push("taobao_trade_TradeCreate", created, message_id=8104300007405429001, user_nick="sandbox_c_20")
    poll(db_url)
    assert event_ids(db_url) == [f"tmall:{SHOP}:{tid}:created"]
    # the buyer pays: TradeBuyerPay (fields as TOP documents them, docId 105), and a refund is requested
    top.trades[0] = top_trade(tid, NOW - timedelta(seconds=10), "WAIT_SELLER_SEND_GOODS")
    top.refunds.append(top_refund(55501, tid, NOW - timedelta(seconds=5)))
    top.push("taobao_trade_TradeBuyerPay", {"buyer_nick": "sandbox_cilai_c",
                                            "buyer_open_uid": "AAHk5d-EAAeGwJedwSFu0XXX", "oid": tid, "tid": tid,
                                            "payment": "129.00", "type": "guarantee_trade",
                                            "seller_nick": "sandbox_c_20"}, message_id=8104300007405429002)
    top.push("taobao_refund_RefundCreated", {"buyer_nick": "sandbox_cilai_c", "refund_id": 55501, "oid": tid,
                                             "tid": tid, "refund_fee": "129.00", "refund_phase": "onsale",
                                             "bill_type": "refund_bill", "seller_nick": "sandbox_c_20",
                                             "modified": "2026-11-23 15:29:58"}, message_id=8104300007405429003)
    poll(db_url)
    assert event_ids(db_url) == sorted([f"tmall:{SHOP}:{tid}:created", f"tmall:{SHOP}:{tid}:paid",
                                        f"tmall:{SHOP}:refund:55501:requested"])
    assert sorted(top.tmc_confirmed) == ["8104300007405429001", "8104300007405429002", "8104300007405429003"]
    fetched = top.calls_of("taobao.trade.fullinfo.get")
    assert fetched[-1]["tid"] == str(tid) and fetched[-1]["session"] == TOP_SESSION
    # the windows read the same changes later (a resync from before them): nothing is stored twice
    before = counts(db_url)
    connector_ops.resync(db_url, SHOP, NOW - timedelta(minutes=5))
    result = poll(db_url)
    assert counts(db_url) == before
    orders, refunds = (next(s for s in result.streams if s.stream == name) for name in ("orders", "refunds"))
    assert orders.windows == refunds.windows == 1
    assert (orders.duplicates, orders.accepted, refunds.duplicates, refunds.accepted) == (1, 0, 1, 0)
    assert not unmapped(db_url)


def test_a_message_for_another_seller_or_an_unknown_record_is_kept_unmapped(db_url: str, top: FakeTop) -> None:
    with_tmc(db_url, top, seller_nick="潮汐旗舰店")
    top.push("taobao_trade_TradeBuyerPay", {"tid": 7001, "oid": 7001, "seller_nick": "别家小店", "type": "fixed"},
             message_id=901, user_nick="别家小店")
    top.push("taobao_trade_TradeBuyerPay", {"tid": 7002, "oid": 7002, "seller_nick": "潮汐旗舰店", "type": "fixed"},
             message_id=902)  # no such trade for this shop's session
    top.push("taobao_refund_RefundSuccess", {"refund_id": 1}, message_id=903)
    top.tmc_queue.append({**top.tmc_queue[0], "id": 904, "content": "not json"})
    poll(db_url)
    reasons = {u.message_id: u.reason for u in unmapped(db_url)}
    assert "not this shop" in reasons["901"] and "tmc_group" in reasons["901"]
    assert "isv.trade-not-exist" in reasons["902"] and "isv.refund-not-exist" in reasons["903"]
    assert "not a JSON object" in reasons["904"]
    assert sorted(top.tmc_confirmed) == ["901", "902", "903", "904"] and counts(db_url)["events"] == 0


def test_a_busy_platform_mid_batch_confirms_what_was_stored_and_gets_the_rest_again(db_url: str,
                                                                                   top: FakeTop) -> None:
    with_tmc(db_url, top)  # the trades changed before the first window: only the queue brings them
    for i in range(3):
        top.trades.append(top_trade(6000 + i, NOW - timedelta(minutes=10), "WAIT_SELLER_SEND_GOODS"))
        top.push("taobao_trade_TradeBuyerPay", {"tid": 6000 + i, "oid": 6000 + i, "type": "fixed"},
                 message_id=7000 + i)

    fail_after(top, lambda form: form.get("tid") == "6000",  # reading the second trade hits the call limit
               FakeTop.error(7, "App Call Limited", "accesscontrol.limited-by-app-access-count",
                             "This ban will last for 1 more seconds"))
    result = poll(db_url)
    assert "ShopApiRetryable" in result.queue_error and result.interval == 600  # back to the windows' pace
    assert event_ids(db_url) == [f"tmall:{SHOP}:6000:paid"]
    assert top.tmc_confirmed == ["7000"] and top.tmc_failed == ["7001", "7002"]
    with session_factory(db_url)() as db:
        status = connector_ops.sync_status(db, SHOP)
    assert status is not None and "App Call Limited" in (status.last_error or "") and status.last_success_at
    poll(db_url)  # TMC delivers the two again
    assert event_ids(db_url) == [f"tmall:{SHOP}:{6000 + i}:paid" for i in range(3)]
    assert sorted(top.tmc_confirmed) == ["7000", "7001", "7002"]


def test_a_crash_between_storing_and_confirming_stores_nothing_twice(db_url: str, top: FakeTop,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    with_tmc(db_url, top)
    top.trades.append(top_trade(6100, NOW - timedelta(minutes=10), "WAIT_SELLER_SEND_GOODS"))
    top.push("taobao_trade_TradeBuyerPay", {"tid": 6100, "oid": 6100, "type": "fixed"}, message_id=7100)

    def lost(self: TopClient, group: str, done: list[str], failed: list[str]) -> None:
        raise ShopApiRetryable("no answer within 20s (ReadTimeout)")

    with monkeypatch.context() as patch:
        patch.setattr(TopClient, "tmc_confirm", lost)
        assert "ReadTimeout" in poll(db_url).queue_error
    assert event_ids(db_url) == [f"tmall:{SHOP}:6100:paid"] and not top.tmc_confirmed
    top.redeliver()  # nobody confirmed it: TMC sends it again
    result = poll(db_url)
    messages = next(s for s in result.streams if s.stream == "messages")
    assert messages.duplicates == 1 and messages.accepted == 0
    assert event_ids(db_url) == [f"tmall:{SHOP}:6100:paid"] and top.tmc_confirmed == ["7100"]


def test_an_expired_session_sends_the_whole_batch_back_and_keeps_nothing_unmapped(db_url: str, top: FakeTop) -> None:
    with_tmc(db_url, top)
    top.push("taobao_trade_TradeBuyerPay", {"tid": 6200, "oid": 6200, "type": "fixed"}, message_id=7200)
    top.push("taobao_trade_TradeBuyerPay", {"tid": 6201, "oid": 6201, "type": "fixed"}, message_id=7201)
    fail_after(top, lambda form: form.get("method") == "taobao.tmc.messages.consume",
               FakeTop.error(27, "Invalid session", "invalid-sessionkey", "SessionKey非法"))
    result = poll(db_url)
    assert "code 27" in result.queue_error and "authorise the app again" in result.queue_error
    assert top.tmc_failed == ["7200", "7201"] and not top.tmc_confirmed and not unmapped(db_url)


def test_a_queue_that_is_not_open_does_not_stop_the_windows(db_url: str, top: FakeTop) -> None:
    configure_taobao(db_url, top, backfill_hours=1, tmc=True)
    top.tmc_closed = True
    top.trades.append(top_trade(6300, NOW - timedelta(minutes=5), "WAIT_SELLER_SEND_GOODS"))
    result = poll(db_url)
    assert "isv.tmc-not-open" in result.queue_error and result.interval == 60
    assert event_ids(db_url) == [f"tmall:{SHOP}:6300:paid"]
    with session_factory(db_url)() as db:
        status = connector_ops.sync_status(db, SHOP)
    assert status is not None and "isv.tmc-not-open" in (status.last_error or "")


def test_with_tmc_the_windows_are_read_only_when_due_and_a_named_group_is_consumed(db_url: str,
                                                                                   top: FakeTop) -> None:
    top.tmc_groups.add("tmall_flagship")
    with_tmc(db_url, top, tmc_group="tmall_flagship", tmc_interval_seconds=5)
    poll(db_url)
    first = cursor(db_url, "orders")
    result = poll(db_url)  # a few seconds later: the queue is read, the windows are not due
    assert result.interval == 5 and cursor(db_url, "orders") == first
    assert next(s for s in result.streams if s.stream == "orders").windows == 0
    assert len(top.calls_of("taobao.trades.sold.increment.get")) == 1
    assert {c["group_name"] for c in top.calls_of("taobao.tmc.messages.consume")} == {"tmall_flagship"}
    later = shop_sync.poll_connector(db_url, SHOP, now=datetime.now(UTC) + timedelta(seconds=601))
    assert next(s for s in later.streams if s.stream == "orders").windows == 1


def test_a_group_the_app_does_not_have_is_an_error_named(db_url: str, top: FakeTop) -> None:
    with_tmc(db_url, top, tmc_group="nope")
    assert "isv.group-not-exist" in poll(db_url).queue_error


def test_settings_are_checked() -> None:
    settings = TaobaoConnector.Settings
    with pytest.raises(ValueError, match="tmc_interval_seconds"):
        settings.model_validate({"app_key": "1", "shop": "s", "tmc_interval_seconds": 1})
    with pytest.raises(ValueError, match="tmc_group"):
        settings.model_validate({"app_key": "1", "shop": "s", "tmc_group": "a b"})
    assert TaobaoConnector().consume_interval(settings.model_validate({"app_key": "1", "shop": "s"})) is None
    assert models  # the event store is what dedupes (models.EventRecord, source + id)


def test_trades_and_refunds_that_map_to_no_event_are_kept_unmapped_by_the_poller_and_the_queue(
        db_url: str, top: FakeTop) -> None:
    """Issue 18: nothing a platform sends is dropped. The recorded sandbox TradeCreate (TOP's sandbox, received
    with TOP's Java TmcClient) names its buyer only by ``buyer_nick``: an app without the buyer_open_uid grant
    reads such trades, and a status Taobao adds later maps to nothing either. Through the windows
    (trades.sold.increment.get, refunds.receive.get) and through TMC, each is stored once as unmapped, with why."""
    created = json.loads((FIXTURES / "sandbox_trade_create.json").read_text())
    tid = created["tid"]
    nick_only = {**top_trade(tid, NOW - timedelta(minutes=2), "WAIT_BUYER_PAY"), "buyer_open_uid": "",
                 "buyer_nick": created["buyer_nick"], "payment": created["payment"], "type": created["type"]}
    top.trades.append(nick_only)
    top.trades.append(top_trade(6001, NOW - timedelta(minutes=3), "WAIT_SOMETHING_NEW"))
    top.refunds.append(top_refund(66001, 6001, NOW - timedelta(minutes=1), "WAIT_ARBITRATION"))
    configure_taobao(db_url, top, backfill_hours=1, tmc=True, poll_interval_seconds=600)
    top.push("taobao_trade_TradeCreate", created, message_id=8104300007405429101, user_nick=created["seller_nick"])
    poll(db_url)
    kept = {(u.kind, u.message_id): u for u in unmapped(db_url)}
    assert set(kept) == {("trade:WAIT_BUYER_PAY", str(tid)), ("trade:WAIT_SOMETHING_NEW", "6001"),
                         ("refund:WAIT_ARBITRATION", "refund-66001"),
                         ("taobao_trade_TradeCreate", "8104300007405429101")}
    assert "no buyer id" in kept[("trade:WAIT_BUYER_PAY", str(tid))].reason
    assert "WAIT_SOMETHING_NEW is not one Tideflow maps" in kept[("trade:WAIT_SOMETHING_NEW", "6001")].reason
    assert "no buyer id" in kept[("taobao_trade_TradeCreate", "8104300007405429101")].reason
    assert top.tmc_confirmed == ["8104300007405429101"] and counts(db_url)["events"] == 0
    # read again (an overlapping window): counted as a redelivery, not stored twice
    connector_ops.resync(db_url, SHOP, NOW - timedelta(minutes=10))
    poll(db_url)
    again = {(u.kind, u.message_id): u.deliveries for u in unmapped(db_url)}
    assert len(again) == 4 and again[("trade:WAIT_SOMETHING_NEW", "6001")] == 2
