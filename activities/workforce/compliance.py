"""Compliance (合规): sensitive words and behaviours on archived messages raise hits, compliance tickets and
alerts to the staff member's supervisor.

What Tideflow does better than LinkWeChat's version (docs/workforce.md has the comparison):

* word lists per **team** with keyword or **regex** words, a **severity** each, and a **scope**
  (departments, members; staff messages, customer messages or both) — instead of one
  comma-separated rule matched as a substring of the message JSON;
* matching on the message **text** (activities/workforce/matcher.py), so ids, URLs and JSON keys
  never match, and full-width or upper-case spellings do;
* a hit **opens a compliance ticket** (with the passage and the messages before it) and **alerts the
  member's supervisor** (their WeCom direct leaders, else the corp's default auditors) by WeCom app
  message — instead of one fixed text to a single auditor;
* **behaviours** (a phone or card number sent by staff, red packets, transfer requests, deleting a
  customer) alert and open tickets too — instead of being recorded with nobody told;
* a dashboard of hits per team and per member over time.

Exactly once: a hit is unique on (connector, message, rule); the ticket on ``compliance/<connector>/
<message>``. Alerts are sent after the hit is committed and marked sent / failed, never twice.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from activities.messaging.staff import send_app_message
from activities.tickets import service as tickets
from activities.workforce.matcher import BEHAVIOURS, Matcher, Word, behaviours
from engine.db import models
from engine.db import workforce_models as wf
from engine.db.session import session_factory, transaction
from engine.pii import mask_text
from engine.text import Msg

TICKET_TYPE = "compliance"
TICKET_GROUP = "compliance"
PRIORITY = {"critical": "P1", "high": "P2", "medium": "P3", "low": "P4"}
RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
#: behaviour severities
BEHAVIOUR_SEVERITY = {"phone_number": "medium", "bank_card": "high", "red_packet": "high", "money_transfer": "high",
                      "deleted_customer": "medium"}
CONTEXT_MESSAGES = 3

_lock = threading.Lock()
_cache: tuple[tuple[Any, ...], Matcher] | None = None


def ensure_ticket_setup(db: Session) -> None:
    """The compliance ticket type and its queue exist."""
    if db.get(models.AgentGroup, TICKET_GROUP) is None:
        db.add(models.AgentGroup(key=TICKET_GROUP, name="合规审核 Compliance review"))
        db.flush()
    if db.get(models.TicketType, TICKET_TYPE) is None:
        db.add(models.TicketType(key=TICKET_TYPE, name="合规工单 Compliance", fields=[], default_group=TICKET_GROUP,
                                 default_priority="P3", auto_events=[]))
        db.flush()


def _fingerprint(db: Session) -> tuple[Any, ...]:
    lists = db.execute(select(func.count(), func.max(wf.SensitiveWordList.updated_at))
                       .select_from(wf.SensitiveWordList)).one()
    words = db.execute(select(func.count(), func.max(wf.SensitiveWord.id), func.sum(wf.SensitiveWord.list_id))
                       .select_from(wf.SensitiveWord)).one()
    bind = db.get_bind()
    return (str(getattr(bind, "url", "")), *lists, *words)


def matcher(db: Session) -> Matcher:
    """The compiled matcher of every enabled word; rebuilt when a list or word changed."""
    global _cache
    key = _fingerprint(db)
    with _lock:
        if _cache is not None and _cache[0] == key:
            return _cache[1]
    words = []
    lists = {row.id: row for row in db.scalars(select(wf.SensitiveWordList).where(
        wf.SensitiveWordList.enabled.is_(True)))}
    for word in db.scalars(select(wf.SensitiveWord).where(wf.SensitiveWord.list_id.in_(list(lists)))):
        scope = lists[word.list_id]
        words.append(Word(id=word.id, list_id=word.list_id, pattern=word.pattern, kind=word.kind,  # type: ignore[arg-type]
                          severity=word.severity, direction=scope.direction,  # type: ignore[arg-type]
                          departments=frozenset(int(d) for d in scope.departments or []),
                          members=frozenset(str(m) for m in scope.members or []), team=scope.team))
    built = Matcher(words)
    with _lock:
        _cache = (key, built)
    return built


def _context(db: Session, message: wf.ArchivedMessage) -> list[dict[str, str]]:
    query = select(wf.ArchivedMessage).where(wf.ArchivedMessage.connector_id == message.connector_id,
                                             wf.ArchivedMessage.msgtime <= message.msgtime,
                                             wf.ArchivedMessage.id != message.id)
    if message.roomid:
        query = query.where(wf.ArchivedMessage.roomid == message.roomid)
    elif message.customer_id:
        query = query.where(wf.ArchivedMessage.customer_id == message.customer_id, wf.ArchivedMessage.roomid == "")
    else:
        return []
    rows = db.scalars(query.order_by(wf.ArchivedMessage.msgtime.desc()).limit(CONTEXT_MESSAGES)).all()
    return [{"at": r.msgtime.isoformat(), "from": r.sender, "text": r.text} for r in reversed(rows)]


def scan(db: Session, message: wf.ArchivedMessage, plain_text: str, departments: list[int], now: datetime
         ) -> list[wf.SensitiveHit]:
    """Match one stored message (``plain_text``: its unmasked text) and record hits + one compliance ticket."""
    found: list[tuple[str, str, int | None, str, str, str]] = []  # rule, kind, list_id, word, severity, passage
    for hit in matcher(db).match(plain_text, message.direction, message.staff_userid, departments):
        found.append((f"word:{hit.word.id}", "word", hit.word.list_id, hit.word.pattern, hit.word.severity,
                      hit.passage))
    if message.direction == "staff":
        for behaviour in behaviours(plain_text, message.msgtype):
            found.append((f"behaviour:{behaviour.kind}", "behaviour", None, behaviour.kind,
                          BEHAVIOUR_SEVERITY.get(behaviour.kind, "medium"), behaviour.passage))
    if not found:
        return []
    teams = {row.id: row.team for row in db.scalars(select(wf.SensitiveWordList).where(
        wf.SensitiveWordList.id.in_([f[2] for f in found if f[2] is not None])))}
    default_team = str(departments[0]) if departments else ""
    hits = []
    for rule, kind, list_id, word, severity, passage_text in found:
        if db.scalar(select(wf.SensitiveHit.id).where(wf.SensitiveHit.connector_id == message.connector_id,
                                                      wf.SensitiveHit.msgid == message.msgid,
                                                      wf.SensitiveHit.rule == rule)):
            continue
        row = wf.SensitiveHit(connector_id=message.connector_id, msgid=message.msgid, rule=rule, kind=kind,
                              list_id=list_id, word=word[:200], severity=severity,
                              team=teams.get(list_id, default_team) if list_id else default_team,
                              direction=message.direction, staff_userid=message.staff_userid,
                              customer_id=message.customer_id, passage=passage_text, alert="pending",
                              at=message.msgtime)
        db.add(row)
        hits.append(row)
    if hits:
        db.flush()
        _open_ticket(db, message.connector_id, message.msgid, hits, message.staff_userid, message.customer_id,
                     _context(db, message), now)
    return hits


def _label(hit: wf.SensitiveHit) -> str:
    if hit.kind == "behaviour":
        return BEHAVIOURS.get(hit.word, {}).get("zh-CN", hit.word)
    return hit.word


def _open_ticket(db: Session, connector_id: str, msgid: str, hits: list[wf.SensitiveHit], staff_userid: str,
                 customer_id: str | None, context: list[dict[str, str]], now: datetime) -> None:
    ensure_ticket_setup(db)
    worst = max(hits, key=lambda h: RANK.get(h.severity, 1)).severity
    labels = "、".join(dict.fromkeys(_label(h) for h in hits))
    lines = [f"成员 Staff: {staff_userid or '-'}", f"命中 Hits: {labels}", ""]
    lines += [f"[{h.severity}] {_label(h)}: {h.passage}" for h in hits]
    if context:
        lines += ["", "上下文 Context:"] + [f"{c['at']} {c['from']}: {c['text']}" for c in context]
    ticket, _created = tickets.create_ticket(
        db, type_key=TICKET_TYPE, subject=mask_text(f"敏感内容 Sensitive: {labels} — {staff_userid or '?'}")[:300],
        description="\n".join(lines), customer_id=customer_id, priority=PRIORITY.get(worst, "P3"),
        group=TICKET_GROUP, source="compliance", channel="wecom", dedupe_key=f"compliance/{connector_id}/{msgid}",
        actor="compliance", now=now, check_fields=False,
        fields={"staff_userid": staff_userid, "msgid": msgid, "severity": worst})
    for hit in hits:
        hit.ticket_id = ticket.id


def record_deleted_customer(db: Session, event: models.EventRecord) -> None:
    """The behaviour "a member deleted a customer" (called by the event hook, in the event's transaction)."""
    payload = event.payload or {}
    staff = str(payload.get("user_id") or "")
    msgid = f"event:{event.external_id}"[:160]
    if db.scalar(select(wf.SensitiveHit.id).where(wf.SensitiveHit.connector_id == event.source,
                                                  wf.SensitiveHit.msgid == msgid)):
        return
    member = db.get(wf.WeComStaff, (event.source, staff))
    team = str((member.departments or [""])[0]) if member is not None and member.departments else ""
    hit = wf.SensitiveHit(connector_id=event.source, msgid=msgid, rule="behaviour:deleted_customer",
                          kind="behaviour", word="deleted_customer", severity=BEHAVIOUR_SEVERITY["deleted_customer"],
                          team=team, direction="staff", staff_userid=staff, customer_id=event.customer_id,
                          passage="删除了客户 deleted the customer", alert="pending", at=event.occurred_at)
    db.add(hit)
    db.flush()
    _open_ticket(db, event.source, msgid, [hit], staff, event.customer_id, [], event.occurred_at)


# -- alerts ------------------------------------------------------------------------------------------


def pending_alerts(db: Session, connector_id: str, limit: int = 200) -> list[dict[str, Any]]:
    """Hits whose supervisor alert is still to send, grouped by message: who to tell and what."""
    rows = db.scalars(select(wf.SensitiveHit).where(wf.SensitiveHit.connector_id == connector_id,
                                                    wf.SensitiveHit.alert == "pending")
                      .order_by(wf.SensitiveHit.id).limit(limit)).all()
    settings = db.get(wf.WorkforceSettings, connector_id)
    auditors = [str(a) for a in (settings.default_auditors if settings else []) or []]
    grouped: dict[str, list[wf.SensitiveHit]] = defaultdict(list)
    for row in rows:
        grouped[row.msgid].append(row)
    out = []
    for msgid, hits in grouped.items():
        member = db.get(wf.WeComStaff, (connector_id, hits[0].staff_userid)) if hits[0].staff_userid else None
        leaders = [str(x) for x in (member.leaders if member is not None else []) or []]
        worst = max(hits, key=lambda h: RANK.get(h.severity, 1)).severity
        text = (f"【合规提醒 Compliance alert】{hits[0].staff_userid or '-'} · {worst}\n"
                + "\n".join(f"{_label(h)}: {h.passage}" for h in hits)
                + (f"\n工单 Ticket #{hits[0].ticket_id}" if hits[0].ticket_id else ""))
        out.append({"ids": [h.id for h in hits], "msgid": msgid, "to": leaders or auditors, "text": text})
    return out


def mark_alerts(db: Session, ids: list[int], status: str) -> None:
    for row in db.scalars(select(wf.SensitiveHit).where(wf.SensitiveHit.id.in_(ids))):
        row.alert = status[:60]


# -- dashboard ---------------------------------------------------------------------------------------


def dashboard(db: Session, since: datetime, until: datetime, connector_id: str | None = None,
              team: str | None = None) -> dict[str, Any]:
    """Hits per team, per member and per day (with severities) between ``since`` and ``until``."""
    query = select(wf.SensitiveHit).where(wf.SensitiveHit.at >= since, wf.SensitiveHit.at < until)
    if connector_id:
        query = query.where(wf.SensitiveHit.connector_id == connector_id)
    if team:
        query = query.where(wf.SensitiveHit.team == team)
    per_team: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    per_staff: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    per_day: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    words: dict[str, int] = defaultdict(int)
    total = 0
    for hit in db.scalars(query):
        total += 1
        for bucket, key in ((per_team, hit.team or "-"), (per_staff, hit.staff_userid or "-"),
                            (per_day, hit.at.date().isoformat())):
            bucket[key][hit.severity] += 1
            bucket[key]["total"] += 1
        words[_label(hit)] += 1

    def rows(bucket: dict[str, dict[str, int]], name: str) -> list[dict[str, Any]]:
        return [{name: k, **dict(v)} for k, v in sorted(bucket.items(), key=lambda kv: -kv[1]["total"])]

    days: list[dict[str, Any]] = []
    day = since.date()
    while day < until.date() + timedelta(days=1) and len(days) < 400:
        days.append({"day": day.isoformat(), **dict(per_day.get(day.isoformat(), {"total": 0}))})
        day += timedelta(days=1)
    return {"total": total, "per_team": rows(per_team, "team"), "per_staff": rows(per_staff, "staff"),
            "per_day": days, "top_words": [{"word": k, "hits": v} for k, v in
                                           sorted(words.items(), key=lambda kv: -kv[1])[:20]]}


def deliver_alerts(database_url: str | None, connector_id: str) -> dict[str, int]:
    """Send the pending supervisor alerts of a connector as WeCom app messages (activities/messaging/staff.py,
    the one home of messages to staff); counts by outcome. An alert that WeCom could not take now (busy) stays
    pending for the next round; one it refused is marked failed."""
    with session_factory(database_url)() as db:
        alerts = pending_alerts(db, connector_id)
    if not alerts:
        return {}
    counts: dict[str, int] = defaultdict(int)
    for alert in alerts:
        if not alert["to"]:
            status = "skipped: nobody to alert (no direct leader, no default auditor)"
        else:
            sent = send_app_message(database_url, alert["to"], alert["text"], connector_id)
            if sent.retry:
                counts["retry"] += 1
                continue
            status = sent.status
        with transaction(database_url) as db:
            mark_alerts(db, alert["ids"], status)
        counts[status.split(":")[0]] += 1
    return dict(counts)


# -- word lists ----------------------------------------------------------------------------------------


def save_list(db: Session, *, team: str, name: str, direction: str = "both", departments: list[int] | None = None,
              members: list[str] | None = None, enabled: bool = True, list_id: int | None = None,
              actor: str = "system", now: datetime | None = None) -> wf.SensitiveWordList:
    """Create or update a team's word list (its scope); errors name the field."""
    from activities.workforce.common import WorkforceError
    from engine.db.models import utcnow

    when = now or utcnow()
    if direction not in ("staff", "customer", "both"):
        raise WorkforceError(Msg("direction '%(direction)s' is unknown", direction=direction),
                             Msg("use staff, customer or both"), "direction")
    if not team.strip() or not name.strip():
        raise WorkforceError(Msg("a word list needs a team and a name"), Msg("fill in team and name"), "team" if not
                             team.strip() else "name")
    row = db.get(wf.SensitiveWordList, list_id) if list_id is not None else None
    if list_id is not None and row is None:
        raise WorkforceError(Msg("word list %(list_id)s does not exist", list_id=list_id), Msg("check the id"), "id",
                             404)
    if row is None:
        row = wf.SensitiveWordList(created_by=actor, created_at=when)
        db.add(row)
    row.team, row.name, row.direction, row.enabled = team.strip()[:80], name.strip()[:200], direction, enabled
    row.departments = sorted({int(d) for d in departments or []})
    row.members = sorted({str(m) for m in members or [] if str(m).strip()})
    row.updated_at = when
    db.flush()
    return row


def add_words(db: Session, list_id: int, words: list[tuple[str, str, str]], now: datetime | None = None) -> int:
    """Add (pattern, kind, severity) words to a list; each is checked (a regex must be RE2), duplicates are
    skipped. How many were added."""
    from activities.workforce.common import WorkforceError
    from activities.workforce.matcher import SEVERITIES, WordError, check_pattern
    from engine.db.models import utcnow

    row = db.get(wf.SensitiveWordList, list_id)
    if row is None:
        raise WorkforceError(Msg("word list %(list_id)s does not exist", list_id=list_id), Msg("check the id"),
                             "list_id", 404)
    existing = {(w.kind, w.pattern) for w in db.scalars(select(wf.SensitiveWord).where(
        wf.SensitiveWord.list_id == list_id))}
    added = 0
    for index, (pattern, kind, severity) in enumerate(words):
        if severity not in SEVERITIES:
            raise WorkforceError(Msg("severity '%(severity)s' is unknown", severity=severity),
                                 Msg("use one of %(value)s", value=', '.join(SEVERITIES)),
                                 f"words[{index}].severity")
        try:
            clean = check_pattern(pattern, kind)
        except WordError as exc:
            raise WorkforceError(exc.message, Msg("fix or remove this word"), f"words[{index}].pattern") from None
        if (kind, clean) in existing:
            continue
        existing.add((kind, clean))
        db.add(wf.SensitiveWord(list_id=list_id, pattern=clean, kind=kind, severity=severity))
        added += 1
    row.updated_at = now or utcnow()
    db.flush()
    return added


def delete_word(db: Session, word_id: int, now: datetime | None = None) -> None:
    from activities.workforce.common import WorkforceError
    from engine.db.models import utcnow

    word = db.get(wf.SensitiveWord, word_id)
    if word is None:
        raise WorkforceError(Msg("word %(word_id)s does not exist", word_id=word_id), Msg("check the id"), "id", 404)
    owner = db.get(wf.SensitiveWordList, word.list_id)
    db.delete(word)
    if owner is not None:
        owner.updated_at = now or utcnow()


def lists_view(db: Session, team: str | None = None) -> list[dict[str, Any]]:
    query = select(wf.SensitiveWordList)
    if team:
        query = query.where(wf.SensitiveWordList.team == team)
    out = []
    for row in db.scalars(query.order_by(wf.SensitiveWordList.team, wf.SensitiveWordList.id)):
        words = db.scalars(select(wf.SensitiveWord).where(wf.SensitiveWord.list_id == row.id)
                           .order_by(wf.SensitiveWord.id)).all()
        out.append({"id": row.id, "team": row.team, "name": row.name, "direction": row.direction,
                    "departments": row.departments, "members": row.members, "enabled": row.enabled,
                    "words": [{"id": w.id, "pattern": w.pattern, "kind": w.kind, "severity": w.severity}
                              for w in words]})
    return out
