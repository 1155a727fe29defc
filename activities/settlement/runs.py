"""Settlement runs: a period settled exactly once per plan version, step by step.

=====================  =========================================================================
``open_run``           finds or creates the run for (plan key, plan version, period) — unique in the
                       database, so a re-run of the period returns the existing run and statements
``collect_run``        SQL aggregation of the period's sales per party (:mod:`.collect`) and of late
                       refunds against earlier settled periods (clawbacks)
``compute_run``        the commission (:func:`.compute.commission`) per group, the clawbacks
``split_run``          statements per party (split shares to their parties), status ``draft``; when the
                       period was settled before under another plan version, each statement is an
                       adjustment linked to the earlier one and carries only the difference
``submit_run``         draft → pending (waiting for finance)
``decide``             finance approves or rejects one statement, with a reason
``pay_run``            approved → paid, one payout row per statement under a unique idempotency key
=====================  =========================================================================

Each step only acts on a run in the status before it, so running a step twice (a retried activity, a
re-run schedule, the CLI and a schedule on the same period) changes nothing. Amounts are integer fen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from activities.settlement import line_text
from activities.settlement.collect import Group, collect_late_refunds, collect_sales, earliest_late_refund
from activities.settlement.compute import clawback, commission
from activities.settlement.errors import SettlementError, SettlementInputError
from activities.settlement.money import format_yuan
from activities.settlement.periods import Period, check_period, period_bounds
from activities.settlement.plans import SplitPlan
from activities.settlement.settlement_plan import SettlementPlan, dump_settlement_plan, load_settlement_plan
from engine.db import models
from engine.db.models import utcnow
from engine.text import Msg, joined

STATUS_ORDER: Final = ("open", "collected", "computed", "split", "pending_approval", "decided", "paid")
DECISIONS: Final = ("approved", "rejected")


class StatementStateError(SettlementError):
    """A decision or payout that does not fit the statement's status (already decided, not approved)."""


def _at(run: models.SettlementRun, status: str) -> bool:
    return STATUS_ORDER.index(run.status) >= STATUS_ORDER.index(status)


def find_run(db: Session, plan_key: str, version: str, period: Period) -> models.SettlementRun | None:
    return db.scalar(select(models.SettlementRun).where(
        models.SettlementRun.plan_key == plan_key, models.SettlementRun.plan_version == version,
        models.SettlementRun.period_from == period.start.isoformat(),
        models.SettlementRun.period_to == period.end.isoformat()))


class PeriodOverlapError(SettlementInputError):
    """The period overlaps a period of the same plan that is already settled: its orders would count twice."""


def covering_runs(db: Session, plan_key: str, period: Period) -> list[models.SettlementRun]:
    """Runs of ``plan_key`` (any version) whose period overlaps ``period`` without being exactly it."""
    start, end = period.start.isoformat(), period.end.isoformat()
    return list(db.scalars(select(models.SettlementRun).where(
        models.SettlementRun.plan_key == plan_key, models.SettlementRun.period_from <= end,
        models.SettlementRun.period_to >= start,
        ~((models.SettlementRun.period_from == start) & (models.SettlementRun.period_to == end)))
        .order_by(models.SettlementRun.id)))


def check_settleable(db: Session, plan: SettlementPlan, period: Period) -> None:
    """Refuse a period that does not fit the plan's cycle, or overlaps a period of the plan already settled
    (other than exactly this one: settling it again is idempotent, under a new version a correction)."""
    check_period(plan.cycle, period)
    overlapping = covering_runs(db, plan.key, period)
    if overlapping:
        first = overlapping[0]
        ids = [s for (s,) in db.execute(select(models.Statement.id).where(
            models.Statement.run_id == first.id).order_by(models.Statement.id).limit(5))]
        listed = ", ".join(map(str, ids))
        said = Msg("no statements yet") if not ids else Msg("statement %(ids)s", ids=listed) if len(ids) == 1 else \
            Msg("statements %(ids)s", ids=listed)
        raise PeriodOverlapError(
            Msg("the period %(label)s overlaps %(period_from)s..%(period_to)s, already "
                "settled for plan %(key)s by run %(id)s (%(said)s): its orders would "
                "be settled twice. Settle the periods of the plan's cycle one by one, "
                "and correct a settled period with an adjustment",
                label=period.label, period_from=first.period_from, period_to=first.period_to, key=plan.key,
                id=first.id, said=said))


