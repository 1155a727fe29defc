"""Follow-up events are routed as soon as their transaction commits (engine/follow_ups.py), with no re-router
running: a journey's points that lift a member to gold start the 会员升级关怀 journey on the worker, an order
sent to ``POST /api/events`` does the same in the web process — each once. Immediate routing and the re-router
racing over the same events route each once; an event whose process died after the commit is routed by the
re-router once its claim lapses. A redemption through the API starts the 积分兑换感谢 journey the same way.

All on real Temporal (time-skipping test server) and a real SQLite file. "At once" is shown by switching the
re-router off (no timing asserts): on main these journeys never start."""

from __future__ import annotations

import asyncio
import collections
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from activities.loyalty import ledger
from activities.loyalty.program import ProgramConfig, TierSpec, save
from engine import auth
from engine import flows as flowsvc
from engine.customers import resolve
from engine.db import models
from engine.db.session import session_factory, transaction
from engine.router import Router
from engine.settings import get_settings
from tests.engine.follow_ups_kit import routings, worker_settings
from tests.waiting import until

__all__ = ["routings"]
FLOWS = Path(__file__).resolve().parents[3] / "flows"
UPGRADE = "loyalty-tier-upgrade"
REDEEMED = "loyalty-points-redeemed"
TIER_JOURNEY = "the tier journey (follow-up events must not wait for the re-router, which is off)"
POLL: dict[str, float] = {"timeout": 30.0, "interval": 0.02}  # checks are cheap; 30 s only bounds a broken build


def program(db_url: str, basis: str = "points_12m", gold: int = 100) -> None:
    with transaction(db_url) as db:
        save(db, ProgramConfig(enabled=True, tier_basis=basis,  # type: ignore[arg-type]
                               tiers=[TierSpec(key="member", name="会员", threshold=0),
                                      TierSpec(key="gold", name="金卡", threshold=gold)]), "admin")
        flowsvc.save_draft(db, json.loads((FLOWS / f"{UPGRADE}.json").read_text("utf-8")), "test")
        flowsvc.publish(db, UPGRADE, "test")


def customer(db_url: str, name: str) -> str:
    with transaction(db_url) as db:
        return resolve(db, {"external_id": name}, name)


def earn(db_url: str, cid: str, points: int = 150) -> None:
    """What an activity or an API call does: points in one transaction, follow-ups recorded in it."""
    with transaction(db_url) as db:
        ledger.earn(db, cid, points, f"test:{cid}:{uuid.uuid4().hex[:6]}", datetime.now(UTC), reason="test")


def journeys_of(db_url: str, flow_id: str) -> list[models.Journey]:
    with session_factory(db_url)() as db:
        return list(db.scalars(select(models.Journey).where(models.Journey.flow_id == flow_id)))


def follow_up_events(db_url: str, kind: str) -> list[models.EventRecord]:
    with session_factory(db_url)() as db:
        return list(db.scalars(select(models.EventRecord).where(models.EventRecord.type == kind)
                               .order_by(models.EventRecord.id)))


async def test_points_from_a_journey_start_the_tier_journey_on_the_worker_at_once(
        time_env: Any, db_url: str, monkeypatch: pytest.MonkeyPatch, routings: collections.Counter[str]) -> None:
    from tideflow.stack import worker_running

    queue = worker_settings(monkeypatch, db_url)
    program(db_url)
    with transaction(db_url) as db:  # a journey that gives 150 points: the member crosses gold (100)
        flowsvc.save_draft(db, {"schema": "tideflow/flow@1", "id": "give-points", "name": "送积分", "kind": "journey",
                                "nodes": [{"id": "start", "type": "trigger.api", "config": {}},
                                          {"id": "give", "type": "action.loyalty_points",
                                           "config": {"points": 150, "reason": "sign-up"}}],
                                "edges": [{"from": "start", "to": "give"}]}, "test")
        flowsvc.publish(db, "give-points", "test")
    cid = customer(db_url, "林女士")
    async with worker_running(time_env.client):  # the worker process's composition: tideflow worker
        await Router(time_env.client, db_url, queue).enroll("give-points", cid)
        started = await until(lambda: journeys_of(db_url, UPGRADE), TIER_JOURNEY, **POLL)
        [changed] = follow_up_events(db_url, "loyalty.tier_changed")
        routed = await until(lambda: all(e.status == "routed" for e in follow_up_events(db_url, "loyalty.tier_changed")
                                         + follow_up_events(db_url, "loyalty.points_earned")),
                             "the follow-up events to be routed", **POLL)
    assert started, "the tier journey did not start: follow-up events wait for a re-router that is off"
    assert routed
    assert [j.customer_id for j in started] == [cid]
    ref = f"{changed.source}:{changed.external_id}"
    assert changed.payload["direction"] == "up" and changed.claimed_until is None
    assert routings[ref] == 1 and routings[f"started:{ref}"] == 1
    get_settings.cache_clear()


