"""The SLA calendar pages: ops prefills a group's calendar with the State Council's 2026 schedule, overrides
two days, saves (audited, before → after); bad input is a 422 naming the field; agents get the 403 page;
GET /api/holidays/cn/{year} answers the official days or a 404 saying what to do."""

from __future__ import annotations

from datetime import date

import pytest
from fastapi import FastAPI

from activities.tickets.calendar import BusinessCalendar
from activities.tickets.holidays import official_year, years_known
from engine.db import models
from engine.db.session import session_factory
from tests.designer.pages_kit import Browser, add_users, audit_entries, build_app


@pytest.fixture
def app(db_url: str, cheap_passwords: None) -> FastAPI:
    add_users(db_url)
    return build_app(db_url)


def _form(**extra: str | list[str]) -> dict[str, str | list[str]]:
    return {"timezone": "Asia/Shanghai", "working_days": ["1", "2", "3", "4", "5"], "hours.0.start": "09:00",
            "hours.0.end": "12:00", "hours.1.start": "13:00", "hours.1.end": "18:00", **extra}


def test_ops_prefills_overrides_and_saves_a_calendar(app: FastAPI, db_url: str) -> None:
    ops = Browser(app, "ops")
    listing = ops.get("/tickets/calendars")
    assert listing.status_code == 200 and "default" in listing.text and "未填入" in listing.text
    page = ops.get("/tickets/calendars/default")
    assert page.status_code == 200 and "按国务院通知填入" in page.text
    filled = ops.client.post("/tickets/calendars/default", data={**_form(), "action": "prefill:2026",
                                                                 "csrf_token": ops.csrf})
    assert filled.status_code == 200 and "已按通知填入 2026 年：19 个工作日放假，6 个调休上班日" in filled.text
    assert 'value="2026-02-16" checked' in filled.text and "春节" in filled.text and 'value="2026-02-14"' in filled.text
    with session_factory(db_url)() as db:
        assert db.get(models.AgentGroup, "default").calendar == {}  # nothing saved by prefilling  # type: ignore[union-attr]
    # the ops user keeps every official day but 10-07 (the desk works) and adds 12-24 (a company day off)
    official = official_year(2026)
    kept = [h.day.isoformat() for h in official.holidays if h.day != date(2026, 10, 7)]
    saved = ops.client.post("/tickets/calendars/default", data={
        **_form(), "holiday": kept, "workday": [w.day.isoformat() for w in official.workdays],
        "add_holiday": "2026-12-24", "action": "save", "csrf_token": ops.csrf}, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == "/tickets/calendars/default?saved=1"
    with session_factory(db_url)() as db:
        stored = BusinessCalendar.model_validate(db.get(models.AgentGroup, "default").calendar)  # type: ignore[union-attr]
    assert date(2026, 10, 7) not in stored.holidays and date(2026, 12, 24) in stored.holidays
    assert date(2026, 2, 14) in stored.extra_working_days and len(stored.working_hours) == 2
    page = ops.get("/tickets/calendars/default?saved=1")
    assert "日历已保存" in page.text and "照常上班（通知放假）：2026-10-07" in page.text
    assert "额外放假：2026-12-24" in page.text and "自行添加" in page.text
    entry = audit_entries(db_url, "calendar.update", "agent_group:default")[-1]
    assert entry.actor == "ops" and not entry.before and "2026-12-24" in entry.after["holidays"]
    assert "已填入" in ops.get("/tickets/calendars").text or date.today().year != 2026


def test_bad_calendars_are_refused_naming_the_field(app: FastAPI) -> None:
    ops = Browser(app, "ops", "en")
    for extra, message in ((dict(add_holiday="2026-13-01"), "is not a date"),
                           ({"hours.0.end": ""}, "give both a start and an end"),
                           ({"timezone": "Mars/Base"}, "not an IANA time zone"),
                           ({"hours.1.start": "11:00"}, "working hours overlap"),
                           (dict(add_holiday="2026-02-14", add_workday="2026-02-14"), "both a holiday and an extra")):
        r = ops.client.post("/tickets/calendars/default", data={**_form(**extra), "action": "save",  # type: ignore[arg-type]
                                                                "csrf_token": ops.csrf})
        assert r.status_code == 422 and message in r.text, (extra, r.text[:300])
    unknown = years_known().stop
    r = ops.client.post("/tickets/calendars/default", data={**_form(), "action": f"prefill:{unknown}",
                                                            "csrf_token": ops.csrf})
    assert r.status_code == 422 and "by hand" in r.text
    assert ops.get("/tickets/calendars/nope").status_code == 404
    chinese = Browser(app, "ops")  # the same refusals in the page's language
    for extra, message in ((dict(add_holiday="2026-13-01"), "不是日期"), ({"hours.1.start": "11:00"}, "工作时间重叠"),
                           ({"timezone": "Mars/Base"}, "不是 IANA 时区")):
        r = chinese.client.post("/tickets/calendars/default", data={**_form(**extra), "action": "save",  # type: ignore[arg-type]
                                                                    "csrf_token": chinese.csrf})
        assert r.status_code == 422 and message in r.text, (extra, r.text[:300])


def test_who_may_see_calendars_and_the_holidays_api(app: FastAPI) -> None:
    agent = Browser(app, "agent")
    forbidden = agent.get("/tickets/calendars/default")
    assert forbidden.status_code == 403 and "<html" in forbidden.text
    r = agent.client.post("/tickets/calendars/default", data={**_form(), "csrf_token": agent.csrf})
    assert r.status_code == 403
    days = agent.get("/api/holidays/cn/2026").json()
    assert days["holidays"][0] == {"date": "2026-01-01", "name": "New Year's Day", "name_zh": "元旦"}
    assert [w["date"] for w in days["workdays"]] == ["2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09",
                                                     "2026-09-20", "2026-10-10"]
    missing = agent.get(f"/api/holidays/cn/{years_known().stop}")
    assert missing.status_code == 404 and "by hand" in missing.json()["detail"]["message"]
