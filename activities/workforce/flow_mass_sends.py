"""Mass sends that flows make (the ``action.wecom_mass_send`` node, activities/workforce/mass_send_node.py):
what each action's idempotency key became, its outcome as the node's port, and telling the flow when the
outcome is in.

A flow cannot send a WeCom mass message by itself: it creates a mass send (mass_sends.py) whose tasks wait
for each sender's confirmation in the WeCom client — hours, sometimes days — and whose per-recipient
outcomes come from ``get_groupmsg_send_result``, polled by the send's ``MassSendWorkflow``. So:

* the node's first run under a key creates the mass send — one per journey visit, one per distinct text
  for a broadcast page — with the corp's allowance applied (mass_sends.create), and a ``mass_send_requests``
  row per key, in one transaction: a retry of the action finds the row and creates nothing;
* while the recipient's outcome is pending the node answers ``awaiting`` (engine/nodes/base.py): a journey
  waits durably on a timer that the ``wake`` signal ends early; a broadcast parks the customer at the node;
* each ``workforce.mass_send_collect`` round (runtime.py) asks :func:`follow_up` whose outcomes came in:
  their journeys get ``wake(key)``, their broadcast customers are resumed (engine.broadcast.resume_page);
  the node runs again under the same key and leaves by ``out`` (sent) or ``skipped`` (with the reason).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Table, insert, select, update
from sqlalchemy.orm import Session

from activities.workforce import mass_sends
from activities.workforce.common import WorkforceError
from activities.workforce.mass_sends import LOG_STATUS, Audience, MassSendIn
from engine.db import workforce_models as wf
from engine.db.session import transaction

#: recipient statuses whose outcome is still to come
PENDING = frozenset({"queued", "requeued", "waiting", "deferred"})
#: what a customer who is not a WeCom contact (no external_userid) comes to
NOT_A_CONTACT = "skipped: not a WeCom contact"


@dataclass(frozen=True)
class Outcome:
    """Where one request's recipient stands."""

    mass_send_id: int
    recipient: str
    status: str
    deadline: datetime | None = None

    @property
    def pending(self) -> bool:
        return self.status in PENDING

    @property
    def port(self) -> str:
        return "out" if self.status == "sent" else "skipped"

    @property
    def reason(self) -> str:
        """What the message log says: ``sent``, ``skipped: not a friend``, ``queued`` …"""
        return LOG_STATUS.get(self.status, self.status)


@dataclass(frozen=True)
class Ask:
    """One action request to fulfil: who, under which key, with which text."""

    key: str
    customer_id: str
    workflow_id: str
    text: str
    mode: str = "journey"  # or "broadcast"
    run_key: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Content:
    """What every ask of one node shares: where from, what else goes, the corp's allowance choices."""

    connector_id: str
    flow_id: str
    version: int
    node_id: str
    attachments: list[str] = field(default_factory=list)
    at_limit: Literal["exclude", "defer"] | None = None
    deadline_hours: int = 72


@dataclass
class Made:
    """What :func:`create` found or made: each key's outcome, the keys that cannot be sent (and why), and the
    mass sends created now (their workflows are to be started)."""

    outcomes: dict[str, Outcome] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    mass_send_ids: list[int] = field(default_factory=list)


def outcomes(db: Session, keys: Sequence[str]) -> dict[str, Outcome]:
    """The outcome of each key that made a mass send (keys that made none are absent)."""
    found: dict[str, Outcome] = {}
    req, rec, send = wf.MassSendRequest, wf.MassSendRecipient, wf.MassSend
    for start in range(0, len(keys), 500):
        rows = db.execute(
            select(req.key, req.mass_send_id, req.recipient, rec.status, send.deadline)
            .join(rec, (rec.mass_send_id == req.mass_send_id) & (rec.recipient == req.recipient))
            .join(send, send.id == req.mass_send_id)
            .where(req.key.in_(list(keys[start:start + 500]))))
        for key, mass_send_id, recipient, status, deadline in rows:
            found[key] = Outcome(int(mass_send_id), str(recipient), str(status), deadline)
    return found


