"""The dashboards' pages (看板): ``/dashboard`` opens the board of the user's role; ``/dashboard/{board}``
shows its figures for a time range (presets or dates) with charts drawn by Apache ECharts (vendored,
``static/vendor/echarts.common.min.js``) and refreshes itself every 15 seconds (htmx polling of
``/dashboard/{board}/live``). The numbers come from :func:`designer.dashboards.api.figures`, as the JSON API's."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from activities.reports import Range, RangeError
from designer import i18n
from designer.auth import require
from designer.dashboards import labels as _labels  # noqa: F401  (boards, tabs and presets in words)
from designer.dashboards.api import BOARDS, boards_for, figures, parse_range
from designer.display import display_zone
from designer.i18n import _
from designer.pages import DbUrl, PageProblem, PageRoute, forbidden, page_user, render, see_other
from engine.auth import has_role
from engine.db.models import User

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Anyone = Annotated[User, Depends(require())]
#: who has a board at all: /dashboard answers them their board, anyone else the 403 page (and no menu link)
VIEWERS = tuple(sorted({role for roles in BOARDS.values() for role in roles}))
Viewer = Annotated[User, Depends(page_user(*VIEWERS))]
REFRESH_SECONDS = 15
PRESETS = ("7", "30", "90", "month", "last_month")


def preset_range(preset: str, today: datetime) -> Range | None:
    day = today.date()
    zone = str(display_zone())
    if preset.isdigit():
        return Range.last(int(preset), day, zone)
    if preset == "month":
        return Range(day.replace(day=1), day, zone)
    if preset == "last_month":
        end = day.replace(day=1) - timedelta(days=1)
        return Range(end.replace(day=1), end, zone)
    return None


def _board(user: User, board: str) -> None:
    if board not in BOARDS:
        raise PageProblem(404, user, _("Not found"), _("There is no dashboard “%(board)s”.") % {"board": board},
                          back="/dashboard")
    if not has_role(user, *BOARDS[board]):
        raise forbidden(user, BOARDS[board], back="/")


def _range(request: Request, user: User, board: str) -> tuple[Range, str]:
    preset = request.query_params.get("preset", "")
    if preset in PRESETS and not (request.query_params.get("from") or request.query_params.get("to")):
        chosen = preset_range(preset, datetime.now(display_zone()))
        assert chosen is not None
        return chosen, preset
    try:
        return parse_range(request.query_params.get("from"), request.query_params.get("to")), \
            "custom" if request.query_params.get("from") else "30"
    except RangeError as exc:
        raise PageProblem(422, user, _("Wrong time range"), i18n.error_text(exc), back=f"/dashboard/{board}") from None


@router.get("/dashboard")
def my_dashboard(user: Viewer) -> Response:
    """The board of the user's role (admins: the marketer's, with the others a tab away). Everyone the guard
    lets in has one: its roles are the boards' (a role without a board gets the guard's 403 page)."""
    return see_other(f"/dashboard/{boards_for(user)[0]}")


def _context(request: Request, user: User, db_url: str, board: str) -> dict[str, Any]:
    r, preset = _range(request, user, board)
    data = figures(db_url, board, r)
    return {"board": board, "boards": boards_for(user), "figures": data, "range": r, "preset": preset,
            "presets": PRESETS, "refresh": REFRESH_SECONDS, "updated": datetime.now(display_zone()),
            "query": f"from={r.start.isoformat()}&to={r.end.isoformat()}"}


@router.get("/dashboard/{board}", response_class=HTMLResponse)
async def dashboard_page(request: Request, board: str, user: Anyone, db_url: DbUrl) -> HTMLResponse:
    _board(user, board)
    context = await run_in_threadpool(_context, request, user, db_url, board)
    return render(request, user, "dashboards/board.html", **context)


@router.get("/dashboard/{board}/live", response_class=HTMLResponse)
async def dashboard_live(request: Request, board: str, user: Anyone, db_url: DbUrl) -> HTMLResponse:
    """The figures part of the page, for htmx polling."""
    _board(user, board)
    context = await run_in_threadpool(_context, request, user, db_url, board)
    return render(request, user, "dashboards/_live.html", **context)
