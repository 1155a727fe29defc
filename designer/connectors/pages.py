"""The connector settings page (``/settings/connectors``, admins only): one form per configured connector
and one per installed kind to add a new one — plain ``<form method="post">`` with the CSRF token,
answered by a 303; no JavaScript. Secret inputs are always empty and say 已设置 / set when a value is
stored. Saving goes through the same functions as the JSON API (:mod:`designer.connectors.api`).

Each configured connector also shows its sync status (:func:`engine.connector_ops.sync_status`, the figures
of ``GET /api/connectors/{id}/status``): the last sync and its result, the last error and when, each
cursor and how far it is behind, the events not yet routed (the backlog) and those whose routing failed,
the last event, and how many messages could not be mapped — with **Resync** for a polled connector (from
a time given in the workspace's display time zone, or its backfill) and a page listing the unmapped messages
(``/settings/connectors/{id}/unmapped``, raw text with phone and card numbers masked).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from designer import errors, i18n
from designer.connectors.api import (
    Admin,
    ConnectorIn,
    ConnectorKind,
    DbUrl,
    create_connector,
    delete_connector,
    installed_kinds,
    list_connectors,
    save_connector,
)
from designer.connectors.ops_api import resync_connector
from designer.display import display_zone
from designer.errors import ApiError, validation_problems
from designer.i18n import _, gettext
from designer.pages import PER_PAGE, page_context, remember_language, templates
from engine import connector_ops
from engine.db import models
from engine.db.models import User
from engine.db.session import session_factory
from engine.pii import mask_text
from engine.text import Msg

router = APIRouter(include_in_schema=False)


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


def _form(kind: ConnectorKind, form_id: str, action: str, values: dict[str, Any], name: str,
          enabled: bool, secrets_set: dict[str, bool], new_id: str | None = None,
          problems: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """What the template needs to draw one connector form: every input, typed from the JSON Schemas."""
    def field(prefix: str, key: str, spec: dict[str, Any], required: bool, value: Any = None) -> dict[str, Any]:
        widget = "password" if prefix == "secrets" else _widget(key, spec)
        return {"id": f"{form_id}-{prefix}-{key}", "name": f"{prefix}.{key}",
                "label": gettext(spec.get("title") or key),
                "widget": widget, "value": _shown(widget, value), "options": spec.get("enum", []),
                "required": required, "help": gettext(spec.get("description", "")),
                "is_set": secrets_set.get(key, False),
                "step": "any" if _spec_type(spec) == "number" else "1"}

    head = []
    if new_id is not None:
        head.append({"id": f"{form_id}-id", "name": "id", "label": _("Connector id"), "widget": "text",
                     "value": new_id, "required": True,
                     "help": _("lower-case letters, digits, - or _, starting with a letter; the events' source and "
                               "the callback URL")})
    head += [{"id": f"{form_id}-name", "name": "name", "label": _("Name"), "widget": "text", "value": name,
              "required": True, "help": ""},
             {"id": f"{form_id}-enabled", "name": "enabled", "label": _("Enabled"), "widget": "checkbox",
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
                problems.append({"field": f"settings.{name}", "message": Msg("'%(value)s' is not a number",
                                                                             value=raw[:40]),
                                 "fix": Msg("enter a number")})
        elif kind in ("object", "array"):
            try:
                values[name] = json.loads(raw)
            except json.JSONDecodeError as exc:
                problems.append({"field": f"settings.{name}", "message": Msg("not JSON (%(error)s)", error=exc.msg),
                                 "fix": Msg('enter a JSON object such as {"X-Tenant": "shop-01"}')})
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


def _statuses(db_url: str, ids: list[str]) -> dict[str, connector_ops.SyncStatus]:
    with session_factory(db_url)() as db:
        found = {i: connector_ops.sync_status(db, i) for i in ids}
    return {i: status for i, status in found.items() if status is not None}


def duration(seconds: int) -> str:
    """``3 小时 5 分`` / ``3 h 5 min``: how far behind, to the minute (seconds when under one)."""
    if seconds < 60:
        return _("%(n)s s") % {"n": seconds}
    days, rest = divmod(seconds // 60, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [_("%(n)s d") % {"n": days}] if days else []
    parts += [_("%(n)s h") % {"n": hours}] if hours else []
    parts += [_("%(n)s min") % {"n": minutes}] if minutes and not days else []
    return " ".join(parts)


async def _render(request: Request, user: User, db_url: str, retry: Retry | None = None,
                  resync_problem: tuple[str, str, int] | None = None) -> HTMLResponse:
    listing = await run_in_threadpool(list_connectors, db_url)
    statuses = await run_in_threadpool(_statuses, db_url, [c.id for c in listing.connectors])
    kinds = {k.kind: k for k in listing.kinds}
    configured_forms = []
    for c in listing.connectors:
        kind = kinds.get(c.kind)
        again = retry if retry is not None and retry.target == c.id else None
        form = None if kind is None else _form(
            kind, c.id, f"/settings/connectors/{c.id}", again.values if again else c.settings,
            again.name if again else c.name, again.enabled if again else c.enabled, c.secrets_set,
            problems=_localized(again.problems) if again else None)
        configured_forms.append((c, form))
    adding = []
    for kind in listing.kinds:
        again = retry if retry is not None and retry.target == f"new:{kind.kind}" else None
        adding.append((kind, _form(kind, f"new-{kind.kind}", "/settings/connectors", again.values if again else {},
                                   again.name if again else "", again.enabled if again else True, {},
                                   new_id=again.new_id if again else "",
                                   problems=_localized(again.problems) if again else None)))
    notice = request.query_params.get("notice")
    lang = i18n.current_language()
    kind_labels = {k.kind: k.label.get(lang) or k.label.get("en") or k.kind for k in listing.kinds}
    context = page_context(request, user, configured=configured_forms, adding=adding, kind_labels=kind_labels,
                           base_url=str(request.base_url).rstrip("/"), statuses=statuses,
                           duration=duration, resync_problem=resync_problem,
                           notice=notice if notice in ("saved", "deleted", "resynced") else None)
    status_code = 422 if retry is not None else resync_problem[2] if resync_problem is not None else 200
    response = templates.TemplateResponse(request, "connectors/settings.html", context, status_code=status_code)
    remember_language(request, response)
    return response


def _localized(problems: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The problems of a form that did not save, in the page's language."""
    return [errors.localized(p, i18n.current_language()) for p in problems]


