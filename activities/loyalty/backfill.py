"""Backfill historical orders into the points ledger (积分历史导入), in batches, idempotently.

Every paid order with a customer and no ledger entry yet (key ``order:<channel>:<shop>:<order>``)
earns points by the program's rule (per yuan and campaign boosts at its paid time; the base tier's
multiplier — tiers are evaluated after the import, by the scheduled review) as one ledger entry and
one lot, in bulk: a batch of orders is read once, its entries are inserted in one statement
(``ON CONFLICT DO NOTHING`` on the key, so a re-run or a concurrent live earn books nothing twice),
its lots in another, and each member's balance moves once per batch. Lots already past their expiry
are booked as expired by the next ``action.loyalty_upkeep``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, bindparam, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from activities.loyalty import points
from activities.loyalty.program import load
from engine.db import models
from engine.db.loyalty_models import LoyaltyAccount, LoyaltyEntry
from engine.db.session import transaction


@dataclass
class BackfillStats:
    orders: int = 0
    booked: int = 0
    points: int = 0
    batches: int = 0


def _insert(db: Any, table: Any) -> Any:
    assert isinstance(table, Table)
    return (postgresql.insert(table) if db.get_bind().dialect.name == "postgresql" else sqlite.insert(table))


def _new_ids(db: Any, n: int) -> list[int]:
    """Ids for ``n`` new ledger rows: the sequence on PostgreSQL; on SQLite the write transaction is the only
    writer, so the ids after the largest are free."""
    if db.get_bind().dialect.name == "postgresql":
        return [int(i) for i in db.execute(text(
            "SELECT nextval(pg_get_serial_sequence('loyalty_ledger', 'id')) FROM generate_series(1, :n)"), {"n": n})
                .scalars()]
    top = int(db.execute(text("SELECT COALESCE(MAX(id), 0) FROM loyalty_ledger")).scalar() or 0)
    return list(range(top + 1, top + 1 + n))


def _bulk(db: Any, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]], conflict: str = "") -> None:
    """One driver-level executemany: no per-row ORM or type processing (a million rows in seconds)."""
    sqlite_db = db.get_bind().dialect.name == "sqlite"
    if not sqlite_db:
        # PostgreSQL: COPY. A key that is already booked fails the whole batch (unique index) instead of being
        # skipped — it cannot happen under the members' locks, and if it did nothing would be booked twice
        raw = db.connection().connection.driver_connection
        with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    if sqlite_db:  # the storage format SQLAlchemy's DateTime uses on SQLite (UTC, naive); many values repeat
        seen: dict[datetime, str] = {}

        def text_of(value: datetime) -> str:
            found = seen.get(value)
            if found is None:
                found = seen[value] = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
            return found

        rows = [tuple(text_of(v) if isinstance(v, datetime) else v for v in row) for row in rows]
    mark = "?" if sqlite_db else "%s"
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"
    if conflict:
        sql += f" ON CONFLICT ({conflict}) DO NOTHING"
    db.connection().exec_driver_sql(sql, rows)


def _lock_accounts(db: Any, ids: list[str]) -> dict[str, int]:
    """Lock these members' accounts; member → spendable balance."""
    acct = LoyaltyAccount.__table__
    return {r.customer_id: int(r.balance) - int(r.debt) for r in db.execute(
        select(acct.c.customer_id, acct.c.balance, acct.c.debt).where(acct.c.customer_id.in_(ids)).with_for_update())}


