"""Enterprise mass sends (企业群发) within WeCom's rules: to customers through their owning staff, or to groups.

A mass send is created with its audience resolved and **each recipient's allowance checked first**
(:func:`preview` shows it before anything is sent): within the allowance → queued (the allowance is
reserved); at the limit → skipped, or deferred to when their next window opens (the corp's choice,
``at_limit``); no owning staff member → skipped. Every single-chat recipient gets a row in the message
log (``messages``, channel wecom) whose status follows them; the per-group outcomes of a group send are
its recipients' rows.

The :class:`~activities.workforce.workflows.MassSendWorkflow` then creates one WeCom task per sender
(≤ 10,000 customers or ≤ 2,000 groups each, ≤ 9 attachments) and polls: a task waits for its sender's
confirmation in the WeCom client ("waiting for staff confirmation" per sender), then
``get_groupmsg_send_result`` gives each recipient's outcome — sent, not a friend, already received
another mass message (WeCom's own count, which sees mass sends Tideflow did not make), or not sent.
Senders who have not confirmed by the deadline leave their recipients "not sent". Recipients whose
owner changed in a handover meanwhile are re-queued to the new owner's next task.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.orm import Session

from activities.workforce.common import WorkforceError, iso, settings_of
from activities.workforce.quota import POLICIES, Policy, next_free, split, window
from connectors.wecom.api_errors import ApiError
from connectors.wecom.client import MAX_ATTACHMENTS, MAX_MASS_RECIPIENTS, WeComClient, attachments_for
from connectors.wecom.groupchat import (
    MAX_GROUP_RECIPIENTS,
    SEND_STATUS,
    add_group_template,
    add_single_template,
    cancel_send,
    send_results,
    send_tasks,
)
from connectors.wecom.media import WeComMedia, media_for
from engine import expressions
from engine.db import models
from engine.db import workforce_models as wf
from engine.db.session import session_factory, transaction
from engine.pii import mask_text
from engine.text import Msg, message_of
from wording.stored import MAX_REASON, read_stored, stored

#: recipient statuses that hold a reservation of the recipient's allowance
HOLDING = ("queued", "requeued", "waiting", "sent")
#: final recipient statuses
FINAL = ("sent", "not_friend", "already_received", "not_sent", "failed", "skipped: at limit", "skipped: no owner",
         "cancelled", "not_started")
#: what the message log says for each recipient status
LOG_STATUS = {"queued": "queued", "requeued": "queued", "waiting": "queued", "deferred": "deferred: at limit",
              "sent": "sent",
              "not_friend": "skipped: not a friend", "already_received": "skipped: already received",
              "not_sent": "skipped: not confirmed", "failed": "failed: rejected", "cancelled": "skipped: cancelled",
              "skipped: at limit": "skipped: at limit", "skipped: no owner": "skipped: no owner",
              "not_started": "failed: not started"}
PAGE = 1000


class Audience(BaseModel):
    """Who receives a single-chat mass send: customers matching all that is given."""

    model_config = ConfigDict(extra="forbid")
    expression: str | None = Field(default=None, max_length=2000,
                                   description="a condition over the customer, e.g. customer.orders_count > 0")
    tags_any: list[str] = Field(default_factory=list, max_length=100)
    groups: list[str] = Field(default_factory=list, max_length=2000, description="members of these customer groups")
    customer_ids: list[str] = Field(default_factory=list, max_length=100_000)

    @field_validator("expression")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value:
            try:
                expressions.check(value)
            except expressions.ExpressionError as exc:
                raise ValueError(str(exc)) from None
        return value or None


class MassSendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    connector_id: str = Field(min_length=1, max_length=80)
    chat_type: Literal["single", "group"]
    name: str = Field(default="", max_length=200)
    text: str = Field(default="", max_length=4000)
    attachments: list[str] = Field(default_factory=list, description="image or link URLs (at most 9)")
    audience: Audience = Field(default_factory=Audience, description="chat_type single: who")
    chat_ids: list[str] = Field(default_factory=list, description="chat_type group: which groups")
    at_limit: Literal["exclude", "defer"] | None = Field(default=None, description="default: the corp's setting")
    deadline_hours: int = Field(default=72, ge=1, le=24 * 30,
                                description="senders who have not confirmed by then leave their part unsent")

    @field_validator("attachments")
    @classmethod
    def _attachments(cls, value: list[str]) -> list[str]:
        if len(value) > MAX_ATTACHMENTS:
            raise ValueError(Msg("WeCom takes at most %(limit)s attachments per mass send",
                                 limit=MAX_ATTACHMENTS))
        for url in value:
            if not url.startswith(("https://", "http://")):
                raise ValueError(Msg("attachment '%(value)s' is not an http(s) URL",
                                     value=url[:60]))
        return value

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        if len(value.encode("utf-8")) > 4000:
            raise ValueError(Msg("WeCom takes at most 4000 bytes of text"))
        return value


# -- resolving the audience ------------------------------------------------------------------------------


def _single_recipients(db: Session, connector_id: str, audience: Audience) -> list[tuple[str, str, str]]:
    """(external_userid, customer_id, owning staff or "") of everyone in the audience who is a WeCom contact."""
    from engine.actions import customer_views

    chosen: set[str] = set(audience.customer_ids)
    if audience.groups:
        chosen.update(str(c) for c in db.scalars(select(wf.WeComGroupMember.customer_id).where(
            wf.WeComGroupMember.connector_id == connector_id, wf.WeComGroupMember.chat_id.in_(audience.groups),
            wf.WeComGroupMember.type == 2, wf.WeComGroupMember.customer_id.is_not(None))))
    if audience.expression or audience.tags_any or not (audience.customer_ids or audience.groups):
        query = select(models.Customer.id).where(models.Customer.merged_into.is_(None))
        candidates = list(db.scalars(query.order_by(models.Customer.id)))
        if audience.customer_ids or audience.groups:
            candidates = [c for c in candidates if c in chosen]
        chosen = set()
        for start in range(0, len(candidates), PAGE):
            views = customer_views(db, candidates[start:start + PAGE])
            for cid, view in views.items():
                if audience.tags_any and not set(audience.tags_any) & set(view.get("tags") or []):
                    continue
                if audience.expression:
                    try:
                        if not expressions.test(audience.expression, {"customer": view, "event": {}, "vars": {},
                                                                      "journey": {}, "now": None}):
                            continue
                    except expressions.ExpressionError:
                        continue
                chosen.add(cid)
    ids = sorted(chosen)
    externals: dict[str, str] = {}
    owners: dict[str, str] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for value, cid in db.execute(select(models.Identity.value, models.Identity.customer_id).where(
                models.Identity.kind == "wecom_external_userid", models.Identity.customer_id.in_(chunk))):
            externals.setdefault(cid, value)
        for cid, attrs in db.execute(select(models.Customer.id, models.Customer.attributes).where(
                models.Customer.id.in_(chunk))):
            owners[cid] = str((attrs or {}).get("wecom_follow_user") or "")
    return [(externals[cid], cid, owners.get(cid, "")) for cid in ids if cid in externals]


def _group_recipients(db: Session, connector_id: str, chat_ids: list[str]) -> list[tuple[str, None, str]]:
    if not chat_ids:
        raise WorkforceError(Msg("a group mass send needs at least one group"), Msg("pick groups"), "chat_ids")
    rows = {g.chat_id: g for g in db.scalars(select(wf.WeComGroup).where(
        wf.WeComGroup.connector_id == connector_id, wf.WeComGroup.chat_id.in_(chat_ids)))}
    missing = [c for c in chat_ids if c not in rows or rows[c].status != "active"]
    if missing:
        raise WorkforceError(Msg("unknown or dismissed group(s): %(value)s", value=', '.join(missing[:5])),
                             Msg("sync the groups, or pick active ones"), "chat_ids")
    return [(c, None, rows[c].owner_userid) for c in dict.fromkeys(chat_ids)]


def _history(db: Session, connector_id: str, recipients: list[str], since: datetime) -> dict[str, list[datetime]]:
    out: dict[str, list[datetime]] = defaultdict(list)
    for start in range(0, len(recipients), 500):
        for recipient, at in db.execute(select(wf.MassSendRecipient.recipient, wf.MassSendRecipient.counted_at).where(
                wf.MassSendRecipient.connector_id == connector_id,
                wf.MassSendRecipient.recipient.in_(recipients[start:start + 500]),
                wf.MassSendRecipient.counted_at.is_not(None), wf.MassSendRecipient.counted_at >= since)):
            if at is not None:
                out[recipient].append(at)
    return out


def _resolve(db: Session, payload: MassSendIn) -> tuple[list[tuple[str, str | None, str]], Policy, str]:
    settings = settings_of(db, payload.connector_id)
    policy: Policy = settings.mass_quota_policy if settings.mass_quota_policy in POLICIES else "month_days"  # type: ignore[assignment]
    at_limit = payload.at_limit or settings.at_limit or "exclude"
    if not payload.text and not payload.attachments:
        raise WorkforceError(Msg("a mass send needs a text or an attachment"), Msg("write the text"), "text")
    recipients: list[tuple[str, str | None, str]]
    if payload.chat_type == "single":
        recipients = list(_single_recipients(db, payload.connector_id, payload.audience))
    else:
        recipients = list(_group_recipients(db, payload.connector_id, payload.chat_ids))
    return recipients, policy, at_limit


def preview(db: Session, payload: MassSendIn, now: datetime) -> dict[str, Any]:
    """Before sending: how many recipients, how many are within their allowance, per sender, and what is left."""
    recipients, policy, at_limit = _resolve(db, payload)
    w = window(policy, now)
    ids = [r[0] for r in recipients if r[2]]
    quota = split(policy, now, ids, _history(db, payload.connector_id, ids, w.start - timedelta(days=31)))
    per_sender: dict[str, dict[str, int]] = defaultdict(lambda: {"allowed": 0, "at_limit": 0})
    left: dict[int, int] = defaultdict(int)
    for recipient, _cid, sender in recipients:
        if not sender:
            continue
        per_sender[sender]["allowed" if recipient in quota.left and recipient not in quota.at_limit
                           else "at_limit"] += 1
        left[quota.left.get(recipient, 0)] += 1
    return {"recipients": len(recipients), "allowed": len(quota.allowed), "at_limit": len(quota.at_limit),
            "no_owner": sum(1 for r in recipients if not r[2]), "policy": policy, "at_limit_action": at_limit,
            "window": {"start": iso(w.start), "end": iso(w.end), "limit": w.limit},
            "per_sender": dict(sorted(per_sender.items())),
            "remaining_after": dict(sorted(left.items())),
            "tasks": sum(-(-v["allowed"] // (MAX_MASS_RECIPIENTS if payload.chat_type == "single"
                                             else MAX_GROUP_RECIPIENTS)) for v in per_sender.values())}


def create(db: Session, payload: MassSendIn, actor: str, now: datetime, *, flow_id: str | None = None,
           node_id: str | None = None, workflow_ids: Mapping[str, str] | None = None) -> wf.MassSend:
    """Store a mass send with every recipient's starting status (the allowance reserved for those queued).

    A flow's send (``action.wecom_mass_send``) names its flow and node, and each customer's journey
    (``workflow_ids``: customer id → workflow id), so the message log says where each message came from."""
    recipients, policy, at_limit = _resolve(db, payload)
    if not recipients:
        raise WorkforceError(Msg("nobody to send to"), Msg("widen the audience (customers need a WeCom contact)"),
                             "audience")
    w = window(policy, now)
    ids = [r[0] for r in recipients if r[2]]
    history = _history(db, payload.connector_id, ids, w.start - timedelta(days=31))
    quota = split(policy, now, ids, history)
    send = wf.MassSend(connector_id=payload.connector_id, chat_type=payload.chat_type, name=payload.name[:200],
                       text=payload.text, attachments=list(payload.attachments),
                       audience=payload.audience.model_dump(mode="json") if payload.chat_type == "single"
                       else {"chat_ids": payload.chat_ids}, quota_policy=policy, at_limit=at_limit,
                       status="sending", counts={}, created_by=actor, created_at=now, updated_at=now,
                       deadline=now + timedelta(hours=payload.deadline_hours), flow_id=flow_id)
    db.add(send)
    db.flush()
    rows, log = [], []
    for recipient, cid, sender in recipients:
        deferred = None
        if not sender:
            status = "skipped: no owner"
        elif recipient in quota.at_limit:
            if at_limit == "defer":
                status, deferred = "deferred", next_free(policy, now, history.get(recipient, []))
            else:
                status = "skipped: at limit"
        else:
            status = "queued"
        rows.append({"mass_send_id": send.id, "recipient": recipient, "connector_id": payload.connector_id,
                     "sender": sender, "customer_id": cid, "status": status, "deferred_until": deferred,
                     "sent_at": None, "counted_at": now if status == "queued" else None})
        if cid is not None:
            log.append({"idempotency_key": f"mass/{send.id}/{recipient}", "customer_id": cid, "channel": "wecom",
                        "content": mask_text(payload.text or "[attachment]"), "status": LOG_STATUS[status],
                        "flow_id": flow_id, "node_id": node_id,
                        "workflow_id": (workflow_ids or {}).get(cid) or f"mass-send/{send.id}", "direction": "out",
                        "category": "promotional", "created_at": now})
    for table, batch in ((wf.MassSendRecipient.__table__, rows), (models.Message.__table__, log)):
        assert isinstance(table, Table)
        for start in range(0, len(batch), 1000):
            if batch[start:start + 1000]:
                db.execute(insert(table), batch[start:start + 1000])
    send.counts = counts(db, send.id)
    return send


def withdraw(db: Session, mass_send_id: int) -> bool:
    """Take back a mass send whose workflow may not have been started (Temporal did not answer the start): the
    send, its recipients (their allowance with them) and its message-log rows go, as if it had never been created,
    and whether it was withdrawn is returned. Not when its workflow has begun after all (the start was applied,
    only the answer was lost) and made a WeCom task: then it runs, is kept, and ``False`` is returned. The send's
    row is locked first and :func:`dispatch` makes each task under the same lock after checking that the send is
    still there, so a task is made either before the withdrawal (which then keeps the send) or not at all. Its id
    is never given to another send (``mass_sends`` ids are not reused, engine/db/workforce_models.py), so a
    workflow started for it finds no send and ends. Not for a send a flow asked for."""
    send = db.get(wf.MassSend, mass_send_id, with_for_update=True)
    if send is None:
        return True
    if db.scalar(select(wf.MassSendTask.id).where(wf.MassSendTask.mass_send_id == mass_send_id).limit(1)):
        return False
    db.execute(delete(models.Message).where(models.Message.idempotency_key.like(f"mass/{mass_send_id}/%")))
    db.execute(delete(wf.MassSendRecipient).where(wf.MassSendRecipient.mass_send_id == mass_send_id))
    db.execute(delete(wf.MassSend).where(wf.MassSend.id == mass_send_id))
    return True


#: why a person's mass send ended ``failed`` (its ``error``, shown on its page): its workflow was not started and
#: withdrawing it failed too (:func:`fail_unstarted`)
NOT_STARTED = Msg("the workflow engine (Temporal) did not start this mass send and it could not be withdrawn, so it "
                  "was stopped: nothing was sent, and its recipients' allowance is free again")


def fail_unstarted(db: Session, mass_send_id: int, now: datetime) -> bool:
    """End a mass send ``failed`` (:data:`NOT_STARTED`) when its workflow was not started and :func:`withdraw` did
    not take it back: recipients still waiting to go end ``not_started`` (their allowance released, the message
    log saying so), and whether it is failed is returned. Like :func:`withdraw`, not when its workflow has made a
    WeCom task under the send's lock (it is being sent: ``False``); a workflow that starts later finds the send
    failed and ends without sending (:func:`dispatch`). A send already closed is left as it is."""
    send = db.get(wf.MassSend, mass_send_id, with_for_update=True)
    if send is None:
        return True
    if send.status != "sending":
        return send.status == "failed"
    if db.scalar(select(wf.MassSendTask.id).where(wf.MassSendTask.mass_send_id == mass_send_id).limit(1)):
        return False
    pending = list(db.scalars(select(wf.MassSendRecipient.recipient).where(
        wf.MassSendRecipient.mass_send_id == mass_send_id,
        wf.MassSendRecipient.status.in_(("queued", "requeued", "waiting", "deferred")))))
    _set(db, mass_send_id, pending, status="not_started", counted_at=None, deferred_until=None)
    send.status, send.error, send.updated_at = "failed", str(NOT_STARTED), now
    send.counts = counts(db, mass_send_id)
    return True


def withdrawn_dispatch(made: int = 0) -> dict[str, int]:
    """What :func:`dispatch` answers for a send that is not there (withdrawn, :func:`withdraw`): the tasks it made
    before it found the send gone (none when it was gone from the start)."""
    return {"tasks": made, "withdrawn": 1}


#: what :func:`dispatch` and :func:`collect` answer for a send that is not there (withdrawn, :func:`withdraw`): its
#: workflow ends without sending anything
WITHDRAWN: dict[str, Any] = {"final": True, "withdrawn": True, "waiting_tasks": 0, "next_deferred": None,
                             "counts": {}}


def counts(db: Session, mass_send_id: int) -> dict[str, int]:
    return {status: int(n) for status, n in db.execute(
        select(wf.MassSendRecipient.status, func.count()).where(wf.MassSendRecipient.mass_send_id == mass_send_id)
        .group_by(wf.MassSendRecipient.status))}


def _log(db: Session, mass_send_id: int, recipients: list[str], status: str) -> None:
    keys = [f"mass/{mass_send_id}/{r}" for r in recipients]
    for start in range(0, len(keys), 500):
        db.execute(update(models.Message).where(models.Message.idempotency_key.in_(keys[start:start + 500]))
                   .values(status=LOG_STATUS.get(status, status)))


def _set(db: Session, mass_send_id: int, recipients: list[str], **values: Any) -> None:
    for start in range(0, len(recipients), 500):
        db.execute(update(wf.MassSendRecipient).where(
            wf.MassSendRecipient.mass_send_id == mass_send_id,
            wf.MassSendRecipient.recipient.in_(recipients[start:start + 500])).values(**values))
    if "status" in values:
        _log(db, mass_send_id, recipients, values["status"])


# -- executing ------------------------------------------------------------------------------------------


def dispatch(database_url: str | None, client: WeComClient, mass_send_id: int, now: datetime,
             media: WeComMedia | None = None) -> dict[str, int]:
    """Create the WeCom tasks for everyone queued (re-queued after a handover, or deferred and due now).

    Image attachments go by a media id uploaded through ``media`` (connectors/wecom/media.py: fetched from a
    public host — or one the connector allows —, uploaded once and cached for its 3 days): WeCom refuses a
    ``pic_url`` its own upload API did not issue. An image that cannot be fetched or uploaded for good fails
    the task (its recipients end ``failed`` with the reason); one that can be retried retries the activity."""
    with transaction(database_url) as db:
        send = db.get(wf.MassSend, mass_send_id)
        if send is None:  # withdrawn (its workflow was started though Temporal's answer was lost): nothing to do
            return withdrawn_dispatch()
        if send.status in ("cancelled", "done", "failed"):
            return {"tasks": 0}
        due = db.execute(select(wf.MassSendRecipient.recipient, wf.MassSendRecipient.counted_at).where(
            wf.MassSendRecipient.mass_send_id == mass_send_id, wf.MassSendRecipient.status == "deferred",
            wf.MassSendRecipient.deferred_until <= now)).all()
        if due:  # their window opened: check the allowance again
            policy: Policy = send.quota_policy  # type: ignore[assignment]
            names = [r for r, _ in due]
            fresh = split(policy, now, names, _history(db, send.connector_id, names, now - timedelta(days=62)))
            _set(db, mass_send_id, fresh.allowed, status="queued", counted_at=now)
            for recipient, until in fresh.at_limit.items():
                _set(db, mass_send_id, [recipient], deferred_until=until)
        todo = db.execute(select(wf.MassSendRecipient.recipient, wf.MassSendRecipient.sender).where(
            wf.MassSendRecipient.mass_send_id == mass_send_id,
            wf.MassSendRecipient.status.in_(("queued", "requeued")))).all()
        chat_type, text, urls = send.chat_type, send.text, list(send.attachments or [])
        batch_no = int(db.scalar(select(func.max(wf.MassSendTask.batch)).where(
            wf.MassSendTask.mass_send_id == mass_send_id)) or 0)
    per_sender: dict[str, list[str]] = defaultdict(list)
    for recipient, sender in todo:
        per_sender[str(sender)].append(recipient)
    size = MAX_MASS_RECIPIENTS if chat_type == "single" else MAX_GROUP_RECIPIENTS
    links = attachments_for(urls)
    uploads = media if media is not None else media_for(client)
    made = 0
    for sender, recipients in sorted(per_sender.items()):
        for start in range(0, len(recipients), size):
            chunk = recipients[start:start + size]
            batch_no += 1
            with transaction(database_url) as db:
                # under the send's lock, as withdraw() and fail_unstarted() take it: a send withdrawn or failed
                # meanwhile gets no task
                locked = db.get(wf.MassSend, mass_send_id, with_for_update=True)
                if locked is None:
                    return withdrawn_dispatch(made)
                if locked.status == "failed":
                    return {"tasks": made}
                task = wf.MassSendTask(mass_send_id=mass_send_id, sender=sender, batch=batch_no, status="pending",
                                       recipients=len(chunk), created_at=now)
                db.add(task)
                db.flush()
                task_id = task.id
                _set(db, mass_send_id, chunk, status="queued")
            try:
                attachments = uploads.with_media_ids(links)  # cached: one upload per image and 3 days
                if chat_type == "single":
                    result = add_single_template(client, sender, chunk, text or None, attachments)
                else:
                    result = add_group_template(client, sender, chunk, text or None, attachments)
            except ApiError as exc:
                if exc.retryable:
                    with transaction(database_url) as db:  # the retry makes a new task for these recipients
                        found = db.get(wf.MassSendTask, task_id)
                        if found is not None:
                            db.delete(found)
                    raise
                with transaction(database_url) as db:
                    found = db.get(wf.MassSendTask, task_id)
                    assert found is not None
                    # kept as a Msg (wording.stored), within the one bound for a saved reason: WeCom's refusal in
                    # the reader's language on the page
                    found.status, found.error = "failed", stored(message_of(exc), MAX_REASON)
                    _set(db, mass_send_id, chunk, status="failed", counted_at=None)
                continue
            with transaction(database_url) as db:
                found = db.get(wf.MassSendTask, task_id)
                assert found is not None
                found.msgid, found.status = result.msgid, "waiting"
                rejected = set(result.fail_list)
                failed = [r for r in chunk if r in rejected]
                if failed:
                    _set(db, mass_send_id, failed, status="failed", counted_at=None)
                # in a task now: waiting for the sender's confirmation (a later round makes no second task)
                _set(db, mass_send_id, [r for r in chunk if r not in rejected], status="waiting")
                made += 1
    return {"tasks": made}


def collect(database_url: str | None, client: WeComClient, mass_send_id: int, now: datetime) -> dict[str, Any]:
    """Read each waiting task: confirmed senders' per-recipient outcomes; expired ones end unsent."""
    with session_factory(database_url)() as db:
        send = db.get(wf.MassSend, mass_send_id)
        if send is None:
            return dict(WITHDRAWN)
        tasks = [(t.id, t.msgid, t.sender) for t in db.scalars(select(wf.MassSendTask).where(
            wf.MassSendTask.mass_send_id == mass_send_id, wf.MassSendTask.status == "waiting"))]
        expired = send.deadline is not None and send.deadline <= now
    for task_id, msgid, sender in tasks:
        states = {t.userid: t for t in send_tasks(client, str(msgid))}
        state = states.get(sender)
        confirmed = state is not None and state.status == 2
        outcomes = send_results(client, str(msgid), sender) if confirmed else []
        with transaction(database_url) as db:
            task = db.get(wf.MassSendTask, task_id)
            assert task is not None
            if confirmed:
                task.status = "sent"
                task.confirmed_at = datetime.fromtimestamp(state.send_time, now.tzinfo) if state and state.send_time \
                    else now
                by_status: dict[str, list[str]] = defaultdict(list)
                for outcome in outcomes:
                    by_status[SEND_STATUS.get(outcome.status, "not_sent")].append(outcome.recipient)
                for status, recipients in by_status.items():
                    values: dict[str, Any] = {"status": status}
                    if status == "sent":
                        values["sent_at"] = task.confirmed_at
                    else:
                        values["counted_at"] = None  # not received: the allowance is not used
                    owned = [r for r in recipients if _belongs(db, mass_send_id, r, sender)]
                    _set(db, mass_send_id, owned, **values)
            elif expired:
                task.status = "expired"
                pending = list(db.scalars(select(wf.MassSendRecipient.recipient).where(
                    wf.MassSendRecipient.mass_send_id == mass_send_id, wf.MassSendRecipient.sender == sender,
                    wf.MassSendRecipient.status.in_(("queued", "waiting")))))
                _set(db, mass_send_id, pending, status="not_sent", counted_at=None)
    with transaction(database_url) as db:
        send = db.get(wf.MassSend, mass_send_id)
        if send is None:  # withdrawn meanwhile (it had no task)
            return dict(WITHDRAWN)
        waiting = db.scalar(select(func.count()).select_from(wf.MassSendTask).where(
            wf.MassSendTask.mass_send_id == mass_send_id, wf.MassSendTask.status.in_(("waiting", "pending")))) or 0
        open_ = db.scalar(select(func.count()).select_from(wf.MassSendRecipient).where(
            wf.MassSendRecipient.mass_send_id == mass_send_id,
            wf.MassSendRecipient.status.in_(("requeued", "deferred")))) or 0
        if expired:
            _set(db, mass_send_id, list(db.scalars(select(wf.MassSendRecipient.recipient).where(
                wf.MassSendRecipient.mass_send_id == mass_send_id,
                wf.MassSendRecipient.status.in_(("requeued", "deferred"))))), status="not_sent", counted_at=None)
            open_ = 0
        next_deferred = db.scalar(select(func.min(wf.MassSendRecipient.deferred_until)).where(
            wf.MassSendRecipient.mass_send_id == mass_send_id, wf.MassSendRecipient.status == "deferred"))
        final = not waiting and not open_
        send.counts = counts(db, mass_send_id)
        send.updated_at = now
        if final and send.status == "sending":
            send.status = "done"
        return {"final": final or send.status == "cancelled", "waiting_tasks": int(waiting),
                "next_deferred": iso(next_deferred), "counts": send.counts}


