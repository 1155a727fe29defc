"""Smoke tests on a real PostgreSQL 15: migrations, the models, a unique constraint and an atomic upsert."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from engine.db import models
from engine.db.session import get_engine, transaction
from engine.journeys import add_stats

pytestmark = pytest.mark.postgres


def test_migrations_create_the_schema(pg_url: str) -> None:
    engine = get_engine(pg_url)
    assert engine.dialect.name == "postgresql"
    tables = set(inspect(engine).get_table_names())
    assert set(models.Base.metadata.tables) <= tables
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()


def test_customer_and_identity_round_trip(pg_url: str) -> None:
    with transaction(pg_url) as db:
        db.add(models.Customer(id="c1", name="Ann", timezone="Asia/Shanghai", attributes={"tier": "gold"}))
        db.flush()
        db.add(models.Identity(kind="phone", value="+8613800000000", customer_id="c1"))
    with transaction(pg_url) as db:
        customer = db.get(models.Customer, "c1")
        assert customer is not None
        assert customer.name == "Ann"
        assert customer.attributes == {"tier": "gold"}
        assert customer.created_at.tzinfo is not None
        identity = db.get(models.Identity, ("phone", "+8613800000000"))
        assert identity is not None
        assert identity.customer_id == "c1"


def test_identity_needs_an_existing_customer(pg_url: str) -> None:
    with pytest.raises(IntegrityError), transaction(pg_url) as db:
        db.add(models.Identity(kind="email", value="nobody@example.com", customer_id="missing"))


def test_duplicate_event_is_rejected(pg_url: str) -> None:
    def event(event_type: str) -> models.EventRecord:
        return models.EventRecord(source="shopify", external_id="evt-1", type=event_type,
                                  occurred_at=datetime(2025, 1, 1, tzinfo=UTC))

    with transaction(pg_url) as db:
        db.add(event("order.paid"))
    with pytest.raises(IntegrityError, match="uq_events_source_external_id"), transaction(pg_url) as db:
        db.add(event("order.paid"))
    with transaction(pg_url) as db:
        assert db.scalar(select(func.count()).select_from(models.EventRecord)) == 1


def test_concurrent_stats_upserts_are_atomic(pg_url: str) -> None:
    workers = 20
    barrier = threading.Barrier(workers)

    def bump() -> None:
        with transaction(pg_url) as db:
            barrier.wait(timeout=30)  # every session is open before any of them upserts
            add_stats(db, "flow-1", 1, [["node-a", "entered", "", 1]])

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(bump) for _ in range(workers)]:
            future.result(timeout=60)

    with transaction(pg_url) as db:
        rows = db.scalars(select(models.NodeStat).where(models.NodeStat.flow_id == "flow-1")).all()
    assert [(r.version, r.node_id, r.metric, r.port, r.count) for r in rows] == [(1, "node-a", "entered", "", workers)]


def test_any_db_url_round_trip(any_db_url: str) -> None:
    with transaction(any_db_url) as db:
        add_stats(db, "flow-2", 3, [["n", "left", "yes", 2], ["n", "left", "yes", 1]])
    with transaction(any_db_url) as db:
        add_stats(db, "flow-2", 3, [["n", "left", "yes", 4]])
    with transaction(any_db_url) as db:
        stat = db.get(models.NodeStat, ("flow-2", 3, "n", "left", "yes"))
        assert stat is not None
        assert stat.count == 7
