"""How values are shown: times in the workspace's zone (named), numbers and money in the reader's locale,
a human label for every status — the filters of designer/display.py, and the pages that use them.

Expected strings are CLDR's (Babel) formats written out by hand: ``¥1,234.50``, ``1,234,567``,
``2026-12-06 11:30`` for 03:30 UTC in Asia/Shanghai (UTC+8, no daylight saving).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from jinja2 import Environment

from activities.settlement.runs import STATUS_ORDER
from activities.tickets import service
from connectors.canonical import ORDER_STATUSES, REFUND_STATUSES
from designer import display, i18n
from designer.journeys.pages import JOURNEY_STATUSES
from engine import auth
from engine.db import models
from engine.db.session import transaction
from engine.settings import Settings, get_settings
from tests.designer.pages_kit import Browser, add_users, build_app

INSTANT = datetime(2026, 12, 6, 3, 30, 15, tzinfo=UTC)


def test_numbers_and_money_in_both_languages() -> None:
    for lang in ("zh-CN", "en"):
        with i18n.language(lang):
            assert display.number(1234567) == "1,234,567"
            assert display.number("1234.5") == "1,234.5" and display.number(3, digits=2) == "3.00"
            assert display.money(Decimal("1234.5")) == "¥1,234.50"  # CLDR's English "CN¥" is not used: all is CNY
            assert display.money("-1234.56") == "-¥1,234.56" and display.money("0") == "¥0.00"
            assert display.money_change("12.5") == "+¥12.50" and display.money_change("-3") == "-¥3.00"
            assert display.yuan(123450) == "¥1,234.50" and display.yuan(-5) == "-¥0.05"
            assert display.yuan(10**17 + 1) == "¥1,000,000,000,000,000.01"  # exact: no float on the way
            assert display.percent("0.255") == "26%" and display.percent("0.5", digits=1) == "50.0%"
            assert display.money(None) == display.number(None) == display.yuan(None) == "—"
            assert display.number("abc") == "abc"  # not a number: shown as it is, never a crash


def test_times_are_shown_in_the_workspace_zone_which_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    with i18n.language("zh-CN"):
        assert display.when(INSTANT) == "2026-12-06 11:30"
        assert display.when(INSTANT, seconds=True) == "2026-12-06 11:30:15"
        assert display.when(INSTANT.replace(tzinfo=None)) == "2026-12-06 11:30"  # naive = UTC, as stored
        assert display.when("2026-12-06T03:30:00+00:00") == "2026-12-06 11:30"
        assert display.day(datetime(2026, 12, 5, 17, 0, tzinfo=UTC)) == "2026-12-06"  # 01:00 next day in Shanghai
        assert display.day(date(2026, 1, 2)) == "2026-01-02" and display.when(None) == "—"
        assert display.tz_name() == "中国时间 (GMT+08:00)"
    with i18n.language("en"):
        assert display.tz_name() == "China Time (GMT+08:00)"
    monkeypatch.setenv("TIDEFLOW_DISPLAY_TIMEZONE", "Europe/London")
    get_settings.cache_clear()
    with i18n.language("en"):
        assert display.when(INSTANT) == "2026-12-06 03:30" and display.tz_name() == "British Time (GMT+00:00)"
    with pytest.raises(ValueError, match="not an IANA time zone"):
        Settings(display_timezone="Mars/Olympus")


def test_every_status_the_engine_knows_has_a_label_in_both_languages() -> None:
    enums = {
        "journey_status": JOURNEY_STATUSES, "flow_status": ("draft", "active", "paused", "archived"),
        "flow_kind": ("journey", "ticket", "settlement"), "ticket_status": service.STATUSES,
        "run_status": STATUS_ORDER, "statement_status": ("draft", "pending", "approved", "rejected", "paid"),
        "order_status": ORDER_STATUSES, "refund_status": REFUND_STATUSES, "role": auth.ROLES,
        "review_status": ("queued", "waiting", "approved", "rejected", "sent_back", "skipped", "timed_out"),
        "message_status": ("sent", "skipped: capped", "skipped: no consent", "skipped: no customer",
                           "skipped: channel not configured"),
        "channel": ("wecom", "wechat_oa", "sms", "email", "webhook", "youzan", "taobao", "tmall", "jd", "douyin",
                    "shopify", "api"),
    }
    for kind, values in enums.items():
        for value in values:
            assert value in display.LABELS[kind].entries, (kind, value)
            with i18n.language("zh-CN"):
                chinese = display.label(value, kind)
            with i18n.language("en"):
                english = display.label(value, kind)
            same = value in ("api", "webhook", "shopify")  # a name that is the same in both languages
            assert same or (chinese != value and english and chinese != english), (kind, value)
    with i18n.language("zh-CN"):
        assert display.label("running", "journey_status") == "运行中"
        assert display.label("open", "ticket_status") == "待处理"  # "Open" the status, not the button
        assert display.label("brand_new_state", "journey_status") == "brand new state"  # readable until labelled
        assert display.label(None, "role") == "—"
    with pytest.raises(KeyError, match="no labels for"):
        display.label("x", "no_such_enum")
    with pytest.raises(ValueError, match="already use the context"):
        display.add_labels("role", "another context", {})


def test_filters_follow_the_language_of_each_render() -> None:
    """Jinja folds filters over constants when it compiles a template: the labels must not be frozen in the
    language of the first page drawn."""
    env = Environment(autoescape=True)
    i18n.install(env)
    display.install(env)
    template = env.from_string('{{ "open"|label("ticket_status") }}|{{ 1234.5|money }}|{{ _("Flows") }}')
    with i18n.language("zh-CN"):
        assert template.render() == "待处理|¥1,234.50|流程"
    with i18n.language("en"):
        assert template.render() == "Open|¥1,234.50|Flows"


# --- on the pages -------------------------------------------------------------------------------------


@pytest.fixture
def app(db_url: str, cheap_passwords: None) -> FastAPI:
    add_users(db_url)
    with transaction(db_url) as db:
        db.add(models.FlowRecord(id="welcome", name="新客欢迎", kind="journey", status="active", draft={},
                                 current_version=1))
        db.add(models.Journey(workflow_id="journey/welcome/c1", flow_id="welcome", version=1, customer_id=None,
                              status="converted", current_node="goal", started_at=INSTANT))
        run = models.SettlementRun(flow_id="settle", plan_key="p", plan_version="v1", plan={}, cycle="monthly",
                                   period_from="2026-11-01", period_to="2026-11-30", starts_at=INSTANT,
                                   ends_at=INSTANT, status="pending_approval", groups=[], created_by="finance")
        db.add(run)
        db.flush()
        db.add(models.Statement(run_id=run.id, party="S001", party_type="direct", sales_fen=123456789,
                                order_count=1234, commission_fen=123450, clawback_fen=0, total_fen=123450,
                                status="pending"))
    return build_app(db_url)


def test_a_journey_page_shows_labels_and_times_in_the_workspace_zone(app: FastAPI) -> None:
    page = Browser(app, "marketer").get("/journeys/journey/welcome/c1").text
    assert "已转化" in page and ">converted<" not in page
    assert "2026-12-06 11:30" in page and "中国时间 (GMT+08:00)" in page  # the zone is said on the page
    english = Browser(app, "marketer", lang="en").get("/journeys/journey/welcome/c1").text
    assert "Converted" in english and "China Time (GMT+08:00)" in english


def test_the_settlement_dashboard_formats_money_and_counts(app: FastAPI) -> None:
    page = Browser(app, "finance").get("/settlement").text
    assert "¥1,234,567.89" in page and "¥1,234.50" in page  # sales and payable of the pending statement
    assert "待审批" in page and "pending_approval" not in page.split("<tbody>", 1)[-1].split("data-status")[0]


def test_a_browser_gets_an_html_403_naming_the_role_and_api_clients_keep_json(app: FastAPI) -> None:
    marketer = Browser(app, "marketer")
    html = marketer.get("/settings/connectors", headers={"Accept": "text/html,application/xhtml+xml"})
    assert html.status_code == 403 and html.headers["content-type"].startswith("text/html")
    assert "没有权限" in html.text and "只有管理员可以查看这个页面" in html.text and "运营" in html.text
    english = marketer.get("/settings/connectors?lang=en", headers={"Accept": "text/html"})
    assert english.status_code == 403 and "Only admins may see this page" in english.text and "marketer" in english.text
    as_json = marketer.get("/settings/connectors", headers={"Accept": "application/json"})
    assert as_json.status_code == 403 and as_json.json()["detail"]["message"].startswith("this needs the admin role")
    api = marketer.get("/api/connectors", headers={"Accept": "text/html"})  # the API answers JSON whatever it is asked
    assert api.status_code == 403 and api.headers["content-type"].startswith("application/json")
    with transaction(str(app.state.database_url)) as db:
        user = db.query(models.User).filter_by(username="marketer").one()
        token = auth.create_token(db, user, "script")
    scripted = TestClient(app).get("/settings/connectors", headers={"Authorization": f"Bearer {token}",
                                                                     "Accept": "text/html"})
    assert scripted.status_code == 403 and scripted.json()["detail"]["fix"]  # a token is a program: JSON
