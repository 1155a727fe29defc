"""Staff handover (离职继承 / 在职转接) in the database: plan, send, follow the takeovers, move the work.

A handover is planned before anything is sent (:func:`create_plan`): Tideflow asks WeCom for the
member's customers (``get_unassigned_list`` for a member who left, ``externalcontact/list`` for one
still employed) and groups (``groupchat/list``), plans with :func:`activities.workforce.handover.plan`
and stores one :class:`~engine.db.workforce_models.HandoverItem` per customer and group — movable
or **blocked, with why**. Executing it is the :class:`~activities.workforce.workflows.HandoverWorkflow`
(durable: sends day by day, waits out the 24 h takeovers, polls until every customer is final)
calling the functions below as activities:

* :func:`begin` — the member's open tickets go to the colleague who takes over the ticket's
  customer (when that colleague works the ticket's group) or back to the group's assignment;
  the member's agent goes offline;
* :func:`send_day` — the planned calls of one day (≤ 100 customers / chats each), items marked
  ``sending`` before a call and settled after it, so a retry after a crash neither loses nor
  repeats a customer (WeCom's "already being transferred" for an item we were sending means it
  went through);
* :func:`poll` — ``transfer_result`` per takeover colleague until each customer is done (1),
  refused (3) or at the colleague's limit (4); a done customer's work moves (:func:`move_work`):
  their ``wecom_follow_user``, their open tickets, mass sends still waiting on the old member, and
  a ``wecom.owner_changed`` event that reaches their running journeys.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.orm import Session

from activities.tickets import service as tickets
from activities.workforce import staff as staff_service
from activities.workforce.common import WorkforceError, customer_ids_of, iso, settings_of, wecom_refusal
from activities.workforce.handover import (
    BLOCK_REASONS,
    Colleague,
    CustomerRef,
    Departing,
    GroupRef,
    Strategy,
    plan,
)
from activities.workforce.quota import CHINA
from connectors.wecom.api_errors import ApiError
from connectors.wecom.client import WeComClient
from connectors.wecom.groupchat import list_groups
from connectors.wecom.transfer import (
    FINAL_STATUSES,
    TAKEOVER_DELAY_HOURS,
    TransferOutcome,
    TransferState,
    customers_of,
    get_member,
    transfer_customers,
    transfer_groups,
    transfer_results,
    unassigned_customers,
)
from engine.db import models
from engine.db import workforce_models as wf
from engine.db.session import session_factory, transaction
from engine.text import Msg, message_of
from wording.stored import stored, stored_english

#: item statuses that count as a transfer WeCom started (for the 90-day rule)
STARTED = ("sent", "done", "refused", "limit_reached")
RESULT_STATUS = {1: "done", 3: "refused", 4: "limit_reached", 5: "failed"}
#: WeCom answers these when the customer is already in a transfer — ours, if we were sending it
ALREADY_MOVING = frozenset({40100, 40129})


# -- planning ------------------------------------------------------------------------------------------


def gather(client: WeComClient, userid: str, resigned: bool) -> tuple[list[str], list[str]]:
    """The member's customers and groups as WeCom knows them now."""
    if resigned:
        customers = [c.external_userid for c in unassigned_customers(client, userid)]
    else:
        customers = customers_of(client, userid)
    groups = [chat_id for chat_id, _ in list_groups(client, owners=[userid])]
    return list(dict.fromkeys(customers)), list(dict.fromkeys(groups))


def _history(db: Session, kind: str, ids: Sequence[str], since: datetime) -> tuple[dict[str, list[datetime]],
                                                                                   set[str]]:
    times: dict[str, list[datetime]] = defaultdict(list)
    moving: set[str] = set()
    for start in range(0, len(ids), 500):
        rows = db.execute(select(wf.HandoverItem.external_id, wf.HandoverItem.status, wf.HandoverItem.sent_at).where(
            wf.HandoverItem.kind == kind, wf.HandoverItem.external_id.in_(list(ids[start:start + 500])),
            wf.HandoverItem.sent_at.is_not(None), wf.HandoverItem.sent_at >= since))
        for external_id, status, sent_at in rows:
            if status in STARTED and sent_at is not None:
                times[external_id].append(sent_at)
            if status in ("sent", "sending"):
                moving.add(external_id)
    return times, moving


