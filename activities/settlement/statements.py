"""Statements as finance reads them: JSON (amounts as yuan strings with 2 decimals), CSV, the orders
behind a line, and the dashboard's figures (pending approval, totals by period and party type, what
changed since the previous period)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from activities.settlement.collect import party_column
from activities.settlement.money import format_yuan
from engine.db import models


def yuan(fen: int) -> str:
    return format_yuan(int(fen))


def line_view(line: models.StatementLine) -> dict[str, Any]:
    return {"position": line.position, "kind": line.kind, "rule": line.rule, "description": line.description,
            "exact_fen": line.exact_fen, "amount": yuan(line.amount_fen), "amount_fen": line.amount_fen,
            "refs": line.refs}


def statement_view(statement: models.Statement, run: models.SettlementRun,
                   lines: Sequence[models.StatementLine] | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": statement.id, "run_id": run.id, "plan": run.plan_key, "plan_version": run.plan_version,
        "period": {"from": run.period_from, "to": run.period_to}, "party": statement.party,
        "party_type": statement.party_type, "status": statement.status, "seq": statement.seq,
        "sales": yuan(statement.sales_fen), "order_count": statement.order_count,
        "commission": yuan(statement.commission_fen), "clawback": yuan(statement.clawback_fen),
        "total": yuan(statement.total_fen), "adjusts_statement_id": statement.adjusts_statement_id,
        "reason": statement.reason, "decided_by": statement.decided_by,
        "decided_at": statement.decided_at.isoformat() if statement.decided_at else None,
    }
    if lines is not None:
        view["lines"] = [line_view(line) for line in lines]
    return view


def lines_by_statement(db: Session, statement_ids: Iterable[int]) -> dict[int, list[models.StatementLine]]:
    ids = list(statement_ids)
    found: dict[int, list[models.StatementLine]] = {statement_id: [] for statement_id in ids}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for line in db.scalars(select(models.StatementLine).where(models.StatementLine.statement_id.in_(chunk))
                               .order_by(models.StatementLine.statement_id, models.StatementLine.position)):
            found[line.statement_id].append(line)
    return found


def run_statements(db: Session, run: models.SettlementRun) -> list[models.Statement]:
    return list(db.scalars(select(models.Statement).where(models.Statement.run_id == run.id)
                           .order_by(models.Statement.party, models.Statement.seq)).all())


def run_sales_fen(run: models.SettlementRun) -> int:
    """The period's sales (GMV net of in-period refunds) counted once: from the run's groups, not from the
    statements — a split gives every party a statement on the same sales, which must not add up three times."""
    return sum(int(g.get("sales_fen") or 0) for g in run.groups if g.get("kind") == "sales")


def run_view(db: Session, run: models.SettlementRun, *, with_lines: bool = True) -> dict[str, Any]:
    """A run and its statements, as ``tideflow settle`` prints it."""
    statements = run_statements(db, run)
    lines = lines_by_statement(db, [s.id for s in statements]) if with_lines else {}
    unattributed = next((g for g in run.groups if g.get("kind") == "unattributed"), None)
    return {
        "run_id": run.id, "plan": run.plan_key, "plan_version": run.plan_version, "cycle": run.cycle,
        "period": {"from": run.period_from, "to": run.period_to}, "status": run.status,
        "statements": [statement_view(s, run, lines.get(s.id) if with_lines else None) for s in statements],
        "totals": {"statements": len(statements), "sales": yuan(run_sales_fen(run)),
                   "commission": yuan(sum(s.commission_fen for s in statements)),
                   "shares": {s.party: yuan(s.commission_fen) for s in statements if s.seq == 0}
                   if any(g.get("kind") == "sales" and (g.get("result") or {}).get("shares") for g in run.groups)
                   else {},
                   "clawback": yuan(sum(s.clawback_fen for s in statements)),
                   "total": yuan(sum(s.total_fen for s in statements))},
        "unattributed_orders": unattributed["order_count"] if unattributed else 0,
    }


CSV_COLUMNS = ("statement_id", "plan", "plan_version", "period_from", "period_to", "party", "party_type", "status",
               "line", "kind", "rule", "description", "exact_fen", "amount")


def statements_csv(db: Session, statements: Sequence[tuple[models.Statement, models.SettlementRun]],
                   header: Sequence[str] = CSV_COLUMNS, status: Callable[[str], str] = str,
                   total: str = "total") -> str:
    """One CSV row per statement line (plus a total row per statement); amounts in yuan. The API keeps the
    column names and raw statuses (programs read them); a page passes them in the reader's words."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    lines = lines_by_statement(db, [s.id for s, _ in statements])
    for statement, run in statements:
        head = [statement.id, run.plan_key, run.plan_version, run.period_from, run.period_to, statement.party,
                statement.party_type, status(statement.status)]
        for line in lines.get(statement.id, []):
            writer.writerow([*head, line.position + 1, line.kind, line.rule, line.description, line.exact_fen,
                             yuan(line.amount_fen)])
        writer.writerow([*head, total, total, "", "", "", yuan(statement.total_fen)])
    return out.getvalue()


