"""``GET /api/dashboards/{board}``: a board's figures as JSON, the very numbers its page shows (both call
:mod:`activities.reports`). ``from`` / ``to`` are local dates (the display time zone), both included; the
default is the last 30 days."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from activities.reports import Range, RangeError, finance, marketing, service
from designer.auth import get_db_url, require
from designer.display import display_zone
from designer.errors import ApiError
from engine.auth import has_role
from engine.db.models import User
from engine.db.session import session_factory
from engine.text import Msg, message_of

api = APIRouter(prefix="/api", tags=["dashboards"])
DbUrl = Annotated[str, Depends(get_db_url)]
#: board → the roles that manage by it (admins see every board)
BOARDS: Final = {"marketer": ("marketer",), "ops": ("ops",), "finance": ("finance",)}
_FIGURES: Final = {"marketer": marketing.board, "ops": service.board, "finance": finance.board}
DEFAULT_DAYS = 30


def boards_for(user: User) -> list[str]:
    return [name for name, roles in BOARDS.items() if has_role(user, *roles)]


def _day(text: str | None, field: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise RangeError(field, Msg("'%(text)s' is not a date; write YYYY-MM-DD, e.g. 2026-11-01",
                                    text=text)) from None


def parse_range(start: str | None, end: str | None, today: date | None = None) -> Range:
    """The range asked for: ``from`` / ``to`` (either may be left out), else the last 30 days."""
    today = today or datetime.now(display_zone()).date()
    first, last = _day(start, "from"), _day(end, "to")
    if first is None and last is None:
        return Range.last(DEFAULT_DAYS, today, str(display_zone()))
    if last is None:
        last = max(first or today, today)
    if first is None:
        first = last.replace(day=1)
    return Range(first, last, str(display_zone()))


def figures(db_url: str, board: str, r: Range) -> dict[str, Any]:
    with session_factory(db_url)() as db:
        return {"board": board, **_FIGURES[board](db, r)}


@api.get("/dashboards/{board}")
async def dashboard_figures(board: str, user: Annotated[User, Depends(require())], db_url: DbUrl,
                            start: Annotated[str | None, Query(alias="from", max_length=10)] = None,
                            end: Annotated[str | None, Query(alias="to", max_length=10)] = None) -> dict[str, Any]:
    """A board's figures: ``marketer`` (new contacts by channel, active journeys, messages sent and skipped,
    conversions and GMV by flow), ``ops`` (ticket volume, SLA attainment, backlog, agent load) or ``finance``
    (amounts settled, pending and paid by period and party)."""
    if board not in BOARDS:
        raise ApiError(404, Msg("there is no dashboard '%(board)s'", board=board),
                       Msg("use one of %(boards)s", boards=", ".join(BOARDS)), "board")
    if not has_role(user, *BOARDS[board]):
        raise ApiError(403, Msg("your role '%(role)s' may not see the %(board)s dashboard", role=user.role,
                                board=board),
                       Msg("it needs the role %(roles)s (or admin)", roles=" or ".join(BOARDS[board])), "board")
    try:
        r = parse_range(start, end)
    except RangeError as exc:
        raise ApiError(422, message_of(exc),
                       Msg("give from and to as YYYY-MM-DD, at most a year apart"), exc.field) from None
    return await run_in_threadpool(figures, db_url, board, r)