def _customer_refs(db: Session, external_ids: Sequence[str]) -> list[CustomerRef]:
    ids = customer_ids_of(db, external_ids)
    tags: dict[str, list[str]] = defaultdict(list)
    attributes: dict[str, dict[str, Any]] = {}
    owned = list(set(ids.values()))
    for start in range(0, len(owned), 500):
        chunk = owned[start:start + 500]
        for cid, tag in db.execute(select(models.CustomerTag.customer_id, models.CustomerTag.tag)
                                   .where(models.CustomerTag.customer_id.in_(chunk))):
            tags[cid].append(tag)
        for cid, attrs in db.execute(select(models.Customer.id, models.Customer.attributes)
                                     .where(models.Customer.id.in_(chunk))):
            attributes[cid] = dict(attrs or {})
    refs = []
    for external in external_ids:
        owner: str | None = ids.get(external)
        refs.append(CustomerRef(external, owner, tuple(sorted(tags.get(owner or "", []))),
                                attributes.get(owner or "", {})))
    return refs


def create_plan(database_url: str | None, connector_id: str, client: WeComClient, userid: str, *,
                strategy: Strategy | None, now: datetime, created_by: str = "system", trigger: str = "admin",
                departed: bool = True, transfer_success_msg: str | None = None) -> int:
    """Ask WeCom for the member's customers and groups, plan the handover, store it; the handover id.

    ``departed``: the member leaves (their open tickets move at once); else only their customers are
    reassigned (在职转接 of some or all customers). The API mode follows WeCom: a member WeCom reports as
    left uses the resigned APIs, one still employed the in-service APIs (the customer is told)."""
    if not userid:
        raise WorkforceError(Msg("say whose customers to hand over"), Msg("send 'userid'"), "userid")
    try:
        member = get_member(client, userid)
    except ApiError as exc:
        if exc.errcode != 60111:  # busy, or WeCom refused to say (a permission): not an unknown member
            raise wecom_refusal(exc) from None
        raise WorkforceError(Msg("WeCom does not know member '%(userid)s': %(exc)s", userid=userid,
                                 exc=message_of(exc)),
                             Msg("check the userid"), "userid", 404) from None
    resigned = member.resigned
    customers, groups = gather(client, userid, resigned)
    with transaction(database_url) as db:
        settings = settings_of(db, connector_id)
        chosen = strategy or Strategy.model_validate(settings.default_strategy or {"kind": "round_robin"})
        row = staff_service.upsert_member(db, connector_id, member, now)
        if departed:
            staff_service.mark_departed(db, connector_id, userid, now)
        colleagues = [Colleague(s.userid, s.name, tuple(int(d) for d in s.departments or []), s.status == "active",
                                s.last_active_at, 0, s.customer_limit)
                      for s in db.scalars(select(wf.WeComStaff).where(wf.WeComStaff.connector_id == connector_id))]
        since = now - timedelta(days=90)
        customer_history, moving = _history(db, "customer", customers, since)
        group_history, _ = _history(db, "group", groups, since)
        day_start = now.astimezone(CHINA).replace(hour=0, minute=0, second=0, microsecond=0)
        moved_today = db.scalar(select(func.count()).select_from(wf.HandoverItem).join(
            wf.Handover, wf.Handover.id == wf.HandoverItem.handover_id).where(
            wf.Handover.connector_id == connector_id, wf.Handover.handover_userid == userid,
            wf.HandoverItem.kind == "group", wf.HandoverItem.sent_at >= day_start)) or 0
        departing = Departing(userid, resigned, tuple(member.departments), row.resigned_at if resigned else None,
                              row.last_active_at)
        result = plan(departing, _customer_refs(db, customers), [GroupRef(g) for g in groups], colleagues, chosen, now,
                      customer_history=customer_history, group_history=group_history, in_transfer=moving,
                      groups_moved_today=int(moved_today))
        message = transfer_success_msg if transfer_success_msg is not None else settings.transfer_success_msg
        handover = wf.Handover(connector_id=connector_id, handover_userid=userid,
                               mode="resigned" if resigned else "onjob", strategy=chosen.model_dump(mode="json"),
                               status="planned", trigger=trigger, summary={**result.summary(), "departed": departed},
                               warnings=[stored(w) for w in result.warnings],  # said in the reader's language
                               transfer_success_msg="" if resigned else (message or ""),
                               created_by=created_by, created_at=now, updated_at=now)
        db.add(handover)
        db.flush()
        table = wf.HandoverItem.__table__
        assert isinstance(table, Table)
        rows = [{"handover_id": handover.id, "kind": m.kind, "external_id": m.id, "customer_id": m.customer_id,
                 "takeover_userid": m.to, "status": "blocked" if m.blocked else "planned", "reason": m.blocked or "",
                 "detail": BLOCK_REASONS.get(m.blocked, "") if m.blocked else m.rule,
                 "errcode": None, "movable_from": m.movable_from, "day": m.day, "sent_at": None, "takeover_at": None,
                 "final_at": None, "work_moved": False} for m in result.moves]
        for start in range(0, len(rows), 1000):
            db.execute(insert(table), rows[start:start + 1000])
        return handover.id