def line_orders(db: Session, line: models.StatementLine, limit: int = 1000) -> list[models.Order]:
    """The orders a commission or share line was computed from (its ``refs``)."""
    spec = (line.refs or {}).get("orders")
    if not spec:
        return []
    query = select(models.Order).where(
        party_column(spec["party_ref"]) == spec["party"],
        models.Order.paid_at >= datetime.fromisoformat(spec["paid_from"]),
        models.Order.paid_at < datetime.fromisoformat(spec["paid_before"]),
        models.Order.status.in_(spec["statuses"]))
    if spec.get("channel"):
        query = query.where(models.Order.channel == spec["channel"])
    if spec.get("channels"):
        query = query.where(models.Order.channel.in_(spec["channels"]))
    return list(db.scalars(query.order_by(models.Order.paid_at, models.Order.id).limit(limit)).all())


def dashboard(db: Session, limit_periods: int = 6) -> dict[str, Any]:
    """What finance sees first: statements waiting for a decision, totals by period and party type, and
    per plan what changed against the previous period."""
    pending = db.execute(select(models.Statement, models.SettlementRun).join(models.SettlementRun)
                         .where(models.Statement.status == "pending")
                         .order_by(models.SettlementRun.period_from.desc(), models.Statement.party)
                         .limit(200)).all()
    pending_total = db.execute(select(func.count(), func.coalesce(func.sum(models.Statement.total_fen), 0))
                               .where(models.Statement.status == "pending")).one()
    totals = db.execute(select(models.SettlementRun.plan_key, models.SettlementRun.period_from,
                               models.SettlementRun.period_to, models.Statement.party_type,
                               func.count(), func.sum(models.Statement.sales_fen),
                               func.sum(models.Statement.total_fen))
                        .join(models.SettlementRun)
                        .where(models.Statement.status != "rejected")
                        .group_by(models.SettlementRun.plan_key, models.SettlementRun.period_from,
                                  models.SettlementRun.period_to, models.Statement.party_type)
                        .order_by(models.SettlementRun.plan_key, models.SettlementRun.period_from.desc(),
                                  models.Statement.party_type)).all()
    by_plan: dict[str, list[dict[str, Any]]] = {}
    for plan_key, start, end, party_type, count, sales, total in totals:
        periods = by_plan.setdefault(plan_key, [])
        period = next((p for p in periods if p["from"] == start), None)
        if period is None:
            if len(periods) >= limit_periods:
                continue
            period = {"from": start, "to": end, "types": [], "total_fen": 0, "sales_fen": 0, "statements": 0}
            periods.append(period)
        period["types"].append({"party_type": party_type or "—", "statements": int(count),
                                "sales": yuan(int(sales or 0)), "total": yuan(int(total or 0))})
        period["total_fen"] += int(total or 0)
        period["sales_fen"] += int(sales or 0)
        period["statements"] += int(count)
    gmv: dict[tuple[str, str], int] = {}  # the period's sales once (a split's statements repeat them)
    for run in db.scalars(select(models.SettlementRun).where(
            models.SettlementRun.plan_key.in_(list(by_plan)),
            models.SettlementRun.status.not_in(("open", "collected"))).order_by(models.SettlementRun.id)):
        gmv[(run.plan_key, run.period_from)] = run_sales_fen(run)
    changes = []
    for plan_key, periods in by_plan.items():
        for period in periods:
            period["sales_fen"] = gmv.get((plan_key, period["from"]), period["sales_fen"])
            period["total"], period["sales"] = yuan(period["total_fen"]), yuan(period["sales_fen"])
        if len(periods) >= 2:
            latest, before = periods[0], periods[1]
            changes.append({"plan": plan_key, "period": f"{latest['from']}..{latest['to']}",
                            "previous": f"{before['from']}..{before['to']}",
                            "total_delta": yuan(latest["total_fen"] - before["total_fen"]),
                            "sales_delta": yuan(latest["sales_fen"] - before["sales_fen"]),
                            "statements_delta": latest["statements"] - before["statements"],
                            "parties": _party_changes(db, plan_key, latest["from"], before["from"])})
    runs = db.scalars(select(models.SettlementRun).order_by(models.SettlementRun.id.desc()).limit(20)).all()
    return {"pending": [statement_view(s, r) for s, r in pending], "pending_count": int(pending_total[0]),
            "pending_total": yuan(int(pending_total[1])), "periods": by_plan, "changes": changes,
            "runs": [{"id": r.id, "plan": r.plan_key, "plan_version": r.plan_version, "status": r.status,
                      "period": f"{r.period_from}..{r.period_to}", "flow_id": r.flow_id} for r in runs]}


def _party_changes(db: Session, plan_key: str, latest_from: str, before_from: str) -> dict[str, Any]:
    def parties(period_from: str) -> dict[str, int]:
        rows = db.execute(select(models.Statement.party, func.sum(models.Statement.total_fen))
                          .join(models.SettlementRun)
                          .where(models.SettlementRun.plan_key == plan_key,
                                 models.SettlementRun.period_from == period_from,
                                 models.Statement.status != "rejected")
                          .group_by(models.Statement.party)).all()
        return {party: int(total or 0) for party, total in rows}

    now, then = parties(latest_from), parties(before_from)
    moved = sorted(((party, now.get(party, 0) - then.get(party, 0)) for party in set(now) | set(then)),
                   key=lambda item: -abs(item[1]))
    return {"new": sorted(set(now) - set(then))[:20], "gone": sorted(set(then) - set(now))[:20],
            "largest_moves": [{"party": party, "delta": yuan(delta)} for party, delta in moved[:10] if delta]}
