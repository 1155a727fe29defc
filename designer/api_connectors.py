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
- ``GET /settings/connectors`` — a server-rendered page: one form per configured connector and one
  per installed kind to add a new one (plain ``<form method="post">`` with the CSRF token, answered
  by a 303; no JavaScript). Secret inputs are always empty and say 已设置 / set when a value is stored.

Every route needs the admin role: connector secrets are the keys to outside platforms. Saves and
deletes are written to the audit log (without secret values). The connector id becomes the event
``source`` and the inbound URL ``/hooks/<id>``, so it is lower-case letters, digits, ``-`` and ``_``.

Mount with ``app.include_router(api_connectors.router)``.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from connectors.base import Connector
from designer import i18n
from designer.auth import get_db_url, require
from designer.errors import ApiError, validation_problems
from engine import auth, connector_ops
from engine import connectors as configured
from engine import secrets as vault
from engine.db import models
from engine.db.models import User
from engine.db.session import session_factory, transaction

router = APIRouter()
Admin = Annotated[User, Depends(require("admin"))]
DbUrl = Annotated[str, Depends(get_db_url)]
#: the connector id is the events' source (engine.events.EventIn.source) and part of /hooks/<id>
ID_PATTERN = re.compile(r"^[a-z][a-z0-9_\-]{0,59}$")
HERE = Path(__file__).resolve().parent


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


def _classes() -> dict[str, Any]:
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
        raise ApiError(422, f"connector id '{connector_id[:80]}' is not allowed",
                       "use 1–60 lower-case letters, digits, '-' or '_', starting with a letter (e.g. smtp-main); "
                       "it becomes the events' source and the URL /hooks/<id>", "id")


def _not_found(connector_id: str) -> ApiError:
    return ApiError(404, f"no connector '{connector_id}'", "GET /api/connectors lists the configured ones", "id")


def list_connectors(db_url: str) -> ConnectorList:
    classes = _classes()
    with session_factory(db_url)() as db:
        rows = db.query(models.ConnectorConfig).order_by(models.ConnectorConfig.id).all()
        return ConnectorList(kinds=[_kind(k, c) for k, c in sorted(classes.items())],
                             connectors=[_view(r, classes) for r in rows])


def save_connector(db_url: str, user: User, connector_id: str, body: ConnectorIn) -> tuple[bool, ConnectorOut]:
    """Validate and store; returns (created, the connector as shown). Raises :class:`ApiError`."""
    _check_id(connector_id)
    classes = _classes()
    cls = classes.get(body.kind)
    if cls is None:
        installed = ", ".join(sorted(classes)) or "none"
        raise ApiError(422, f"unknown connector kind '{body.kind}'", f"use an installed kind: {installed}", "kind")
    cleared = {k: ("" if v is None else v) for k, v in body.secrets.items()}
    with transaction(db_url) as db:
        row = db.get(models.ConnectorConfig, connector_id)
        if row is not None and row.kind != body.kind:
            raise ApiError(409, f"connector '{connector_id}' is a {row.kind} connector; its kind cannot change",
                           "delete it and create a new one, or use another id", "kind")
        try:
            stored = vault.decrypt(row.secrets) if row is not None else {}
        except vault.SecretsError as exc:
            raise ApiError(409, str(exc), "delete the connector and create it again with all its secrets",
                           "secrets") from None
        problems: list[dict[str, Any]] = []
        try:
            cls.Settings.model_validate(body.settings)
        except ValidationError as exc:
            problems += validation_problems(list(exc.errors()), "settings.")
        try:
            cls.Secrets.model_validate({**stored, **cleared})
        except ValidationError as exc:
            problems += validation_problems(list(exc.errors(include_input=False)), "secrets.")
        if problems:
            raise ApiError(422, problems[0]["message"], problems[0]["fix"], problems[0]["field"], problems=problems)
        created = row is None
        saved = configured.save(db, connector_id, body.kind, body.name, body.settings, cleared, body.enabled)
        changed = sorted(k for k, v in cleared.items() if v != stored.get(k))
        auth.audit(db, user, "connector.created" if created else "connector.updated", connector_id,
                   {"kind": body.kind, "name": body.name, "enabled": body.enabled, "changed_secret_fields": changed})
        db.flush()
        return created, _view(saved, classes)


