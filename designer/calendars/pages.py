"""SLA calendars of the ticket groups (客服组的工作日历), for ops: working days and hours, and the public
holidays and make-up workdays (调休) prefilled from the State Council's schedule
(:mod:`activities.tickets.holidays`), which the ops user may then override: a day the desk works anyway,
a company day off. Nothing is saved until "Save"; prefilling only fills the form.

Also ``GET /api/holidays/cn/{year}``: the official days of a year, for API clients.
Thin routes over :mod:`activities.tickets.calendar` and :mod:`activities.tickets.holidays`; text in
:mod:`designer.calendars.text`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from starlette.datastructures import FormData

from activities.tickets.calendar import BusinessCalendar, WorkingHours
from activities.tickets.holidays import (
    HolidaysUnknown,
    OfficialDay,
    difference,
    names,
    official_year,
    prefill,
    years_known,
)
from designer import i18n
from designer.auth import require
from designer.calendars import labels as _labels  # noqa: F401  (its status labels)
from designer.display import display_zone
from designer.errors import ApiError
from designer.i18n import _
from designer.pages import DbUrl, PageProblem, PageRoute, page_user, render, see_other
from designer.permissions import EVERY_ROLE, TICKET_SUPERVISORS
from engine import auth
from engine.db import models
from engine.db.models import User
from engine.db.session import session_factory, transaction
from engine.text import Msg, message_of
from engine.validate import pydantic_message

router = APIRouter(route_class=PageRoute, include_in_schema=False)
api = APIRouter(prefix="/api", tags=["tickets"])
OpsPage = Annotated[User, Depends(page_user(*TICKET_SUPERVISORS))]
HOUR_ROWS = 4


def _this_year() -> int:
    return datetime.now(display_zone()).year


def _years(calendar: BusinessCalendar) -> list[int]:
    """The years the page shows: this year, next year, and every year the calendar has dates in."""
    now = _this_year()
    found = {d.year for d in (*calendar.holidays, *calendar.extra_working_days)}
    return sorted({now, now + 1, *(y for y in found if y >= now - 1)})


def _year_view(calendar: BusinessCalendar, year: int, lang: str) -> dict[str, Any]:
    named = names(year)
    zh = lang == "zh-CN"

    def rows(days: frozenset[date]) -> list[dict[str, Any]]:
        return [{"day": d, "name": (named[d][1] if zh else named[d][0]) if d in named else "", "official": d in named}
                for d in sorted(x for x in days if x.year == year)]

    known = year in years_known()
    diff = difference(calendar, year) if known else None
    official = {h.day for h in official_year(year).holidays} if known else set()
    return {"year": year, "known": known, "holidays": rows(calendar.holidays),
            "workdays": rows(calendar.extra_working_days), "diff": diff,
            "filled": bool(official & calendar.holidays)}


def _group(db_url: str, key: str, user: User) -> models.AgentGroup:
    with session_factory(db_url)() as db:
        group = db.get(models.AgentGroup, key)
        if group is None:
            raise PageProblem(404, user, _("Not found"), _("There is no group “%(key)s”.") % {"key": key},
                              back="/tickets/calendars")
        db.expunge(group)
        return group


def _render_edit(request: Request, user: User, group: models.AgentGroup, calendar: BusinessCalendar,
                 status_code: int = 200, error: str = "", notice: str | None = None) -> HTMLResponse:
    lang = i18n.current_language()
    hours = list(calendar.working_hours) + [None] * max(0, HOUR_ROWS - len(calendar.working_hours))
    return render(request, user, "calendars/edit.html", status_code=status_code, group=group, calendar=calendar,
                  hours=hours, years=[_year_view(calendar, y, lang) for y in _years(calendar)], error=error,
                  notice=notice)


@router.get("/tickets/calendars", response_class=HTMLResponse)
def calendars_page(request: Request, user: OpsPage, db_url: DbUrl) -> HTMLResponse:
    """Every group's calendar at a glance: zone, hours, and whether this year's holidays are in."""
    lang = i18n.current_language()
    year = _this_year()
    with session_factory(db_url)() as db:
        groups = list(db.scalars(select(models.AgentGroup).order_by(models.AgentGroup.key)))
    rows = []
    for group in groups:
        try:
            calendar = BusinessCalendar.model_validate(group.calendar or {})
        except ValidationError:
            calendar = BusinessCalendar()
        rows.append({"group": group, "calendar": calendar, "year": _year_view(calendar, year, lang)})
    return render(request, user, "calendars/list.html", rows=rows, year=year)


@router.get("/tickets/calendars/{key}", response_class=HTMLResponse)
def calendar_page(request: Request, key: str, user: OpsPage, db_url: DbUrl) -> HTMLResponse:
    group = _group(db_url, key, user)
    try:
        calendar = BusinessCalendar.model_validate(group.calendar or {})
    except ValidationError:
        calendar = BusinessCalendar()
    return _render_edit(request, user, group, calendar,
                        notice=_("Calendar saved.") if request.query_params.get("saved") else None)


class _FormError(ValueError):
    pass


def _day(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise _FormError(_("%(what)s: “%(text)s” is not a date (YYYY-MM-DD)") % {"what": what, "text": text}) from None


def calendar_from_form(form: FormData) -> BusinessCalendar:
    """The calendar the form describes; :class:`_FormError` / ``ValidationError`` say what is wrong."""
    days = [int(str(d)) for d in form.getlist("working_days") if str(d).isdigit()]
    hours = []
    for i in range(HOUR_ROWS):
        start, end = str(form.get(f"hours.{i}.start") or "").strip(), str(form.get(f"hours.{i}.end") or "").strip()
        if start or end:
            if not (start and end):
                raise _FormError(_("working hours row %(n)s: give both a start and an end") % {"n": i + 1})
            hours.append(WorkingHours.model_validate({"start": start, "end": end}))
    if not hours:
        raise _FormError(_("give at least one span of working hours, e.g. 09:00–18:00"))
    holidays = {_day(str(d), _("day off")) for d in form.getlist("holiday") if str(d).strip()}
    workdays = {_day(str(d), _("make-up workday")) for d in form.getlist("workday") if str(d).strip()}
    for name, into in (("add_holiday", holidays), ("add_workday", workdays)):
        for text in str(form.get(name) or "").replace("，", ",").split(","):
            if text.strip():
                into.add(_day(text, _("the day to add")))
    return BusinessCalendar.model_validate({
        "timezone": str(form.get("timezone") or "Asia/Shanghai").strip(), "working_days": days,
        "working_hours": hours, "holidays": holidays, "extra_working_days": workdays})


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where + ': ' if where else ''}{i18n.translate(pydantic_message(first))}"
    return i18n.error_text(exc)


@router.post("/tickets/calendars/{key}", response_class=HTMLResponse)
async def calendar_submit(request: Request, key: str, user: OpsPage, db_url: DbUrl) -> Response:
    """``action=save`` stores the calendar; ``action=prefill:<year>`` fills the form with that year's
    official days and shows it again, unsaved."""
    form = await request.form()
    group = _group(db_url, key, user)
    action = str(form.get("action") or "save")
    try:
        calendar = calendar_from_form(form)
    except (_FormError, ValidationError, ValueError) as exc:
        stored_calendar = BusinessCalendar.model_validate(group.calendar or {})
        return _render_edit(request, user, group, stored_calendar, 422, _message(exc))
    if action.startswith("prefill:"):
        year_text = action.removeprefix("prefill:")
        try:
            filled = prefill(calendar, int(year_text))
        except (HolidaysUnknown, ValueError) as exc:
            return _render_edit(request, user, group, calendar, 422, _message(exc))
        official = official_year(int(year_text))
        return _render_edit(request, user, group, filled,
                            notice=_("Filled in %(year)s from the notice: %(holidays)s weekdays off, %(workdays)s "
                                     "make-up workdays. Check, then Save.")
                            % {"year": year_text, "holidays": len(official.holidays),
                               "workdays": len(official.workdays)})
    stored = calendar.model_dump(mode="json")
    with transaction(db_url) as db:
        row = db.get(models.AgentGroup, key)
        if row is None:
            raise PageProblem(404, user, _("Not found"), _("There is no group “%(key)s”.") % {"key": key},
                              back="/tickets/calendars")
        before = dict(row.calendar or {})
        row.calendar = stored
        if before != stored:
            auth.audit(db, user, "calendar.update", f"agent_group:{key}", before=before, after=stored)
    return see_other(f"/tickets/calendars/{key}?saved=1")


@api.get("/holidays/cn/{year}")
def official_days(year: int, user: Annotated[User, Depends(require(*EVERY_ROLE))]) -> dict[str, Any]:
    """China's public holidays on weekdays and make-up workdays on weekends for ``year``, per the State
    Council's notice (chinese-calendar); 404 for a year whose notice the installed package does not have."""
    try:
        official = official_year(year)
    except HolidaysUnknown as exc:
        raise ApiError(404, message_of(exc),
                       Msg("enter the year's days by hand in the group's calendar"), "year") from None
    def listed(days: tuple[OfficialDay, ...]) -> list[dict[str, str]]:
        return [{"date": d.day.isoformat(), "name": d.name_en, "name_zh": d.name_zh} for d in days]

    return {"year": year, "source": "chinese-calendar (State Council notice)",
            "holidays": listed(official.holidays), "workdays": listed(official.workdays)}