def _belongs(db: Session, mass_send_id: int, recipient: str, sender: str) -> bool:
    found = db.get(wf.MassSendRecipient, (mass_send_id, recipient))
    return found is not None and found.sender == sender


def cancel(database_url: str | None, client: WeComClient, mass_send_id: int, now: datetime) -> None:
    """Stop a mass send: WeCom tasks not confirmed yet are cancelled, queued recipients end cancelled."""
    with session_factory(database_url)() as db:
        msgids = [(t.id, t.msgid) for t in db.scalars(select(wf.MassSendTask).where(
            wf.MassSendTask.mass_send_id == mass_send_id, wf.MassSendTask.status == "waiting")) if t.msgid]
    for task_id, msgid in msgids:
        cancel_send(client, str(msgid))
        with transaction(database_url) as db:
            task = db.get(wf.MassSendTask, task_id)
            if task is not None:
                task.status = "cancelled"
    with transaction(database_url) as db:
        send = db.get(wf.MassSend, mass_send_id)
        if send is None:
            return
        pending = list(db.scalars(select(wf.MassSendRecipient.recipient).where(
            wf.MassSendRecipient.mass_send_id == mass_send_id,
            wf.MassSendRecipient.status.in_(("queued", "requeued", "waiting", "deferred")))))
        _set(db, mass_send_id, pending, status="cancelled", counted_at=None)
        send.status, send.updated_at, send.counts = "cancelled", now, counts(db, mass_send_id)