async def test_an_order_sent_to_the_events_api_starts_the_tier_journey_at_once(
        time_env: Any, db_url: str, monkeypatch: pytest.MonkeyPatch, routings: collections.Counter[str]) -> None:
    from designer.app import create_app

    worker_settings(monkeypatch, db_url)
    program(db_url, basis="spend_12m", gold=50_000)
    with transaction(db_url) as db:
        token = auth.create_token(db, auth.create_user(db, "shop-bot", "a-long-password", "admin"), "test")
    app = create_app(db_url, client=time_env.client)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test",
            headers={"Authorization": f"Bearer {token}"}) as http:
        answer = await http.post("/api/events", json={
            "id": "o-1", "type": "order.paid", "customer": {"external_id": "vip-1"},
            "payload": {"order_id": "o-1", "amount_fen": 60_000}})
        assert answer.status_code == 202, answer.text
        cid = answer.json()["customer_id"]
        started = await until(lambda: journeys_of(db_url, UPGRADE), TIER_JOURNEY, **POLL)
    assert started, "the tier journey did not start: follow-up events wait for a re-router that is off"
    assert [j.customer_id for j in started] == [cid]
    [changed] = follow_up_events(db_url, "loyalty.tier_changed")
    ref = f"{changed.source}:{changed.external_id}"
    assert changed.status == "routed" and routings[ref] == 1 and routings[f"started:{ref}"] == 1
    assert routings["api:o-1"] == 1
    get_settings.cache_clear()


async def test_immediate_routing_and_the_re_router_race_and_route_each_event_once(
        time_env: Any, any_db_url: str, routings: collections.Counter[str]) -> None:
    from engine.pipeline import RoutingPipeline, follow_ups_routed

    db_url = any_db_url  # SQLite and PostgreSQL (the re-router claims with SKIP LOCKED there)

    queue = f"race-{uuid.uuid4().hex[:8]}"
    program(db_url)
    members = [customer(db_url, f"m{i}") for i in range(8)]
    rerouter = RoutingPipeline(db_url, Router(time_env.client, db_url, queue))
    rerouter.start()
    stop = asyncio.Event()

    async def reroute_hard() -> int:  # another process's re-router, looking all the time, at any age
        passes = 0
        while not stop.is_set():
            await rerouter.reroute_once(older_than_seconds=0)
            passes += 1
            await asyncio.sleep(0)
        return passes

    try:
        async with follow_ups_routed(Router(time_env.client, db_url, queue)):
            racing = asyncio.create_task(reroute_hard())
            await asyncio.gather(*[asyncio.to_thread(earn, db_url, cid) for cid in members])
            started = await until(lambda: len(journeys_of(db_url, UPGRADE)) == len(members) and all(
                e.status == "routed" for e in follow_up_events(db_url, "loyalty.tier_changed")),
                "a tier journey per member and every tier change routed", **POLL)
            stop.set()
            passes = await racing
            await rerouter.reroute_once(older_than_seconds=0)  # and once more when everything is done
    finally:
        await rerouter.stop()
    assert started and passes > 0
    assert sorted(j.customer_id for j in journeys_of(db_url, UPGRADE)) == sorted(members)
    events = follow_up_events(db_url, "loyalty.tier_changed") + follow_up_events(db_url, "loyalty.points_earned")
    assert len(events) == 2 * len(members)
    for e in events:
        ref = f"{e.source}:{e.external_id}"
        assert routings[ref] == 1, f"{ref} routed {routings[ref]} times"
    assert sum(routings[f"started:loyalty:{e.external_id}"] for e in events) == len(members)


