"""A dead holder's claims are taken over within seconds, a live one's never (engine/claims.py).

A process that stores events claims them (``claimed_until`` = now + 60 s) and names itself (``claimed_by``); it
keeps its heartbeat fresh while it holds claims. The re-router takes the claims of a holder whose heartbeat is
stale at its next pass, instead of waiting for the 60 s to lapse; a holder whose routing is held up (Temporal
unreachable) keeps beating and keeps its claims; a claim by no holder (a process of an older version) keeps the
60 s rule; a holder that stops releases its claims at once.

All on a real SQLite file, real routing pipelines and Temporal's time-skipping test server; the live holder's
Temporal is a port that accepts connections and never answers. The heartbeat's period and staleness are shortened
(0.1 s and 1.5 s instead of 1 s and 10 s) so a test waits seconds, not ten or more."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, delete, inspect, select, text, update

from engine import claims, follow_ups
from engine import events as ingest
from engine.db import models
from engine.db.quarantine_models import ClaimHolder
from engine.db.session import session_factory, transaction
from engine.pipeline import RoutingPipeline, store_and_route
from engine.router import Router
from tests.engine.flowkit import customer, flow, publish

MIGRATIONS = Path(__file__).resolve().parents[2] / "engine" / "migrations"
STALE = 1.5
KIND = "custom.claims_test"


@pytest.fixture
def fast_beats(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(claims, "HOLDER_BEAT_SECONDS", 0.1)
    monkeypatch.setattr(claims, "HOLDER_STALE", timedelta(seconds=STALE))


@pytest.fixture
def unanswering() -> Iterator[str]:
    """An address where Temporal does not answer: connections are accepted (by the kernel) and never served."""
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(64)
    try:
        yield f"127.0.0.1:{hole.getsockname()[1]}"
    finally:
        hole.close()


def greeting(db_url: str) -> None:
    publish(db_url, flow("claims-greeting", [("start", "trigger.event", {"event": KIND}),
                                             ("hello", "action.send_message", {"template": "你好"})],
                         [("start", "out", "hello")], entry={"reentry": "always"}))


def some_events(n: int) -> list[ingest.EventIn]:
    run = uuid.uuid4().hex[:8]
    return [ingest.EventIn(id=f"{run}-{i}", type=KIND, customer={"external_id": f"{run}-{i}"}) for i in range(n)]


def rows(db_url: str) -> list[models.EventRecord]:
    with session_factory(db_url)() as db:
        return list(db.scalars(select(models.EventRecord).where(models.EventRecord.type == KIND)
                               .order_by(models.EventRecord.id)))


def rerouter(db_url: str, client: Any) -> RoutingPipeline:
    pipeline = RoutingPipeline(db_url, Router(client, db_url, f"claims-{uuid.uuid4().hex[:8]}"))
    pipeline.start()
    return pipeline


async def test_a_dead_holders_claims_are_taken_over_at_the_next_pass(
        db_url: str, time_env: Any, fast_beats: None) -> None:
    greeting(db_url)
    dead = claims.Holder("web-1:4242:dead")
    # what a web process killed mid-routing leaves behind: its events claimed in its name, its heartbeat written
    # with the claim, and nobody beating for it any more
    await asyncio.to_thread(ingest.store_many, some_events(3), db_url, True, dead)
    assert {r.claimed_by for r in rows(db_url)} == {dead.process}
    other = rerouter(db_url, time_env.client)
    try:
        assert await other.reroute_once(older_than_seconds=0) == []  # its heartbeat is fresh: still its
        await asyncio.sleep(STALE + 0.2)
        taken = await other.reroute_once(older_than_seconds=0)  # the claims are 1.2 s old of 60: taken anyway
    finally:
        await other.stop()
    assert [r.routing for r in taken] == ["done"] * 3 and all(len(r.started) == 1 for r in taken)
    assert [(r.status, r.claimed_until, r.claimed_by) for r in rows(db_url)] == [("routed", None, None)] * 3


async def test_a_redelivery_of_a_dead_holders_event_is_routed_by_the_request(
        db_url: str, fast_beats: None) -> None:
    events = some_events(1)
    await asyncio.to_thread(ingest.store_many, events, db_url, True, claims.Holder("web-1:4242:dead"))
    alive = claims.Holder("web-2:7:alive")
    [again] = await asyncio.to_thread(ingest.store_many, events, db_url, True, alive)
    assert again.status == "duplicate" and not again.needs_routing  # its holder may still be routing it
    await asyncio.sleep(STALE + 0.2)
    [again] = await asyncio.to_thread(ingest.store_many, events, db_url, True, alive)
    assert again.status == "duplicate" and again.needs_routing  # its holder is dead: routed now, claimed anew
    assert [r.claimed_by for r in rows(db_url)] == [alive.process]


async def test_a_redelivery_racing_a_re_router_for_a_dead_holders_event_leaves_it_to_the_re_router(
        pg_url: str, fast_beats: None) -> None:
    """PostgreSQL: the re-router has locked and claimed the event (not committed yet) when its redelivery looks at
    it; the redelivery waits for the lock, then finds it claimed by a live holder and does not route it too."""
    events = some_events(1)
    await asyncio.to_thread(ingest.store_many, events, pg_url, True, claims.Holder("web-1:4242:dead"))
    await asyncio.sleep(STALE + 0.2)
    rerouting = claims.Holder("web-3:8:rerouting")
    with transaction(pg_url) as db:  # the re-router's claim (engine.events.pending), held open
        [row] = db.scalars(select(models.EventRecord).where(models.EventRecord.type == KIND)
                           .with_for_update(skip_locked=True)).all()
        row.claimed_until, row.claimed_by = models.utcnow() + claims.CLAIM, claims.claimed_by(db, rerouting)
        db.flush()
        redelivery = asyncio.create_task(asyncio.to_thread(
            ingest.store_many, events, pg_url, True, claims.Holder("web-2:7:alive")))
        await asyncio.sleep(0.5)
        assert not redelivery.done()  # waiting for the re-router's lock
    [again] = await redelivery
    assert again.status == "duplicate" and not again.needs_routing
    assert [r.claimed_by for r in rows(pg_url)] == [rerouting.process]


async def test_a_live_holders_claims_are_never_taken_while_its_routing_is_held_up(
        db_url: str, time_env: Any, fast_beats: None, unanswering: str) -> None:
    from temporalio.client import Client

    greeting(db_url)
    holder = RoutingPipeline(db_url, Router(await Client.connect(unanswering, lazy=True), db_url, "claims-held"))
    holder.start()
    other = rerouter(db_url, time_env.client)
    routing = asyncio.create_task(store_and_route(holder, some_events(3), db_url))
    try:
        deadline = time.monotonic() + 10
        while not (len(rows(db_url)) == 3 and holder.inflight == 3):
            assert time.monotonic() < deadline, "the events were not stored and handed to the lanes"
            await asyncio.sleep(0.02)
        held_up_until = time.monotonic() + 3 * STALE  # three times as long as a dead holder's claims last
        passes = 0
        while time.monotonic() < held_up_until:
            assert await other.reroute_once(older_than_seconds=0) == [], "a live holder's claims were taken"
            passes += 1
            await asyncio.sleep(0.05)
        assert passes > 20 and holder.inflight == 3  # still routing: Temporal has not answered
        assert {r.claimed_by for r in rows(db_url)} == {holder.holder.process}
        # it stops (a deploy): its claims are released at once, and the next pass routes them
        await holder.stop()
        assert [(r.status, r.claimed_until, r.claimed_by) for r in rows(db_url)] == [("received", None, None)] * 3
        taken = await other.reroute_once(older_than_seconds=0)
        assert [r.routing for r in taken] == ["done"] * 3
        with session_factory(db_url)() as db:
            assert db.get(ClaimHolder, holder.holder.process) is None  # its heartbeat went with it
    finally:
        routing.cancel()
        await holder.stop()
        await other.stop()


#: a process that stores three events and routes them against a Temporal that never answers (so it holds
#: their claims), beating every 0.1 s; it says ``holding`` once they are in its lanes
HOLDING_PROCESS = """
import asyncio, sys
from temporalio.client import Client
from engine import claims
from engine import events as ingest
from engine.pipeline import RoutingPipeline, store_and_route
from engine.router import Router