def open_run(db: Session, plan: SettlementPlan, period: Period, *, flow_id: str | None = None,
             created_by: str = "") -> models.SettlementRun:
    """The run for this plan version and period: the existing one (settling it again changes nothing), or a
    new one (status ``open``) — for a period that fits the plan's cycle and overlaps no other settled period
    of the plan, so an order is settled at most once per plan. The same period under a new plan version is a
    correction: its statements adjust the earlier ones (see :func:`split_run`)."""
    version = plan.version
    existing = find_run(db, plan.key, version, period)
    if existing is not None:
        return existing
    check_settleable(db, plan, period)
    starts_at, ends_at = period_bounds(period, plan.timezone)
    run = models.SettlementRun(plan_key=plan.key, plan_version=version, plan=dump_settlement_plan(plan),
                               flow_id=flow_id, cycle=plan.cycle, period_from=period.start.isoformat(),
                               period_to=period.end.isoformat(), starts_at=starts_at, ends_at=ends_at,
                               status="open", groups=[], created_by=created_by[:200])
    try:
        with db.begin_nested():
            db.add(run)
            db.flush()
    except IntegrityError:  # another process opened it first
        found = find_run(db, plan.key, version, period)
        if found is None:
            raise
        return found
    return run


def run_plan(run: models.SettlementRun) -> SettlementPlan:
    return load_settlement_plan(run.plan)


def _group_entry(plan: SettlementPlan, group: Group) -> dict[str, Any]:
    return {"kind": "sales", **group.as_json(), "party_type": plan.party_type(group.party)}


def _same_group(entry: Mapping[str, Any], group: Group) -> bool:
    return (entry.get("kind") == "sales" and entry["party"] == group.party
            and (entry.get("channel") or "") == (group.channel or "") and dict(entry["roles"]) == group.roles)


def _earlier_runs(db: Session, run: models.SettlementRun, since: datetime) -> list[models.SettlementRun]:
    """The settled runs of the same plan key whose periods end by this one's start and after ``since``;
    for a period settled under several plan versions, the latest."""
    rows = db.scalars(select(models.SettlementRun).where(
        models.SettlementRun.plan_key == run.plan_key, models.SettlementRun.id != run.id,
        models.SettlementRun.ends_at <= run.starts_at, models.SettlementRun.ends_at > since,
        models.SettlementRun.status != "open", models.SettlementRun.status != "collected")
        .order_by(models.SettlementRun.id)).all()
    latest: dict[tuple[str, str], models.SettlementRun] = {}
    for row in rows:
        latest[(row.period_from, row.period_to)] = row
    return sorted(latest.values(), key=lambda row: row.period_from)


def collect_run(db: Session, run: models.SettlementRun) -> models.SettlementRun:
    """Aggregate the period's sales per group, and late refunds against earlier runs (clawbacks)."""
    if _at(run, "collected"):
        return run
    plan = run_plan(run)
    collected = collect_sales(db, plan, run.starts_at, run.ends_at)
    entries: list[dict[str, Any]] = [_group_entry(plan, group) for group in collected.groups]
    entries += [_group_entry(plan, group) for group in _guaranteed_without_sales(plan, collected.groups)]
    if collected.unattributed_orders:
        entries.append({"kind": "unattributed", "order_count": collected.unattributed_orders,
                        "gross_fen": collected.unattributed_fen})
    earliest = earliest_late_refund(db, plan, run.starts_at, run.ends_at)
    if earliest is not None:
        for earlier in _earlier_runs(db, run, earliest):
            earlier_plan = run_plan(earlier)
            late_refunds = collect_late_refunds(db, earlier_plan, earlier.starts_at, earlier.ends_at,
                                                run.starts_at, run.ends_at)
            for late in late_refunds:
                settled = next((entry for entry in earlier.groups if _same_group(entry, late.group)), None)
                if settled is None:
                    continue
                entries.append({
                    "kind": "clawback", "run_id": earlier.id, "period_from": earlier.period_from,
                    "period_to": earlier.period_to, "plan_version": earlier.plan_version,
                    "party": late.group.party, "channel": late.group.channel, "roles": late.group.roles,
                    "party_type": settled.get("party_type", ""), "settled_sales_fen": settled["sales_fen"],
                    "refunded_fen": late.refunded_fen, "previously_refunded_fen": late.previously_refunded_fen,
                    "refund_count": late.refund_count})
    run.groups = entries
    run.status, run.updated_at = "collected", utcnow()
    db.flush()
    return run


