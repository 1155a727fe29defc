"""Builders for ticket tests: users, agent groups, agents, ticket types and ticket flows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from engine.db import models
from engine.db.session import session_factory, transaction
from tests.engine.flowkit import publish


def user(db_url: str, username: str, role: str = "agent") -> int:
    with transaction(db_url) as db:
        row = models.User(username=username, password_hash="x", role=role, display_name=username)
        db.add(row)
        db.flush()
        return row.id


def group(db_url: str, key: str, strategy: str = "round_robin", supervisor_id: int | None = None,
          calendar: dict[str, Any] | None = None, capacity: int = 10) -> None:
    with transaction(db_url) as db:
        db.merge(models.AgentGroup(key=key, name=key, strategy=strategy, supervisor_id=supervisor_id,
                                   calendar=calendar or {}, capacity=capacity, notify_channel="dry-run", rr_last=0))


def agent(db_url: str, user_id: int, groups: list[str], skills: list[str] | None = None,
          capacity: int | None = None, availability: str = "online") -> None:
    with transaction(db_url) as db:
        db.merge(models.Agent(user_id=user_id, groups=groups, skills=skills or [], capacity=capacity,
                              availability=availability, working_hours={}, contact={"wecom_userid": f"u{user_id}"}))


def ticket_type(db_url: str, key: str, flow_id: str | None, default_group: str = "default",
                fields: list[dict[str, Any]] | None = None) -> None:
    with transaction(db_url) as db:
        db.merge(models.TicketType(key=key, name=key, fields=fields or [], flow_id=flow_id,
                                   default_group=default_group, default_priority="P3", auto_events=[]))


def ticket_flow(flow_id: str, nodes: list[tuple[str, str, dict[str, Any]]], edges: list[tuple[str, str, str]]
                ) -> dict[str, Any]:
    return {"schema": "tideflow/flow@1", "id": flow_id, "name": flow_id, "kind": "ticket",
            "nodes": [{"id": i, "type": t, "config": c} for i, t, c in nodes],
            "edges": [{"from": a, "port": p, "to": b} for a, p, b in edges]}


def publish_ticket_flow(db_url: str, document: dict[str, Any]) -> dict[str, Any]:
    return publish(db_url, document)


def events(db_url: str, ticket_id: int, kind: str | None = None) -> list[models.TicketEvent]:
    with session_factory(db_url)() as db:
        query = select(models.TicketEvent).where(models.TicketEvent.ticket_id == ticket_id)
        if kind:
            query = query.where(models.TicketEvent.kind == kind)
        return list(db.scalars(query.order_by(models.TicketEvent.id)).all())


def ticket(db_url: str, ticket_id: int) -> models.Ticket:
    with session_factory(db_url)() as db:
        found = db.get(models.Ticket, ticket_id)
        assert found is not None
        return found