# -- reading ------------------------------------------------------------------------------------------


def get(db: Session, handover_id: int) -> wf.Handover:
    found = db.get(wf.Handover, handover_id)
    if found is None:
        raise WorkforceError(Msg("handover %(handover_id)s does not exist", handover_id=handover_id),
                             Msg("check the id"), "id", 404)
    return found


def progress(db: Session, handover_id: int) -> dict[str, dict[str, int]]:
    """Items per kind and status."""
    out: dict[str, dict[str, int]] = {"customer": {}, "group": {}}
    for kind, status, count in db.execute(select(wf.HandoverItem.kind, wf.HandoverItem.status, func.count()).where(
            wf.HandoverItem.handover_id == handover_id).group_by(wf.HandoverItem.kind, wf.HandoverItem.status)):
        out.setdefault(kind, {})[status] = int(count)
    return out


def view(db: Session, handover: wf.Handover, *, items_status: str | None = None, limit: int = 200,
         offset: int = 0) -> dict[str, Any]:
    query = select(wf.HandoverItem).where(wf.HandoverItem.handover_id == handover.id)
    if items_status:
        query = query.where(wf.HandoverItem.status == items_status)
    items = db.scalars(query.order_by(wf.HandoverItem.id).offset(offset).limit(limit)).all()
    done = progress(db, handover.id)
    total = sum(sum(v.values()) for v in done.values())
    final = sum(n for v in done.values() for s, n in v.items()
                if s in ("done", "refused", "limit_reached", "failed", "blocked", "cancelled"))
    return {"id": handover.id, "connector_id": handover.connector_id, "userid": handover.handover_userid,
            "mode": handover.mode, "status": handover.status, "trigger": handover.trigger,
            "strategy": handover.strategy, "summary": handover.summary,
            "warnings": [stored_english(w) for w in handover.warnings],
            "progress": done, "percent": round(100 * final / total) if total else 100,
            "workflow_id": handover.workflow_id, "error": handover.error,
            "created_by": handover.created_by, "created_at": iso(handover.created_at),
            "finished_at": iso(handover.finished_at),
            "items": [{"kind": i.kind, "id": i.external_id, "customer_id": i.customer_id, "to": i.takeover_userid,
                       "status": i.status, "reason": i.reason, "detail": i.detail, "errcode": i.errcode,
                       "movable_from": iso(i.movable_from), "day": i.day, "sent_at": iso(i.sent_at),
                       "takeover_at": iso(i.takeover_at), "final_at": iso(i.final_at)} for i in items]}