def _guaranteed_without_sales(plan: SettlementPlan, groups: list[Group]) -> list[Group]:
    """Parties of the plan's directory (``party_types``) with no orders in the period whose plan still pays
    them something on no sales (a guarantee): each gets a zero-sales group, so its statement is written and
    the guarantee is paid. (A split plan shares a pool of sales: nothing is owed without sales.)"""
    if isinstance(plan.rate_plan, SplitPlan) or plan.by_channel:
        return []
    have = {group.party for group in groups}
    owed: list[Group] = []
    for party in sorted(set(plan.party_types) - have):
        attributes = {"party_type": plan.party_type(party), "channel": "", "party": party}
        try:
            result = commission(plan.rate_plan, 0, plan.kpis.get(party), attributes=attributes)
        except SettlementError:  # e.g. a KPI plan without this party's KPIs: nothing can be said without sales
            continue
        if result.total_fen > 0:
            owed.append(Group(party=party, channel=None, roles={}))
    return owed


def _attributes(entry: Mapping[str, Any]) -> dict[str, str]:
    return {"party_type": str(entry.get("party_type") or ""), "channel": str(entry.get("channel") or ""),
            "party": str(entry["party"])}


def compute_run(db: Session, run: models.SettlementRun) -> models.SettlementRun:
    """The commission per group and the clawback per late-refund entry, stored on the run."""
    if _at(run, "computed"):
        return run
    plan = run_plan(run)
    plans: dict[int, SettlementPlan] = {}
    entries: list[dict[str, Any]] = []
    for original in run.groups:
        entry = dict(original)
        if entry["kind"] == "sales":
            result = commission(plan.rate_plan, int(entry["sales_fen"]), plan.kpis.get(entry["party"]),
                                attributes=_attributes(entry))
            entry["result"] = result.model_dump(mode="json")
        elif entry["kind"] == "clawback":
            earlier_id = int(entry["run_id"])
            if earlier_id not in plans:
                earlier = db.get(models.SettlementRun, earlier_id)
                if earlier is None:
                    raise SettlementError(Msg("run %(earlier_id)s that a clawback refers to is gone",
                                              earlier_id=earlier_id))
                plans[earlier_id] = run_plan(earlier)
            earlier_plan = plans[earlier_id]
            settled = int(entry["settled_sales_fen"])
            previously = min(int(entry["previously_refunded_fen"]), settled)
            refunded = min(int(entry["refunded_fen"]), settled - previously)
            back = clawback(earlier_plan.rate_plan, settled, refunded, earlier_plan.kpis.get(entry["party"]),
                            attributes=_attributes(entry), previously_refunded_fen=previously)
            entry.update(clawed_refund_fen=refunded, clawback_fen=back.clawback_fen,
                         earned_fen=back.earned.total_fen, recomputed_fen=back.recomputed.total_fen,
                         shares_clawback=back.shares_clawback)
        entries.append(entry)
    run.groups = entries
    run.status, run.updated_at = "computed", utcnow()
    db.flush()
    return run


@dataclass
class _Draft:
    party: str
    party_type: str
    sales_fen: int = 0
    order_count: int = 0
    commission_fen: int = 0
    clawback_fen: int = 0
    lines: list[dict[str, Any]] = field(default_factory=list)

    def line(self, kind: str, rule: str, description: str, exact: str, amount: int, refs: dict[str, Any]) -> None:
        """Add a line; a ``Msg`` description keeps its template too (``refs["text"]``, :mod:`line_text`)."""
        text = line_text.stored(description)
        self.lines.append({"kind": kind, "rule": rule[:200], "description": str(description), "exact_fen": exact,
                           "amount_fen": amount, "refs": {**refs, line_text.KEY: text} if text else refs})

    @property
    def total_fen(self) -> int:
        return sum(int(line["amount_fen"]) for line in self.lines)


