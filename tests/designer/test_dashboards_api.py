"""GET /api/dashboards/{board}: each role its board (admins every board), the range parsed and bounded with a
422 naming the field, an unknown board a 404; the page and the JSON are built from the same figures."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from designer.dashboards.api import parse_range
from engine import auth
from tests.designer.pages_kit import Browser, add_users, build_app


@pytest.fixture
def app(db_url: str, cheap_passwords: None) -> FastAPI:
    add_users(db_url)
    return build_app(db_url)


@pytest.mark.parametrize(("role", "boards"), [("marketer", ["marketer"]), ("ops", ["ops"]),
                                              ("finance", ["finance"]), ("admin", ["marketer", "ops", "finance"]),
                                              ("agent", []), ("developer", [])])
def test_each_role_sees_its_board(app: FastAPI, role: str, boards: list[str]) -> None:
    user = Browser(app, role)
    for board in ("marketer", "ops", "finance"):
        r = user.get(f"/api/dashboards/{board}")
        assert r.status_code == (200 if board in boards else 403), (role, board, r.text)
        page = user.get(f"/dashboard/{board}")
        assert page.status_code == (200 if board in boards else 403)
    landing = user.get("/dashboard", follow_redirects=False)
    assert landing.status_code == (303 if boards else 403)
    if boards:
        assert landing.headers["location"] == f"/dashboard/{boards[0]}"


@pytest.mark.parametrize("role", auth.ROLES)
def test_dashboard_lets_in_exactly_the_roles_with_a_board(role: str) -> None:
    """/dashboard's guard is the only refusal: whoever it lets in has a board to be sent to."""
    from designer.dashboards.api import boards_for
    from designer.dashboards.pages import VIEWERS
    from engine.db.models import User

    user = User(username=role, role=role)
    assert auth.has_role(user, *VIEWERS) == bool(boards_for(user))


def test_ranges_are_checked_and_the_page_shows_the_apis_figures(app: FastAPI) -> None:
    admin = Browser(app, "admin")
    for query, field in (("from=2026-13-01", "from"), ("from=2026-11-10&to=2026-11-01", "to"),
                         ("from=2024-01-01&to=2026-01-01", "from")):
        r = admin.get(f"/api/dashboards/ops?{query}")
        assert r.status_code == 422 and r.json()["detail"]["field"] == field, query
    assert admin.get("/api/dashboards/nope").status_code == 404
    figures = admin.get("/api/dashboards/finance?from=2026-11-01&to=2026-11-30").json()
    assert figures["range"] == {"from": "2026-11-01", "to": "2026-11-30", "timezone": "Asia/Shanghai"}
    page = admin.get("/dashboard/finance?from=2026-11-01&to=2026-11-30").text
    assert '<script type="application/json" id="db-figures">' in page and '"totals"' in page
    live = admin.get("/dashboard/finance/live?from=2026-11-01&to=2026-11-30")
    assert live.status_code == 200 and 'hx-trigger="every 15s"' in live.text
    bad = admin.get("/dashboard/ops?from=2026-11-10&to=2026-11-01")
    assert bad.status_code == 422 and "请交换两个日期" in bad.text  # the reason, in the page's language
    english = Browser(app, "admin", "en").get("/dashboard/ops?from=2026-11-10&to=2026-11-01")
    assert english.status_code == 422 and "swap the dates" in english.text


def test_open_ended_ranges() -> None:
    from datetime import date

    today = date(2026, 12, 6)
    assert (parse_range(None, None, today).start, parse_range(None, None, today).end) == (date(2026, 11, 7), today)
    assert parse_range("2026-11-20", None, today).end == today
    assert parse_range(None, "2026-11-20", today).start == date(2026, 11, 1)
