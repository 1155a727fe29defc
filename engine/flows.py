"""Flows as the designer and CLI manage them: drafts, immutable numbered versions, rollback."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.compiler import compile_flow
from engine.db import models
from engine.db.models import utcnow
from engine.flow import ID_PATTERN
from engine.registry import Registry, entry_event_of
from engine.text import Msg, MsgError
from engine.validate import Validation, validate


class FlowError(MsgError):
    """A flow operation that cannot be done (unknown flow, bad document)."""


def _audit(db: Session, actor: str, action: str, target: str, detail: dict[str, Any]) -> None:
    db.add(models.AuditEntry(actor=actor, action=action, target=target, detail=detail))


def save_draft(db: Session, document: dict[str, Any], actor: str) -> tuple[models.FlowRecord, Validation]:
    """Save a draft; it may have problems (they are returned, not raised)."""
    import re

    if not isinstance(document, dict):
        raise FlowError(Msg("a flow must be a JSON object"))
    flow_id = document.get("id")
    if not isinstance(flow_id, str) or not re.match(ID_PATTERN, flow_id):
        raise FlowError(Msg("field 'id' is required: letters, digits, '-', '_' or '.', at most 80 "
                            "characters"))
    checked = validate(document)
    record = db.get(models.FlowRecord, flow_id)
    name = str(document.get("name") or flow_id)[:200]
    kind = str(document.get("kind") or "journey")
    if record is None:
        record = models.FlowRecord(id=flow_id, name=name, kind=kind, status="draft", draft=document,
                                   updated_by=actor)
        db.add(record)
        _audit(db, actor, "flow.created", flow_id, {})
    else:
        if record.status == "archived":
            raise FlowError(Msg("flow '%(flow_id)s' is archived; restore it before editing",
                                flow_id=flow_id))
        record.draft, record.name, record.kind = document, name, kind
        record.updated_at, record.updated_by = utcnow(), actor
        _audit(db, actor, "flow.saved", flow_id, {})
    db.flush()
    return record, checked


def latest_version(db: Session, flow_id: str) -> models.FlowVersion | None:
    return db.scalar(select(models.FlowVersion).where(models.FlowVersion.flow_id == flow_id)
                     .order_by(models.FlowVersion.version.desc()).limit(1))


def publish(db: Session, flow_id: str, actor: str, registry: Registry | None = None,
            document: dict[str, Any] | None = None) -> models.FlowVersion:
    """Publish the draft (or ``document``) as the next immutable version.

    Raises :class:`engine.compiler.FlowInvalid` listing every problem. Publishing an
    unchanged flow returns the current version instead of creating a new one.
    """
    record = db.get(models.FlowRecord, flow_id)
    if record is None:
        raise FlowError(Msg("flow '%(flow_id)s' does not exist", flow_id=flow_id))
    doc = document if document is not None else record.draft
    if doc.get("id") != flow_id:
        raise FlowError(Msg("the document's id '%(document_id)s' is not '%(flow_id)s'",
                            document_id=doc.get('id'), flow_id=flow_id))
    compiled = compile_flow(doc, registry)
    current = latest_version(db, flow_id)
    if current is not None and current.hash == compiled["hash"] and record.current_version == current.version:
        record.status = "active"
        return current
    number = (db.scalar(select(func.max(models.FlowVersion.version))
                        .where(models.FlowVersion.flow_id == flow_id)) or 0) + 1
    compiled["version"] = number
    trigger = compiled["nodes"][compiled["trigger"]]
    entry = entry_event_of(trigger, registry)
    version = models.FlowVersion(
        flow_id=flow_id, version=number, hash=compiled["hash"], document=doc, compiled=compiled,
        trigger_type=trigger["type"], trigger_event=entry[0] if entry else None, created_by=actor,
    )
    db.add(version)
    record.current_version = number
    record.status = "active"
    record.updated_at = utcnow()
    _audit(db, actor, "flow.published", flow_id, {"version": number, "hash": compiled["hash"]})
    db.flush()
    return version


def rollback(db: Session, flow_id: str, to_version: int, actor: str) -> models.FlowVersion:
    """Publish an older version's document again, as the next version."""
    old = db.get(models.FlowVersion, (flow_id, to_version))
    if old is None:
        raise FlowError(Msg("flow '%(flow_id)s' has no version %(to_version)s",
                            flow_id=flow_id, to_version=to_version))
    record = db.get(models.FlowRecord, flow_id)
    assert record is not None
    record.draft = old.document
    version = publish(db, flow_id, actor)
    _audit(db, actor, "flow.rolled_back", flow_id, {"to": to_version, "as": version.version})
    return version


def set_status(db: Session, flow_id: str, status: str, actor: str) -> models.FlowRecord:
    if status not in ("active", "paused", "archived", "draft"):
        raise FlowError(Msg("unknown status '%(status)s'; use active, paused or archived",
                            status=status))
    record = db.get(models.FlowRecord, flow_id)
    if record is None:
        raise FlowError(Msg("flow '%(flow_id)s' does not exist", flow_id=flow_id))
    if status == "active" and record.current_version is None:
        raise FlowError(Msg("flow '%(flow_id)s' has never been published", flow_id=flow_id))
    record.status = status
    _audit(db, actor, f"flow.{status}", flow_id, {})
    return record


def stats(db: Session, flow_id: str, version: int | None = None) -> dict[str, Any]:
    """Per-node counters of a version (default: current): entered, left per port, waiting, failed."""
    record = db.get(models.FlowRecord, flow_id)
    if record is None:
        raise FlowError(Msg("flow '%(flow_id)s' does not exist", flow_id=flow_id))
    number = version or record.current_version
    nodes: dict[str, dict[str, Any]] = {}
    if number is not None:
        for row in db.scalars(select(models.NodeStat).where(models.NodeStat.flow_id == flow_id,
                                                            models.NodeStat.version == number)):
            entry = nodes.setdefault(row.node_id, {"entered": 0, "left": {}, "waiting": 0, "failed": 0,
                                                   "converted": 0})
            if row.metric == "left":
                entry["left"][row.port] = row.count
            else:
                entry[row.metric] = entry.get(row.metric, 0) + row.count
    return {"flow": flow_id, "version": number, "nodes": nodes}
