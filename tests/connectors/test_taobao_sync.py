"""Order sync by polling (engine/shop_sync.py) with the taobao connector against a loopback TOP router:
cursors, pages, windows, the overlap, a crash between storing and moving the cursor, errors.

The set-up and read-back helpers, shared with the JD, TMC and ops tests, are in taobao_sync_kit.py."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from connectors.polling import ShopApiRejected
from engine import connector_ops, shop_sync
from engine.db import models
from engine.db.session import session_factory
from tests.connectors.shop_platforms import (
    TOP_APP_KEY,
    TOP_SECRET,
    TOP_SESSION,
    FakeTop,
    parse_cst,
    top_refund,
    top_trade,
)
from tests.connectors.taobao_sync_kit import SHOP, configure, configure_taobao, counts, cursor, event_ids, polled_kinds

__all__ = ["polled_kinds"]

NOW = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)  # 15:30 in Shanghai


@pytest.fixture
def top() -> Iterator[FakeTop]:
    with FakeTop() as server:
        yield server  # type: ignore[misc]


def test_two_pages_are_stored_and_then_the_cursor_moves(db_url: str, top: FakeTop) -> None:
    configure_taobao(db_url, top)
    top.trades.extend(top_trade(4000 + i, NOW - timedelta(minutes=i % 50 + 1)) for i in range(55))
    top.refunds.append(top_refund(9001, 4000, NOW - timedelta(minutes=3), "SUCCESS", refund_fee="129.00"))

    result = shop_sync.poll_connector(db_url, SHOP, now=NOW)

    orders, refunds = result.streams
    # page 1 tells the total, then pages are read from the last back to the first: page 1 twice
    assert (orders.stream, orders.windows, orders.accepted, orders.duplicates) == ("orders", 1, 55, 50)
    assert (refunds.accepted, result.interval, result.stopped) == (1, 60, False)
    assert [c["page_no"] for c in top.calls_of("taobao.trades.sold.increment.get")] == ["1", "2", "1"]
    first = top.calls_of("taobao.trades.sold.increment.get")[0]
    assert parse_cst(first["start_modified"]) == NOW - timedelta(hours=1, minutes=2)  # backfill + overlap
    assert parse_cst(first["end_modified"]) == NOW
    assert counts(db_url) == {"events": 56, "orders": 55, "refunds": 1, "customers": 1}
    assert cursor(db_url, "orders") == cursor(db_url, "refunds") == NOW
    with session_factory(db_url)() as db:
        row = db.scalar(select(models.Order).where(models.Order.order_id == "4000"))
        assert row is not None and (row.channel, row.shop, row.status, row.amount_fen, row.refunded_fen) == (
            "tmall", SHOP, "refunded", 12900, 12900)
    # each once, although page 1 was read twice; ids only (the events went to the routing pipeline as they
    # were stored: the poll keeps no payloads)
    assert len(result.to_route) == len(set(result.to_route)) == 56
    assert all(isinstance(event_id, str) for event_id in result.to_route)
    with session_factory(db_url)() as db:
        stored = {f"{r.source}:{r.external_id}" for r in db.scalars(select(models.EventRecord))}
    assert set(result.to_route) == stored
    assert result.summary()["to_route"] == 56

    # a minute later: the overlap re-reads the last two minutes — duplicates, nothing new stored
    again = shop_sync.poll_connector(db_url, SHOP, now=NOW + timedelta(minutes=1))
    assert again.streams[0].accepted == 0 and again.streams[0].duplicates > 0
    assert counts(db_url)["events"] == 56 and cursor(db_url, "orders") == NOW + timedelta(minutes=1)


def test_a_crash_after_storing_re_reads_the_window_and_stores_nothing_twice(
        any_db_url: str, top: FakeTop, monkeypatch: pytest.MonkeyPatch) -> None:
    db_url = any_db_url  # SQLite and PostgreSQL
    configure_taobao(db_url, top, refunds=False)
    top.trades.extend(top_trade(5000 + i, NOW - timedelta(minutes=10 + i // 2)) for i in range(60))
    real_advance = shop_sync.advance

    def worker_dies_before_the_cursor_moves(url: str | None, cid: str, stream: str, position: datetime) -> None:
        if position == NOW:
            raise RuntimeError("the worker died")
        real_advance(url, cid, stream, position)

    monkeypatch.setattr(shop_sync, "advance", worker_dies_before_the_cursor_moves)
    with pytest.raises(RuntimeError, match="died"):
        shop_sync.poll_connector(db_url, SHOP, now=NOW)
    assert counts(db_url)["events"] == 60  # stored …
    assert cursor(db_url, "orders") == NOW - timedelta(hours=1)  # … but the cursor did not move

    # meanwhile one order was shipped and a new one paid
    with top.lock:
        shipped = next(t for t in top.trades if t["tid"] == 5007)
        shipped.update(status="WAIT_BUYER_CONFIRM_GOODS", modified=shipped["modified"])
        top.trades.append(top_trade(5999, NOW - timedelta(seconds=30)))
    monkeypatch.setattr(shop_sync, "advance", real_advance)
    result = shop_sync.poll_connector(db_url, SHOP, now=NOW)

    assert result.streams[0].accepted == 2 and result.streams[0].duplicates >= 60  # the window read again
    ids = event_ids(db_url)
    assert len(ids) == len(set(ids)) == 62
    assert {f"tmall:{SHOP}:{5000 + i}:paid" for i in range(60)} | {f"tmall:{SHOP}:5007:shipped",
                                                                  f"tmall:{SHOP}:5999:paid"} == set(ids)
    assert counts(db_url)["orders"] == 61 and cursor(db_url, "orders") == NOW


def test_a_gap_of_three_days_is_read_in_windows_of_at_most_one_day(db_url: str, top: FakeTop) -> None:
    configure_taobao(db_url, top, backfill_hours=72, refunds=False)
    top.trades.extend(top_trade(6000 + h, NOW - timedelta(hours=h, minutes=1)) for h in range(0, 72, 5))

    first = shop_sync.poll_connector(db_url, SHOP, now=NOW, max_windows=2)
    assert first.streams[0].windows == 2 and cursor(db_url, "orders") == NOW - timedelta(hours=24, minutes=4)
    rest = shop_sync.poll_connector(db_url, SHOP, now=NOW)
    assert rest.streams[0].windows == 2 and cursor(db_url, "orders") == NOW

    windows = [(parse_cst(c["start_modified"]), parse_cst(c["end_modified"]))
               for c in top.calls_of("taobao.trades.sold.increment.get")]
    assert all(end - start <= timedelta(days=1) for start, end in windows)
    assert all(later[0] < earlier[1] for earlier, later in itertools.pairwise(windows))  # overlap
    assert len(event_ids(db_url)) == len(range(0, 72, 5))


def test_an_order_that_shows_up_late_within_the_overlap_is_not_lost(db_url: str, top: FakeTop) -> None:
    configure_taobao(db_url, top, refunds=False)
    shop_sync.poll_connector(db_url, SHOP, now=NOW)
    # the platform indexes this order only now, with a modified time 90 s before the last poll
    top.trades.append(top_trade(7001, NOW - timedelta(seconds=90)))
    shop_sync.poll_connector(db_url, SHOP, now=NOW + timedelta(minutes=1))
    assert event_ids(db_url) == [f"tmall:{SHOP}:7001:paid"]


def test_a_refused_session_stores_nothing_and_keeps_the_cursor(db_url: str, top: FakeTop) -> None:
    configure(db_url, SHOP, "taobao", {"app_key": TOP_APP_KEY, "shop": SHOP, "gateway_url": top.url,
                                       "backfill_hours": 1}, {"app_secret": TOP_SECRET, "session_key": "stale"})
    top.trades.append(top_trade(8001, NOW - timedelta(minutes=5)))
    with pytest.raises(ShopApiRejected) as refused:
        shop_sync.poll_connector(db_url, SHOP, now=NOW)
    assert refused.value.retryable is False and refused.value.code == "27"
    assert counts(db_url)["events"] == 0 and cursor(db_url, "orders") == NOW - timedelta(hours=1)


def test_a_disabled_or_unknown_connector_stops_its_sync(db_url: str, top: FakeTop) -> None:
    configure_taobao(db_url, top)
    assert shop_sync.polled_connector_ids(db_url) == [SHOP]
    configure(db_url, SHOP, "taobao", {"app_key": TOP_APP_KEY, "shop": SHOP, "gateway_url": top.url}, {},
              enabled=False)
    assert shop_sync.poll_connector(db_url, SHOP, now=NOW).stopped
    assert shop_sync.poll_connector(db_url, "no-such-shop", now=NOW).stopped
    assert shop_sync.polled_connector_ids(db_url) == [] and top.calls == []


def test_windows_never_exceed_the_maximum() -> None:
    day = timedelta(days=1)
    assert shop_sync.next_window(NOW, NOW, day) == (NOW - timedelta(minutes=2), NOW)
    assert shop_sync.next_window(NOW - timedelta(days=5), NOW, day) == (
        NOW - timedelta(days=5, minutes=2), NOW - timedelta(days=4, minutes=2))
    with pytest.raises(ValueError, match="longer than the overlap"):
        shop_sync.next_window(NOW, NOW, timedelta(minutes=1))


def test_the_cli_polls_once_and_says_what_is_wrong(db_url: str, top: FakeTop, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from engine.settings import get_settings
    from tideflow.cli import main

    monkeypatch.setenv("TIDEFLOW_DATABASE_URL", db_url)
    get_settings.cache_clear()
    configure_taobao(db_url, top, refunds=False)
    top.trades.append(top_trade(9101, datetime.now(UTC) - timedelta(minutes=5)))
    assert main(["connectors", "sync", SHOP]) == 0
    assert '"accepted": 1' in capsys.readouterr().out and event_ids(db_url) == [f"tmall:{SHOP}:9101:paid"]

    # the sync was off for a week: start again from now instead of catching up
    connector_ops.restart_from(db_url, SHOP, datetime.now(UTC) - timedelta(days=7))
    top.trades.append(top_trade(9102, datetime.now(UTC) - timedelta(days=3)))
    assert main(["connectors", "sync", SHOP, "--from-now"]) == 0
    capsys.readouterr()
    assert event_ids(db_url) == [f"tmall:{SHOP}:9101:paid"]

    assert main(["connectors", "sync", "no-such-shop"]) == 1
    assert "no enabled Taobao/JD connector 'no-such-shop'" in capsys.readouterr().err
    top.fail_next(FakeTop.error(27, "Invalid session", "invalid-sessionkey"))
    assert main(["connectors", "sync", SHOP]) == 1
    err = capsys.readouterr().err
    assert "authorise the app again" in err and "Traceback" not in err and TOP_SESSION not in err