def _yuan(fen: int) -> str:
    return format_yuan(fen, grouping=True, symbol=True)


def _order_refs(run: models.SettlementRun, plan: SettlementPlan, entry: Mapping[str, Any]) -> dict[str, Any]:
    """Where a line's orders are: the party (how it is read), channel, roles, period and counts."""
    return {"orders": {"party_ref": plan.party, "party": entry["party"], "channel": entry.get("channel"),
                       "roles": entry.get("roles") or {}, "paid_from": run.starts_at.isoformat(),
                       "paid_before": run.ends_at.isoformat(), "statuses": list(plan.statuses),
                       "channels": plan.channels},
            "order_count": entry["order_count"], "gross_fen": entry["gross_fen"],
            "refunded_fen": entry["refunded_fen"], "sales_fen": entry["sales_fen"],
            "plan_key": run.plan_key, "plan_version": run.plan_version}


def _drafts(run: models.SettlementRun, plan: SettlementPlan) -> dict[str, _Draft]:
    drafts: dict[str, _Draft] = {}

    def draft(party: str, party_type: str) -> _Draft:
        if party not in drafts:
            drafts[party] = _Draft(party, party_type)
        return drafts[party]

    for entry in run.groups:
        if entry["kind"] == "sales":
            result = entry["result"]
            refs = _order_refs(run, plan, entry)
            channel = f" [{entry['channel']}]" if entry.get("channel") else ""
            described = [line_text.restored(line.get("text"), line["description"]) for line in result["lines"]]
            if result["shares"]:
                pool = joined(described, "; ")
                for share in result["shares"]:
                    party = entry["roles"][share["party"]]  # typed by the directory, else by its split role
                    target = draft(party, plan.party_types.get(party) or share["party"])
                    target.sales_fen += int(entry["sales_fen"])
                    target.order_count += int(entry["order_count"])
                    target.commission_fen += int(share["amount_fen"])
                    target.line("share", f"split / {share['party']} {share['percent']}%",
                                Msg("%(role)s %(percent)s%% of %(total)s on %(party)s's sales%(channel)s (%(pool)s)",
                                    role=share["party"], percent=share["percent"],
                                    total=_yuan(int(result["total_fen"])), party=entry["party"], channel=channel,
                                    pool=pool),
                                str(share["exact_fen"]), int(share["amount_fen"]),
                                {**refs, "pool_fen": result["total_fen"], "split_party": share["party"]})
            else:
                target = draft(entry["party"], str(entry.get("party_type") or ""))
                target.sales_fen += int(entry["sales_fen"])
                target.order_count += int(entry["order_count"])
                target.commission_fen += int(result["total_fen"])
                for line, description in zip(result["lines"], described, strict=True):
                    target.line(line["kind"], line["component"],
                                Msg("%(line)s%(channel)s", line=description, channel=channel) if channel
                                else description,
                                str(line["exact_fen"]), int(line["amount_fen"]), refs)
        elif entry["kind"] == "clawback":
            shares = entry.get("shares_clawback") or {}
            parts = ({entry["roles"][name]: amount for name, amount in shares.items()} if shares
                     else {entry["party"]: entry["clawback_fen"]})
            roles_of = {party: name for name, party in (entry.get("roles") or {}).items()}
            for party, amount in parts.items():
                target = draft(party, plan.party_types.get(party) or (roles_of.get(party, "") if shares else "")
                               or str(entry.get("party_type") or ""))
                target.clawback_fen += int(amount)
                target.line(
                    "clawback", "clawback",
                    Msg("refunds of %(refunds)s completed this period for %(party)s's orders of %(start)s..%(end)s "
                        "(run %(run)s): that period's commission falls from %(earned)s to %(recomputed)s",
                        refunds=_yuan(int(entry["clawed_refund_fen"])), party=entry["party"],
                        start=entry["period_from"], end=entry["period_to"], run=entry["run_id"],
                        earned=_yuan(int(entry["earned_fen"])), recomputed=_yuan(int(entry["recomputed_fen"]))),
                    str(-int(amount)), -int(amount),
                    {"clawback_of_run": entry["run_id"], "period_from": entry["period_from"],
                     "period_to": entry["period_to"], "party": entry["party"], "channel": entry.get("channel"),
                     "roles": entry.get("roles") or {}, "refunded_fen": entry["clawed_refund_fen"],
                     "previously_refunded_fen": entry["previously_refunded_fen"],
                     "refund_count": entry["refund_count"], "plan_version": entry["plan_version"]})
    return drafts