def create_connector(db_url: str, user: User, connector_id: str, body: ConnectorIn) -> ConnectorOut:
    """Like :func:`save_connector`, but 409 when the id is taken (the settings page's add form)."""
    _check_id(connector_id)
    with session_factory(db_url)() as db:
        if db.get(models.ConnectorConfig, connector_id) is not None:
            raise ApiError(409, f"a connector with id '{connector_id}' already exists",
                           "choose another id, or edit that connector above", "id")
    return save_connector(db_url, user, connector_id, body)[1]


def delete_connector(db_url: str, user: User, connector_id: str) -> None:
    with transaction(db_url) as db:
        row = db.get(models.ConnectorConfig, connector_id)
        if row is None:
            raise _not_found(connector_id)
        auth.audit(db, user, "connector.deleted", connector_id, {"kind": row.kind, "name": row.name})
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
            return _view(row, _classes())

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


# --- settings page -----------------------------------------------------------------------------------

i18n.add({
    "zh-CN": {
        "cn.title": "连接器",
        "cn.intro": "外部系统（企业微信、店铺、邮件、短信、Webhook）的接入配置。密钥加密保存，只写不读。",
        "cn.configured": "已配置的连接器", "cn.none": "还没有配置连接器。", "cn.add": "添加连接器",
        "cn.id": "连接器 ID", "cn.id_hint": "小写字母、数字、- 或 _，以字母开头；用作事件来源和回调地址",
        "cn.name": "名称", "cn.enabled": "启用", "cn.settings": "设置", "cn.secrets": "密钥",
        "cn.set": "已设置", "cn.unset": "未设置", "cn.keep": "留空则保留原值", "cn.save": "保存", "cn.delete": "删除",
        "cn.hook": "回调地址", "cn.channels": "发送渠道", "cn.saved": "已保存。", "cn.deleted": "已删除。",
        "cn.problems": "未保存：请修正以下问题", "cn.not_installed": "此类型的连接器未安装",
        "cn.unreadable": "密钥无法用本实例的密钥解密，请重新填写。", "cn.json": "JSON 对象",
    },
    "en": {
        "cn.title": "Connectors",
        "cn.intro": "How Tideflow reaches outside systems (WeCom, shops, email, SMS, webhooks). Secrets are encrypted "
                    "and write-only.",
        "cn.configured": "Configured connectors", "cn.none": "No connector is configured yet.",
        "cn.add": "Add a connector", "cn.id": "Connector id",
        "cn.id_hint": "lower-case letters, digits, - or _, starting with a letter; the events' source and the "
                      "callback URL",
        "cn.name": "Name", "cn.enabled": "Enabled", "cn.settings": "Settings", "cn.secrets": "Secrets",
        "cn.set": "set", "cn.unset": "not set", "cn.keep": "leave empty to keep", "cn.save": "Save",
        "cn.delete": "Delete", "cn.hook": "Callback URL", "cn.channels": "Channels", "cn.saved": "Saved.",
        "cn.deleted": "Deleted.", "cn.problems": "Not saved: fix these problems",
        "cn.not_installed": "this connector kind is not installed",
        "cn.unreadable": "The secrets cannot be decrypted with this instance's key; enter them again.",
        "cn.json": "JSON object",
    },
})