async def test_a_process_dying_after_the_commit_leaves_the_event_to_the_re_router_after_its_claim(
        time_env: Any, any_db_url: str, routings: collections.Counter[str]) -> None:
    from engine import follow_ups
    from engine.pipeline import RoutingPipeline

    db_url = any_db_url

    queue = f"died-{uuid.uuid4().hex[:8]}"
    program(db_url)
    cid = customer(db_url, "gone")
    # a process that claims its follow-ups and dies before routing them
    uninstall = follow_ups.install(db_url, follow_ups.FollowUpRouter(ready=lambda: True, route=lambda ids: None))
    try:
        await asyncio.to_thread(earn, db_url, cid)
    finally:
        uninstall()
    [changed] = follow_up_events(db_url, "loyalty.tier_changed")
    assert changed.status == "received" and changed.claimed_until is not None
    rerouter = RoutingPipeline(db_url, Router(time_env.client, db_url, queue))
    rerouter.start()
    try:
        assert await rerouter.reroute_once(older_than_seconds=0) == []  # claimed: not the re-router's yet
        with transaction(db_url) as db:  # the claim lapses (60 s after the commit)
            db.execute(update(models.EventRecord).where(models.EventRecord.source == "loyalty")
                       .values(claimed_until=models.utcnow() - timedelta(seconds=1)))
        again = await rerouter.reroute_once(older_than_seconds=0)
        assert sorted(r.routing for r in again) == ["done", "done"]
        assert await rerouter.reroute_once(older_than_seconds=0) == []
    finally:
        await rerouter.stop()
    assert [j.customer_id for j in journeys_of(db_url, UPGRADE)] == [cid]
    ref = f"loyalty:{changed.external_id}"
    assert routings[ref] == 1 and routings[f"started:{ref}"] == 1


async def test_an_orders_follow_ups_reach_the_journey_the_order_started(
        time_env: Any, db_url: str, monkeypatch: pytest.MonkeyPatch, routings: collections.Counter[str]) -> None:
    """order.paid starts "thanks → wait for the points → tell the balance"; the loyalty.points_earned its hook
    stored must be routed after the order (same customer lane), so the journey is there to hear it."""
    from designer.app import create_app
    from engine.worker import build_worker

    queue = worker_settings(monkeypatch, db_url)
    program(db_url, basis="spend_12m", gold=10_000_000)
    with transaction(db_url) as db:
        token = auth.create_token(db, auth.create_user(db, "shop-bot", "a-long-password", "admin"), "test")
        flowsvc.save_draft(db, {
            "schema": "tideflow/flow@1", "id": "points-after-order", "name": "下单得积分", "kind": "journey",
            "nodes": [{"id": "start", "type": "trigger.event", "config": {"event": "order.paid"}},
                      {"id": "points", "type": "wait.event",
                       "config": {"event": "loyalty.points_earned", "timeout": "P1D"}}],
            "edges": [{"from": "start", "to": "points"}]}, "test")
        flowsvc.publish(db, "points-after-order", "test")
    app = create_app(db_url, client=time_env.client)
    async with build_worker(time_env.client, queue, db_url), app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test",
            headers={"Authorization": f"Bearer {token}"}) as http:
        for n in range(5):
            answer = await http.post("/api/events", json={
                "id": f"o-{n}", "type": "order.paid", "customer": {"external_id": f"buyer-{n}"},
                "payload": {"order_id": f"o-{n}", "amount_fen": 9_900}})
            assert answer.status_code == 202 and answer.json()["started"], answer.text
        routed = await until(lambda: len(follow_up_events(db_url, "loyalty.points_earned")) == 5 and all(
            e.status == "routed" for e in follow_up_events(db_url, "loyalty.points_earned")),
            "five points_earned follow-ups, routed", **POLL)
    assert routed
    for e in follow_up_events(db_url, "loyalty.points_earned"):
        ref = f"loyalty:{e.external_id}"
        assert routings[ref] == 1 and routings[f"signalled:{ref}"] == 1, f"{ref} did not reach its order's journey"
    get_settings.cache_clear()