def backfill_orders(database_url: str | None, *, batch: int = 5000, after_id: int = 0,
                    progress: Callable[[BackfillStats], None] | None = None) -> BackfillStats:
    stats = BackfillStats()
    last = after_id
    while True:
        with transaction(database_url) as db:
            program = load(db)
            base = program.tier_list()[0]
            rows = db.execute(select(models.Order.id, models.Order.channel, models.Order.shop, models.Order.order_id,
                                     models.Order.customer_id, models.Order.amount_fen, models.Order.paid_at)
                              .where(models.Order.id > last, models.Order.customer_id.is_not(None),
                                     models.Order.paid_at.is_not(None), models.Order.status != "cancelled")
                              .order_by(models.Order.id).limit(batch)).all()
            if not rows:
                return stats
            last = rows[-1].id
            stats.orders += len(rows)
            entries, meta = [], {}
            now = models.utcnow()
            for row in rows:
                boost, bonus = program.boost(row.paid_at)
                pts = points.earned_points(int(row.amount_fen), program.points_per_yuan,
                                           tier_multiplier=base.multiplier, campaign_multiplier=boost, bonus=bonus)
                key = f"order:{row.channel}:{row.shop}:{row.order_id}"
                entries.append({"customer_id": row.customer_id, "key": key, "kind": "earn", "points": pts,
                                "balance_after": 0, "source_ref": key, "reason": "backfill", "detail": {},
                                "at": row.paid_at, "created_at": now})
                meta[key] = (row.customer_id, pts, row.paid_at)
            table = LoyaltyEntry.__table__
            customers = sorted({c for c, _, _ in meta.values()})
            acct = LoyaltyAccount.__table__
            assert isinstance(acct, Table)
            accounts = _lock_accounts(db, customers)
            missing = [c for c in customers if c not in accounts]
            if missing:
                db.execute(_insert(db, acct).on_conflict_do_nothing(index_elements=["customer_id"]),
                           [{"customer_id": c, "balance": 0, "debt": 0, "lifetime_earned": 0, "updated_at": now}
                            for c in missing])
                accounts.update(_lock_accounts(db, missing))
            # under the members' locks: orders already booked (live, or an earlier run) are left out
            booked = set(db.scalars(select(table.c.key).where(table.c.key.in_(list(meta)))))
            running = dict(accounts)
            fresh = []
            for entry in entries:
                if entry["key"] in booked:
                    continue
                running[entry["customer_id"]] += entry["points"]
                entry["balance_after"] = running[entry["customer_id"]]
                fresh.append(entry)
            inserted: list[tuple[int, str]] = []
            if fresh:
                ids = _new_ids(db, len(fresh))
                inserted = [(i, e["key"]) for i, e in zip(ids, fresh, strict=True)]
                # the members' rows are locked and the keys checked under those locks: plain bulk inserts
                # are safe here (ON CONFLICT stays as a guard; a lot of a skipped entry would break its FK)
                _bulk(db, "loyalty_ledger", ("id", "customer_id", "key", "kind", "points", "balance_after",
                                             "source_ref", "reason", "detail", "at", "created_at"),
                      [(i, e["customer_id"], e["key"], "earn", e["points"], e["balance_after"], e["source_ref"],
                        "backfill", "{}", e["at"], now) for i, e in zip(ids, fresh, strict=True)],
                      conflict="key")
            if inserted:
                lots, added = [], dict.fromkeys(customers, 0)
                for entry_id, key in inserted:
                    cid, pts, at = meta[key]
                    added[cid] += pts
                    if pts > 0:
                        lots.append((cid, entry_id, pts, pts, at, points.expiry(at, program.expiry_rule,
                                                                                program.timezone), key))
                if lots:
                    _bulk(db, "loyalty_lots", ("customer_id", "entry_id", "points", "remaining", "earned_at",
                                               "expires_at", "source_ref"), lots)
                db.execute(update(acct).where(acct.c.customer_id == bindparam("b_cid"))
                           .values(balance=acct.c.balance + bindparam("b_pts"),
                                   lifetime_earned=acct.c.lifetime_earned + bindparam("b_pts"),
                                   updated_at=now).execution_options(synchronize_session=False),
                           [{"b_cid": c, "b_pts": p} for c, p in added.items() if p])
                stats.booked += len(inserted)
                stats.points += sum(added.values())
            stats.batches += 1
        if progress is not None:
            progress(stats)