PAGE = """{% extends "base.html" %}
{% block title %}{{ t['cn.title'] }}{% endblock %}
{% macro problem_list(problems) -%}
<div class="error" role="alert"><strong>{{ t['cn.problems'] }}</strong><ul>
{% for p in problems %}<li><code>{{ p.field }}</code>: {{ p.message }}{% if p.fix %} — {{ p.fix }}{% endif %}</li>
{% endfor %}</ul></div>
{%- endmacro %}
{% macro input(f) -%}
<div class="field">
  <label for="{{ f.id }}">{{ f.label }}{% if f.required %} *{% endif %}</label>
  {% if f.widget == 'password' -%}
  <input type="password" id="{{ f.id }}" name="{{ f.name }}" value="" autocomplete="new-password"
    placeholder="{{ t['cn.set'] if f.is_set else t['cn.unset'] }}">
  <span class="muted secret-state">{{ t['cn.set'] if f.is_set else t['cn.unset'] }}
    {%- if f.is_set %} · {{ t['cn.keep'] }}{% endif %}</span>
  {%- elif f.widget == 'checkbox' -%}
  <input type="checkbox" id="{{ f.id }}" name="{{ f.name }}" value="true"{% if f.value %} checked{% endif %}>
  {%- elif f.widget == 'select' -%}
  <select id="{{ f.id }}" name="{{ f.name }}">{% for option in f.options %}
    <option{% if option == f.value %} selected{% endif %}>{{ option }}</option>{% endfor %}</select>
  {%- elif f.widget == 'textarea' -%}
  <textarea id="{{ f.id }}" name="{{ f.name }}" rows="3" cols="60">{{ f.value }}</textarea>
  {%- else -%}
  <input type="{{ f.widget }}" id="{{ f.id }}" name="{{ f.name }}" value="{{ f.value }}"
    {%- if f.widget == 'number' %} step="{{ f.step }}"{% endif %}{% if f.required %} required{% endif %}>
  {%- endif %}
  {% if f.help %}<small class="muted">{{ f.help }}</small>{% endif %}
</div>
{%- endmacro %}
{% macro connector_form(form) -%}
{% if form.problems %}{{ problem_list(form.problems) }}{% endif %}
<form method="post" action="{{ form.action }}" class="connector">
  <input type="hidden" name="csrf_token" value="{{ csrf }}">
  <input type="hidden" name="kind" value="{{ form.kind }}">
  {% for f in form.head %}{{ input(f) }}{% endfor %}
  <fieldset><legend>{{ t['cn.settings'] }}</legend>{% for f in form.settings %}{{ input(f) }}{% endfor %}</fieldset>
  {% if form.secrets %}<fieldset><legend>{{ t['cn.secrets'] }}</legend>
  {% for f in form.secrets %}{{ input(f) }}{% endfor %}</fieldset>{% endif %}
  <button type="submit" class="btn">{{ t['cn.save'] }}</button>
</form>
{%- endmacro %}
{% block content %}
<h1>{{ t['cn.title'] }}</h1>
<p class="muted">{{ t['cn.intro'] }}</p>
{% if notice %}<p class="ok" role="status">{{ t['cn.' ~ notice] }}</p>{% endif %}
<h2>{{ t['cn.configured'] }}</h2>
{% for c, form in configured %}
<section class="connector" id="connector-{{ c.id }}">
  <h3>{{ c.name }} <span class="muted">· {{ c.kind }} · <code>{{ c.id }}</code></span></h3>
  {% if c.hook_path %}<p>{{ t['cn.hook'] }}: <code class="hook">{{ base_url }}{{ c.hook_path }}</code></p>{% endif %}
  {% if c.channels %}<p>{{ t['cn.channels'] }}: <code>{{ c.channels | join(', ') }}</code></p>{% endif %}
  {% if not c.secrets_readable %}<p class="error">{{ t['cn.unreadable'] }}</p>{% endif %}
  {% if form %}{{ connector_form(form) }}{% else %}<p class="error">{{ t['cn.not_installed'] }}</p>{% endif %}
  <form method="post" action="/settings/connectors/{{ c.id }}/delete" class="inline">
    <input type="hidden" name="csrf_token" value="{{ csrf }}">
    <button type="submit" class="btn danger">{{ t['cn.delete'] }}</button>
  </form>
</section>
{% else %}<p class="muted">{{ t['cn.none'] }}</p>{% endfor %}
<h2>{{ t['cn.add'] }}</h2>
{% for kind, form in adding %}
<details id="add-{{ kind.kind }}"{% if form.problems %} open{% endif %}>
  <summary>{{ kind.label.get(lang) or kind.label.get('en') or kind.kind }} <code>{{ kind.kind }}</code></summary>
  {{ connector_form(form) }}
</details>
{% endfor %}
{% endblock %}
"""

templates = Jinja2Templates(env=jinja2.Environment(
    loader=jinja2.ChoiceLoader([jinja2.DictLoader({"settings/connectors.html": PAGE}),
                                jinja2.FileSystemLoader(str(HERE / "templates"))]),
    autoescape=True))