def create(database_url: str | None, content: Content, asks: Sequence[Ask], now: datetime) -> Made:
    """Find or make the mass sends for these asks, exactly once per key (one transaction: a racing attempt
    of the same keys fails on the request rows' keys and rolls back, and its caller reads these)."""
    made = Made()
    with transaction(database_url) as db:
        made.outcomes = outcomes(db, [a.key for a in asks])
        by_text: dict[str, list[Ask]] = defaultdict(list)
        for ask in asks:
            if ask.key not in made.outcomes:
                by_text[ask.text].append(ask)
        new_keys: list[str] = []
        for text, group in by_text.items():
            payload = MassSendIn(
                connector_id=content.connector_id, chat_type="single",
                name=f"{content.flow_id} · {content.node_id}"[:200], text=text, attachments=list(content.attachments),
                audience=Audience(customer_ids=list(dict.fromkeys(a.customer_id for a in group))),
                at_limit=content.at_limit, deadline_hours=content.deadline_hours)
            try:
                send = mass_sends.create(db, payload, f"flow:{content.flow_id}", now, flow_id=content.flow_id,
                                         node_id=content.node_id,
                                         workflow_ids={a.customer_id: a.workflow_id for a in group})
            except WorkforceError as exc:
                if exc.field != "audience":  # "nobody to send to": none of them is a WeCom contact
                    raise
                made.refused.update((a.key, NOT_A_CONTACT) for a in group)
                continue
            made.mass_send_ids.append(send.id)
            recipients = {str(cid): (str(r), str(status)) for r, cid, status in db.execute(
                select(wf.MassSendRecipient.recipient, wf.MassSendRecipient.customer_id,
                       wf.MassSendRecipient.status).where(wf.MassSendRecipient.mass_send_id == send.id))}
            rows: list[dict[str, Any]] = []
            for ask in group:
                found = recipients.get(ask.customer_id)
                if found is None:
                    made.refused[ask.key] = NOT_A_CONTACT
                    continue
                rows.append({"key": ask.key, "mass_send_id": send.id, "recipient": found[0],
                             "customer_id": ask.customer_id, "mode": ask.mode, "workflow_id": ask.workflow_id,
                             "flow_id": content.flow_id, "version": content.version, "node_id": content.node_id,
                             "run_key": ask.run_key, "variables": dict(ask.variables), "created_at": now,
                             # final at once (at the limit, no owner): nobody needs telling later
                             "notified_at": None if found[1] in PENDING else now})
                new_keys.append(ask.key)
            table = wf.MassSendRequest.__table__
            assert isinstance(table, Table)
            if rows:
                db.execute(insert(table), rows)
        if new_keys:
            made.outcomes.update(outcomes(db, new_keys))
    return made


# -- telling the flow ----------------------------------------------------------------------------------


@dataclass
class Batch:
    """Broadcast customers of one run and node whose outcomes are in: to resume together."""

    flow_id: str
    version: int
    run_key: str
    node_id: str
    keys: dict[str, str] = field(default_factory=dict)  # customer → key
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class FollowUp:
    #: (journey workflow id, key) to signal ``wake``
    wake: list[tuple[str, str]] = field(default_factory=list)
    resume: list[Batch] = field(default_factory=list)


def follow_up(db: Session, mass_send_id: int) -> FollowUp:
    """The requests of a mass send whose recipient's outcome is in and whose flow has not been told yet."""
    req, rec = wf.MassSendRequest, wf.MassSendRecipient
    rows = db.execute(
        select(req.key, req.mode, req.workflow_id, req.customer_id, req.flow_id, req.version, req.run_key,
               req.node_id, req.variables)
        .join(rec, (rec.mass_send_id == req.mass_send_id) & (rec.recipient == req.recipient))
        .where(req.mass_send_id == mass_send_id, req.notified_at.is_(None), rec.status.not_in(PENDING))
        .order_by(req.key))
    out = FollowUp()
    batches: dict[tuple[str, int, str, str], Batch] = {}
    for key, mode, workflow_id, customer_id, flow_id, version, run_key, node_id, variables in rows:
        if mode == "journey":
            out.wake.append((str(workflow_id), str(key)))
            continue
        batch = batches.setdefault((flow_id, version, run_key or "", node_id),
                                   Batch(str(flow_id), int(version), str(run_key or ""), str(node_id)))
        batch.keys[str(customer_id)] = str(key)
        batch.variables[str(customer_id)] = dict(variables or {})
    out.resume = list(batches.values())
    return out


def mark_notified(db: Session, keys: Sequence[str], now: datetime) -> int:
    """Record that the flow was told; how many of ``keys`` were not marked before."""
    marked = 0
    for start in range(0, len(keys), 500):
        result = db.execute(update(wf.MassSendRequest).where(
            wf.MassSendRequest.key.in_(list(keys[start:start + 500])), wf.MassSendRequest.notified_at.is_(None))
            .values(notified_at=now))
        marked += int(getattr(result, "rowcount", 0) or 0)
    return marked
