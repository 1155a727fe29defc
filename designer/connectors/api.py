"""Connector configuration (连接器): the JSON API and a settings page, for admins only.

- ``GET /api/connectors`` — the installed kinds (label, channels, whether they take inbound
  deliveries, their Settings and Secrets JSON Schemas) and the configured connectors. Secrets are
  never returned, not even masked: only which secret fields are set.
- ``GET /api/connectors/{id}`` — one configured connector, shaped the same way.
- ``PUT /api/connectors/{id}`` — create (201) or update (200) ``{kind, name, enabled, settings,
  secrets}``. ``settings`` is replaced as a whole (omitted fields take their defaults); ``secrets``
  is write-only and merged: a field left out keeps its stored value, ``null`` or ``""`` clears it.
  Both are validated by the connector's own models; a problem is a 422 naming ``settings.<field>``
  or ``secrets.<field>``. The kind of an existing connector cannot change (409).
- ``DELETE /api/connectors/{id}`` — 204.
- ``GET /settings/connectors`` — the settings page (:mod:`designer.connectors.pages`), which saves
  through the same functions.

Every route needs the admin role: connector secrets are the keys to outside platforms. Saves and
deletes are written to the audit log (without secret values). The connector id becomes the event
``source`` and the inbound URL ``/hooks/<id>``, so it is lower-case letters, digits, ``-`` and ``_``.

"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from connectors.base import Connector
from designer.auth import get_db_url, require
from designer.errors import ApiError, ProblemDict, validation_problems
from engine import auth, connector_ops
from engine import connectors as configured
from engine import secrets as vault
from engine.db import models
from engine.db.models import User
from engine.db.session import session_factory, transaction
from engine.text import Msg, message_of

router = APIRouter()
Admin = Annotated[User, Depends(require("admin"))]
DbUrl = Annotated[str, Depends(get_db_url)]
#: the connector id is the events' source (engine.events.EventIn.source) and part of /hooks/<id>
ID_PATTERN = re.compile(r"^[a-z][a-z0-9_\-]{0,59}$")


# --- models ------------------------------------------------------------------------------------------


class ConnectorKind(BaseModel):
    kind: str
    label: dict[str, str]
    channels: list[str] = Field(description="send_message channels this kind delivers")
    inbound: bool = Field(description="whether it takes deliveries at /hooks/<connector id>")
    settings_schema: dict[str, Any]
    secrets_schema: dict[str, Any]


class ConnectorOut(BaseModel):
    id: str
    kind: str
    name: str
    enabled: bool
    installed: bool = Field(description="false when the kind's package is not installed on this server")
    settings: dict[str, Any]
    secrets_set: dict[str, bool] = Field(description="for each secret field: whether a value is stored")
    secrets_readable: bool = Field(description="false when the stored secrets cannot be decrypted with this "
                                               "instance's key; re-enter them")
    channels: list[str]
    hook_path: str | None = Field(description="where the platform sends deliveries, when the kind takes them")
    created_at: datetime
    updated_at: datetime


class ConnectorList(BaseModel):
    kinds: list[ConnectorKind]
    connectors: list[ConnectorOut]


class ConnectorIn(BaseModel):
    """Create or update a connector. ``secrets`` is write-only: omitted fields keep their stored values."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    kind: str = Field(min_length=1, max_length=40, examples=["email"])
    name: str = Field(min_length=1, max_length=200, examples=["企业邮箱"])
    enabled: bool = True
    settings: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, Any] = Field(default_factory=dict, json_schema_extra={"writeOnly": True},
                                           description="new secret values; null or \"\" clears one")


# --- helpers -----------------------------------------------------------------------------------------


def installed_kinds() -> dict[str, Any]:
    """The connector classes installed (entry point group ``tideflow.connectors``), by kind."""
    return dict(configured.connector_classes())  # through the module attribute: tests swap it


def _takes_inbound(cls: Any) -> bool:
    return getattr(cls, "inbound", None) is not Connector.inbound


def _kind(kind: str, cls: Any) -> ConnectorKind:
    return ConnectorKind(kind=kind, label=dict(getattr(cls, "label", {}) or {"en": kind}),
                         channels=list(getattr(cls, "channels", ())), inbound=_takes_inbound(cls),
                         settings_schema=cls.Settings.model_json_schema(),
                         secrets_schema=cls.Secrets.model_json_schema())


def _secret_fields(cls: Any | None, stored: dict[str, Any]) -> list[str]:
    names = list(cls.Secrets.model_fields) if cls is not None else []
    return names + sorted(k for k in stored if k not in names)


def _view(row: models.ConnectorConfig, classes: dict[str, Any]) -> ConnectorOut:
    cls = classes.get(row.kind)
    readable = True
    try:
        stored = vault.decrypt(row.secrets)
    except vault.SecretsError:
        stored, readable = {}, False
    return ConnectorOut(
        id=row.id, kind=row.kind, name=row.name, enabled=row.enabled, installed=cls is not None,
        settings=dict(row.settings or {}),
        secrets_set={name: bool(stored.get(name)) for name in _secret_fields(cls, stored)},
        secrets_readable=readable, channels=list(getattr(cls, "channels", ())) if cls is not None else [],
        hook_path=f"/hooks/{row.id}" if cls is not None and _takes_inbound(cls) else None,
        created_at=row.created_at, updated_at=row.updated_at)


def _check_id(connector_id: str) -> None:
    if not ID_PATTERN.match(connector_id):
        raise ApiError(422, Msg("connector id '%(value)s' is not allowed", value=connector_id[:80]),
                       Msg("use 1–60 lower-case letters, digits, '-' or '_', starting with a letter (e.g. smtp-main); "
                           "it becomes the events' source and the URL /hooks/<id>"), "id")


