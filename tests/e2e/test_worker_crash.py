"""kill -9 the worker while journeys are in flight: after a restart every journey completes, and
the books hold exactly one message per (customer, node) — nothing lost, nothing sent twice.

N journeys (``TIDEFLOW_CRASH_N``, default 400; ``make faults`` runs 1,000) run
trigger → message → 2 s delay → message → tag on a Temporal dev server, web and worker started as
separate processes sharing one data dir.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, func, select

from engine.db import models
from tests.e2e.stack import E2EStack
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

N = int(os.environ.get("TIDEFLOW_CRASH_N", "400"))
BATCH = 100
PARALLEL_POSTS = 4
FLOW_ID = "crash"
COMPLETE_TIMEOUT = float(os.environ.get("TIDEFLOW_CRASH_TIMEOUT", "240"))


def crash_flow() -> dict[str, Any]:
    nodes = [("start", "trigger.event", {"event": "custom.crash_test"}),
             ("first", "action.send_message", {"channel": "dry-run", "template": "第一条 {{ customer.name }}"}),
             ("pause", "wait.delay", {"duration": "PT2S"}),
             ("second", "action.send_message", {"channel": "dry-run", "template": "第二条 {{ customer.name }}"}),
             ("done", "action.tag", {"add": ["crash-survivor"]})]
    edges = [("start", "first"), ("first", "pause"), ("pause", "second"), ("second", "done")]
    return {"schema": "tideflow/flow@1", "id": FLOW_ID, "name": "Worker crash test", "kind": "journey",
            "nodes": [{"id": i, "type": t, "config": c} for i, t, c in nodes],
            "edges": [{"from": a, "port": "out", "to": b} for a, b in edges]}


def event(i: int) -> dict[str, Any]:
    return {"id": f"crash-{i}", "type": "custom.crash_test", "source": "e2e",
            "customer": {"external_id": f"crash-customer-{i}"}, "profile": {"name": f"客户{i}"}}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2EStack]:
    with E2EStack(tmp_path_factory.mktemp("e2e-crash")) as s:
        try:
            s.start_pieces()
        except BaseException:
            print(s.logs_tail())
            raise
        yield s


@pytest.fixture(scope="module")
def db(stack: E2EStack) -> Iterator[Engine]:
    engine = create_engine(stack.database_url, connect_args={"timeout": 30})
    yield engine
    engine.dispose()


def count_messages(db: Engine) -> int:
    with db.connect() as c:
        return int(c.scalar(select(func.count()).select_from(models.Message)
                            .where(models.Message.flow_id == FLOW_ID)) or 0)


@pytest.mark.timeout(int(3 * COMPLETE_TIMEOUT) + 120)
def test_worker_killed_mid_flight_loses_and_duplicates_nothing(stack: E2EStack, db: Engine) -> None:
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    stack.api("POST", "/api/flows", expect=201, json=crash_flow())
    assert stack.api("POST", f"/api/flows/{FLOW_ID}/publish", expect=201)["version"] == 1

    # send the events in batches of 100, a few requests at a time, while the main thread watches
    results: list[dict[str, Any]] = []
    post_seconds: list[float] = []
    lock = threading.Lock()

    def post(start: int) -> None:
        batch = [event(i) for i in range(start, min(start + BATCH, N))]
        began = time.monotonic()
        while True:  # as a real sender does: told to come back (admission control, 429/503 + Retry-After), it does
            r = stack.http.post("/api/events", json=batch)
            if r.status_code in (429, 503) and time.monotonic() - began < COMPLETE_TIMEOUT:
                time.sleep(min(float(r.headers.get("Retry-After", "1")), 5.0))
                continue
            assert r.status_code == 202, f"POST /api/events → {r.status_code}: {r.text[:2000]}"
            got = r.json()
            break
        with lock:
            results.extend(got)
            post_seconds.append(time.monotonic() - began)

    pool = ThreadPoolExecutor(PARALLEL_POSTS)
    posted: list[Future[None]] = [pool.submit(post, start) for start in range(0, N, BATCH)]
    try:
        # kill -9 the worker once a third of the 2 N messages exist (journeys are at every stage then)
        threshold = max(1, 2 * N // 3)
        try:
            wait_until(lambda: count_messages(db) >= threshold, COMPLETE_TIMEOUT, f"{threshold} messages",
                       every=0.1)
        except AssertionError:
            print(stack.logs_tail(6000))
            raise
        stack.kill("worker")
        at_kill = count_messages(db)
        timings["killed"] = time.monotonic() - t0
        time.sleep(0.5)
        assert count_messages(db) == at_kill, "messages were still being sent after the worker was killed"
        stack.start_worker()
        timings["restarted"] = time.monotonic() - t0
        for f in posted:
            f.result(timeout=COMPLETE_TIMEOUT)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    timings["posted"] = time.monotonic() - t0

    assert len(results) == N
    assert {r["status"] for r in results} == {"accepted"}, [r for r in results if r["status"] != "accepted"][:3]
    assert all(len(r["started"]) == 1 for r in results), [r for r in results if len(r["started"]) != 1][:3]
    assert len({r["customer_id"] for r in results}) == N

    def all_completed() -> bool:
        by_status = stack.api("GET", "/api/journeys", params={"flow": FLOW_ID, "limit": 1})["by_status"]
        assert not set(by_status) - {"running", "waiting", "completed"}, by_status
        return bool(by_status.get("completed") == N)

    try:
        wait_until(all_completed, COMPLETE_TIMEOUT, f"{N} completed journeys", every=1)
    except AssertionError:
        print(stack.logs_tail(6000))
        raise
    timings["completed"] = time.monotonic() - t0

    # the books, straight from the database
    with db.connect() as c:
        messages = c.execute(select(models.Message.idempotency_key, models.Message.customer_id,
                                    models.Message.node_id, models.Message.status, models.Message.content)
                             .where(models.Message.flow_id == FLOW_ID)).all()
        dup_keys = c.execute(select(models.Message.idempotency_key, func.count())
                             .where(models.Message.flow_id == FLOW_ID)
                             .group_by(models.Message.idempotency_key).having(func.count() > 1)).all()
        dup_nodes = c.execute(select(models.Message.customer_id, models.Message.node_id, func.count())
                              .where(models.Message.flow_id == FLOW_ID)
                              .group_by(models.Message.customer_id, models.Message.node_id)
                              .having(func.count() > 1)).all()
        journeys = c.execute(select(models.Journey.status, func.count()).where(models.Journey.flow_id == FLOW_ID)
                             .group_by(models.Journey.status)).all()
        tagged = c.scalar(select(func.count()).select_from(models.CustomerTag)
                          .where(models.CustomerTag.tag == "crash-survivor"))
        actions = c.execute(select(models.LedgerEntry.kind, func.count())
                            .where(models.LedgerEntry.key.like(f"journey/{FLOW_ID}/%"))
                            .group_by(models.LedgerEntry.kind)).all()

    assert dup_keys == [], dup_keys[:5]
    assert dup_nodes == [], dup_nodes[:5]
    assert len(messages) == 2 * N
    per_customer: dict[str, set[str | None]] = {}
    for m in messages:
        per_customer.setdefault(m.customer_id, set()).add(m.node_id)
        assert m.idempotency_key.startswith(f"journey/{FLOW_ID}/{m.customer_id}/{m.node_id}/"), m
    assert len(per_customer) == N
    assert all(nodes == {"first", "second"} for nodes in per_customer.values())
    assert {m.status for m in messages} == {"sent"}
    assert dict(journeys) == {"completed": N}
    assert tagged == N
    assert dict(actions) == {"action.send_message": 2 * N, "action.tag": N}

    nodes = stack.api("GET", f"/api/flows/{FLOW_ID}/stats")["nodes"]
    assert nodes["done"]["entered"] == N, nodes
    assert nodes["start"]["entered"] == N, nodes
    assert nodes["second"]["left"] == {"out": N}, nodes
    assert nodes["pause"]["waiting"] == 0, nodes
    assert all(n["failed"] == 0 for n in nodes.values()), nodes

    print(f"\ncrash test, N={N}: " + ", ".join(f"{k} at {v:.1f} s" for k, v in timings.items())
          + f"; {at_kill} of {2 * N} messages existed at the kill; slowest POST of {BATCH} events "
          f"{max(post_seconds):.1f} s")
