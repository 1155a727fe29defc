"""The rate-plan editor's preview (the ``settlement.collect`` property form): the plan as the form has it now,
settled over sample orders by the real engine in a throwaway database (:func:`activities.settlement.command.
dry_run`) — no second implementation of the maths. And a fresh sample for the plan as it is now.

Both take the whole property form (htmx posts it), parse it like applying the form does
(:func:`designer.forms.parse_form` with the node's config model), and answer a fragment: the statements per
party with their lines, or the form's problems naming the field. Nothing is stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from activities.settlement.command import dry_run
from activities.settlement.errors import RatePlanError, SettlementError
from activities.settlement.line_text import described
from activities.settlement.nodes import CollectConfig
from activities.settlement.orders_csv import OrdersFileError
from activities.settlement.samples import preview_period, sample_orders
from activities.settlement.settlement_plan import SettlementPlan
from designer import i18n
from designer.auth import require
from designer.display import display_zone
from designer.forms import parse_form
from designer.i18n import _, error_text, translate
from designer.pages import remember_language, templates
from designer.permissions import FLOW_READERS
from engine.db.models import User

router = APIRouter(include_in_schema=False)
Reader = Annotated[User, Depends(require(*FLOW_READERS))]
#: a sample bigger than this is not a sample: settle real periods with "settle a period" instead
MAX_ORDERS_BYTES = 200_000


def plan_of(form: Any) -> tuple[SettlementPlan | None, dict[str, str]]:
    """The settlement plan the submitted property form describes, or the form's problems by field."""
    import json

    try:
        prev = json.loads(str(form.get("_prev") or "{}"))
    except json.JSONDecodeError:
        prev = {}
    parsed = parse_form(CollectConfig.model_json_schema(), form, prev if isinstance(prev, dict) else {},
                        model=CollectConfig)
    if parsed.errors:
        return None, parsed.errors
    return CollectConfig.model_validate(parsed.config).plan, {}


def _fragment(request: Request, name: str, **context: Any) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, {"lang": i18n.current_language(), **context})
    remember_language(request, response)
    return response


def _rate_plan_fid(form: Any) -> str:
    name = next((k for k in form if str(k).endswith("rate_plan")), "plan.rate_plan")
    return "f-" + str(name).replace(".", "-")


@router.post("/settlement/plan/sample", response_class=HTMLResponse)
async def new_sample(request: Request, user: Reader) -> HTMLResponse:
    """Sample orders for the plan as the form has it (parties of the directory, sales around its tiers)."""
    form = await request.form()
    plan, _errors = plan_of(form)
    today = datetime.now(display_zone()).date()
    sample = sample_orders(plan, today) if plan is not None else str(form.get("_orders") or "")
    return _fragment(request, "settlement/_sample_orders.html", fid=_rate_plan_fid(form), rate_plan_sample=sample)


def grouped(amount: str) -> str:
    """"1234567.50" → "1,234,567.50" (the statements' yuan text, with thousands separators)."""
    sign, digits = ("-", amount[1:]) if amount.startswith("-") else ("", amount)
    whole, _, cents = digits.partition(".")
    return f"{sign}{int(whole):,}" + (f".{cents}" if cents else "") if whole.isdigit() else amount


def _preview(plan: SettlementPlan, orders: str) -> dict[str, Any]:
    period = preview_period(plan, orders)
    view = dry_run(plan, orders, period, skip_invalid=False)
    for statement in view["statements"]:
        for key in ("sales", "commission", "clawback", "total"):
            statement[key] = grouped(statement[key])
        for line in statement.get("lines", []):
            line["amount"] = grouped(line["amount"])
            line["shown"] = translate(described(line))
    view["totals"] = {k: grouped(v) if isinstance(v, str) else v for k, v in view["totals"].items()}
    return view


@router.post("/settlement/plan/preview", response_class=HTMLResponse)
async def preview(request: Request, user: Reader) -> HTMLResponse:
    """Settle the sample orders with the plan as the form has it; the statements, or what is wrong."""
    form = await request.form()
    orders = str(form.get("_orders") or "")
    if len(orders.encode()) > MAX_ORDERS_BYTES:
        return _fragment(request, "settlement/_plan_preview.html",
                         problems=[_("Too many sample orders (200 KB at most).")])
    plan, errors = plan_of(form)
    if plan is None:
        return _fragment(request, "settlement/_plan_preview.html",
                         problems=[f"{name}: {message}" for name, message in errors.items()])
    if not orders.strip():
        return _fragment(request, "settlement/_plan_preview.html", problems=[_("Add some sample orders.")])
    try:
        view = await run_in_threadpool(_preview, plan, orders)
    except OrdersFileError as exc:
        return _fragment(request, "settlement/_plan_preview.html",
                         problems=[_("line %(n)s: %(problem)s") % {"n": line, "problem": translate(message)} if line
                                   else translate(message) for line, message in exc.problems])
    except RatePlanError as exc:
        return _fragment(request, "settlement/_plan_preview.html",
                         problems=[f"{path or _('(plan)')}: {translate(message)}" for path, message in exc.problems])
    except (SettlementError, ValidationError, ValueError) as exc:
        return _fragment(request, "settlement/_plan_preview.html", problems=[error_text(exc)])
    return _fragment(request, "settlement/_plan_preview.html", view=view, plan=plan)
