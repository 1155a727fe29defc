"""The message archive (会话存档): what each customer sent and was sent, masked, for a retention period.

Outbound messages are the ``messages`` rows ``action.send_message`` writes (direction ``out``).
Inbound ones are written here by an event hook (entry point ``30-message-archive``) from the
events that carry what a customer wrote (:data:`INBOUND_TYPES` with a ``payload.content``):
direction ``in``, status ``received``, category ``inbound`` (so they never count against frequency
caps), idempotency key ``in/<source>:<event id>``, ``created_at`` = when the customer wrote it.

Content is masked before it is stored (:func:`engine.pii.mask_text`: mobile and bank card numbers),
so the archive never holds them in clear. :func:`purge_archive` deletes what is older than the
retention (``TIDEFLOW_ARCHIVE_RETENTION_DAYS``, 180 by default).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.customers import canonical
from engine.db import models
from engine.db.retention import purge_older
from engine.pii import mask_text

#: event types whose payload carries a message the customer wrote, and the channel it came by
INBOUND_TYPES: dict[str, str] = {
    "wecom.message_received": "wecom",
    "wechat.message_received": "wechat_oa",
}
MAX_CONTENT = 20_000
DEFAULT_RETENTION_DAYS = 180


def inbound_content(payload: dict[str, Any] | None) -> str | None:
    """The text to archive: ``payload.content``; for a non-text message, ``[<msgtype>]``."""
    payload = payload or {}
    content = payload.get("content")
    if isinstance(content, str) and content.strip():
        return content[:MAX_CONTENT]
    kind = payload.get("msgtype") or payload.get("msg_type")
    if isinstance(kind, str) and kind.strip():
        return f"[{kind.strip()[:30]}]"
    return None


def archive_key(event: models.EventRecord) -> str:
    return f"in/{event.source}:{event.external_id}"


def archive_inbound(db: Session, event: models.EventRecord) -> None:
    """Event hook: store an inbound customer message, masked, once."""
    channel = INBOUND_TYPES.get(event.type)
    if channel is None or not event.customer_id:
        return
    content = inbound_content(event.payload)
    if content is None:
        return
    key = archive_key(event)
    if db.scalar(select(models.Message.id).where(models.Message.idempotency_key == key)) is not None:
        return
    db.add(models.Message(
        idempotency_key=key, customer_id=canonical(db, event.customer_id), channel=channel,
        content=mask_text(content), status="received", direction="in", category="inbound",
        created_at=event.occurred_at,
    ))


def purge_archive(db: Session, older_than_days: int, now: datetime) -> int:
    """Delete archived messages (both directions) created before ``now - older_than_days``; returns how
    many. Deletes in batches so a large backlog never holds one huge lock."""
    return purge_older(db, models.Message, models.Message.created_at, older_than_days, now)