# -- executing ------------------------------------------------------------------------------------------


def begin(database_url: str | None, handover_id: int, now: datetime, actor: str = "handover") -> list[int]:
    """Mark the handover running; a departing member's open tickets move now. The ticket ids moved."""
    with transaction(database_url) as db:
        handover = get(db, handover_id)
        if handover.status not in ("planned", "running", "waiting"):
            return []
        handover.status, handover.updated_at = "running", now
        if not handover.summary.get("departed"):
            return []
        takeover = {cid: to for cid, to in db.execute(select(wf.HandoverItem.customer_id,
                                                             wf.HandoverItem.takeover_userid)
                                                       .where(wf.HandoverItem.handover_id == handover_id,
                                                              wf.HandoverItem.kind == "customer",
                                                              wf.HandoverItem.customer_id.is_not(None)))}
        return move_open_tickets(db, handover.connector_id, handover.handover_userid, takeover, now, actor,
                                 offline=True)


def move_open_tickets(db: Session, connector_id: str, userid: str, takeover_by_customer: dict[str | None, str | None],
                      now: datetime, actor: str, *, customer_id: str | None = None, offline: bool = False) -> list[int]:
    """Open tickets assigned to the member's Tideflow user go to the colleague who takes over the ticket's
    customer (if they work the ticket's group), else back to the group's assignment strategy."""
    old = staff_service.user_id_of(db, connector_id, userid)
    if old is None:
        return []
    if offline:
        agent = db.get(models.Agent, old)
        if agent is not None:
            agent.availability, agent.updated_at = "offline", now
    query = select(models.Ticket).where(models.Ticket.assignee_id == old,
                                        models.Ticket.status.in_(tickets.OPEN_STATUSES))
    if customer_id is not None:
        query = query.where(models.Ticket.customer_id == customer_id)
    moved = []
    for ticket in db.scalars(query.order_by(models.Ticket.id)).all():
        to = takeover_by_customer.get(ticket.customer_id)
        new = staff_service.user_id_of(db, connector_id, to) if to else None
        agent = db.get(models.Agent, new) if new is not None else None
        if agent is not None and ticket.group_key in (agent.groups or []):
            tickets.transfer(db, ticket, now, actor, assignee_id=new,
                             note=f"handover: {userid} → {to} (离职继承/在职转接)")
        else:
            tickets.assign(db, ticket, now, actor, exclude=[old])
        moved.append(ticket.id)
    return moved


