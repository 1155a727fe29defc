"""Rule-based auto-tagging: when an event arrives and a rule's condition holds, add and remove tags.

An event hook (entry point ``15-auto-tags`` in ``tideflow.event_hooks``), run after profile
maintenance (``10-profile-maintenance``), so a condition sees the customer *after* this event:
on the first ``order.paid``, ``customer.orders_count == 1``.

A rule is a row of ``tag_rules``: ``event_type``, a ``condition`` (a sandboxed expression over
``customer``, ``event`` and ``now``), ``add_tags``, ``remove_tags``, ``enabled``. Rules for the
event's type run in id order; each sees the tags the ones before it changed. A rule whose condition
cannot be evaluated is skipped with a warning naming the rule — an event is never refused because
of a rule. Every change is written to the audit log (actor ``tag-rule:<id>``), so "why does this
customer have this tag" has an answer.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from engine import expressions
from engine.auth import audit
from engine.customers import canonical, customer_view, derived_attributes
from engine.db import models
from engine.db.models import utcnow
from engine.event_types import explain_unknown, is_known
from engine.events import signal_payload
from engine.nodes.base import Expression
from engine.text import Msg

log = logging.getLogger(__name__)
MAX_TAGS = 20


def _tags(value: list[str], field: str) -> list[str]:
    out: list[str] = []
    for tag in value:
        cleaned = tag.strip()
        if not cleaned or len(cleaned) > 80:
            raise ValueError(Msg("tag '%(tag)s' in %(field)s must be 1–80 characters",
                                 tag=tag, field=field))
        if cleaned not in out:
            out.append(cleaned)
    return out


class TagRuleSpec(BaseModel):
    """A tag rule as the API and :func:`default_rules` describe it."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=120, examples=["首单尝鲜客"])
    event_type: str = Field(min_length=3, max_length=120, examples=["order.paid"])
    condition: Expression = Field(default="true", max_length=expressions.MAX_SOURCE,
                                  description="when the rule applies; sees customer (after this event), event, now",
                                  examples=["customer.orders_count == 1"])
    add_tags: list[str] = Field(default_factory=list, max_length=MAX_TAGS, examples=[["尝鲜客"]])
    remove_tags: list[str] = Field(default_factory=list, max_length=MAX_TAGS)
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError(Msg("the name is empty"))
        return value.strip()

    @field_validator("event_type")
    @classmethod
    def _event_type(cls, value: str) -> str:
        if not is_known(value):
            raise ValueError(explain_unknown(value))
        return value

    @field_validator("condition")
    @classmethod
    def _condition(cls, value: str) -> str:
        try:
            expressions.compile_expression(value)
        except expressions.ExpressionError as exc:
            raise ValueError(Msg("expression %(exc)s", exc=exc)) from None
        return value

    @field_validator("add_tags")
    @classmethod
    def _add(cls, value: list[str]) -> list[str]:
        return _tags(value, "add_tags")

    @field_validator("remove_tags")
    @classmethod
    def _remove(cls, value: list[str]) -> list[str]:
        return _tags(value, "remove_tags")

    @model_validator(mode="after")
    def _some_tags(self) -> TagRuleSpec:
        if not self.add_tags and not self.remove_tags:
            raise ValueError(Msg("add or remove at least one tag"))
        both = sorted(set(self.add_tags) & set(self.remove_tags))
        if both:
            raise ValueError(Msg("tag '%(value)s' is both added and removed; keep it in one list",
                                 value=both[0]))
        return self

    def write_to(self, row: models.TagRule) -> models.TagRule:
        row.name, row.event_type, row.condition = self.name, self.event_type, self.condition
        row.add_tags, row.remove_tags, row.enabled = list(self.add_tags), list(self.remove_tags), self.enabled
        return row


def default_rules() -> list[TagRuleSpec]:
    """The rules Tideflow ships: first purchase → 尝鲜客; return rate above 30 % → 品质敏感.

    ``return_rate`` is a decimal string (``"0.3333"``), so it is compared through ``| float``, guarded
    for customers who have none yet.
    """
    return [
        TagRuleSpec(name="首单尝鲜客", event_type="order.paid", condition="customer.orders_count == 1",
                    add_tags=["尝鲜客"]),
        TagRuleSpec(name="高退货率品质敏感", event_type="refund.completed",
                    condition="customer.return_rate and customer.return_rate | float > 0.3",
                    add_tags=["品质敏感"]),
    ]


def install_default_rules(db: Session) -> list[models.TagRule]:
    """Add the default rules that are not there yet (matched by name); returns the rows added.

    Idempotent: run it at every start-up. A default rule an operator disabled or edited keeps its
    changes; one they deleted comes back (disable it instead).
    """
    have = set(db.scalars(select(models.TagRule.name)))
    added = [spec.write_to(models.TagRule()) for spec in default_rules() if spec.name not in have]
    db.add_all(added)
    db.flush()
    return added


def _set_tags(db: Session, customer_id: str, add: list[str], remove: list[str]) -> None:
    for tag in add:
        db.add(models.CustomerTag(customer_id=customer_id, tag=tag, created_at=utcnow()))
    if remove:
        db.execute(delete(models.CustomerTag).where(models.CustomerTag.customer_id == customer_id,
                                                    models.CustomerTag.tag.in_(remove)))
    db.flush()


def run_rules(db: Session, customer_id: str, event: dict[str, Any],
              rules: list[models.TagRule]) -> list[dict[str, Any]]:
    """Apply ``rules`` (in order) to one customer for one event; returns what each matching rule changed."""
    customer_id = canonical(db, customer_id)
    customer = customer_view(db, customer_id)
    if not customer:
        return []
    now = utcnow()
    customer = {**customer, **derived_attributes(customer, now)}
    tags = set(customer.get("tags") or [])
    changes: list[dict[str, Any]] = []
    for rule in rules:
        context = {"customer": {**customer, "tags": sorted(tags)}, "event": event, "vars": {}, "journey": {},
                   "now": now}
        try:
            matched = expressions.test(rule.condition, context)
        except Exception as exc:  # a broken rule is skipped, never fails the event
            log.warning("tag rule %s (%s) skipped for event %s: %s", rule.id, rule.name, event.get("id"), exc)
            continue
        if not matched:
            continue
        add = [t for t in rule.add_tags if isinstance(t, str) and t not in tags]
        remove = [t for t in rule.remove_tags if isinstance(t, str) and t in tags and t not in add]
        if not add and not remove:
            continue
        _set_tags(db, customer_id, add, remove)
        tags = (tags | set(add)) - set(remove)
        change = {"rule": rule.id, "name": rule.name, "added": add, "removed": remove}
        audit(db, f"tag-rule:{rule.id}", "customer.tagged", customer_id,
              {"rule": rule.name, "event": event.get("id"), "added": add, "removed": remove})
        changes.append(change)
    return changes


def apply_tag_rules(db: Session, event: models.EventRecord) -> None:
    """Event hook: run the enabled rules for this event's type."""
    if not event.customer_id:
        return
    rules = list(db.scalars(select(models.TagRule).where(models.TagRule.event_type == event.type,
                                                         models.TagRule.enabled.is_(True))
                            .order_by(models.TagRule.id)))
    if rules:
        run_rules(db, event.customer_id, signal_payload(event), rules)
