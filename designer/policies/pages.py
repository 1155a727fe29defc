"""The messaging rules page (``/settings/messaging``, admins): the workspace's frequency cap on promotional
messages and the default quiet hours, with each journey's own settings beside them; and the same as JSON
(``GET`` / ``PUT /api/send-policy``). Saving is audited (``settings.send_policy``, before → after) and the
next message obeys it (:func:`engine.policies.current_policy`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select

from designer.auth import require
from designer.errors import ApiError
from designer.forms import build_form, parse_form
from designer.i18n import _, translate
from designer.pages import ADMIN, DbUrl, PageRoute, page_user, render, see_other
from designer.policies.rules import workspace_policy
from engine import auth
from engine.db import models
from engine.db.models import User
from engine.db.policy_models import SendPolicyRow
from engine.db.session import session_factory, transaction
from engine.durations import DurationError
from engine.flow import QuietHours
from engine.nodes.base import Duration
from engine.policies import policy_view, save_policy
from engine.text import Msg, message_of
from engine.validate import pydantic_message

router = APIRouter(route_class=PageRoute, include_in_schema=False)
api = APIRouter(prefix="/api", tags=["settings"])
AdminPage = Annotated[User, Depends(page_user(*ADMIN))]
AdminApi = Annotated[User, Depends(require("admin"))]


class SendPolicyIn(BaseModel):
    """The workspace's send policy. ``cap`` null: no frequency cap; ``quiet_hours`` null: flows without quiet
    hours of their own have none."""

    model_config = ConfigDict(extra="forbid")
    cap_count: int | None = Field(default=3, ge=1, le=1000, description="promotional messages per customer")
    cap_window: Duration = Field(default="P7D", description="…within this window (ISO 8601)")
    quiet_hours: QuietHours | None = None


def _store(db_url: str, user: User, body: SendPolicyIn) -> dict[str, Any]:
    quiet = (body.quiet_hours.start, body.quiet_hours.end) if body.quiet_hours else None
    with transaction(db_url) as db:
        try:
            before, after = save_policy(db, user.username, body.cap_count, body.cap_window, quiet)
        except (ValueError, DurationError) as exc:
            raise ApiError(422, message_of(exc), Msg("see the field's description"), "body") from None
        if before != after:
            auth.audit(db, user, "settings.send_policy", "send_policy", before=before, after=after)
    return after


@api.get("/send-policy")
def get_policy(user: AdminApi, db_url: DbUrl) -> dict[str, Any]:
    """The send policy in force (``saved`` false: nobody saved one, the environment's cap applies)."""
    return policy_view(workspace_policy(db_url))


@api.put("/send-policy")
def put_policy(body: SendPolicyIn, user: AdminApi, db_url: DbUrl) -> dict[str, Any]:
    return _store(db_url, user, body)


def _flow_rows(db_url: str) -> list[dict[str, Any]]:
    with session_factory(db_url)() as db:
        flows = list(db.scalars(select(models.FlowRecord).where(models.FlowRecord.kind == "journey",
                                                                models.FlowRecord.status != "archived")
                                .order_by(models.FlowRecord.name)))
    rows = []
    for record in flows:
        settings = (record.draft or {}).get("settings") or {}
        quiet = settings.get("quiet_hours") or None
        rows.append({"flow": record, "capped": settings.get("frequency_capped", True) is not False,
                     "quiet": quiet, "quiet_off": bool(quiet and quiet.get("start") == quiet.get("end"))})
    return rows


def _page(request: Request, user: User, db_url: str, values: dict[str, Any], errors: dict[str, str] | None = None,
          status_code: int = 200, notice: str | None = None) -> HTMLResponse:
    policy = workspace_policy(db_url)
    with session_factory(db_url)() as db:
        row = db.get(SendPolicyRow, "workspace")
        updated = (row.updated_by, row.updated_at) if row is not None else None
    window = next(f for f in build_form(SendPolicyIn.model_json_schema(), values) if f.key == "cap_window")
    window.label, window.help = _("Within"), ""
    return render(request, user, "policies/settings.html", status_code=status_code, values=values,
                  window=window, errors=errors or {}, flows=_flow_rows(db_url), policy=policy, updated=updated,
                  notice=notice)


def _values(db_url: str) -> dict[str, Any]:
    view = policy_view(workspace_policy(db_url))
    cap, quiet = view["cap"], view["quiet_hours"]
    return {"cap_on": cap is not None, "cap_count": cap["count"] if cap else 3,
            "cap_window": cap["window"] if cap else "P7D", "quiet_on": quiet is not None,
            "quiet_start": quiet["start"] if quiet else "21:00", "quiet_end": quiet["end"] if quiet else "09:00"}


@router.get("/settings/messaging", response_class=HTMLResponse)
def policy_page(request: Request, user: AdminPage, db_url: DbUrl) -> HTMLResponse:
    return _page(request, user, db_url, _values(db_url),
                 notice=_("Rules saved; they apply from the next message on.") if request.query_params.get("saved")
                 else None)


@router.post("/settings/messaging", response_class=HTMLResponse)
async def policy_submit(request: Request, user: AdminPage, db_url: DbUrl) -> Response:
    form = await request.form()
    window = parse_form(SendPolicyIn.model_json_schema(), form, {"cap_window": _values(db_url)["cap_window"]})
    values = {"cap_on": "cap_on" in form, "cap_count": str(form.get("cap_count") or "").strip(),
              "cap_window": window.config.get("cap_window", ""), "quiet_on": "quiet_on" in form,
              "quiet_start": str(form.get("quiet_start") or "").strip(),
              "quiet_end": str(form.get("quiet_end") or "").strip()}
    errors = dict(window.errors)
    body: SendPolicyIn | None = None
    if not errors:
        try:
            body = SendPolicyIn.model_validate({
                "cap_count": values["cap_count"] if values["cap_on"] else None, "cap_window": values["cap_window"],
                "quiet_hours": {"start": values["quiet_start"], "end": values["quiet_end"]}
                if values["quiet_on"] else None})
        except ValidationError as exc:
            for e in exc.errors(include_url=False):
                name = {"quiet_hours": "quiet_" + str(e["loc"][-1])}.get(str(e["loc"][0]), str(e["loc"][0]))
                errors.setdefault(name, translate(pydantic_message(e)))
    if body is None:
        return _page(request, user, db_url, values, errors, 422)
    _store(db_url, user, body)
    return see_other("/settings/messaging?saved=1")