def send_day(database_url: str | None, client: WeComClient, handover_id: int, day: int, now: datetime,
             heartbeat: Callable[[Any], None] | None = None) -> dict[str, int]:
    """Make the day's planned calls; returns counts. A rate limit raises (retryable) after what went through
    is recorded, so the retry continues where it stopped."""
    with session_factory(database_url)() as db:
        handover = get(db, handover_id)
        if handover.status in ("cancelled", "done"):
            return {"sent": 0, "failed": 0, "skipped": 1}
        resigned = handover.mode == "resigned"
        userid, message = handover.handover_userid, handover.transfer_success_msg or None
        pending = db.execute(select(wf.HandoverItem.id, wf.HandoverItem.kind, wf.HandoverItem.external_id,
                                    wf.HandoverItem.takeover_userid, wf.HandoverItem.status).where(
            wf.HandoverItem.handover_id == handover_id, wf.HandoverItem.day == day,
            wf.HandoverItem.status.in_(("planned", "sending"))).order_by(wf.HandoverItem.id)).all()
    groups: dict[tuple[str, str], list[tuple[int, str, str]]] = defaultdict(list)
    for item_id, kind, external, to, status in pending:
        groups[(kind, str(to))].append((item_id, external, status))
    counts = {"sent": 0, "failed": 0}
    for (kind, to), members in groups.items():
        for start in range(0, len(members), 100):
            chunk = members[start:start + 100]
            ids = [m[1] for m in chunk]
            with transaction(database_url) as db:
                db.execute(update(wf.HandoverItem).where(wf.HandoverItem.id.in_([m[0] for m in chunk]))
                           .values(status="sending"))
            was_sending = {m[1] for m in chunk if m[2] == "sending"}
            try:
                if kind == "customer":
                    outcomes = transfer_customers(client, userid, to, ids, resigned=resigned,
                                                  transfer_success_msg=message)
                    failed = {o.id: o for o in outcomes if not o.started
                              and not (o.errcode in ALREADY_MOVING and o.id in was_sending)}
                else:
                    failed = {o.id: o for o in transfer_groups(client, ids, to, resigned=resigned)}
            except ApiError as exc:
                if exc.retryable:
                    raise  # busy or rate-limited: the activity retries; these items stay "sending"
                # WeCom refused the whole call (the colleague cannot take over, the member is not resigned …)
                refusal = TransferOutcome("", exc.errcode or 0, exc.errmsg or str(exc))
                failed = {external: TransferOutcome(external, refusal.errcode, refusal.errmsg) for external in ids}
            with transaction(database_url) as db:
                for item_id, external, _ in chunk:
                    item = db.get(wf.HandoverItem, item_id)
                    assert item is not None
                    item.sent_at = now
                    if external in failed:
                        item.status, item.errcode = "failed", failed[external].errcode
                        item.reason, item.detail = "wecom_refused", failed[external].reason
                        item.final_at = now
                        counts["failed"] += 1
                    elif kind == "customer":
                        item.status = "sent"
                        item.takeover_at = now + timedelta(hours=TAKEOVER_DELAY_HOURS)
                        counts["sent"] += 1
                    else:  # a group's new owner takes over at once
                        item.status, item.takeover_at, item.final_at = "done", now, now
                        counts["sent"] += 1
                handover = get(db, handover_id)
                handover.updated_at = now
            if heartbeat is not None:
                heartbeat({"kind": kind, "to": to, "done": start + len(chunk)})
    return counts


def poll(database_url: str | None, client: WeComClient, handover_id: int, now: datetime) -> dict[str, Any]:
    """Read the takeover results of every sent customer; move the work of those done. Returns how many still
    wait, when to look next, the events to emit and the ticket ids moved."""
    with session_factory(database_url)() as db:
        handover = get(db, handover_id)
        resigned = handover.mode == "resigned"
        pairs = [str(t) for t in db.scalars(select(wf.HandoverItem.takeover_userid).where(
            wf.HandoverItem.handover_id == handover_id, wf.HandoverItem.kind == "customer",
            wf.HandoverItem.status == "sent").distinct())]
        userid, connector_id = handover.handover_userid, handover.connector_id
    states: dict[tuple[str, str], TransferState] = {}
    for to in pairs:
        for answer in transfer_results(client, userid, to, resigned=resigned):
            states[(to, answer.external_userid)] = answer
    events: list[dict[str, Any]] = []
    tickets_moved: list[int] = []
    next_check: datetime | None = None
    waiting = 0
    with transaction(database_url) as db:
        items = db.scalars(select(wf.HandoverItem).where(wf.HandoverItem.handover_id == handover_id,
                                                         wf.HandoverItem.kind == "customer",
                                                         wf.HandoverItem.status == "sent")).all()
        for item in items:
            state = states.get((str(item.takeover_userid), item.external_id))
            if state is None or not state.final:
                waiting += 1
                due = (datetime.fromtimestamp(state.takeover_time, now.tzinfo) if state is not None
                       and state.takeover_time else item.takeover_at)
                if due is not None and (next_check is None or due < next_check):
                    next_check = due
                continue
            item.status = RESULT_STATUS.get(state.status, "failed")
            item.final_at = now
            if state.takeover_time:
                item.takeover_at = datetime.fromtimestamp(state.takeover_time, now.tzinfo)
            if item.status == "done" and not item.work_moved:
                event, moved = move_work(db, connector_id, item, userid, handover_id, now)
                events.append(event)
                tickets_moved += moved
                item.work_moved = True
            elif item.status != "done":
                item.reason = {"refused": "customer_refused", "limit_reached": "customer_limit_exceed"}.get(
                    item.status, "failed")
        handover = get(db, handover_id)
        handover.status = "waiting" if waiting else handover.status
        handover.updated_at = now
    return {"waiting": waiting, "next_check": iso(next_check), "events": events, "tickets": tickets_moved,
            "final_statuses": sorted(FINAL_STATUSES)}


