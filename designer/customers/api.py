"""Customers in the JSON API: customers (search, one profile), their messages, the message archive
(会话存档), tag rules, and manual profile edits.

``app.include_router(router)``; every route is guarded (see :func:`designer.auth.unguarded_routes`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from activities.profile.auto_tags import TagRuleSpec, install_default_rules
from activities.profile.tag import change_tags
from activities.profile.update_profile import ProfileChange, ProfileError, apply_change
from designer import reading
from designer.auth import get_db_url, require
from designer.errors import ApiError
from designer.permissions import CUSTOMER_READERS
from engine.auth import audit
from engine.customers import canonical, mask_identity, matching, tags_of
from engine.db import models
from engine.db.models import User
from engine.db.session import session_factory, transaction
from engine.pii import mask_text, mask_values
from engine.text import Msg, message_of

router = APIRouter(prefix="/api")
DbUrl = Annotated[str, Depends(get_db_url)]
Marketer = Annotated[User, Depends(require("marketer"))]
Reader = Annotated[User, Depends(require(*CUSTOMER_READERS))]


def _customer_or_404(db: Session, customer_id: str) -> models.Customer:
    if db.get(models.Customer, customer_id) is None:
        raise ApiError(404, Msg("customer '%(customer_id)s' does not exist", customer_id=customer_id),
                       Msg("search with GET /api/customers"), "id")
    found = db.get(models.Customer, canonical(db, customer_id))
    assert found is not None
    return found


def _merged_ids(db: Session, customer_id: str) -> list[str]:
    """The customer and every customer merged into it (their old messages belong to it now)."""
    ids, frontier = [customer_id], [customer_id]
    while frontier and len(ids) < 1000:
        frontier = [c for c in db.scalars(select(models.Customer.id).where(models.Customer.merged_into.in_(frontier)))
                    if c not in ids]
        ids += frontier
    return ids


# -- customers and their messages ----------------------------------------------------------------------------
@router.get("/customers", tags=["customers"])
def list_customers(request: Request, user: Reader,
                   q: str | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[dict[str, Any]]:
    with session_factory(get_db_url(request))() as db:
        query = select(models.Customer).where(models.Customer.merged_into.is_(None))
        if q:
            query = query.where(matching(q))
        rows = list(db.scalars(query.order_by(models.Customer.created_at.desc()).limit(limit)))
        reader = reading.reader_of(db, user)
        return [reading.customer_for(db, reader, c.id, {"id": c.id, "name": c.name,
                                                        "created_at": c.created_at.isoformat()}) for c in rows]


@router.get("/customers/{customer_id}", tags=["customers"])
def get_customer(request: Request, customer_id: str,
                 user: Reader) -> dict[str, Any]:
    with session_factory(get_db_url(request))() as db:
        c = _customer_or_404(db, customer_id)
        cid = c.id
        identities = db.scalars(select(models.Identity).where(models.Identity.customer_id == cid))
        journeys = db.scalars(select(models.Journey).where(models.Journey.customer_id == cid)
                              .order_by(models.Journey.started_at.desc()).limit(100))
        messages = db.scalars(select(models.Message).where(models.Message.customer_id == cid)
                              .order_by(models.Message.id.desc()).limit(100))
        reader = reading.reader_of(db, user)
        customer = reading.customer_for(db, reader, cid, {
            "id": c.id, "name": c.name, "timezone": c.timezone, "attributes": c.attributes, "tags": tags_of(db, cid),
            "identities": [{"kind": i.kind, "value": mask_identity(i.kind, i.value, platform_ids=False)}
                           for i in identities]})
        return {
            **customer,
            "journeys": [{"id": j.workflow_id, "flow": j.flow_id, "version": j.version, "status": j.status,
                          "node": j.current_node, "started_at": j.started_at.isoformat()} for j in journeys],
            "messages": reading.messages_for(db, reader, messages, lambda m: {
                "channel": m.channel, "content": m.content, "status": m.status, "flow": m.flow_id,
                "node": m.node_id, "at": m.created_at.isoformat()}),
        }


@router.get("/messages", tags=["customers"])
def list_messages(request: Request, user: Reader,
                  customer_id: str | None = None, flow: str | None = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    with session_factory(get_db_url(request))() as db:
        query = select(models.Message)
        if customer_id:
            query = query.where(models.Message.customer_id == customer_id)
        if flow:
            query = query.where(models.Message.flow_id == flow)
        rows = db.scalars(query.order_by(models.Message.id.desc()).limit(limit))
        return reading.messages_for(db, reading.reader_of(db, user), rows, lambda m: {
            "customer_id": m.customer_id, "channel": m.channel, "content": m.content, "status": m.status,
            "flow": m.flow_id, "node": m.node_id, "at": m.created_at.isoformat()})


# -- the archive --------------------------------------------------------------------------------------------
class ArchivedMessage(BaseModel):
    id: int
    direction: str = Field(description="in: the customer wrote it; out: a journey sent it")
    channel: str
    content: str | None = Field(description="masked: mobile and bank card numbers never appear in clear; null "
                                            "when your role may not read it (content_hidden)")
    content_hidden: bool = False
    status: str
    category: str
    flow: str | None
    node: str | None
    at: str


class ArchivePage(BaseModel):
    customer_id: str
    messages: list[ArchivedMessage]
    next_before: int | None = Field(description="pass as ?before= for the next (older) page; null at the end")


@router.get("/customers/{customer_id}/archive", tags=["customers"])
def customer_archive(customer_id: str, user: Reader, db_url: DbUrl,
                     direction: Literal["in", "out"] | None = None,
                     before: Annotated[int | None, Query(ge=1, description="only messages older than this id")] = None,
                     limit: Annotated[int, Query(ge=1, le=200)] = 50) -> ArchivePage:
    """What the customer sent and was sent, newest first, masked."""
    with session_factory(db_url)() as db:
        customer = _customer_or_404(db, customer_id)
        query = select(models.Message).where(models.Message.customer_id.in_(_merged_ids(db, customer.id)))
        if direction:
            query = query.where(models.Message.direction == direction)
        if before is not None:
            query = query.where(models.Message.id < before)
        rows = list(db.scalars(query.order_by(models.Message.id.desc()).limit(limit + 1)))
        more = len(rows) > limit
        rows = rows[:limit]
        seen = reading.messages_for(db, reading.reader_of(db, user), rows, lambda m: {
            "id": m.id, "direction": m.direction, "channel": m.channel, "content": mask_text(m.content),
            "status": m.status, "category": m.category, "flow": m.flow_id, "node": m.node_id,
            "at": m.created_at.isoformat()})
    return ArchivePage(customer_id=customer.id, next_before=rows[-1].id if more else None,
                       messages=[ArchivedMessage.model_validate(m) for m in seen])


# -- tag rules ------------------------------------------------------------------------------------------------
class TagRuleOut(BaseModel):
    id: int
    name: str
    event_type: str
    condition: str
    add_tags: list[str]
    remove_tags: list[str]
    enabled: bool
    created_at: str


def _rule_out(row: models.TagRule) -> TagRuleOut:
    return TagRuleOut(id=row.id, name=row.name, event_type=row.event_type, condition=row.condition,
                      add_tags=[str(t) for t in row.add_tags], remove_tags=[str(t) for t in row.remove_tags],
                      enabled=row.enabled, created_at=row.created_at.isoformat())


def _rule_or_404(db: Session, rule_id: int) -> models.TagRule:
    row = db.get(models.TagRule, rule_id)
    if row is None:
        raise ApiError(404, Msg("tag rule %(rule_id)s does not exist", rule_id=rule_id),
                       Msg("list the rules with GET /api/tag-rules"), "id")
    return row


@router.get("/tag-rules", tags=["customers"])
def list_tag_rules(user: Marketer, db_url: DbUrl, event_type: str | None = None) -> list[TagRuleOut]:
    with session_factory(db_url)() as db:
        query = select(models.TagRule).order_by(models.TagRule.id)
        if event_type:
            query = query.where(models.TagRule.event_type == event_type)
        return [_rule_out(r) for r in db.scalars(query)]


@router.post("/tag-rules", status_code=201, tags=["customers"])
def create_tag_rule(body: TagRuleSpec, user: Marketer, db_url: DbUrl) -> TagRuleOut:
    """Add a rule. The condition is compiled now: a mistake is a 422 naming ``condition``."""
    with transaction(db_url) as db:
        row = body.write_to(models.TagRule())
        db.add(row)
        db.flush()
        audit(db, user, "tag_rule.created", f"tag-rule:{row.id}", body.model_dump())
        return _rule_out(row)


@router.post("/tag-rules/defaults", tags=["customers"])
def install_default_tag_rules(user: Marketer, db_url: DbUrl) -> list[TagRuleOut]:
    """Add the shipped rules (尝鲜客, 品质敏感) that are missing, matched by name; returns those added."""
    with transaction(db_url) as db:
        added = install_default_rules(db)
        for row in added:
            audit(db, user, "tag_rule.created", f"tag-rule:{row.id}", {"name": row.name, "default": True})
        return [_rule_out(r) for r in added]


@router.put("/tag-rules/{rule_id}", tags=["customers"])
def update_tag_rule(rule_id: int, body: TagRuleSpec, user: Marketer, db_url: DbUrl) -> TagRuleOut:
    """Replace a rule (every field)."""
    with transaction(db_url) as db:
        found = _rule_or_404(db, rule_id)
        before = _rule_out(found).model_dump(mode="json")
        row = body.write_to(found)
        db.flush()
        audit(db, user, "tag_rule.updated", f"tag-rule:{row.id}", {}, before=before,
              after=_rule_out(row).model_dump(mode="json"), only_changed=True)
        return _rule_out(row)


@router.delete("/tag-rules/{rule_id}", tags=["customers"])
def delete_tag_rule(rule_id: int, user: Marketer, db_url: DbUrl) -> dict[str, Any]:
    """Delete a rule. Tags it gave stay on the customers."""
    with transaction(db_url) as db:
        row = _rule_or_404(db, rule_id)
        audit(db, user, "tag_rule.deleted", f"tag-rule:{row.id}", {"name": row.name},
              before=_rule_out(row).model_dump(mode="json"))
        db.delete(row)
        return {"id": rule_id, "deleted": True}


# -- manual profile edits -------------------------------------------------------------------------------------
@router.post("/customers/{customer_id}/profile", tags=["customers"])
def update_customer_profile(customer_id: str, body: ProfileChange, user: Marketer, db_url: DbUrl) -> dict[str, Any]:
    """Set, increment or unset attributes by hand (values are literal: no templates). Audited."""
    with transaction(db_url) as db:
        customer = _customer_or_404(db, customer_id)
        before = mask_values(dict(customer.attributes or {}))
        try:
            changed = apply_change(db, customer.id, body)
        except ProfileError as exc:
            op = next((op for op in ("set", "increment", "unset") if exc.attribute in getattr(body, op)), "set")
            field = f"{op}.{exc.attribute}" if exc.attribute else None
            raise ApiError(422, message_of(exc), Msg("send a value the attribute can hold"), field) from None
        audit(db, user, "customer.profile_updated", customer.id, {
            "set": mask_values(changed["set"]),
            "incremented": changed["incremented"], "unset": changed["unset"]},
            before=before, after=mask_values(dict(customer.attributes or {})), only_changed=True)
        db.flush()
        return {"id": customer.id, "name": customer.name, "timezone": customer.timezone,
                "attributes": customer.attributes, "tags": tags_of(db, customer.id),
                "changed": {"set": sorted(changed["set"]), "incremented": sorted(changed["incremented"]),
                            "unset": changed["unset"]}}


class TagChange(BaseModel):
    """Tags to add and to remove (1–80 characters each)."""

    model_config = ConfigDict(extra="forbid")
    add: list[str] = Field(default_factory=list, max_length=20)
    remove: list[str] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _something(self) -> TagChange:
        if not self.add and not self.remove:
            raise ValueError(Msg("add or remove at least one tag"))
        for tag in [*self.add, *self.remove]:
            if not tag.strip() or len(tag.strip()) > 80:
                raise ValueError(Msg("tag '%(tag)s' must be 1–80 characters", tag=tag))
        self.add = [t.strip() for t in self.add]
        self.remove = [t.strip() for t in self.remove]
        return self


@router.post("/customers/{customer_id}/tags", tags=["customers"])
def change_customer_tags(customer_id: str, body: TagChange, user: Reader, db_url: DbUrl) -> dict[str, Any]:
    """Add and remove tags by hand (the sidebar, the customer page). Audited."""
    with transaction(db_url) as db:
        customer = _customer_or_404(db, customer_id)
        changed = change_tags(db, customer.id, body.add, body.remove)
        if changed["added"] or changed["removed"]:
            audit(db, user, "customer.tags_changed", customer.id, changed)
        db.flush()
        return {"id": customer.id, "tags": tags_of(db, customer.id), **changed}
