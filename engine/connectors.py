"""Configured connectors: discovery (entry point group ``tideflow.connectors``) and their stored
configuration, with secrets decrypted only in memory when needed."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import secrets as vault
from engine.db import models
from engine.text import Msg

GROUP = "tideflow.connectors"


@lru_cache(maxsize=1)
def connector_classes() -> dict[str, Any]:
    """kind → connector class (loaded once)."""
    return {ep.name: ep.load() for ep in entry_points(group=GROUP)}


@dataclass
class LoadedConnector:
    id: str
    kind: str
    connector: Any
    settings: Any
    secrets: Any


def load(db: Session, connector_id: str) -> LoadedConnector | None:
    """An enabled, configured connector with parsed settings and decrypted secrets; None if absent."""
    row = db.get(models.ConnectorConfig, connector_id)
    if row is None or not row.enabled:
        return None
    cls = connector_classes().get(row.kind)
    if cls is None:
        return None
    return LoadedConnector(row.id, row.kind, cls(), cls.Settings.model_validate(row.settings),
                           cls.Secrets.model_validate(vault.decrypt(row.secrets)))


def for_channel(db: Session, channel: str) -> LoadedConnector | None:
    """The first enabled connector (by id) that delivers ``channel`` with its configuration (a webhook
    connector set up for inbound deliveries only is passed over)."""
    kinds = [k for k, cls in connector_classes().items() if channel in getattr(cls, "channels", ())]
    if not kinds:
        return None
    row_ids = db.scalars(select(models.ConnectorConfig.id).where(models.ConnectorConfig.kind.in_(kinds),
                                                                 models.ConnectorConfig.enabled.is_(True))
                         .order_by(models.ConnectorConfig.id))
    for row_id in row_ids:
        loaded = load(db, row_id)
        if loaded is not None and loaded.connector.delivers(loaded.settings):
            return loaded
    return None


def save(db: Session, connector_id: str, kind: str, name: str, settings: dict[str, Any],
         secrets: dict[str, Any] | None, enabled: bool = True) -> models.ConnectorConfig:
    """Create or update a connector; ``secrets=None`` keeps the stored ones. Validates both models."""
    cls = connector_classes().get(kind)
    if cls is None:
        raise ValueError(Msg("unknown connector kind '%(kind)s'; installed: %(value)s",
                             kind=kind, value=', '.join(sorted(connector_classes()))))
    parsed_settings = cls.Settings.model_validate(settings)
    row = db.get(models.ConnectorConfig, connector_id)
    stored = vault.decrypt(row.secrets) if row is not None else {}
    merged = {**stored, **(secrets or {})}
    cls.Secrets.model_validate(merged)
    if row is None:
        row = models.ConnectorConfig(id=connector_id, kind=kind, name=name)
        db.add(row)
    row.kind, row.name, row.enabled = kind, name, enabled
    row.settings = parsed_settings.model_dump(mode="json")
    row.secrets = vault.encrypt(merged)
    row.updated_at = models.utcnow()
    return row