@router.get("/settings/connectors", response_class=HTMLResponse)
async def connectors_page(request: Request, user: Admin, db_url: DbUrl) -> HTMLResponse:
    return await _render(request, user, db_url)


async def _save_from_form(request: Request, user: User, db_url: str, connector_id: str | None) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    kind = form.get("kind", "")
    new = connector_id is None
    target = form.get("id", "").strip() if new else str(connector_id)
    name, enabled = form.get("name", "").strip(), form.get("enabled") == "true"
    cls = installed_kinds().get(kind)
    settings, problems = _form_settings(cls.Settings.model_json_schema(), form) if cls is not None else ({}, [
        {"field": "kind", "message": Msg("unknown connector kind '%(kind)s'", kind=kind),
         "fix": Msg("pick an installed kind")}])
    secrets: dict[str, Any] = {
        k.removeprefix("secrets."): v for k, v in form.items() if k.startswith("secrets.") and v != ""}
    if not problems:
        try:
            body = ConnectorIn(kind=kind, name=name, enabled=enabled, settings=settings, secrets=secrets)
            await run_in_threadpool(create_connector if new else save_connector, db_url, user, target, body)
        except ValidationError as exc:
            problems = [dict(p) for p in validation_problems(list(exc.errors(include_input=False)))]
        except ApiError as exc:
            problems = exc.body.get("problems") or [exc.body]
    if problems:
        retry = Retry(f"new:{kind}" if new else target, settings, name, enabled, target, problems)
        return await _render(request, user, db_url, retry)
    return RedirectResponse(f"/settings/connectors?notice=saved#connector-{target}", status_code=303)


@router.post("/settings/connectors")
async def create_from_page(request: Request, user: Admin, db_url: DbUrl) -> Response:
    return await _save_from_form(request, user, db_url, None)


@router.post("/settings/connectors/{connector_id}")
async def update_from_page(connector_id: str, request: Request, user: Admin, db_url: DbUrl) -> Response:
    return await _save_from_form(request, user, db_url, connector_id)


@router.post("/settings/connectors/{connector_id}/delete")
async def delete_from_page(connector_id: str, user: Admin, db_url: DbUrl) -> Response:
    with contextlib.suppress(ApiError):  # already gone: the list shows the truth
        await run_in_threadpool(delete_connector, db_url, user, connector_id)
    return RedirectResponse("/settings/connectors?notice=deleted", status_code=303)


@router.post("/settings/connectors/{connector_id}/resync")
async def resync_from_page(connector_id: str, request: Request, user: Admin, db_url: DbUrl) -> Response:
    """Resync a polled connector from the time in the form (the display time zone), or from its backfill."""
    form = await request.form()
    raw = str(form.get("since") or "").strip()
    since: datetime | None = None
    if raw:
        try:
            since = datetime.fromisoformat(raw).replace(tzinfo=display_zone())
        except ValueError:
            problem = _("The resync start is not a valid time: give year-month-day hour:minute.")
            return await _render(request, user, db_url, resync_problem=(connector_id, problem, 422))
    try:
        await run_in_threadpool(resync_connector, db_url, user, connector_id, since)
    except ApiError as exc:
        return await _render(request, user, db_url,
                             resync_problem=(connector_id, i18n.translate(exc.body.get("message") or ""),
                                             exc.status))
    return RedirectResponse(f"/settings/connectors?notice=resynced#connector-{connector_id}", status_code=303)


@router.get("/settings/connectors/{connector_id}/unmapped", response_class=HTMLResponse)
async def unmapped_page(connector_id: str, request: Request, user: Admin, db_url: DbUrl,
                        before_id: Annotated[int | None, Query(ge=1)] = None) -> HTMLResponse:
    """The messages this connector could not map, newest first, 50 a page, raw text with PII masked."""
    def read() -> tuple[int, dict[str, int], list[connector_ops.UnmappedView]] | None:
        with session_factory(db_url)() as db:
            if db.get(models.ConnectorConfig, connector_id) is None:
                return None
            return connector_ops.unmapped(db, connector_id, limit=PER_PAGE, before_id=before_id)

    found = await run_in_threadpool(read)
    if found is None:
        context = page_context(request, user, title=_("Not found"),
                                    message=_("There is no connector %(id)s.") % {"id": connector_id}, fix="",
                                    back="/settings/connectors")
        return templates.TemplateResponse(request, "layout/problem.html", context, status_code=404)
    total, by_kind, rows = found
    messages = [{**vars(row), "raw": mask_text(row.raw)} for row in rows]
    older = f"/settings/connectors/{connector_id}/unmapped?before_id={rows[-1].id}" \
        if len(rows) == PER_PAGE else None
    context = page_context(request, user, connector_id=connector_id, total=total, by_kind=by_kind,
                                messages=messages, older=older, newest=before_id is not None)
    return templates.TemplateResponse(request, "connectors/unmapped.html", context)
