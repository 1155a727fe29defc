"""Loyalty: backfilling N historical orders into the points ledger, on SQLite and PostgreSQL.

``BENCH_LOYALTY_ORDERS`` paid orders (default 1,000,000 × ``BENCH_SCALE``) of 50,000 members are
bulk-loaded into ``orders``; then :func:`activities.loyalty.backfill.backfill_orders` is timed — rule
per order, one ledger entry and one lot each, balances, idempotency on the order key — exactly as
``tideflow``'s import would run it. Baseline, same run, same database: a plain SQL insert of the same
ledger rows (points precomputed, into a table of the ledger's shape and indexes; no lots, no balances,
no locks, no idempotency check).
Reported: time, orders/s and the ratio backfill ÷ plain insert (lower is better). The books are
checked: the sum of balances equals the sum of points of the orders.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text

from bench.common import Report, Row, Stack, sized

MEMBERS = 50_000
START = datetime(2025, 1, 1, tzinfo=UTC)


def _orders(n: int) -> list[tuple[str, str, int, datetime]]:
    rng = random.Random(11)
    return [(f"c_bench{rng.randrange(MEMBERS):06d}", f"h{i}", rng.randrange(100, 100_000),
             START + timedelta(seconds=i * 30)) for i in range(n)]


def _load(url: str, orders: list[tuple[str, str, int, datetime]]) -> None:
    from engine.db.session import get_engine

    now = datetime.now(UTC)
    engine = get_engine(url)
    customers = sorted({c for c, _, _, _ in orders})
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            with raw.cursor() as cur:  # type: ignore[attr-defined]
                with cur.copy("COPY customers (id, name, attributes, consent, created_at, updated_at) "
                              "FROM STDIN") as cp:
                    for c in customers:
                        cp.write_row((c, c, "{}", "{}", now, now))
                with cur.copy("COPY orders (channel, shop, order_id, source, customer_id, status, amount_fen, "
                              "refunded_fen, currency, items, attribution, paid_at, created_at, updated_at) "
                              "FROM STDIN") as cp:
                    for cid, oid, amount, paid in orders:
                        cp.write_row(("bench", "s1", oid, "bench", cid, "paid", amount, 0, "CNY", "[]", "{}", paid,
                                      paid, now))
                cur.execute("ANALYZE orders")
            raw.commit()
        finally:
            raw.close()
        return

    def stamp(value: datetime) -> str:
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")

    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO customers (id, name, attributes, consent, created_at, updated_at) "
                             "VALUES (?, ?, '{}', '{}', ?, ?)", [(c, c, stamp(now), stamp(now)) for c in customers])
        conn.exec_driver_sql(
            "INSERT INTO orders (channel, shop, order_id, source, customer_id, status, amount_fen, refunded_fen, "
            "currency, items, attribution, paid_at, created_at, updated_at) VALUES ('bench', 's1', ?, 'bench', ?, "
            "'paid', ?, 0, 'CNY', '[]', '{}', ?, ?, ?)",
            [(oid, cid, amount, stamp(paid), stamp(paid), stamp(now)) for cid, oid, amount, paid in orders])


def _plain_insert(url: str, orders: list[tuple[str, str, int, datetime]]) -> float:
    """Seconds to insert the same ledger rows with plain SQL into a copy of the ledger table."""
    from engine.db.session import get_engine

    engine = get_engine(url)
    rows = [(cid, f"order:bench:s1:{oid}", amount // 100, paid) for cid, oid, amount, paid in orders]
    serial = "INTEGER PRIMARY KEY" if engine.dialect.name == "sqlite" else "BIGSERIAL PRIMARY KEY"
    stamp = "TIMESTAMP" if engine.dialect.name == "sqlite" else "TIMESTAMPTZ"
    with engine.begin() as conn:  # the ledger's shape and indexes, so the rows cost what they cost there
        conn.execute(text(f"CREATE TABLE bench_plain_ledger (id {serial}, customer_id VARCHAR(40), "
                          f"key VARCHAR(300) UNIQUE, kind VARCHAR(10), points BIGINT, balance_after BIGINT, "
                          f"source_ref VARCHAR(200), at {stamp})"))
        conn.execute(text("CREATE INDEX ix_bench_plain_customer_at ON bench_plain_ledger (customer_id, at)"))
        conn.execute(text("CREATE INDEX ix_bench_plain_source ON bench_plain_ledger (source_ref)"))
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO bench_plain_ledger (customer_id, key, kind, points, balance_after, source_ref, "
                          "at) VALUES (:c, :k, 'earn', :p, 0, :k, :a)"),
                     [{"c": c, "k": k, "p": p, "a": a} for c, k, p, a in rows])
    return time.perf_counter() - started


def _measure(name: str, url: str, orders: list[Any], report: Report) -> None:
    from activities.loyalty.backfill import backfill_orders
    from engine.db.loyalty_models import LoyaltyAccount, LoyaltyEntry

    _load(url, orders)
    plain = _plain_insert(url, orders)
    started = time.perf_counter()
    stats = backfill_orders(url, batch=5000)
    seconds = time.perf_counter() - started
    from engine.db.session import session_factory

    with session_factory(url)() as db:
        balances = int(db.scalar(select(func.sum(LoyaltyAccount.balance))) or 0)
        entries = int(db.scalar(select(func.count()).select_from(LoyaltyEntry)) or 0)
    books = balances == stats.points and entries == len(orders) == stats.booked
    n = len(orders)
    report.rows.append(Row(f"loyalty backfill {name}: {n:,} orders", f"{seconds:.1f} s ({n / seconds:,.0f} orders/s)",
                           "ratio to plain insert (lower is better)", None))
    report.notes.append(f"loyalty backfill {name}: plain SQL insert of the same {n:,} ledger rows {plain:.1f} s; "
                        f"backfill ÷ plain = {seconds / plain:.2f}× (rule, entry + lot, balances, idempotent "
                        f"keys); books balance: {'yes' if books else 'NO'}")
    if not books:
        report.failed = True


async def run(stack: Stack) -> Report:
    import asyncio

    n = sized("BENCH_LOYALTY_ORDERS", 1_000_000)
    report = Report("loyalty")
    orders = _orders(n)
    url = stack.database("loyalty")
    await asyncio.to_thread(_measure, "SQLite", url, orders, report)
    try:
        from tests.pg import PostgresCluster, missing_binaries
    except ImportError:
        report.notes.append("loyalty PostgreSQL: skipped (tests/pg.py is not available)")
        return report
    if missing_binaries():
        report.notes.append("loyalty PostgreSQL: skipped (no PostgreSQL 15 server binaries)")
        return report
    from engine.db.session import get_engine, upgrade

    cluster = PostgresCluster()
    await asyncio.to_thread(cluster.start)
    try:
        pg_url = cluster.create_database("bench_loyalty")
        await asyncio.to_thread(upgrade, pg_url)
        await asyncio.to_thread(_measure, "PostgreSQL", pg_url, orders, report)
        get_engine(pg_url).dispose()
    finally:
        await asyncio.to_thread(cluster.stop)
    return report
