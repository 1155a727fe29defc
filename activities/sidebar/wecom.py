"""The WeCom app the sidebar runs as, from the configured WeCom connector: its corp, AgentId and secret
(``app_secret``, else the connector's ``secret``) — and sending library images as WeCom media.

The sidebar uses the first enabled WeCom connector (by id) that has an AgentId, unless a connector id is
named. Without one, the page says so instead of failing later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from activities.sidebar import library
from activities.sidebar.context import MediaFor
from connectors.wecom.jsapi import WeComApp, shared_app
from connectors.wecom.media import Image, WeComMedia
from engine import connectors
from engine.db import models
from engine.db.sidebar_models import ScriptImage
from engine.text import Msg


@dataclass(frozen=True)
class SidebarApp:
    connector_id: str
    corp_id: str
    agent_id: int
    oauth_base: str
    app: WeComApp

    @property
    def key(self) -> str:
        return f"{self.corp_id}/{self.agent_id}"


class NotConfigured(LookupError):
    """No enabled WeCom connector with an AgentId: the sidebar cannot sign anyone in."""


def sidebar_app(db: Session, connector_id: str | None = None) -> SidebarApp:
    query = select(models.ConnectorConfig.id).where(models.ConnectorConfig.kind == "wecom",
                                                    models.ConnectorConfig.enabled.is_(True))
    if connector_id:
        query = query.where(models.ConnectorConfig.id == connector_id)
    for row_id in db.scalars(query.order_by(models.ConnectorConfig.id)):
        loaded = connectors.load(db, row_id)
        if loaded is None or not getattr(loaded.settings, "agent_id", None):
            continue
        settings, secrets = loaded.settings, loaded.secrets
        secret = (secrets.app_secret or secrets.secret).get_secret_value()
        app = shared_app(settings.corp_id, int(settings.agent_id), secret, api_base=settings.api_base,
                         rate_per_second=settings.rate_limit_per_second)
        return SidebarApp(loaded.id, settings.corp_id, int(settings.agent_id), settings.oauth_base, app)
    raise NotConfigured(Msg("no enabled WeCom connector has an AgentId: set agent_id (and app_secret) on the WeCom "
                            "connector the chat sidebar belongs to"))


def media_for(db: Session, sidebar: SidebarApp, now: datetime) -> MediaFor:
    """Upload a library image to WeCom (connectors/wecom/media.py) when it has no media id of this app that
    still has more than 12 of its 72 hours to live."""

    def upload(image: ScriptImage) -> str:
        found = library.cached_media_id(image, sidebar.key, now)
        if found is None:
            suffix = "png" if image.content_type == "image/png" else "jpg"
            found, _created = WeComMedia(sidebar.app.client).upload(
                Image(image.data, image.content_type, f"script-{image.id}.{suffix}"))
            library.remember_media_id(image, sidebar.key, found, now)
            db.flush()
        return found

    return upload