def move_work(db: Session, connector_id: str, item: wf.HandoverItem, old: str, handover_id: int,
              now: datetime) -> tuple[dict[str, Any], list[int]]:
    """A customer's takeover is done: their owner, tickets and waiting mass sends follow; the journey event."""
    new = str(item.takeover_userid)
    customer_id = item.customer_id
    if customer_id is not None:
        customer = db.get(models.Customer, customer_id)
        if customer is not None:
            attributes = dict(customer.attributes or {})
            if attributes.get("wecom_follow_user") in (None, "", old):
                attributes["wecom_follow_user"] = new
                customer.attributes, customer.updated_at = attributes, now
    moved = move_open_tickets(db, connector_id, old, {customer_id: new}, now, "handover",
                              customer_id=customer_id) if customer_id else []
    requeue_mass_sends(db, connector_id, item.external_id, old, new)
    event = {"id": f"owner:{handover_id}:{item.external_id}", "type": "wecom.owner_changed",
             "customer": {"wecom_external_userid": item.external_id},
             "occurred_at": (item.takeover_at or now).isoformat(),
             "payload": {"from": old, "to": new, "handover_id": handover_id, "user_id": new}}
    return event, moved


def requeue_mass_sends(db: Session, connector_id: str, recipient: str, old: str, new: str) -> int:
    """Mass-send recipients still waiting on the old member's confirmation go to the new one's next task."""
    result = db.execute(update(wf.MassSendRecipient).where(
        wf.MassSendRecipient.connector_id == connector_id, wf.MassSendRecipient.recipient == recipient,
        wf.MassSendRecipient.sender == old, wf.MassSendRecipient.status.in_(("queued", "waiting")))
        .values(sender=new, status="requeued"))
    return int(getattr(result, "rowcount", 0) or 0)


def on_transfer_failed(db: Session, connector_id: str, external_userid: str, takeover: str, reason: str,
                       now: datetime) -> bool:
    """The ``transfer_fail`` push: the customer refused or the colleague's limit was reached."""
    item = db.scalar(select(wf.HandoverItem).join(wf.Handover, wf.Handover.id == wf.HandoverItem.handover_id).where(
        wf.Handover.connector_id == connector_id, wf.HandoverItem.kind == "customer",
        wf.HandoverItem.external_id == external_userid, wf.HandoverItem.takeover_userid == takeover,
        wf.HandoverItem.status == "sent").order_by(wf.HandoverItem.id.desc()).limit(1))
    if item is None:
        return False
    item.status = "limit_reached" if reason == "customer_limit_exceed" else "refused"
    item.reason, item.final_at = reason or "customer_refused", now
    return True


def finish(database_url: str | None, handover_id: int, now: datetime, cancelled: bool = False) -> dict[str, Any]:
    with transaction(database_url) as db:
        handover = get(db, handover_id)
        if cancelled:
            db.execute(update(wf.HandoverItem).where(wf.HandoverItem.handover_id == handover_id,
                                                     wf.HandoverItem.status.in_(("planned",)))
                       .values(status="cancelled", reason="cancelled", final_at=now))
        handover.status = "cancelled" if cancelled else "done"
        handover.finished_at = handover.updated_at = now
        return progress(db, handover_id)