def _previous_statements(db: Session, run: models.SettlementRun) -> dict[str, list[models.Statement]]:
    """Statements of the same plan key and period under earlier plan versions, by party."""
    rows = db.scalars(select(models.Statement).join(models.SettlementRun).where(
        models.SettlementRun.plan_key == run.plan_key, models.SettlementRun.period_from == run.period_from,
        models.SettlementRun.period_to == run.period_to, models.SettlementRun.id < run.id,
        models.Statement.status != "rejected").order_by(models.Statement.id)).all()
    found: dict[str, list[models.Statement]] = {}
    for row in rows:
        found.setdefault(row.party, []).append(row)
    return found


def split_run(db: Session, run: models.SettlementRun) -> models.SettlementRun:
    """Per-party statements (status ``draft``) with their lines; adjustments against earlier versions."""
    if _at(run, "split"):
        return run
    plan = run_plan(run)
    drafts = _drafts(run, plan)
    previous = _previous_statements(db, run)
    adjusts: dict[str, int] = {}
    for party, earlier in previous.items():
        target = drafts.get(party) or drafts.setdefault(party, _Draft(party, earlier[-1].party_type))
        settled = sum(row.total_fen for row in earlier)
        adjusts[party] = earlier[-1].id
        target.line("adjustment", "correction",
                    Msg("this period was settled before under an earlier plan version (statement %(id)s): "
                        "%(settled)s already settled is deducted", id=earlier[-1].id, settled=_yuan(settled)),
                    str(-settled), -settled, {"replaces_statements": [row.id for row in earlier]})
    statements = [models.Statement(run_id=run.id, seq=0, party=d.party, party_type=d.party_type, sales_fen=d.sales_fen,
                                   order_count=d.order_count, commission_fen=d.commission_fen,
                                   clawback_fen=d.clawback_fen, total_fen=d.total_fen, status="draft",
                                   adjusts_statement_id=adjusts.get(d.party))
                   for d in sorted(drafts.values(), key=lambda d: d.party)]
    db.add_all(statements)
    db.flush()
    rows = [{"statement_id": statement.id, "position": position, **line}
            for statement in statements for position, line in enumerate(drafts[statement.party].lines)]
    if rows:
        db.execute(insert(models.StatementLine), rows)
    run.status, run.updated_at = "split", utcnow()
    db.flush()
    return run


def submit_run(db: Session, run: models.SettlementRun) -> models.SettlementRun:
    """Hand the run's draft statements to finance (draft → pending)."""
    if _at(run, "pending_approval"):
        return run
    for statement in db.scalars(select(models.Statement).where(models.Statement.run_id == run.id,
                                                                models.Statement.status == "draft")):
        statement.status = "pending"
    run.status, run.updated_at = "pending_approval", utcnow()
    _settle_status(db, run)
    db.flush()
    return run


def _settle_status(db: Session, run: models.SettlementRun) -> None:
    counts = dict(db.execute(select(models.Statement.status, func.count()).where(models.Statement.run_id == run.id)
                             .group_by(models.Statement.status)).all())
    if counts.get("pending") or counts.get("draft"):
        return
    if run.status == "pending_approval":
        run.status = "decided"
    if run.status == "decided" and not counts.get("approved"):
        run.status = "paid"


def settle(db: Session, plan: SettlementPlan, period: Period, *, flow_id: str | None = None,
           created_by: str = "") -> models.SettlementRun:
    """collect → compute → split for one period: the same steps the scheduled run's nodes take."""
    run = open_run(db, plan, period, flow_id=flow_id, created_by=created_by)
    collect_run(db, run)
    compute_run(db, run)
    split_run(db, run)
    return run


def pending_count(db: Session, run: models.SettlementRun) -> int:
    return int(db.scalar(select(func.count()).select_from(models.Statement).where(
        models.Statement.run_id == run.id, models.Statement.status.in_(("draft", "pending")))) or 0)


