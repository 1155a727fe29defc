"""The dashboards' figures (activities.reports) over data made here, with every expected number worked out by
hand: local days in Asia/Shanghai (a message at 23:30 UTC belongs to the next local day), channels from the
first event, skips by reason, GMV only for the orders paid while the customer was in the journey, SLA
attainment from fired breaches, settlement amounts by status, period and party."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from activities.reports import Range, RangeError, finance, marketing, service
from engine.db import models
from engine.db.growth_models import GrowthChannel
from engine.db.session import session_factory, transaction
from engine.events import EventIn, store

D = date(2026, 11, 10)
R = Range(date(2026, 11, 1), date(2026, 11, 30))


def at(day: int, hour: int = 12, minute: int = 0) -> datetime:
    """A UTC instant in November 2026."""
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def _event(db_url: str, eid: str, source: str, phone: str, kind: str = "customer.interacted") -> str:
    _, payload, _ = store(EventIn.model_validate({"id": eid, "type": kind, "source": source,
                                                  "customer": {"phone": phone}}), db_url)
    return str(payload["customer_id"])


def test_marketing_figures(db_url: str) -> None:
    a = _event(db_url, "e1", "wecom", "13800000001")
    b = _event(db_url, "e2", "wecom", "13800000002")
    c = _event(db_url, "e3", "youzan", "13800000003")
    _event(db_url, "e4", "api", "13800000001")  # a's second event: a stays a wecom contact
    d = _event(db_url, "e5", "wecom", "13800000004", "wecom.contact_added")
    with transaction(db_url) as db:
        for cid, created in ((a, at(2)), (b, at(2, 17)), (c, at(5)), (d, at(6))):  # b: 01:00 on the 3rd locally
            db.get(models.Customer, cid).created_at = created  # type: ignore[union-attr]
        # d came through a channel code: growth attributed them on their profile (first touch)
        db.add(GrowthChannel(key="shop-poster", name="门店海报", state="c:1"))
        db.get(models.Customer, d).attributes = {"first_touch_channel": "shop-poster"}  # type: ignore[union-attr]
        old = models.Customer(id="cust-old", name="老客", created_at=at(1) - timedelta(days=40))
        db.add(old)
        for i, (status, created) in enumerate([("sent", at(2)), ("sent", at(2, 23, 30)), ("skipped: capped", at(3)),
                                               ("skipped: capped", at(4)), ("skipped: no consent", at(4)),
                                               ("deferred: quiet hours", at(4)), ("failed: rejected", at(4)),
                                               ("sent", at(1) - timedelta(days=2))]):
            db.add(models.Message(idempotency_key=f"m{i}", customer_id=a, channel="wecom", content="hi",
                                  status=status, flow_id="welcome", created_at=created))
        db.add(models.Message(idempotency_key="in1", customer_id=a, channel="wecom", content="hello", status="sent",
                              direction="in", created_at=at(2)))
        for i, (flow, cid, status, started, ended) in enumerate([
                ("welcome", a, "converted", at(2), at(6)), ("welcome", b, "converted", at(3), at(8)),
                ("winback", c, "converted", at(1), at(9)), ("welcome", c, "waiting", at(7), None),
                ("winback", b, "running", at(7), None), ("winback", a, "converted", at(1) - timedelta(days=9),
                                                          at(1) - timedelta(days=5))]):
            db.add(models.Journey(workflow_id=f"j{i}", flow_id=flow, version=1, customer_id=cid, status=status,
                                  started_at=started, ended_at=ended, updated_at=started))
        for i, (cid, paid, fen, status) in enumerate([
                (a, at(6) - timedelta(minutes=1), 12900, "paid"),  # a's converting order
                (a, at(6) + timedelta(minutes=5), 1000, "paid"),  # within the 10-minute slack: counted
                (a, at(6) + timedelta(hours=2), 5000, "paid"),  # after converting: not this conversion's
                (b, at(4), 30000, "completed"), (b, at(5), 2000, "cancelled"),  # a cancelled order is no GMV
                (c, at(9), 45600, "refunded")]):  # refunded later: still gross merchandise value
            db.add(models.Order(channel="youzan", shop="S1", order_id=f"o{i}", source="youzan", customer_id=cid,
                                status=status, amount_fen=fen, paid_at=paid))
    with session_factory(db_url)() as db:
        contacts = marketing.new_contacts(db, R)
        assert contacts["total"] == 4 and contacts["by_channel"] == {"wecom": 2, "shop-poster": 1, "youzan": 1}
        assert contacts["channel_names"] == {"shop-poster": "门店海报"}
        assert contacts["series"]["wecom"][1] == 1 and contacts["series"]["wecom"][2] == 1  # 2nd and 3rd, local
        assert marketing.active_journeys(db) == {"total": 2, "by_flow": {"welcome": 1, "winback": 1}}
        sent = marketing.messages(db, R)
        assert (sent["sent"], sent["skipped"], sent["deferred"], sent["failed"]) == (2, 3, 1, 1)
        assert sent["skipped_by_reason"] == {"capped": 2, "no consent": 1}
        assert sent["series"]["sent"][1] == 1 and sent["series"]["sent"][2] == 1  # 23:30 UTC is the 3rd locally
        conv = marketing.conversions(db, R)
        assert conv["total"] == 3
        assert conv["by_flow"] == {"welcome": {"conversions": 2, "gmv_fen": 12900 + 1000 + 30000},
                                   "winback": {"conversions": 1, "gmv_fen": 45600}}
        assert conv["gmv_fen"] == 89500 and conv["series"]["welcome"][5] == 1  # converted on the 6th
        board = marketing.board(db, R)
        assert board["days"][0] == "2026-11-01" and len(board["days"]) == 30


def test_service_figures(db_url: str) -> None:
    with transaction(db_url) as db:
        from engine import auth

        ada = auth.create_user(db, "ada", "a-long-password", "agent", "Ada")
        bo = auth.create_user(db, "bo", "a-long-password", "agent")
        db.add_all([models.Agent(user_id=ada.id, groups=["default"], availability="online", capacity=3),
                    models.Agent(user_id=bo.id, groups=["default"], availability="away")])
        db.add(models.AgentGroup(key="vip", name="VIP 组", calendar={}))
        policy = {"policy": {"targets": {"P3": {"resolution": "PT4H"}}}, "fired": []}
        specs = [("open", "default", ada.id, at(2), policy, None),
                 ("pending", "default", ada.id, at(3), {**policy, "fired": ["resolution:warning"]}, None),
                 ("open", "vip", None, at(3), {**policy, "fired": ["resolution:breach"]}, None),
                 ("resolved", "default", bo.id, at(4), {**policy, "fired": ["first_response:breach"]}, at(5)),
                 ("closed", "vip", bo.id, at(4), {}, at(4)),
                 ("open", "default", bo.id, at(1) - timedelta(days=3), policy, None)]
        for i, (status, group, assignee, created, sla, resolved) in enumerate(specs):
            db.add(models.Ticket(type_key="refund", subject=f"t{i}", status=status, group_key=group,
                                 assignee_id=assignee, sla=sla, created_at=created, resolved_at=resolved))
    with session_factory(db_url)() as db:
        volume = service.volume(db, R)
        assert volume["created"] == 5 and volume["resolved"] == 2 and volume["series"][2:4] == [2, 2]
        assert service.sla_attainment(db, R) == {"with_sla": 4, "met": 2, "breached": 2, "attainment": 50.0}
        backlog = service.backlog(db)
        assert backlog["total"] == 4
        assert backlog["by_group"] == {"default": {"name": "默认队列 Default queue", "open": 2, "pending": 1},
                                       "vip": {"name": "VIP 组", "open": 1, "pending": 0}}
        loads = {a["name"]: (a["open"], a["capacity"], a["availability"]) for a in service.agent_load(db)}
        assert loads == {"Ada": (2, 3, "online"), "bo": (1, 10, "away")}


def test_finance_figures(db_url: str) -> None:
    with transaction(db_url) as db:
        runs = [models.SettlementRun(plan_key="p", plan_version="v", plan={}, cycle="monthly", period_from=start,
                                     period_to=end, starts_at=at(1), ends_at=at(1), status="decided")
                for start, end in (("2026-10-01", "2026-10-31"), ("2026-11-01", "2026-11-30"),
                                   ("2026-09-01", "2026-09-30"))]
        db.add_all(runs)
        db.flush()
        # S2's November statement was rejected and corrected (seq 1), the correction not decided yet
        rows = ((runs[0], "S1", 0, "paid", 10000), (runs[0], "S2", 0, "approved", 20000),
                (runs[1], "S1", 0, "pending", 30000), (runs[1], "S2", 0, "rejected", 99999),
                (runs[1], "S2", 1, "draft", 5000), (runs[2], "S1", 0, "paid", 77777))
        for run, party, seq, status, fen in rows:
            db.add(models.Statement(run_id=run.id, party=party, seq=seq, total_fen=fen, status=status))
    with session_factory(db_url)() as db:
        october_november = finance.amounts(db, Range(date(2026, 10, 15), date(2026, 11, 10)))
    assert october_november["totals"] == {"settled_fen": 30000, "pending_fen": 35000, "paid_fen": 10000,
                                          "statements": 4}
    assert october_november["by_period"] == {
        "2026-10-01..2026-10-31": {"settled_fen": 30000, "pending_fen": 0, "paid_fen": 10000, "statements": 2},
        "2026-11-01..2026-11-30": {"settled_fen": 0, "pending_fen": 35000, "paid_fen": 0, "statements": 2}}
    assert october_november["by_party"]["S1"] == {"settled_fen": 10000, "pending_fen": 30000, "paid_fen": 10000,
                                                  "statements": 2}


def test_ranges_are_whole_local_days_and_bounded() -> None:
    r = Range(date(2026, 11, 1), date(2026, 11, 1))
    assert r.since == datetime(2026, 10, 31, 16, tzinfo=UTC) and r.until == datetime(2026, 11, 1, 16, tzinfo=UTC)
    assert r.day_of(datetime(2026, 11, 1, 15, 59, tzinfo=UTC)) == date(2026, 11, 1)
    assert Range.last(7, D).start == date(2026, 11, 4)
    with pytest.raises(RangeError, match="before it starts"):
        Range(D, D - timedelta(days=1))
    with pytest.raises(RangeError, match="longer than 366 days"):
        Range(D - timedelta(days=400), D)