def _not_found(connector_id: str) -> ApiError:
    return ApiError(404, Msg("no connector '%(connector_id)s'", connector_id=connector_id),
                    Msg("GET /api/connectors lists the configured ones"), "id")


def list_connectors(db_url: str) -> ConnectorList:
    classes = installed_kinds()
    with session_factory(db_url)() as db:
        rows = db.query(models.ConnectorConfig).order_by(models.ConnectorConfig.id).all()
        return ConnectorList(kinds=[_kind(k, c) for k, c in sorted(classes.items())],
                             connectors=[_view(r, classes) for r in rows])


def save_connector(db_url: str, user: User, connector_id: str, body: ConnectorIn) -> tuple[bool, ConnectorOut]:
    """Validate and store; returns (created, the connector as shown). Raises :class:`ApiError`."""
    _check_id(connector_id)
    classes = installed_kinds()
    cls = classes.get(body.kind)
    if cls is None:
        installed = ", ".join(sorted(classes)) or "none"
        raise ApiError(422, Msg("unknown connector kind '%(kind)s'", kind=body.kind),
                       Msg("use an installed kind: %(installed)s", installed=installed), "kind")
    cleared = {k: ("" if v is None else v) for k, v in body.secrets.items()}
    with transaction(db_url) as db:
        row = db.get(models.ConnectorConfig, connector_id)
        if row is not None and row.kind != body.kind:
            raise ApiError(409, Msg("connector '%(connector_id)s' is a %(kind)s connector; its kind cannot change",
                                    connector_id=connector_id, kind=row.kind),
                           Msg("delete it and create a new one, or use another id"), "kind")
        try:
            stored = vault.decrypt(row.secrets) if row is not None else {}
        except vault.SecretsError as exc:
            raise ApiError(409, message_of(exc), Msg("delete the connector and create it again with all its secrets"),
                           "secrets") from None
        problems: list[ProblemDict] = []
        try:
            cls.Settings.model_validate(body.settings)
        except ValidationError as exc:
            problems += validation_problems(list(exc.errors()), "settings.")
        try:
            cls.Secrets.model_validate({**stored, **cleared})
        except ValidationError as exc:
            problems += validation_problems(list(exc.errors(include_input=False)), "secrets.")
        if problems:
            raise ApiError.invalid(problems)
        created = row is None
        before = {"name": row.name, "enabled": row.enabled, "settings": dict(row.settings or {})} if row else None
        saved = configured.save(db, connector_id, body.kind, body.name, body.settings, cleared, body.enabled)
        changed = sorted(k for k, v in cleared.items() if v != stored.get(k))
        # secrets never: only which of them changed (their values are neither before nor after)
        auth.audit(db, user, "connector.created" if created else "connector.updated", connector_id,
                   {"kind": body.kind, "changed_secret_fields": changed}, before=before,
                   after={"name": saved.name, "enabled": saved.enabled, "settings": dict(saved.settings or {})},
                   only_changed=not created)
        db.flush()
        return created, _view(saved, classes)


def create_connector(db_url: str, user: User, connector_id: str, body: ConnectorIn) -> ConnectorOut:
    """Like :func:`save_connector`, but 409 when the id is taken (the settings page's add form)."""
    _check_id(connector_id)
    with session_factory(db_url)() as db:
        if db.get(models.ConnectorConfig, connector_id) is not None:
            raise ApiError(409, Msg("a connector with id '%(connector_id)s' already exists", connector_id=connector_id),
                           Msg("choose another id, or edit that connector above"), "id")
    return save_connector(db_url, user, connector_id, body)[1]


def delete_connector(db_url: str, user: User, connector_id: str) -> None:
    with transaction(db_url) as db:
        row = db.get(models.ConnectorConfig, connector_id)
        if row is None:
            raise _not_found(connector_id)
        auth.audit(db, user, "connector.deleted", connector_id, {"kind": row.kind, "name": row.name},
                   before={"name": row.name, "enabled": row.enabled, "settings": dict(row.settings or {})})
        connector_ops.forget(db, connector_id)  # its cursors, sync state and unmapped messages go with it
        db.delete(row)


# --- JSON API ----------------------------------------------------------------------------------------


@router.get("/api/connectors", tags=["connectors"])
async def get_connectors(user: Admin, db_url: DbUrl) -> ConnectorList:
    """Installed kinds with their config schemas, and the configured connectors (secrets: only whether set)."""
    return await run_in_threadpool(list_connectors, db_url)


@router.get("/api/connectors/{connector_id}", tags=["connectors"])
async def get_connector(connector_id: str, user: Admin, db_url: DbUrl) -> ConnectorOut:
    def one() -> ConnectorOut:
        with session_factory(db_url)() as db:
            row = db.get(models.ConnectorConfig, connector_id)
            if row is None:
                raise _not_found(connector_id)
            return _view(row, installed_kinds())

    return await run_in_threadpool(one)


@router.put("/api/connectors/{connector_id}", tags=["connectors"],
            responses={201: {"model": ConnectorOut, "description": "created"}})
async def put_connector(connector_id: str, body: ConnectorIn, user: Admin, db_url: DbUrl,
                        response: Response) -> ConnectorOut:
    """Create or update; ``secrets`` fields left out keep their stored values."""
    created, view = await run_in_threadpool(save_connector, db_url, user, connector_id, body)
    response.status_code = 201 if created else 200
    return view


@router.delete("/api/connectors/{connector_id}", tags=["connectors"], status_code=204)
async def remove_connector(connector_id: str, user: Admin, db_url: DbUrl) -> Response:
    await run_in_threadpool(delete_connector, db_url, user, connector_id)
    return Response(status_code=204)