async def test_a_redemption_through_the_api_starts_the_redeemed_journey_once(
        time_env: Any, db_url: str, monkeypatch: pytest.MonkeyPatch, routings: collections.Counter[str]) -> None:
    """POST /api/loyalty/members/{id}/redeem records loyalty.points_redeemed in the burn's transaction; the
    shipped 积分兑换感谢 journey starts from it at once — once, though the request came twice at the same time
    and once more later; a refused redemption tells nobody; nobody outside can send the type."""
    from designer.app import create_app

    worker_settings(monkeypatch, db_url)
    program(db_url, basis="spend_12m", gold=10_000_000)
    with transaction(db_url) as db:
        token = auth.create_token(db, auth.create_user(db, "shop-bot", "a-long-password", "admin"), "test")
        flowsvc.save_draft(db, json.loads((FLOWS / f"{REDEEMED}.json").read_text("utf-8")), "test")
        flowsvc.publish(db, REDEEMED, "test")
    cid = customer(db_url, "周先生")
    earn(db_url, cid, 500)
    app = create_app(db_url, client=time_env.client)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test",
            headers={"Authorization": f"Bearer {token}"}) as http:
        forged = await http.post("/api/events", json={
            "id": "f-1", "type": "loyalty.points_redeemed", "customer": {"customer_id": cid},
            "payload": {"points": 1, "balance": 0}})
        assert forged.status_code == 422 and "loyalty.points_redeemed" in forged.text, forged.text
        body = {"points": 200, "request_id": "mall-7", "reason": "积分兑换：保温杯"}
        url = f"/api/loyalty/members/{cid}/redeem"
        both = await asyncio.gather(http.post(url, json=body), http.post(url, json=body))  # a double tap
        retried = await http.post(url, json=body)
        short = await http.post(url, json={"points": 10_000, "request_id": "mall-8"})
        started = await until(lambda: journeys_of(db_url, REDEEMED) and all(
            e.status == "routed" for e in follow_up_events(db_url, "loyalty.points_redeemed")),
            "the redeemed journey (follow-up events must not wait for the re-router, which is off)", **POLL)
    assert [r.status_code for r in both] == [200, 200] and sorted(r.json()["repeated"] for r in both) == [False, True]
    assert retried.json()["repeated"] and retried.json()["balance"] == 300
    assert short.status_code == 409
    assert started, "the redeemed journey did not start: follow-up events wait for a re-router that is off"
    assert [j.customer_id for j in journeys_of(db_url, REDEEMED)] == [cid]
    [told] = follow_up_events(db_url, "loyalty.points_redeemed")
    assert told.payload == {"points": 200, "balance": 300, "reason": "积分兑换：保温杯", "request_id": "mall-7",
                            "source": "redeem:shop-bot:mall-7"}
    ref = f"{told.source}:{told.external_id}"
    assert routings[ref] == 1 and routings[f"started:{ref}"] == 1
    get_settings.cache_clear()


async def test_redeeming_ends_the_points_expiring_reminder(
        time_env: Any, db_url: str, monkeypatch: pytest.MonkeyPatch, routings: collections.Counter[str]) -> None:
    """The shipped 积分即将过期提醒 flow says a redemption ends it: ``loyalty.points_redeemed`` is in its
    ``exit_on``, so the journey that the upkeep's ``loyalty.points_expiring`` started exits when the member
    redeems, before its last reminder (the re-router is off: both events are routed on commit)."""
    from tideflow.stack import worker_running

    worker_settings(monkeypatch, db_url)
    program(db_url, gold=10_000)
    expiring = "loyalty-points-expiring"
    with transaction(db_url) as db:
        flowsvc.save_draft(db, json.loads((FLOWS / f"{expiring}.json").read_text("utf-8")), "test")
        flowsvc.publish(db, expiring, "test")
    cid = customer(db_url, "吴女士")
    earn(db_url, cid, 300)
    now = datetime.now(UTC)
    async with worker_running(time_env.client):
        with transaction(db_url) as db:  # what loyalty-upkeep does: the lot lapses within the notice window
            assert ledger.notify_expiring(db, now, days=800) == 1
        started = await until(lambda: [j for j in journeys_of(db_url, expiring) if j.status == "waiting"],
                              "the expiring reminder to wait", **POLL)
        with transaction(db_url) as db:
            ledger.burn(db, cid, 100, f"test:redeem:{cid}", now, reason="积分兑换")
        ended = await until(lambda: [j for j in journeys_of(db_url, expiring) if j.status not in ("running",
                                                                                                 "waiting")],
                            "the expiring reminder to end", **POLL)
    assert started and [j.customer_id for j in started] == [cid]
    assert [j.status for j in ended] == ["exited"], [(j.status, j.node) for j in ended]
    with session_factory(db_url)() as db:
        assert db.scalar(select(models.Message).where(models.Message.node_id == "again")) is None
    [redeemed] = follow_up_events(db_url, "loyalty.points_redeemed")
    assert routings[f"{redeemed.source}:{redeemed.external_id}"] == 1
    get_settings.cache_clear()