def _spec_type(spec: dict[str, Any]) -> str:
    """The JSON Schema type of a property, looking through ``anyOf [X, null]``."""
    if "type" in spec:
        return str(spec["type"])
    for option in spec.get("anyOf", []):
        if option.get("type") not in (None, "null"):
            return str(option["type"])
    return "string"


def _widget(name: str, spec: dict[str, Any]) -> str:
    kind = _spec_type(spec)
    if kind == "boolean":
        return "checkbox"
    if "enum" in spec:
        return "select"
    if kind in ("object", "array") or name.endswith("_template"):
        return "textarea"
    return "number" if kind in ("integer", "number") else "text"


def _shown(widget: str, value: Any) -> Any:
    if widget == "checkbox":
        return bool(value)
    if value is None:
        return ""
    if widget == "textarea" and not isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return value


def _form(t: Any, kind: ConnectorKind, form_id: str, action: str, values: dict[str, Any], name: str,
          enabled: bool, secrets_set: dict[str, bool], new_id: str | None = None,
          problems: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """What the template needs to draw one connector form: every input, typed from the JSON Schemas."""
    def field(prefix: str, key: str, spec: dict[str, Any], required: bool, value: Any = None) -> dict[str, Any]:
        widget = "password" if prefix == "secrets" else _widget(key, spec)
        return {"id": f"{form_id}-{prefix}-{key}", "name": f"{prefix}.{key}", "label": spec.get("title") or key,
                "widget": widget, "value": _shown(widget, value), "options": spec.get("enum", []),
                "required": required, "help": spec.get("description", ""), "is_set": secrets_set.get(key, False),
                "step": "any" if _spec_type(spec) == "number" else "1"}

    head = []
    if new_id is not None:
        head.append({"id": f"{form_id}-id", "name": "id", "label": t["cn.id"], "widget": "text", "value": new_id,
                     "required": True, "help": t["cn.id_hint"]})
    head += [{"id": f"{form_id}-name", "name": "name", "label": t["cn.name"], "widget": "text", "value": name,
              "required": True, "help": ""},
             {"id": f"{form_id}-enabled", "name": "enabled", "label": t["cn.enabled"], "widget": "checkbox",
              "value": enabled, "required": False, "help": ""}]
    settings_schema, secrets_schema = kind.settings_schema, kind.secrets_schema
    return {
        "action": action, "kind": kind.kind, "head": head, "problems": problems or [],
        "settings": [field("settings", key, spec, key in settings_schema.get("required", []),
                           values.get(key, spec.get("default")))
                     for key, spec in settings_schema.get("properties", {}).items()],
        "secrets": [field("secrets", key, spec, key in secrets_schema.get("required", []))
                    for key, spec in secrets_schema.get("properties", {}).items()],
    }


def _form_settings(schema: dict[str, Any], form: dict[str, str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Settings from form fields named ``settings.<field>``, typed by the JSON Schema; problems for bad JSON/numbers."""
    values: dict[str, Any] = {}
    problems: list[dict[str, Any]] = []
    for name, spec in schema.get("properties", {}).items():
        kind, raw = _spec_type(spec), form.get(f"settings.{name}")
        nullable = any(o.get("type") == "null" for o in spec.get("anyOf", []))
        if kind == "boolean":
            values[name] = raw in ("true", "on", "1")
        elif raw is None:
            continue
        elif raw.strip() == "":
            if nullable:
                values[name] = None
            elif kind == "string":
                values[name] = ""
        elif kind in ("integer", "number"):
            try:
                values[name] = int(raw) if kind == "integer" else float(raw)
            except ValueError:
                problems.append({"field": f"settings.{name}", "message": f"'{raw[:40]}' is not a number",
                                 "fix": "enter a number"})
        elif kind in ("object", "array"):
            try:
                values[name] = json.loads(raw)
            except json.JSONDecodeError as exc:
                problems.append({"field": f"settings.{name}", "message": f"not JSON ({exc.msg})",
                                 "fix": 'enter a JSON object such as {"X-Tenant": "shop-01"}'})
        else:
            values[name] = raw
    return values, problems


@dataclass
class Retry:
    """A form that did not save: shown again with what was typed (never the secrets) and the problems."""

    target: str  # a connector id, or "new:<kind>"
    values: dict[str, Any]
    name: str
    enabled: bool
    new_id: str
    problems: list[dict[str, Any]]


async def _render(request: Request, user: User, db_url: str, retry: Retry | None = None) -> HTMLResponse:
    listing = await run_in_threadpool(list_connectors, db_url)
    kinds = {k.kind: k for k in listing.kinds}
    t = i18n.text_for(request)[1]
    configured_forms = []
    for c in listing.connectors:
        kind = kinds.get(c.kind)
        again = retry if retry is not None and retry.target == c.id else None
        form = None if kind is None else _form(
            t, kind, c.id, f"/settings/connectors/{c.id}", again.values if again else c.settings,
            again.name if again else c.name, again.enabled if again else c.enabled, c.secrets_set,
            problems=again.problems if again else None)
        configured_forms.append((c, form))
    adding = []
    for kind in listing.kinds:
        again = retry if retry is not None and retry.target == f"new:{kind.kind}" else None
        adding.append((kind, _form(t, kind, f"new-{kind.kind}", "/settings/connectors", again.values if again else {},
                                   again.name if again else "", again.enabled if again else True, {},
                                   new_id=again.new_id if again else "", problems=again.problems if again else None)))
    notice = request.query_params.get("notice")
    context = i18n.page_context(request, user, configured=configured_forms, adding=adding,
                                base_url=str(request.base_url).rstrip("/"),
                                notice=notice if notice in ("saved", "deleted") else None)
    return templates.TemplateResponse(request, "settings/connectors.html", context,
                                      status_code=422 if retry is not None else 200)


@router.get("/settings/connectors", response_class=HTMLResponse, include_in_schema=False)
async def connectors_page(request: Request, user: Admin, db_url: DbUrl) -> HTMLResponse:
    return await _render(request, user, db_url)


async def _save_from_form(request: Request, user: User, db_url: str, connector_id: str | None) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    kind = form.get("kind", "")
    new = connector_id is None
    target = form.get("id", "").strip() if new else str(connector_id)
    name, enabled = form.get("name", "").strip(), form.get("enabled") == "true"
    cls = _classes().get(kind)
    settings, problems = _form_settings(cls.Settings.model_json_schema(), form) if cls is not None else ({}, [
        {"field": "kind", "message": f"unknown connector kind '{kind}'", "fix": "pick an installed kind"}])
    secrets: dict[str, Any] = {
        k.removeprefix("secrets."): v for k, v in form.items() if k.startswith("secrets.") and v != ""}
    if not problems:
        try:
            body = ConnectorIn(kind=kind, name=name, enabled=enabled, settings=settings, secrets=secrets)
            await run_in_threadpool(create_connector if new else save_connector, db_url, user, target, body)
        except ValidationError as exc:
            problems = validation_problems(list(exc.errors(include_input=False)))
        except ApiError as exc:
            problems = exc.body.get("problems") or [exc.body]
    if problems:
        retry = Retry(f"new:{kind}" if new else target, settings, name, enabled, target, problems)
        return await _render(request, user, db_url, retry)
    return RedirectResponse(f"/settings/connectors?notice=saved#connector-{target}", status_code=303)


@router.post("/settings/connectors", include_in_schema=False)
async def create_from_page(request: Request, user: Admin, db_url: DbUrl) -> Response:
    return await _save_from_form(request, user, db_url, None)


@router.post("/settings/connectors/{connector_id}", include_in_schema=False)
async def update_from_page(connector_id: str, request: Request, user: Admin, db_url: DbUrl) -> Response:
    return await _save_from_form(request, user, db_url, connector_id)


@router.post("/settings/connectors/{connector_id}/delete", include_in_schema=False)
async def delete_from_page(connector_id: str, user: Admin, db_url: DbUrl) -> Response:
    with contextlib.suppress(ApiError):  # already gone: the list shows the truth
        await run_in_threadpool(delete_connector, db_url, user, connector_id)
    return RedirectResponse("/settings/connectors?notice=deleted", status_code=303)