def view(db: Session, send: wf.MassSend, limit: int = 500) -> dict[str, Any]:
    tasks = db.scalars(select(wf.MassSendTask).where(wf.MassSendTask.mass_send_id == send.id)
                       .order_by(wf.MassSendTask.sender, wf.MassSendTask.batch)).all()
    recipients = db.scalars(select(wf.MassSendRecipient).where(wf.MassSendRecipient.mass_send_id == send.id)
                            .order_by(wf.MassSendRecipient.recipient).limit(limit)).all()
    names = {g.chat_id: g.name for g in db.scalars(select(wf.WeComGroup).where(
        wf.WeComGroup.chat_id.in_([r.recipient for r in recipients])))} if send.chat_type == "group" else {}
    return {"id": send.id, "connector_id": send.connector_id, "chat_type": send.chat_type, "name": send.name,
            "text": send.text, "attachments": send.attachments, "status": send.status, "error": send.error,
            "counts": counts(db, send.id),
            "quota_policy": send.quota_policy, "at_limit": send.at_limit, "deadline": iso(send.deadline),
            "created_by": send.created_by, "created_at": iso(send.created_at),
            "senders": [{"sender": t.sender, "batch": t.batch, "status": t.status, "recipients": t.recipients,
                         "msgid": t.msgid, "confirmed_at": iso(t.confirmed_at),
                         "error": read_stored(t.error)} for t in tasks],
            "recipients": [{"recipient": r.recipient, "name": names.get(r.recipient, ""), "sender": r.sender,
                            "customer_id": r.customer_id, "status": r.status, "sent_at": iso(r.sent_at),
                            "deferred_until": iso(r.deferred_until)} for r in recipients]}
