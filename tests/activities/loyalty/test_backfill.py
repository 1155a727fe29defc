"""The historical backfill books each order once, agrees with the live earning path, and can be re-run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from activities.loyalty import ledger
from activities.loyalty.backfill import backfill_orders
from engine import events as ingest
from engine.customers import resolve
from engine.db import models
from engine.db.loyalty_models import LoyaltyAccount, LoyaltyEntry, LoyaltyLot
from engine.db.session import session_factory, transaction


def test_backfill_books_each_order_once_and_matches_live_earning(any_db_url: str) -> None:
    from activities.loyalty.program import ProgramConfig, save

    paid = datetime.now(UTC) - timedelta(days=40)
    with transaction(any_db_url) as db:
        save(db, ProgramConfig(enabled=True), "admin")
        customers = [resolve(db, {"external_id": f"m{i}"}, f"会员{i}") for i in range(7)]
        for n in range(50):
            db.add(models.Order(channel="youzan", shop="s1", order_id=f"h{n}", source="import",
                                customer_id=customers[n % 7], status="paid", amount_fen=1_000 + 37 * n,
                                paid_at=paid + timedelta(minutes=n)))
        db.add(models.Order(channel="youzan", shop="s1", order_id="nobody", source="import", status="paid",
                            amount_fen=5_000, paid_at=paid))
    # one of the orders also arrives live (order.paid) before the import: it must not earn twice
    ingest.store(ingest.EventIn.model_validate({"id": "live", "type": "order.paid", "source": "youzan",
                                                "customer": {"customer_id": customers[0]},
                                                "payload": {"channel": "youzan", "shop": "s1", "order_id": "h0",
                                                            "amount_fen": 1_000}}), any_db_url)
    stats = backfill_orders(any_db_url, batch=8)
    assert stats.orders == 50 and stats.booked == 49 and stats.batches == 7
    again = backfill_orders(any_db_url, batch=8)
    assert again.booked == 0
    with session_factory(any_db_url)() as db:
        assert db.scalar(select(func.count()).select_from(LoyaltyEntry)) == 50
        assert db.scalar(select(func.count()).select_from(LoyaltyLot)) == 50
        expected = {c: 0 for c in customers}
        for n in range(50):
            expected[customers[n % 7]] += (1_000 + 37 * n) // 100
        for cid in customers:
            account = db.get(LoyaltyAccount, cid)
            assert account is not None and account.balance == expected[cid]
            lines = list(db.scalars(select(LoyaltyEntry).where(LoyaltyEntry.customer_id == cid)
                                    .order_by(LoyaltyEntry.id)))
            assert lines[-1].balance_after == expected[cid]
            assert ledger.summary(db, cid, datetime.now(UTC))["balance"] == expected[cid]


def test_the_cli_runs_the_backfill(db_url: str, capsys: object) -> None:
    import json

    from tideflow.cli import main

    with transaction(db_url) as db:
        cid = resolve(db, {"external_id": "cli"}, "命令行")
        db.add(models.Order(channel="api", shop="s", order_id="x1", source="import", customer_id=cid, status="paid",
                            amount_fen=2_500, paid_at=datetime.now(UTC)))
    assert main(["loyalty", "backfill", "--database-url", db_url]) == 0
    out = json.loads(capsys.readouterr().out)  # type: ignore[attr-defined]
    assert out == {"orders": 1, "booked": 1, "points": 25, "batches": 1}
