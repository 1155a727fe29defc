"""The canvas editor's routes: the editor page and the fragments it asks for — property forms, live
expression/template checks, auto-layout, versions and diffs, the statistics funnel and the preview.

The flow document (``tideflow/flow@1``) is the only thing the editor stores: the browser keeps it
in memory, draws it with Drawflow through ``static/editor/adapter.js`` and saves it with
``PUT /api/flows/{id}``. Drawflow's own export is never sent anywhere.

The routes are thin: forms come from :mod:`designer.forms` (JSON Schema ⇄ HTML form), layout, funnel
path and diff from :mod:`engine.flow_graph`, the preview from :mod:`engine.simulate`; the strings are
in :mod:`designer.flows.text`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException

from designer import display, errors, evaluation, i18n, reading
from designer.auth import get_db_url, require
from designer.decisions.js_text import js_text as dmn_js_text
from designer.display import display_zone
from designer.errors import ApiError
from designer.events import catalogue as event_catalogue
from designer.flows.js_text import js_text
from designer.forms import Pickers, build_form, parse_form, row_indices, split_list
from designer.i18n import _, ngettext
from designer.pages import page_context, remember_language, templates
from designer.permissions import CUSTOMER_READERS, FLOW_READERS, may_edit_kind
from designer.policies.rules import SEND_TYPES, canvas_policy, rules, workspace_policy
from designer.settlement.js_text import js_text as rate_plan_js_text
from engine import auth as engine_auth
from engine import expressions
from engine import flows as flowsvc
from engine.customers import customer_view, mask_identity, matching
from engine.db import models
from engine.db.models import User
from engine.db.session import session_factory
from engine.durations import DurationError, from_amount, parse_duration
from engine.flow import FlowSettings
from engine.flow_graph import auto_layout, flow_diff, flow_nodes, main_path, ports_of
from engine.pii import mask_values
from engine.registry import default_registry
from engine.validate import check_expression, validate

log = logging.getLogger(__name__)
router = APIRouter(tags=["editor"], include_in_schema=False)  # pages and fragments, not the JSON API

Reader = Annotated[User, Depends(require(*FLOW_READERS))]
DbUrl = Annotated[str, Depends(get_db_url)]

#: a sample customer for template previews when the database has none
SAMPLE_CUSTOMER: dict[str, Any] = {
    "id": "sample", "name": "林小溪", "orders_count": 0, "vip_level": 1, "days_since_interaction": 3,
    "birthday": "1992-11-23", "timezone": "Asia/Shanghai", "tags": ["尝鲜客"],
}
SAMPLE_EVENT: dict[str, Any] = {"id": "sample", "type": "order.paid", "source": "preview",
                                "payload": {"order_id": "T1001", "amount_fen": 12900}}
CATEGORY_ORDER = ("trigger", "wait", "logic", "action", "ticket", "settlement", "plugin", "end")
PREVIEW_MAX_DAYS = 90


# -- helpers for the routes ---------------------------------------------------------------------------------
def _flow(db_url: str, flow_id: str) -> models.FlowRecord | None:
    with session_factory(db_url)() as db:
        record = db.get(models.FlowRecord, flow_id)
        if record is not None:
            db.expunge(record)
        return record


def _may_change(user: User, record: models.FlowRecord | None) -> bool:
    return record is not None and record.status != "archived" and may_edit_kind(user, record.kind)


def _pickers(db_url: str) -> Pickers:
    pickers = Pickers()
    try:
        with session_factory(db_url)() as db:
            pickers.campaigns = [(c.id, f"{c.name} ({c.id})") for c in db.scalars(
                select(models.CouponCampaign).where(models.CouponCampaign.status != "ended")
                .order_by(models.CouponCampaign.id))]
            flows = db.scalars(select(models.FlowRecord).order_by(models.FlowRecord.id))
            pickers.flows = [(f.id, f.name) for f in flows]
    except SQLAlchemyError:  # an older schema without the coupon tables: plain text inputs then
        log.info("coupon campaigns not available for the picker")
    return pickers


def _json_param(text: str | None, what: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise _BadRequest(_("%(what)s must be a JSON object") % {"what": what})
    return value


class _BadRequest(ValueError):
    pass


templates.env.globals["dmn_text"] = dmn_js_text  # the decision-table grid's strings (editor/_fields.html)
templates.env.globals["rate_plan_text"] = rate_plan_js_text  # the rate-plan form's strings (editor/_fields.html)


def _fragment(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, template, {"lang": i18n.current_language(), **context},
                                      status_code=status_code)


def _message_page(request: Request, user: User, status_code: int, message: str) -> HTMLResponse:
    context = page_context(request, user, message=message)
    return templates.TemplateResponse(request, "editor/message.html", context, status_code=status_code)


def _sample_customer(db_url: str) -> dict[str, Any]:
    """The made-up customer previews use unless the user picks a real one (no one's data by default)."""
    return dict(SAMPLE_CUSTOMER)


#: attributes that hold contact details: masked like identities in a preview of a real customer
_CONTACT_ATTRIBUTES = {"phone": "phone", "mobile": "phone", "email": "email"}


def masked_customer(view: Mapping[str, Any]) -> dict[str, Any]:
    """A real customer as a template preview shows them: contact attributes masked like identities, phone and
    card numbers inside any text masked (engine.pii)."""
    out = {}
    for key, value in view.items():
        kind = _CONTACT_ATTRIBUTES.get(key)
        out[key] = mask_identity(kind, str(value)) if kind and isinstance(value, str) else mask_values(value)
    return out


def may_preview_real(user: User) -> bool:
    """Only users who may read customers may preview a message for a real one."""
    return engine_auth.has_role(user, *CUSTOMER_READERS)


def preview_choices(db_url: str, user: User, q: str = "", limit: int = 20) -> list[tuple[str, str]]:
    """Real customers to preview a template for: the newest, or those matching ``q`` (name, id, phone, email),
    named as ``user`` may see them (the read policy)."""
    try:
        with session_factory(db_url)() as db:
            query = select(models.Customer.id, models.Customer.name).where(models.Customer.merged_into.is_(None))
            if q.strip():
                query = query.where(matching(q.strip()))
            rows = db.execute(query.order_by(models.Customer.created_at.desc(), models.Customer.id).limit(limit)).all()
            names = reading.names_for(db, reading.reader_of(db, user), {str(c): str(n) for c, n in rows if n})
            return [(cid, f"{names.get(cid) or cid} · {cid}") for cid, _name in rows]
    except SQLAlchemyError:
        return []


def _event_types(db_url: str, lang: str) -> list[dict[str, Any]]:
    """The event-type picker's options: built-in, plugin and already-seen types (designer.events.catalogue)."""
    return event_catalogue.options(db_url, lang)


def _palette(kind: str, lang: str) -> list[tuple[str, str, list[dict[str, Any]]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for d in default_registry().describe(kind):
        groups.setdefault(d["category"], []).append(d)
    ordered = sorted(groups, key=lambda c: (CATEGORY_ORDER.index(c) if c in CATEGORY_ORDER else 50, c))
    return [(c, display.label(c, "node_category"),
             sorted(groups[c], key=lambda d: d["label"].get(lang, d["type"]))) for c in ordered]


def _type_info(lang: str) -> dict[str, dict[str, Any]]:
    return {d["type"]: {"label": d["label"].get(lang) or d["label"].get("en") or d["type"], "category": d["category"],
                        "ports": d["ports"], "kinds": d["kinds"], "failure_port": d["failure_port"]}
            for d in default_registry().describe()}


# -- routes: page -------------------------------------------------------------------------------------------
@router.get("/flows/{flow_id}/edit", response_class=HTMLResponse, include_in_schema=False)
def editor_page(request: Request, flow_id: str, user: Annotated[User, Depends(require())],
                db_url: DbUrl) -> HTMLResponse:
    """The canvas editor of one flow: editable for the kind's editors, read-only for other flow readers."""
    lang = i18n.current_language()
    if not engine_auth.has_role(user, *FLOW_READERS):
        return _message_page(request, user, 403, _("Your role (%(role)s) cannot open the flow editor.")
                             % {"role": display.label(user.role, "role")})
    record = _flow(db_url, flow_id)
    if record is None:
        return _message_page(request, user, 404, _("There is no flow “%(id)s”.") % {"id": flow_id})
    registry = default_registry()
    document = dict(record.draft)
    can_edit = _may_change(user, record)
    evaluation.prime(document)
    checked = validate(document)
    data = {
        "flow": {"id": record.id, "name": record.name, "kind": record.kind, "status": record.status,
                 "version": record.current_version},
        "document": document,
        "types": _type_info(lang),
        "ports": {str(n["id"]): ports_of(registry.get(str(n.get("type"))), n.get("config") or {})
                  for n in document.get("nodes") or [] if isinstance(n, dict) and "id" in n},
        "problems": errors.problem_dicts(checked.problems, lang),
        "canEdit": can_edit,
        "lang": lang,
        "policy": canvas_policy(workspace_policy(db_url)),
        "text": js_text(),
    }
    sample = _sample_customer(db_url)
    preview_customer = {"name": sample.get("name") or "", "tags": sample.get("tags") or [],
                        "attributes": {k: v for k, v in sample.items() if k not in ("id", "name", "timezone", "tags")}}
    context = page_context(request, user, record=record, data=data, can_edit=can_edit, sample=preview_customer,
                           palette=_palette(record.kind, lang), event_types=_event_types(db_url, lang))
    response = templates.TemplateResponse(request, "editor/page.html", context)
    remember_language(request, response)
    return response


# -- routes: property forms ---------------------------------------------------------------------------------
@router.get("/flows/{flow_id}/nodes/{node_id}/form", response_class=HTMLResponse)
def node_form(request: Request, flow_id: str, node_id: str, user: Reader, db_url: DbUrl,
              type: Annotated[str, Query(max_length=200)],
              config: Annotated[str, Query(max_length=100_000)] = "",
              name: Annotated[str, Query(max_length=200)] = "",
              settings: Annotated[str, Query(max_length=20_000)] = "") -> HTMLResponse:
    """The property form of one node, generated from its type's config JSON Schema. A send node's form
    also says which sending rules apply (``settings``: the flow's settings as the canvas has them)."""
    lang = i18n.current_language()
    record = _flow(db_url, flow_id)
    try:
        current = _json_param(config, "config")
        flow_settings = _json_param(settings, "settings") if settings else \
            dict((record.draft or {}).get("settings") or {}) if record else {}
    except _BadRequest as exc:
        return _fragment(request, "editor/_check.html", status_code=422, ok=False, message=str(exc))
    send_rules = rules(workspace_policy(db_url), flow_settings, current) if type in SEND_TYPES else []
    node_type = default_registry().get(type)
    pickers = _pickers(db_url)
    fields = build_form(node_type.schema(), current, pickers) if node_type else []
    choices = preview_choices(db_url, user) if may_preview_real(user) and any(
        f.widget == "template" for f in fields) else []
    sample = _plan_sample(current) if type == "settlement.collect" else ""
    return _fragment(request, "editor/_form.html", flow_id=flow_id, node_id=node_id, node_type=type,
                     preview_customers=choices, rate_plan_sample=sample,
                     type_info=node_type.describe() if node_type else None, fields=fields, name=name,
                     config_json=json.dumps(current, ensure_ascii=False), kind="node",
                     action=f"/flows/{flow_id}/nodes/{node_id}/config",
                     ports=ports_of(node_type, current), readonly=not _may_change(user, record),
                     unknown=_("Unknown node type “%(type)s”: perhaps a plugin that is not installed.")
                     % {"type": type}, event_types=_event_types(db_url, lang),
                     flows=pickers.flows, send_rules=send_rules, can_admin=user.role == "admin")


def _plan_sample(config: Mapping[str, Any]) -> str:
    """Sample orders for a settlement.collect node's plan (the rate-plan editor's preview); "" when the plan is
    not valid yet (the editor then asks for one)."""
    from activities.settlement.samples import sample_orders
    from activities.settlement.settlement_plan import SettlementPlan

    try:
        plan = SettlementPlan.model_validate(config.get("plan") or {})
    except ValidationError:
        return ""
    return sample_orders(plan, datetime.now(display_zone()).date())


#: a property form field may carry this much (a 2 MB template is refused here, at its field, not silently dropped)
FORM_PART_LIMIT = 1024 * 1024


class _FormTooLarge(Exception):
    """A property form with a field over :data:`FORM_PART_LIMIT`: answered 413 naming it (in the user's words)."""

    def answer(self, request: Request) -> JSONResponse:
        message = _("Too large: each field may hold at most %(limit)s. Shorten it and try again.") % {
            "limit": f"{display.number(FORM_PART_LIMIT // 1024)} KB"}
        return JSONResponse({"ok": False, "errors": {"_form": message}}, status_code=413)


async def _form_data(request: Request) -> FormData:
    try:
        return await request.form(max_part_size=FORM_PART_LIMIT)
    except StarletteHTTPException as exc:  # what Starlette's form parser raises for a part over the limit
        if exc.status_code == 400 and "maximum size" in str(exc.detail):
            raise _FormTooLarge() from None
        raise


@router.post("/flows/{flow_id}/nodes/{node_id}/config")
async def node_config(request: Request, flow_id: str, node_id: str, user: Reader) -> JSONResponse:
    """Parse a submitted property form: ``{ok, config, name, ports, errors: {field: message}}``.

    Nothing is stored: the browser puts the config into its flow document (a draft may be invalid)."""
    try:
        form = await _form_data(request)
    except _FormTooLarge as exc:
        return exc.answer(request)
    type_name = str(form.get("_type") or "")
    node_type = default_registry().get(type_name)
    if node_type is None:
        return JSONResponse({"ok": False, "errors": {"_type": f"unknown node type '{type_name}'"}}, status_code=422)
    try:
        prev = _json_param(str(form.get("_prev") or ""), "_prev")
    except _BadRequest as exc:
        return JSONResponse({"ok": False, "errors": {"_prev": str(exc)}}, status_code=422)
    parsed = parse_form(node_type.schema(), form, prev, model=node_type.Config)
    name = str(form.get("_name") or "").strip()
    try:  # ports only from a valid config: while it is invalid the canvas keeps the node's ports (and edges)
        ports: list[str] | None = list(node_type.output_ports(node_type.Config.model_validate(parsed.config)))
    except ValidationError:
        ports = None
    return JSONResponse({"ok": not parsed.errors, "node": node_id, "config": parsed.config, "name": name or None,
                         "ports": ports, "errors": parsed.errors})


class _SettingsForm(BaseModel):
    """The flow's envelope as the settings form edits it."""

    name: str
    description: str | None = None
    settings: FlowSettings


def settings_schema() -> dict[str, Any]:
    schema = _SettingsForm.model_json_schema()
    schema["properties"]["name"].update({"minLength": 1, "maxLength": 200})
    return schema


@router.get("/flows/{flow_id}/settings/form", response_class=HTMLResponse)
def settings_form(request: Request, flow_id: str, user: Reader, db_url: DbUrl,
                  document: Annotated[str, Query(max_length=200_000)] = "") -> HTMLResponse:
    """The form for the flow's name, description and settings (timezone, re-entry, exit, goal, quiet hours)."""
    lang = i18n.current_language()
    record = _flow(db_url, flow_id)
    try:
        current = _json_param(document, "document") or (dict(record.draft) if record else {})
    except _BadRequest as exc:
        return _fragment(request, "editor/_check.html", status_code=422, ok=False, message=str(exc))
    values = {k: current.get(k) for k in ("name", "description", "settings") if current.get(k) is not None}
    fields = build_form(settings_schema(), values, _pickers(db_url))
    return _fragment(request, "editor/_form.html", flow_id=flow_id, node_id=None, node_type=None, type_info=None,
                     fields=fields, name="", config_json=json.dumps(values, ensure_ascii=False), kind="settings",
                     action=f"/flows/{flow_id}/settings", ports=[], readonly=not _may_change(user, record),
                     unknown="", event_types=_event_types(db_url, lang), flows=[])


@router.post("/flows/{flow_id}/settings")
async def settings_submit(request: Request, flow_id: str, user: Reader) -> JSONResponse:
    """Parse the settings form: ``{ok, config: {name, description, settings}, errors}``."""
    try:
        form = await _form_data(request)
    except _FormTooLarge as exc:
        return exc.answer(request)
    try:
        prev = _json_param(str(form.get("_prev") or ""), "_prev")
    except _BadRequest as exc:
        return JSONResponse({"ok": False, "errors": {"_prev": str(exc)}}, status_code=422)
    parsed = parse_form(settings_schema(), form, prev, model=_SettingsForm)
    parsed.config.setdefault("settings", {})
    return JSONResponse({"ok": not parsed.errors, "config": parsed.config, "errors": parsed.errors})


# -- routes: live checks ------------------------------------------------------------------------------------
@router.post("/flows/expression/check", response_class=HTMLResponse)
async def expression_check(request: Request, user: Reader) -> HTMLResponse:
    """Check one field of a form: ``_field`` names it, ``_kind`` is expression (default), template or
    duration. Answers a small fragment: ✓ or the error."""
    form = await _form_data(request)
    name = str(form.get("_field") or "source")
    kind = str(form.get("_kind") or "expression")
    source = str(form.get(name) or "")
    if kind == "duration" and f"{name}.amount" in form:  # the number + unit widget
        amount = str(form.get(f"{name}.amount") or "").strip()
        if not amount:
            return HTMLResponse("")
        try:
            source = from_amount(amount, str(form.get(f"{name}.unit") or "days"))
        except DurationError as exc:
            return _fragment(request, "editor/_check.html", ok=False, message=i18n.error_text(exc))
    if not source.strip():
        return HTMLResponse("")
    if kind == "duration":
        try:
            value = parse_duration(source.strip())
        except (DurationError, ValueError) as exc:
            return _fragment(request, "editor/_check.html", ok=False, message=i18n.error_text(exc))
        return _fragment(request, "editor/_check.html", ok=True,
                         message=_("✓ %(value)s (%(iso)s)") % {"value": human_duration(value), "iso": source.strip()})
    error = check_expression(source, "template" if kind == "template" else "expression")
    return _fragment(request, "editor/_check.html", ok=error is None,
                     message=i18n.translate(error) if error else _("✓ the expression is valid"))


@router.get("/flows/preview-customers", response_class=HTMLResponse)
def preview_customers(request: Request, user: Reader, db_url: DbUrl,
                      q: Annotated[str, Query(alias="_pv_q", max_length=100)] = "") -> HTMLResponse:
    """The options of a template preview's customer picker: the sample customer, then real ones matching
    ``_pv_q`` (users who may read customers only)."""
    choices = preview_choices(db_url, user, q) if may_preview_real(user) else []
    return _fragment(request, "editor/_preview_customers.html", choices=choices, chosen="sample")


def _preview_customer(db_url: str, user: User, chosen: str) -> tuple[dict[str, Any], bool]:
    """(the customer a preview renders for, whether it is a real one). A real one only for customer readers,
    and masked."""
    if chosen and chosen != "sample" and may_preview_real(user):
        with session_factory(db_url)() as db:
            if db.get(models.Customer, chosen) is not None:  # as the read policy lets this user see them
                seen = reading.customer_for(db, reading.reader_of(db, user), chosen, customer_view(db, chosen))
                return masked_customer(seen), True
    return _sample_customer(db_url), False


@router.post("/flows/template/preview", response_class=HTMLResponse)
async def template_preview(request: Request, user: Reader, db_url: DbUrl) -> HTMLResponse:
    """Render the template in form field ``_field`` for the customer picked in ``_pv_customer``: the sample
    customer (default), or a real one, masked."""
    form = await _form_data(request)
    source = str(form.get(str(form.get("_field") or "template")) or "")
    if not source.strip():
        return HTMLResponse("")
    chosen = str(form.get("_pv_customer") or "sample")[:40]
    if chosen != "sample" and not may_preview_real(user):
        return _fragment(request, "editor/_check.html", ok=False, message=_(
            "Your role may not see real customers: preview with the sample customer."))
    customer, real = await run_in_threadpool(_preview_customer, db_url, user, chosen)
    context = {"customer": customer, "event": SAMPLE_EVENT, "vars": {}, "journey": {"flow": "preview"}, "now": None}
    try:  # in the evaluation pool: never on this event loop, killed past its deadline
        rendered = await evaluation.render(source, context)
    except expressions.ExpressionError as exc:
        return _fragment(request, "editor/_check.html", ok=False,
                         message=_("template %(error)s") % {"error": i18n.error_text(exc)})
    except ApiError as exc:
        return _fragment(request, "editor/_check.html", ok=False,
                         message=_("template %(error)s") % {"error": i18n.error_text(exc)})
    heading = (_("Preview (for the real customer “%(name)s”, contact details masked):") if real
               else _("Preview (for the sample customer “%(name)s”):")) % {
        "name": customer.get("name") or customer.get("id")}
    return _fragment(request, "editor/_template_preview.html", rendered=rendered, heading=heading)


# -- routes: layout -----------------------------------------------------------------------------------------
@router.post("/flows/layout")
def layout(document: dict[str, Any], user: Reader) -> dict[str, dict[str, float]]:
    """Auto-layout positions ``{node id: {x, y}}`` for a flow document (nothing stored)."""
    return auto_layout(document)


# -- routes: versions and diff ------------------------------------------------------------------------------
def _versions(db_url: str, flow_id: str) -> list[models.FlowVersion]:
    with session_factory(db_url)() as db:
        rows = list(db.scalars(select(models.FlowVersion).where(models.FlowVersion.flow_id == flow_id)
                               .order_by(models.FlowVersion.version.desc())))
        for row in rows:
            db.expunge(row)
        return rows


@router.get("/flows/{flow_id}/versions", response_class=HTMLResponse)
def versions_panel(request: Request, flow_id: str, user: Reader, db_url: DbUrl) -> HTMLResponse:
    """The versions drawer: every published version, a compare form and roll-back buttons."""
    record = _flow(db_url, flow_id)
    if record is None:
        return HTMLResponse("", status_code=404)
    return _fragment(request, "editor/_versions.html", flow_id=flow_id, versions=_versions(db_url, flow_id),
                     current=record.current_version, can_edit=_may_change(user, record))


@router.get("/flows/{flow_id}/diff", response_class=HTMLResponse)
def diff_fragment(request: Request, flow_id: str, user: Reader, db_url: DbUrl,
                  a: Annotated[int, Query(ge=1)], b: Annotated[str, Query(max_length=20)] = "draft") -> HTMLResponse:
    """What changed between version ``a`` and version ``b`` (a number, or ``draft``)."""
    with session_factory(db_url)() as db:
        old = db.get(models.FlowVersion, (flow_id, a))
        record = db.get(models.FlowRecord, flow_id)
        new: dict[str, Any] | None
        if b == "draft":
            new = dict(record.draft) if record else None
        else:
            row = db.get(models.FlowVersion, (flow_id, int(b))) if b.isdigit() else None
            new = dict(row.document) if row else None
        if old is None or new is None:
            return HTMLResponse('<p class="error">?</p>', status_code=404)
        before = dict(old.document)
    label_b = f"v{b}" if b != "draft" else _("current draft")
    return _fragment(request, "editor/_diff.html", diff=flow_diff(before, new), a=a, b=label_b,
                     names={**{n: node.get("name") or n for n, node in flow_nodes(before).items()},
                            **{n: node.get("name") or n for n, node in flow_nodes(new).items()}})


# -- routes: funnel -----------------------------------------------------------------------------------------
@router.get("/flows/{flow_id}/funnel", response_class=HTMLResponse)
def funnel_fragment(request: Request, flow_id: str, user: Reader, db_url: DbUrl) -> HTMLResponse:
    """Entered counts along the main path (trigger → … → goal) of the published version."""
    with session_factory(db_url)() as db:
        record = db.get(models.FlowRecord, flow_id)
        version = db.get(models.FlowVersion, (flow_id, record.current_version)) if record and \
            record.current_version else None
        if record is None or version is None:
            return _fragment(request, "editor/_funnel.html", steps=[], version=None)
        document = dict(version.document)
        counts = flowsvc.stats(db, flow_id, version.version)["nodes"]
    nodes = flow_nodes(document)
    info = _type_info(i18n.current_language())
    steps = []
    path = main_path(document)
    top = max((int(counts.get(path[0], {}).get("entered", 0)) if path else 0), 0)
    for node_id in path:
        entered = int(counts.get(node_id, {}).get("entered", 0))
        node = nodes[node_id]
        label = info.get(str(node.get("type")), {}).get("label", node_id)
        steps.append({"id": node_id, "name": node.get("name") or label,
                      "entered": entered, "share": (100.0 * entered / top) if top else 0.0,
                      "width": max(2.0, 100.0 * entered / top) if top else 2.0})
    return _fragment(request, "editor/_funnel.html", steps=steps, version=version.version)


# -- routes: preview ----------------------------------------------------------------------------------------
def _preview_input(form: FormData) -> tuple[dict[str, Any], Any, list[Any], int]:
    from engine.simulate import PreviewCustomer, ScriptedEvent

    document = _json_param(str(form.get("document") or ""), _("the flow document"))
    attributes = _json_param(str(form.get("attributes") or ""), _("the customer's attributes"))
    tags = split_list(str(form.get("tags") or ""))
    customer = PreviewCustomer(name=str(form.get("name") or "").strip() or _("Preview customer"), attributes=attributes,
                               tags=tags)
    keys = list(form.keys())
    script = []
    for index in row_indices("events", keys):
        kind = str(form.get(f"events.{index}.type") or "").strip()
        if not kind:
            continue
        payload = _json_param(str(form.get(f"events.{index}.payload") or ""),
                              _("the payload of %(type)s") % {"type": kind})
        script.append(ScriptedEvent(at=str(form.get(f"events.{index}.at") or "day 0").strip() or "day 0",
                                    type=kind, payload=payload))
    try:
        days = int(str(form.get("days") or "30"))
    except ValueError:
        raise _BadRequest(_("Days to simulate must be a whole number.")) from None
    if not 1 <= days <= PREVIEW_MAX_DAYS:
        raise _BadRequest(_("Days to simulate must be between 1 and %(max)s.") % {"max": PREVIEW_MAX_DAYS})
    return document, customer, script, days


@router.post("/flows/{flow_id}/preview", response_class=HTMLResponse)
async def preview_run(request: Request, flow_id: str, user: Reader) -> HTMLResponse:
    """Run the current canvas document for one described customer on the time-skipping test server
    (:func:`engine.simulate.preview`) and answer the timeline fragment."""
    from engine.compiler import FlowInvalid
    from engine.simulate import preview

    lang = i18n.current_language()
    form = await _form_data(request)
    try:
        document, customer, script, days = _preview_input(form)
    except (_BadRequest, ValidationError) as exc:
        message = str(exc) if isinstance(exc, _BadRequest) else errors.validation_text(exc)[0]
        return _fragment(request, "editor/_timeline.html", error=_("Invalid input: %(error)s") % {"error": message})
    try:
        await run_in_threadpool(evaluation.prime, document)
    except ApiError as exc:
        return _fragment(request, "editor/_timeline.html", error=i18n.error_text(exc))
    checked = await run_in_threadpool(validate, document)
    if not checked.ok:
        return _fragment(request, "editor/_timeline.html", problems=errors.problem_dicts(checked.problems, lang))
    try:
        result = await preview(document, customer, script, days)
    except FlowInvalid as exc:
        return _fragment(request, "editor/_timeline.html", problems=errors.problem_dicts(exc.problems, lang))
    except Exception as exc:  # the preview must answer with a message, never a stack trace
        log.exception("preview of %s failed", flow_id)
        return _fragment(request, "editor/_timeline.html",
                         error=_("The preview failed: %(error)s") % {"error": f"{type(exc).__name__}: {exc}"})
    info = _type_info(lang)
    names = {n: node.get("name") or info.get(str(node.get("type")), {}).get("label") or n
             for n, node in flow_nodes(document).items()}
    steps = [{**step, "day_label": _day(step.get("offset_seconds")),
              "what_label": display.label(step.get("what"), "preview_step"),
              "name": names.get(str(step.get("node")), step.get("node")), "text": _step_text(step)}
             for step in result["timeline"]]
    for step in steps:  # an event scripted after the journey ended: shown at its time, reaching nobody
        if step.get("what") == "ignored":
            step["name"], step["text"] = step.get("event"), _("arrived after the journey had ended; nothing handled it")
    return _fragment(request, "editor/_timeline.html", result=result, steps=steps)


def human_duration(value: timedelta) -> str:
    """``P1DT2H`` → "1 天 2 小时" / "1 day 2 hours"."""
    seconds = int(value.total_seconds())
    days, hours, minutes, rest = seconds // 86400, seconds % 86400 // 3600, seconds % 3600 // 60, seconds % 60
    words = [ngettext("%(n)s day", "%(n)s days", days) % {"n": days} if days else "",
             ngettext("%(n)s hour", "%(n)s hours", hours) % {"n": hours} if hours else "",
             ngettext("%(n)s minute", "%(n)s minutes", minutes) % {"n": minutes} if minutes else "",
             ngettext("%(n)s second", "%(n)s seconds", rest) % {"n": rest} if rest or not seconds else ""]
    return " ".join(w for w in words if w)


def _day(seconds: Any) -> str:
    """"第 7 天 07:26" / "day 7, 07:26" for a step 7 days, 7 hours and 26 minutes after the start."""
    from engine.simulate import day_and_clock

    if not isinstance(seconds, int | float):
        return "?"
    day, clock = day_and_clock(seconds)
    return _("day %(day)s, %(time)s") % {"day": day, "time": clock}


def _status_label(status: str) -> str:
    """A step's ``detail.status`` in the reader's language: our actions' codes (``step_status``, else a message's
    ``message_status``); a status we do not know (a plugin's) as it is."""
    for kind in ("step_status", "message_status"):
        if status in display.LABELS[kind].entries:
            return display.label(status, kind)
    return status


def _step_text(step: Mapping[str, Any]) -> str:
    """A one-line description of a timeline step (port, message content, event, error)."""
    detail = step.get("detail")
    parts: list[str] = []
    if step.get("port"):
        parts.append(f"→ {display.port_label(str(step['port']))}")
    if isinstance(detail, Mapping):
        if detail.get("content"):  # the channel a code (a label), the content the customer's words
            channel = detail.get("channel")
            parts.append(f"[{display.label(channel, 'channel')}] {detail['content']}" if channel
                         else str(detail["content"]))
        if detail.get("status") and detail.get("status") != "sent":
            parts.append(f"({_status_label(str(detail['status']))})")
        if not parts:
            parts.append(json.dumps(dict(detail), ensure_ascii=False)[:300])
    for key in ("event", "error", "reason", "until"):
        if key == "error" and step.get(key):
            # why the step failed in the reader's language: the interpreter's saved reason (a stored Msg) when
            # the step has one, else its English words as they are
            said = display.said(str(step.get("stored_error") or step[key]))
            parts.append(_("error: %(error)s") % {"error": said})
        elif key == "event" and step.get(key):  # the event's type: an identifier, shown as it is
            parts.append(_("event: %(event)s") % {"event": step[key]})
        elif key == "reason" and step.get(key):  # a code (after_end), else a person's words as they are
            reason = str(step[key])
            known = reason in display.LABELS["preview_reason"].entries
            parts.append(_("reason: %(reason)s") % {"reason": display.label(reason, "preview_reason") if known
                                                    else reason})
        elif key == "until" and step.get(key):  # an ISO time: in the workspace's display zone
            parts.append(_("until: %(until)s") % {"until": display.when(str(step[key]))})
    return " ".join(parts)