def decide(db: Session, statement_id: int, decision: str, reason: str, actor: str) -> models.Statement:
    """Finance's decision on a pending statement. A rejection needs a reason."""
    if decision not in DECISIONS:
        raise StatementStateError(Msg("decision %(decision)s is unknown; use approved or rejected",
                                      decision=repr(decision)))
    reason = reason.strip()
    if decision == "rejected" and not reason:
        raise StatementStateError(Msg("say why the statement is rejected: fill in 'reason'"))
    statement = db.scalar(select(models.Statement).where(models.Statement.id == statement_id).with_for_update())
    if statement is None:
        raise StatementStateError(Msg("statement %(statement_id)s does not exist", statement_id=statement_id))
    if statement.status != "pending":
        raise StatementStateError(Msg("statement %(statement_id)s is %(status)s, not pending; only a pending statement "
                                      "can be approved or rejected (correct a decided one with an adjustment)",
                                      statement_id=statement_id, status=statement.status))
    statement.status, statement.reason = decision, reason[:2000]
    statement.decided_by, statement.decided_at = actor[:80], utcnow()
    run = db.get(models.SettlementRun, statement.run_id)
    if run is not None:
        _settle_status(db, run)
    db.flush()
    return statement


def adjust(db: Session, statement_id: int, amount_fen: int, reason: str, actor: str) -> models.Statement:
    """A correction: a new pending statement in the same run, linked to ``statement_id``, for ``amount_fen``."""
    if not reason.strip():
        raise StatementStateError(Msg("say why the statement is corrected: fill in 'reason'"))
    original = db.get(models.Statement, statement_id)
    if original is None:
        raise StatementStateError(Msg("statement %(statement_id)s does not exist", statement_id=statement_id))
    seq = int(db.scalar(select(func.max(models.Statement.seq)).where(
        models.Statement.run_id == original.run_id, models.Statement.party == original.party)) or 0) + 1
    statement = models.Statement(run_id=original.run_id, seq=seq, party=original.party,
                                 party_type=original.party_type, total_fen=amount_fen, status="pending",
                                 reason=reason.strip()[:2000], adjusts_statement_id=original.id,
                                 decided_by=None)
    db.add(statement)
    db.flush()
    description = Msg("correction of statement %(id)s by %(actor)s: %(reason)s", id=original.id, actor=actor,
                      reason=reason.strip())
    db.add(models.StatementLine(statement_id=statement.id, position=0, kind="adjustment", rule="correction",
                                description=str(description), exact_fen=str(amount_fen), amount_fen=amount_fen,
                                refs={"adjusts_statement": original.id, line_text.KEY: line_text.stored(description)}))
    run = db.get(models.SettlementRun, original.run_id)
    if run is not None and run.status in ("decided", "paid"):
        run.status = "pending_approval"
    db.flush()
    return statement


def pay_run(db: Session, run: models.SettlementRun, *, method: str = "file", target: str = "") -> list[models.Payout]:
    """One payout per approved statement (idempotency key ``statement/<id>``); approved → paid."""
    made: list[models.Payout] = []
    approved = db.scalars(select(models.Statement).where(models.Statement.run_id == run.id,
                                                         models.Statement.status == "approved")
                          .order_by(models.Statement.party, models.Statement.seq).with_for_update()).all()
    for statement in approved:
        key = f"statement/{statement.id}"
        existing = db.scalar(select(models.Payout).where(models.Payout.idempotency_key == key))
        if existing is None:
            existing = models.Payout(idempotency_key=key, statement_id=statement.id, party=statement.party,
                                     amount_fen=statement.total_fen, method=method, target=target,
                                     status="instructed" if statement.total_fen > 0 else "offset",
                                     detail={"run_id": run.id, "period": f"{run.period_from}..{run.period_to}"})
            db.add(existing)
            made.append(existing)
        statement.status = "paid"
    if run.status == "decided":
        run.status = "paid"
    run.updated_at = utcnow()
    db.flush()
    return made


def run_payouts(db: Session, run: models.SettlementRun) -> list[models.Payout]:
    return list(db.scalars(select(models.Payout).join(models.Statement).where(models.Statement.run_id == run.id)
                           .order_by(models.Payout.party, models.Payout.id)).all())