claims.HOLDER_BEAT_SECONDS = 0.1

async def main(url, hole, kind, ids):
    pipeline = RoutingPipeline(url, Router(await Client.connect(hole, lazy=True), url, "held"))
    pipeline.start()
    events = [ingest.EventIn(id=i, type=kind, customer={"external_id": i}) for i in ids]
    routing = asyncio.create_task(store_and_route(pipeline, events, url))
    while pipeline.inflight < len(ids):
        await asyncio.sleep(0.01)
    print("holding", flush=True)
    await routing

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]))
"""


async def test_a_process_killed_while_its_routing_is_held_up_loses_its_claims_seconds_later(
        db_url: str, time_env: Any, fast_beats: None, unanswering: str) -> None:
    greeting(db_url)
    run = uuid.uuid4().hex[:8]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDING_PROCESS, db_url, unanswering, KIND, *[f"{run}-{i}" for i in range(3)],
        stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    other = rerouter(db_url, time_env.client)
    try:
        assert process.stdout is not None
        assert await asyncio.wait_for(process.stdout.readline(), 60) == b"holding\n"
        alive_until = time.monotonic() + 3 * STALE
        while time.monotonic() < alive_until:  # alive, its routing held up: its claims stay its own
            assert await other.reroute_once(older_than_seconds=0) == [], "a live process's claims were taken"
            await asyncio.sleep(0.05)
        process.kill()  # SIGKILL: nothing released, nothing written on the way out
        killed = time.monotonic()
        await process.wait()
        taken: list[Any] = []
        while not taken and time.monotonic() - killed < 30:
            taken = await other.reroute_once(older_than_seconds=0)
            await asyncio.sleep(0.05)
        waited = time.monotonic() - killed
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await other.stop()
    assert [r.routing for r in taken] == ["done"] * 3
    # its last beat came at most 0.1 s (plus a little) before the kill; taken once that is STALE old
    assert STALE - 0.5 < waited < STALE + 1.0, f"taken over {waited:.2f} s after the kill"
    assert [(r.status, r.claimed_until, r.claimed_by) for r in rows(db_url)] == [("routed", None, None)] * 3


async def test_a_claim_without_a_heartbeat_keeps_the_sixty_second_rule(
        db_url: str, time_env: Any, fast_beats: None) -> None:
    greeting(db_url)
    # a process of an older version names no holder; a holder whose heartbeat row is gone is no better known
    await asyncio.to_thread(ingest.store_many, some_events(2), db_url, True)
    forgotten = claims.Holder("web-0:1:forgotten")
    await asyncio.to_thread(ingest.store_many, some_events(1), db_url, True, forgotten)
    with transaction(db_url) as db:
        db.execute(delete(ClaimHolder).where(ClaimHolder.process == forgotten.process))
    assert [r.claimed_by for r in rows(db_url)] == [None, None, forgotten.process]
    other = rerouter(db_url, time_env.client)
    try:
        await asyncio.sleep(STALE + 0.2)
        assert await other.reroute_once(older_than_seconds=0) == []
        with transaction(db_url) as db:  # the 60 s pass
            db.execute(update(models.EventRecord).values(claimed_until=models.utcnow() - timedelta(seconds=1)))
        assert [r.routing for r in await other.reroute_once(older_than_seconds=0)] == ["done"] * 3
    finally:
        await other.stop()


async def test_follow_ups_are_claimed_in_the_name_of_the_router_that_routes_them(
        db_url: str, time_env: Any, fast_beats: None) -> None:
    greeting(db_url)
    dead = claims.Holder("worker-1:99:dead")
    uninstall = follow_ups.install(db_url, follow_ups.FollowUpRouter(ready=lambda: True, route=lambda ids: None,
                                                                   holder=dead))
    try:
        cid = customer(db_url, "会员")
        with transaction(db_url) as db:
            assert ingest.record_follow_up(db, source="claims", external_id="f-1", type=KIND, customer_id=cid,
                                           payload={})
    finally:
        uninstall()
    [row] = rows(db_url)
    assert row.claimed_by == dead.process and row.claimed_until is not None
    other = rerouter(db_url, time_env.client)
    try:
        await asyncio.sleep(STALE + 0.2)  # the worker died before routing it
        assert [r.routing for r in await other.reroute_once(older_than_seconds=0)] == ["done"]
    finally:
        await other.stop()


def migrate(url: str, revision: str, down: bool = False) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    (command.downgrade if down else command.upgrade)(cfg, revision)


def test_the_migration_adds_and_removes_the_holder_keeping_the_events(any_db_url: str) -> None:
    ingest.store_many(some_events(2), any_db_url, True, claims.Holder("web-1:1:x"))
    engine = create_engine(any_db_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        def shape() -> tuple[bool, bool, int]:
            found = inspect(engine)
            with engine.connect() as conn:
                count = conn.execute(text("SELECT COUNT(*) FROM events")).scalar_one()
            return ("claimed_by" in {c["name"] for c in found.get_columns("events")},
                    found.has_table("claim_holders"), count)

        assert shape() == (True, True, 2)
        engine.dispose()
        migrate(any_db_url, "0018_mass_send_ids", down=True)
        assert shape() == (False, False, 2)
        engine.dispose()
        migrate(any_db_url, "heads")
        assert shape() == (True, True, 2)
    finally:
        engine.dispose()
