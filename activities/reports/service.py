"""The ops board (客服主管): ticket volume, SLA attainment, backlog by group and agent load.

Definitions (docs/dashboards.md):

- **Volume**: tickets created per local day of the range; resolved: tickets resolved in the range.
- **SLA attainment**: of the tickets created in the range that have an SLA policy, the share that never
  breached a target (no ``…:breach`` checkpoint fired). Tickets whose clock still runs count as met so far.
- **Backlog**: open and pending tickets now, by group.
- **Agent load**: open and pending tickets assigned to each agent now, beside the agent's capacity (the
  group's when the agent has none) and availability.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from activities.reports import Range, series
from engine.db import models

OPEN = ("open", "pending")


def volume(db: Session, r: Range) -> dict[str, Any]:
    created = db.execute(select(models.Ticket.created_at).where(
        models.Ticket.created_at >= r.since, models.Ticket.created_at < r.until)).scalars().all()
    per_day = Counter(r.day_of(at) for at in created)
    resolved = db.scalar(select(func.count()).select_from(models.Ticket).where(
        models.Ticket.resolved_at >= r.since, models.Ticket.resolved_at < r.until)) or 0
    return {"created": len(created), "resolved": int(resolved), "series": series(r.days(), dict(per_day))}


def sla_attainment(db: Session, r: Range) -> dict[str, Any]:
    rows = db.execute(select(models.Ticket.sla).where(models.Ticket.created_at >= r.since,
                                                       models.Ticket.created_at < r.until)).scalars().all()
    with_policy = [s for s in rows if isinstance(s, dict) and s.get("policy")]
    breached = sum(1 for s in with_policy if any(str(k).endswith(":breach") for k in s.get("fired") or []))
    total = len(with_policy)
    return {"with_sla": total, "met": total - breached, "breached": breached,
            "attainment": round(100 * (total - breached) / total, 1) if total else None}


def backlog(db: Session) -> dict[str, Any]:
    names = dict(db.execute(select(models.AgentGroup.key, models.AgentGroup.name)).all())
    rows = db.execute(select(models.Ticket.group_key, models.Ticket.status, func.count()).where(
        models.Ticket.status.in_(OPEN)).group_by(models.Ticket.group_key, models.Ticket.status)).all()
    groups: dict[str, dict[str, Any]] = {}
    for key, status, n in rows:
        entry = groups.setdefault(str(key), {"name": names.get(key, key), "open": 0, "pending": 0})
        entry[str(status)] = int(n)
    return {"total": sum(g["open"] + g["pending"] for g in groups.values()),
            "by_group": dict(sorted(groups.items(), key=lambda kv: (-(kv[1]["open"] + kv[1]["pending"]), kv[0])))}


def agent_load(db: Session) -> list[dict[str, Any]]:
    capacity = dict(db.execute(select(models.AgentGroup.key, models.AgentGroup.capacity)).all())
    load = dict(db.execute(select(models.Ticket.assignee_id, func.count()).where(
        models.Ticket.status.in_(OPEN), models.Ticket.assignee_id.is_not(None))
        .group_by(models.Ticket.assignee_id)).all())
    out = []
    for agent, user in db.execute(select(models.Agent, models.User).join(models.User,
                                                                         models.User.id == models.Agent.user_id)):
        own = agent.capacity or min((capacity.get(g, 10) for g in agent.groups or []), default=10)
        out.append({"user_id": user.id, "name": user.display_name or user.username, "open": int(load.get(user.id, 0)),
                    "capacity": int(own), "availability": agent.availability})
    return sorted(out, key=lambda a: (-a["open"], a["name"]))


def board(db: Session, r: Range) -> dict[str, Any]:
    """Every figure of the ops board."""
    return {"range": r.as_dict(), "days": [d.isoformat() for d in r.days()], "volume": volume(db, r),
            "sla": sla_attainment(db, r), "backlog": backlog(db), "agents": agent_load(db)}
