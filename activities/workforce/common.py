"""What the workforce services share: the corp's WeCom client, its workforce settings, staff rows, the
customer behind an external_userid, and emitting Tideflow events (store once; routed on commit)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.wecom.api_errors import ApiError, WeComCredentialsRejected
from connectors.wecom.client import WeComClient
from engine import connectors as configured
from engine import events as ingest
from engine.db import models
from engine.db import workforce_models as wf
from engine.db.models import utcnow
from engine.db.session import session_factory
from engine.text import Msg, MsgError, verbatim

log = logging.getLogger(__name__)

#: external_userid prefixes (WeChat users wm…, WeCom users of other corps wo…)
EXTERNAL_PREFIXES = ("wm", "wo")


class WorkforceError(MsgError):
    """A request that cannot be carried out; ``field`` and ``fix`` say what to change (the API answers 4xx)."""


def wecom_refusal(exc: ApiError) -> WorkforceError:
    """A WeCom (or Finance SDK) error answer as a refusal people read, by what it means for them:

    * busy, rate-limited, no answer (``retryable``) → 503: not now, try again in a minute;
    * the connector's credentials or its app's permissions (40001, 40013, 40091, 48002, 60020) → 502: WeCom
      refused, fix the connector (``connector_id``);
    * anything else WeCom refused → 502: WeCom refused, its errcode and words, what to check (``wecom``).

    WeCom's own words (errcode, errmsg and the hint of connectors/wecom/api_errors.py) stay as they are."""
    detail = verbatim(str(exc)[:400])
    if exc.retryable:
        return WorkforceError(Msg("WeCom is busy or rate-limited right now (%(detail)s)", detail=detail),
                              Msg("try again in a minute"), "wecom", 503)
    if isinstance(exc, WeComCredentialsRejected):
        return WorkforceError(Msg("WeCom refused the request: the connector's credentials or permissions are not "
                                  "accepted (%(detail)s)", detail=detail),
                              Msg("check the WeCom connector under Connectors: its CorpID and Secret, and that its "
                                  "app may call the 客户联系 APIs"), "connector_id", 502)
    return WorkforceError(Msg("WeCom refused the request: %(detail)s", detail=detail),
                          Msg("check what WeCom says (look its errcode up at "
                              "developer.work.weixin.qq.com/devtool/query), put it right, then try again"),
                          "wecom", 502)


def is_external(userid: str) -> bool:
    return userid.startswith(EXTERNAL_PREFIXES)


def wecom_client(database_url: str | None, connector_id: str) -> tuple[WeComClient, Any]:
    """The shared client of a configured, enabled WeCom connector, and its settings."""
    from connectors.wecom.connector import client_for

    with session_factory(database_url)() as db:
        loaded = configured.load(db, connector_id)
    if loaded is None or loaded.kind != "wecom":
        raise WorkforceError(Msg("no enabled WeCom connector '%(connector_id)s'", connector_id=connector_id),
                             Msg("configure it under Connectors"),
                             "connector_id", 404)
    return client_for(loaded.settings, loaded.secrets), loaded


def settings_of(db: Session, connector_id: str) -> wf.WorkforceSettings:
    """The connector's workforce settings (defaults until an admin saves some)."""
    row = db.get(wf.WorkforceSettings, connector_id)
    if row is None:
        row = wf.WorkforceSettings(connector_id=connector_id, mass_quota_policy="month_days", at_limit="exclude",
                                   auto_handover=False, default_strategy={"kind": "round_robin"},
                                   transfer_success_msg="", default_auditors=[], archive_enabled=False,
                                   updated_at=utcnow())
    return row


def staff_of(db: Session, connector_id: str, userid: str) -> wf.WeComStaff | None:
    return db.get(wf.WeComStaff, (connector_id, userid))


def customer_ids_of(db: Session, external_userids: Iterable[str]) -> dict[str, str]:
    """external_userid → Tideflow customer id, for those Tideflow knows."""
    from engine.customers import canonical

    ids = list(dict.fromkeys(external_userids))
    found: dict[str, str] = {}
    for start in range(0, len(ids), 500):
        for value, customer_id in db.execute(select(models.Identity.value, models.Identity.customer_id).where(
                models.Identity.kind == "wecom_external_userid", models.Identity.value.in_(ids[start:start + 500]))):
            found[value] = customer_id
    return {k: canonical(db, v) for k, v in found.items()}


def customer_for(db: Session, external_userid: str) -> str:
    """The Tideflow customer of an external contact (created when Tideflow has never seen them)."""
    from engine.customers import resolve

    return resolve(db, {"wecom_external_userid": external_userid})


def store_events(database_url: str | None, connector_id: str, events: list[dict[str, Any]]) -> int:
    """Store events (``POST /api/events`` shape, source = the connector) once, in one transaction, and hand
    those that still need routing to this process's routing pipeline as soon as they commit
    (:mod:`engine.follow_ups`: the web process's, or a worker's) — claimed, so the re-router leaves them
    alone; without one they wait for the re-router. Returns how many were handed on."""
    parsed = [ingest.EventIn.model_validate({"source": connector_id, **raw}) for raw in events]
    return sum(s.needs_routing for s in ingest.store_and_hand_on(parsed, database_url)) if parsed else 0


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
