"""``tideflow settle``: settle one period from the command line with the engine the scheduled runs use.

With ``--orders ORDERS.csv`` the orders are loaded into a throwaway SQLite database and nothing is
kept: a dry run for finance and for tests. Without it the period is settled against the configured
database's order table, the run is kept and its statements wait for finance's approval on the dashboard
(a re-run prints the same statements).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from datetime import UTC
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from activities.settlement.errors import SettlementError
from activities.settlement.orders_csv import load_orders_csv
from activities.settlement.periods import Period, check_period, local_today, parse_day
from activities.settlement.runs import settle, submit_run
from activities.settlement.settlement_plan import SettlementPlan, load_settlement_plan
from activities.settlement.statements import run_view
from engine.text import Msg


def read_plan(path: str, kpis_path: str | None = None) -> SettlementPlan:
    """The plan file (and, with ``--kpis``, KPI values per party merged into it)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettlementError(Msg("cannot read the plan %(path)s: %(strerror)s", path=path,
                                  strerror=exc.strerror)) from None
    except json.JSONDecodeError as exc:
        raise SettlementError(Msg("the plan %(path)s is not JSON: %(msg)s at line %(lineno)s", path=path, msg=exc.msg,
                                  lineno=exc.lineno)) from None
    if not isinstance(data, dict):
        raise SettlementError(Msg("the plan %(path)s must be a JSON object with key, party and rate_plan", path=path))
    if "rate_plan" not in data and "type" in data:
        raise SettlementError(Msg("%(path)s is a bare rate plan; wrap it: {\"key\": \"my-plan\", \"rate_plan\": "
                                  "{...}}", path=path))
    if kpis_path:
        try:
            kpis = json.loads(Path(kpis_path).read_text(encoding="utf-8"), parse_float=str)
        except (OSError, json.JSONDecodeError) as exc:
            raise SettlementError(Msg("cannot read the KPIs %(kpis_path)s: %(exc)s", kpis_path=kpis_path,
                                      exc=exc)) from None
        if not isinstance(kpis, Mapping):
            raise SettlementError(Msg("%(kpis_path)s must map party → {\"kpi\": \"value\"}", kpis_path=kpis_path))
        data["kpis"] = {**dict(data.get("kpis") or {}), **dict(kpis)}
    return load_settlement_plan(data)


def settle_command(plan_path: str, start: str, end: str, *, orders_path: str | None = None,
                   kpis_path: str | None = None, database_url: str | None = None,
                   skip_invalid: bool = False) -> dict[str, Any]:
    """The statements of the period as JSON-ready data (amounts in yuan with 2 decimals).

    With ``orders_path`` (a dry run) the file is checked whole first (:func:`load_orders_csv`); refunds
    completed in the period for orders paid in earlier periods are clawed back as a kept run would: the
    earlier periods holding those orders are settled first in the throwaway database (they are listed under
    ``dry_run.earlier_periods``)."""
    plan = read_plan(plan_path, kpis_path)
    period = Period(parse_day(start, "--from"), parse_day(end, "--to"))
    check_period(plan.cycle, period)
    if orders_path is None:
        from engine.db.session import transaction

        with transaction(database_url) as db:  # kept: the statements go to finance for approval
            run = submit_run(db, settle(db, plan, period, created_by="cli"))
            return run_view(db, run)
    try:
        text = Path(orders_path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SettlementError(Msg("cannot read the orders %(orders_path)s: %(strerror)s", orders_path=orders_path,
                                  strerror=exc.strerror)) from None
    except UnicodeDecodeError:
        raise SettlementError(Msg("the orders %(orders_path)s are not UTF-8 text; save the CSV as UTF-8",
                                  orders_path=orders_path)) from None
    return dry_run(plan, text, period, skip_invalid=skip_invalid)


def dry_run(plan: SettlementPlan, orders_csv: str, period: Period, *, skip_invalid: bool = False) -> dict[str, Any]:
    """Settle ``period`` of ``plan`` over the orders of a CSV text in a throwaway SQLite database — the same
    collect, compute and split a kept run does — and answer the statements (:func:`run_view`); nothing is
    kept. ``tideflow settle --orders`` and the rate-plan editor's preview on sample orders both use it."""
    from engine.db.models import Base

    with tempfile.TemporaryDirectory(prefix="tideflow-settle-") as tmp:
        engine = create_engine(f"sqlite:///{Path(tmp).joinpath('settle.db')}")
        try:
            Base.metadata.create_all(engine)
            with Session(engine) as db, db.begin():
                checked = load_orders_csv(db, orders_csv, plan, skip_invalid=skip_invalid)
                earlier = earlier_periods_with_refunds(db, plan, period)
                for before in earlier:
                    settle(db, plan, before, created_by="cli dry run")
                run = settle(db, plan, period, created_by="cli")
                view = run_view(db, run)
                view["dry_run"] = {
                    "orders": len(checked.orders), "refunds": len(checked.refunds),
                    "earlier_periods": [p.label for p in earlier],
                    "note": "nothing is kept; refunds of orders from earlier periods are clawed back by settling "
                            "those periods first, from this file only (in the kept books the earlier statements "
                            "may differ)"}
                if checked.problems:
                    view["skipped"] = [{"line": line, "problem": message} for line, message in checked.problems]
                return view
        finally:
            engine.dispose()


def earlier_periods_with_refunds(db: Session, plan: SettlementPlan, period: Period) -> list[Period]:
    """The earlier periods of the plan's cycle holding orders refunded within ``period``, oldest first."""
    from sqlalchemy import and_, select

    from activities.settlement.periods import period_bounds, period_containing
    from engine.db import models

    starts_at, ends_at = period_bounds(period, plan.timezone)
    paid = db.scalars(select(models.Order.paid_at).join(models.Refund, and_(
        models.Refund.channel == models.Order.channel, models.Refund.shop == models.Order.shop,
        models.Refund.order_id == models.Order.order_id)).where(
        models.Refund.status == "completed", models.Refund.completed_at >= starts_at,
        models.Refund.completed_at < ends_at, models.Order.paid_at < starts_at)).all()
    days = {local_today(at if at.tzinfo else at.replace(tzinfo=UTC), plan.timezone) for at in paid if at is not None}
    return sorted({period_containing(plan.cycle, day) for day in days}, key=lambda p: p.start)
