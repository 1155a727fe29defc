"""action.tag: add and remove customer tags."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field, model_validator
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from engine.actions import ActionContext
from engine.customers import canonical
from engine.db import models
from engine.nodes.base import ActionResult, NodeConfig, NodeType
from engine.text import Msg


class TagConfig(NodeConfig):
    add: list[str] = Field(default_factory=list, description="tags to add", examples=[["尝鲜客"]])
    remove: list[str] = Field(default_factory=list, description="tags to remove")

    @model_validator(mode="after")
    def _something(self) -> TagConfig:
        if not self.add and not self.remove:
            raise ValueError(Msg("add or remove at least one tag"))
        for tag in [*self.add, *self.remove]:
            if not tag.strip() or len(tag) > 80:
                raise ValueError(Msg("tag '%(tag)s' must be 1–80 characters", tag=tag))
        return self


class Tag(NodeType):
    type = "action.tag"
    category = "action"
    label = {"zh-CN": "打标签", "en": "Tag customer"}
    description = {"zh-CN": "给客户添加或移除标签", "en": "Add or remove customer tags"}
    kinds = ("journey", "ticket")
    Config = TagConfig

    @classmethod
    def run(cls, ctx: ActionContext, config: Any) -> ActionResult:
        if ctx.customer_id is None:
            return ActionResult(detail={"skipped": "no customer"})
        return ActionResult(detail=change_tags(ctx.db, ctx.customer_id, config.add, config.remove))


def change_tags(db: Session, customer_id: str, add: Sequence[str] = (), remove: Sequence[str] = ()) -> dict[str, Any]:
    """Add and remove tags of a customer (merged customers: the surviving one), in the caller's transaction.
    Returns what changed: ``{"added": [...], "removed": [...]}`` (a tag already there is not added again)."""
    customer_id = canonical(db, customer_id)
    have = set(db.scalars(select(models.CustomerTag.tag).where(models.CustomerTag.customer_id == customer_id)))
    added = [t for t in dict.fromkeys(add) if t not in have]
    for tag in added:
        db.add(models.CustomerTag(customer_id=customer_id, tag=tag))
    removed = [t for t in dict.fromkeys(remove) if t in have and t not in added]
    if removed:
        db.execute(delete(models.CustomerTag).where(models.CustomerTag.customer_id == customer_id,
                                                    models.CustomerTag.tag.in_(removed)))
    return {"added": added, "removed": removed}
