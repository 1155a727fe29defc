"""The bulk path of a broadcast page (engine.broadcast.run_page, SendMessage.run_many): the same outcomes
as walking the flow one customer at a time (run_instant), nothing sent twice on a retried page, and
the cross-flow frequency cap atomic against a journey sending to the same customer at the same time."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from temporalio.testing import ActivityEnvironment

from activities.messaging import channels
from activities.messaging.send_message import SendMessage
from engine.actions import Services, perform
from engine.broadcast import BroadcastActivities, run_instant, run_page
from engine.db import models
from engine.db.session import session_factory, transaction
from engine.runtime import ActionRequest
from tests.dbtemplate import migrated_sqlite
from tests.engine.flowkit import flow, publish

NOW = datetime.now(UTC)
#: the flow's quiet window is the two hours around now in UTC: customers living in UTC are inside it,
#: customers in the flow's timezone (UTC+12) are not
QUIET = {"start": (NOW - timedelta(hours=1)).strftime("%H:%M"), "end": (NOW + timedelta(hours=1)).strftime("%H:%M")}

MIXED = flow(
    "bulk-mixed",
    [("start", "trigger.segment", {"audience": "customer.segment == 'a'", "batch_size": 50}),
     ("vip", "logic.condition", {"expr": "customer.i % 3 != 0"}),
     ("promo", "action.send_message",
      {"channel": "sms", "template": "{{ customer.name }}，{{ customer.tags|length }} 个标签"}),
     ("mark", "action.tag", {"add": ["收到促销"]}),
     ("tagged", "logic.condition", {"expr": "'收到促销' in customer.tags"}),
     ("thanks", "action.send_message", {"template": "谢谢 {{ customer.name }}", "category": "transactional"}),
     ("other", "action.tag", {"add": ["普通"]})],
    [("start", "out", "vip"), ("vip", "yes", "promo"), ("vip", "no", "other"), ("promo", "out", "mark"),
     ("mark", "out", "tagged"), ("tagged", "yes", "thanks")],
    timezone="Etc/GMT-12", quiet_hours=QUIET, frequency_capped=True,
)


def mixed_customers(db_url: str, n: int = 24) -> list[str]:
    """Customers c00…: every 4th opted out of sms, every 5th already at the cap (3 promotional messages
    this week), every 7th living in UTC (inside quiet hours), one tagged already, two outside the segment."""
    ids = [f"c{i:02d}" for i in range(n)]
    with transaction(db_url) as db:
        db.execute(insert(models.Customer), [
            {"id": cid, "name": f"客户{i}", "timezone": "UTC" if i % 7 == 6 else None,
             "attributes": {"i": i, "segment": "b" if i in (10, 11) else "a"},
             "consent": {"sms": "opted_out"} if i % 4 == 3 else {}, "merged_into": None,
             "created_at": NOW, "updated_at": NOW} for i, cid in enumerate(ids)])
        db.execute(insert(models.CustomerTag), [{"customer_id": "c01", "tag": "老客", "created_at": NOW}])
        db.execute(insert(models.Message), [
            {"idempotency_key": f"earlier/{cid}/{k}", "customer_id": cid, "channel": "sms", "content": "x",
             "status": "sent", "category": "promotional", "flow_id": "earlier", "direction": "out",
             "created_at": NOW - timedelta(days=1)} for cid in ids[4::5] for k in range(3)])
    return ids


def snapshot(db_url: str) -> dict[str, Any]:
    with session_factory(db_url)() as db:
        messages = sorted((m.idempotency_key, m.customer_id, m.channel, m.status, m.category, m.content)
                          for m in db.scalars(select(models.Message).where(models.Message.flow_id == "bulk-mixed")))
        ledger = {e.key: e.result for e in db.scalars(select(models.LedgerEntry)
                                                      .where(models.LedgerEntry.key.like("broadcast/%")))}
        tags = sorted((cid, tag) for cid, tag in db.execute(select(models.CustomerTag.customer_id,
                                                                    models.CustomerTag.tag)))
    return {"messages": messages, "ledger": ledger, "tags": tags}


def totals(stats: list[list[Any]]) -> Counter[tuple[str, str, str]]:
    out: Counter[tuple[str, str, str]] = Counter()
    for node, metric, port, n in stats:
        out[(node, metric, port)] += n
    return out


def second_db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'per-customer.db'}"
    migrated_sqlite(url)
    return url


def test_a_page_in_bulk_ends_like_one_customer_at_a_time(db_url: str, tmp_path: Path, sms: list[str]) -> None:
    other = second_db(tmp_path)
    compiled = publish(db_url, MIXED)
    publish(other, MIXED)
    ids = mixed_customers(db_url)
    mixed_customers(other)
    page = [cid for cid in ids if cid not in ("c10", "c11")]

    one_stats: list[list[Any]] = []
    one = {cid: run_instant(compiled, cid, "r1", one_stats, Services(database_url=other)) for cid in page}
    one_sms = sorted(sms)
    sms.clear()
    bulk_stats: list[list[Any]] = []
    bulk = run_page(compiled, page, "r1", bulk_stats, Services(database_url=db_url))

    assert bulk == one
    assert totals(bulk_stats) == totals(one_stats)
    assert snapshot(db_url) == snapshot(other)
    assert sorted(sms) == one_sms
    # and the page really was mixed: every rule of the gate decided some customer
    statuses = Counter(m[3] for m in snapshot(db_url)["messages"] if m[0].endswith("/promo/1"))
    assert statuses["sent"] and statuses["skipped: no consent"] and statuses["skipped: capped"]
    assert Counter(bulk.values())["deferred"] == 2  # c13 and c20 (c06, in UTC too, is not a vip)
    assert ("c01", "收到促销") in snapshot(db_url)["tags"] and ("c03", "普通") in snapshot(db_url)["tags"]


TIERS = {
    "name": "分层", "hit_policy": "UNIQUE",
    "inputs": [{"id": "i", "expression": "customer.i", "type_ref": "number"}],
    "outputs": [{"id": "tier", "name": "tier", "type_ref": "string"}],
    "rules": [{"id": "low", "input_entries": ["< 10"], "output_entries": ['"a"']},
              {"id": "high", "input_entries": [">= 10"], "output_entries": ['"b"']}],
}
TIERED = flow(
    "bulk-mixed",  # the id snapshot() reads
    [("start", "trigger.segment", {"audience": "true"}),
     ("tiers", "logic.decision_table", {"table": TIERS}),
     ("is_a", "logic.condition", {"expr": "vars.tier == 'a'"}),
     ("tag_a", "action.tag", {"add": ["A层"]}),
     ("after", "logic.condition", {"expr": "vars.tier == 'a'"}),
     ("hello", "action.send_message", {"template": "你好 {{ customer.name }}，{{ vars.tier }}层"})],
    [("start", "out", "tiers"), ("tiers", "out", "is_a"), ("is_a", "yes", "tag_a"), ("tag_a", "out", "after"),
     ("after", "yes", "hello")],
)


def test_variables_from_a_decision_table_reach_later_nodes_and_actions_as_one_at_a_time(
        db_url: str, tmp_path: Path) -> None:
    """A decision table's variables live on through actions and reach them (a message's {{ vars.… }}),
    in bulk as one customer at a time, as in a journey (issue 17: they used to be dropped)."""
    other = second_db(tmp_path)
    compiled = publish(db_url, TIERED)
    publish(other, TIERED)
    page = mixed_customers(db_url, 14)
    mixed_customers(other, 14)
    one_stats: list[list[Any]] = []
    one = {cid: run_instant(compiled, cid, "r1", one_stats, Services(database_url=other)) for cid in page}
    bulk_stats: list[list[Any]] = []
    bulk = run_page(compiled, page, "r1", bulk_stats, Services(database_url=db_url))
    assert bulk == one and totals(bulk_stats) == totals(one_stats)
    assert snapshot(db_url) == snapshot(other)
    assert totals(bulk_stats)[("is_a", "left", "yes")] == 10
    # after the tag the variables are still there: every tagged customer passes 'after' and its message
    # is written with the table's output
    messages = snapshot(db_url)["messages"]
    assert len(messages) == 10 and all(content.endswith("，a层") for *_, content in messages)


class Refused(Exception):
    retryable = False


def test_platform_errors_end_the_same_in_bulk(db_url: str, tmp_path: Path) -> None:
    """A platform that refuses some messages for good and is busy for others: refused ones are recorded
    as such and leave by 'skipped', busy ones fail their customer and stay "sending" for a later attempt."""
    def flaky(customer: dict[str, Any], content: str, key: str, config: dict[str, Any]) -> str:
        i = int(customer["i"])
        if i % 6 == 1:
            raise Refused("blocked by the platform: 13800138000")
        if i % 6 == 2:
            raise TimeoutError("platform busy")
        return f"sms:{key}"

    channels.register("sms", flaky)
    try:
        other = second_db(tmp_path)
        compiled = publish(db_url, MIXED)
        publish(other, MIXED)
        page = [cid for cid in mixed_customers(db_url) if cid not in ("c10", "c11")]
        mixed_customers(other)
        one_stats: list[list[Any]] = []
        one = {cid: run_instant(compiled, cid, "r1", one_stats, Services(database_url=other)) for cid in page}
        bulk_stats: list[list[Any]] = []
        bulk = run_page(compiled, page, "r1", bulk_stats, Services(database_url=db_url))
    finally:
        channels._delivery.pop("sms", None)
    assert bulk == one and totals(bulk_stats) == totals(one_stats)
    assert snapshot(db_url) == snapshot(other)
    statuses = {m[1]: m[3] for m in snapshot(db_url)["messages"] if m[0].endswith("/promo/1")}
    assert statuses["c01"] == "failed: rejected" and statuses["c02"] == "sending" and bulk["c02"] == "failed"
    assert "13800138000" not in str(snapshot(db_url)["ledger"])


def test_a_retried_page_sends_nothing_twice_and_counts_once(db_url: str, sms: list[str]) -> None:
    compiled = publish(db_url, MIXED)
    ids = [cid for cid in mixed_customers(db_url) if cid not in ("c10", "c11")]
    activities = BroadcastActivities(Services(database_url=db_url))
    env = ActivityEnvironment()
    first = env.run(activities.deliver, compiled, "r1", ids)
    before = snapshot(db_url)
    delivered = sorted(sms)
    assert delivered and len(set(delivered)) == len(delivered)

    # the same page again (Temporal retried it after its completion was lost): the recorded result
    assert env.run(activities.deliver, compiled, "r1", ids) == first
    # the page's actions again, as if the first attempt crashed before recording the page
    run_page(compiled, ids, "r1", [], Services(database_url=db_url))
    assert snapshot(db_url) == before and sorted(sms) == delivered
    # a crash between reserving and recording: the rows are still "sending", the ledger has no entry;
    # the retry delivers those with the same keys and adds no message
    crashed = delivered[:3]
    with transaction(db_url) as db:
        db.execute(update(models.Message).where(models.Message.idempotency_key.in_(crashed)).values(status="sending"))
        db.execute(delete(models.LedgerEntry).where(models.LedgerEntry.key.in_(crashed)))
    run_page(compiled, ids, "r1", [], Services(database_url=db_url))
    assert snapshot(db_url) == before
    assert sorted(sms) == sorted(delivered + crashed)
    with session_factory(db_url)() as db:
        entered = db.scalar(select(models.NodeStat.count).where(models.NodeStat.flow_id == "bulk-mixed",
                                                                models.NodeStat.node_id == "start",
                                                                models.NodeStat.metric == "entered"))
        journeys = db.scalar(select(func.count()).select_from(models.Journey))
    assert entered == len(ids) and journeys == len(ids)


CAPPED = flow(
    "bulk-cap",
    [("start", "trigger.segment", {"audience": "true"}),
     ("promo", "action.send_message", {"template": "限时福利 {{ customer.name }}"})],
    [("start", "out", "promo")],
)


def _race(compiled: dict[str, Any], ids: list[str], run_key: str, services: Services) -> list[BaseException]:
    """A broadcast page for ``ids`` and four journeys of another flow sending to ``ids[0]``, all at once."""
    barrier = threading.Barrier(5)
    errors: list[BaseException] = []

    def journey(n: int) -> None:
        key = f"journey/other/{ids[0]}/{run_key}-{n}"
        request = ActionRequest(key=f"{key}/send/1", workflow_id=key, flow_id="other", version=1, node_id="send",
                                node_type="action.send_message", config={"template": "hi"}, customer_id=ids[0],
                                settings={"frequency_capped": True})
        barrier.wait()
        try:
            perform(SendMessage, request, services)
        except BaseException as exc:
            errors.append(exc)

    def page() -> None:
        barrier.wait()
        try:
            run_page(compiled, ids, run_key, [], services)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=journey, args=(n,)) for n in range(4)] + [threading.Thread(target=page)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_the_cap_holds_against_a_journey_sending_at_the_same_time(any_db_url: str) -> None:
    """c00 has two promotional messages this week (cap 3): a broadcast page and four journeys race for
    the last one, again and again; exactly one of them gets it each time."""
    url = any_db_url
    compiled = publish(url, CAPPED)
    services = Services(database_url=url)
    for round_ in range(3):
        ids = [f"r{round_}c{i:03d}" for i in range(60)]
        target = ids[0]
        with transaction(url) as db:
            db.execute(insert(models.Customer), [
                {"id": cid, "name": cid, "timezone": None, "attributes": {}, "consent": {}, "merged_into": None,
                 "created_at": NOW, "updated_at": NOW} for cid in ids])
            db.execute(insert(models.Message), [
                {"idempotency_key": f"old/{target}/{k}", "customer_id": target, "channel": "dry-run",
                 "content": "x", "status": "sent", "category": "promotional", "flow_id": "old", "direction": "out",
                 "created_at": NOW - timedelta(hours=5)} for k in range(2)])
        errors = _race(compiled, ids, f"race{round_}", services)
        assert not errors
        with session_factory(url)() as db:
            statuses = Counter(db.scalars(select(models.Message.status).where(
                models.Message.customer_id == target, models.Message.flow_id != "old")))
            others = Counter(db.scalars(select(models.Message.status).where(
                models.Message.customer_id.in_(ids[1:]))))
        assert statuses == {"sent": 1, "skipped: capped": 4}, statuses
        assert others == {"sent": 59}
