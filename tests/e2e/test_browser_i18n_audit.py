"""Every screen in both languages, as Chromium draws it (scripts run, htmx swapped in): the demo admin on the demo
data opens every page of the main menu and the screens' own tabs and, one level deeper, the first link of each
kind on those pages (a flow's canvas, a customer, a journey, a ticket, a statement, a campaign, a script …), in
Chinese and in English, and for each page the audit asserts:

- the page answers below 400 in the language asked for (``<html lang>``) and logs no script error and no console
  error (a failed load, a CSP refusal);
- in Chinese, the text a person reads — text of visible elements and their ``title`` / ``placeholder`` /
  ``aria-label`` / ``alt`` — holds no English word outside the allow-list (:data:`TECHNICAL`: product names,
  protocols, units …) and the data (names and ids from the database: flows, customers, groups, tickets …);
  ``<code>``, ``<pre>``, ``<kbd>``, form fields' values and anything marked ``translate="no"`` are not read;
- in English, no Chinese outside that data.

docs/i18n.md ("The browser audit") says how to extend the allow-list. Bounded: about 46 pages per language
(one per route, at most :data:`MAX_PAGES`), one Chromium context per language, each page read once its ``load``
event fired, htmx's requests settled and the canvas drew its nodes; 10–20 s a language."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page
from sqlalchemy import select
from starlette.routing import Match

from activities.loyalty import ledger
from activities.sidebar import library
from activities.sidebar.scripts import ScriptSpec
from activities.tickets import service
from connectors.wecom.connector import WeComConnector
from engine import connectors as configured
from engine.db import models
from engine.db.failure_models import JourneyFailure
from engine.db.growth_models import GrowthChannel, ReferralCampaign
from engine.db.models import utcnow
from engine.db.session import transaction
from tests.connectors.fake_wecom import WECOM_CORP_ID, WECOM_KEY, WECOM_SECRET, WECOM_TOKEN
from tests.designer.page_text import CJK, data_strings, english_words, identifiers, strip
from tests.e2e import browser as kit
from tideflow.demo import seed

pytestmark = pytest.mark.browser

NAV = "header.top nav.main-nav a"
#: links that are no page to read: files, the API reference (Swagger's own English), leaving, switching language
NOT_PAGES = re.compile(r"^/(api|docs|openapi|logout|static|hooks|metrics|healthz|readyz|admin/temporal)\b"
                       r"|\.(csv|png|svg|dmn|xml|zip|pdf|json)$|/(download|export|poster|print)$")

#: the text a person reads on the page: visible text nodes (not in code, pre, kbd, form fields' values or
#: elements marked translate="no"), and the titles, placeholders, labels and alt texts of visible elements
READ_TEXT = """() => {
  const SKIP = "script, style, code, pre, kbd, samp, textarea, template, noscript, [translate=no]";
  const shown = (el) => el.checkVisibility({visibilityProperty: true});
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.nodeValue.trim();
    const el = node.parentElement;
    if (!text || !el || el.closest(SKIP)) continue;
    const select = el.closest("select");
    if (select ? shown(select) : shown(el)) out.push(text);
  }
  const labelled = "[title], [placeholder], [aria-label], [alt], input[type=submit], input[type=button]";
  for (const el of document.body.querySelectorAll(labelled)) {
    if (el.closest(SKIP) || !shown(el)) continue;
    for (const name of ["title", "placeholder", "aria-label", "alt"]) {
      const value = (el.getAttribute(name) || "").trim();
      if (value) out.push(value);
    }
    if (el.matches("input[type=submit], input[type=button]") && el.value.trim()) out.push(el.value.trim());
  }
  return out;
}"""


@pytest.fixture
def server(live_server: kit.LiveServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[kit.LiveServer, str]]:
    """The live designer on the demo data (:func:`tideflow.demo.seed`), plus what its lists need for a row to
    follow: a WeCom connector (the workforce screens open only with one), a ticket, a waiting and a failed
    journey, points on a customer, a channel code, a referral campaign and a script. Yields the server and the
    demo admin's password."""
    report = seed(live_server.database_url)
    monkeypatch.setattr(configured, "connector_classes", lambda: {"wecom": WeComConnector})
    with transaction(live_server.database_url) as db:
        configured.save(db, "wecom-main", "wecom", "企业微信", {"corp_id": WECOM_CORP_ID, "api_base": "http://127.0.0.1:9"},
                        {"token": WECOM_TOKEN, "encoding_aes_key": WECOM_KEY, "secret": WECOM_SECRET})
        cid = kit.demo_customer(db)
        now = utcnow()
        db.add_all([
            models.Journey(workflow_id=f"journey/welcome-new-contact/{cid}", flow_id="welcome-new-contact",
                           version=1, customer_id=cid, status="waiting", current_node="wait_order",
                           started_at=now - timedelta(days=2)),
            models.Journey(workflow_id=f"journey/birthday-care/{cid}", flow_id="welcome-new-contact", version=1,
                           customer_id=cid, status="failed", current_node="hello", started_at=now - timedelta(days=1)),
            JourneyFailure(workflow_id=f"journey/birthday-care/{cid}", run_id="r1", flow_id="welcome-new-contact",
                           node_id="hello", node_type="action.send_message", kind="action",
                           error="企业微信 errcode 41001", attempts=3, failed_at=now),
            models.Message(idempotency_key=f"journey/welcome-new-contact/{cid}/hello/1", customer_id=cid,
                           channel="wecom", content="李雷你好，欢迎关注！", status="sent",
                           flow_id="welcome-new-contact", node_id="hello",
                           workflow_id=f"journey/welcome-new-contact/{cid}", created_at=now),
            GrowthChannel(key="store-a", name="门店 A 收银台", state="audit-store-a", connector_id="wecom-main",
                          staff=["zhangsan"], tags=["门店A"], created_at=now, updated_at=now),
            ReferralCampaign(id="laodaixin", no=1, name="老带新", status="active", goal=3,
                             starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=7),
                             connector_id="wecom-main", staff=["zhangsan"], tags=["老带新"],
                             welcome={"text": "欢迎 {{ customer.name }}"}),
        ])
        service.create_ticket(db, type_key="repair", subject="空调不制冷", group="repair", now=now, customer_id=cid,
                              fields={"device": "空调"}, channel="dry-run")
        ledger.earn(db, cid, 120, "audit/signup", now, reason="signup")
        admin = db.scalar(select(models.User).where(models.User.username == "admin"))
        assert admin is not None
        script = ScriptSpec(title="售后安抚话术", text="{{ customer.name }}您好，给您添麻烦了。")
        library.create_script(db, admin, script, now)
    yield live_server, str(report["admin"]["password"])


def _route(app: Any, path: str) -> str | None:
    """The route template serving ``GET path`` (``/flows/{flow_id}/edit``), or None."""
    scope = {"type": "http", "path": path, "method": "GET"}
    routes = [r for route in app.routes
              for r in (route.effective_route_contexts() if hasattr(route, "effective_route_contexts") else [route])]
    for route in routes:
        if hasattr(route, "matches") and "GET" in (getattr(route, "methods", None) or ()) \
                and route.matches(scope)[0] == Match.FULL:
            return str(route.path)
    return None


def _links(page: Page, selector: str) -> list[str]:
    hrefs: list[str] = page.locator(selector).evaluate_all("(links) => links.map((a) => a.getAttribute('href'))")
    out = []
    for href in hrefs:
        if not href or href.startswith(("#", "mailto:", "javascript:")):
            continue
        parts = urlsplit(href)
        if parts.netloc or not parts.path.startswith("/") or NOT_PAGES.search(parts.path) or "lang=" in parts.query:
            continue
        out.append(parts.path)
    return out


def _read(page: Page) -> list[str]:
    if "/edit" in page.url:  # the canvas draws its nodes and palette by script
        page.locator(".drawflow-node").first.wait_for()
    # what htmx loads once the page is there (hx-trigger="load") is part of the page
    page.wait_for_function("() => !document.querySelector('.htmx-request')")
    texts: list[str] = page.evaluate(READ_TEXT)
    return texts


def _audit(page: Page, app: Any, lang: str, data: set[str], words: set[str]) -> tuple[list[str], dict[str, str]]:
    """Read every page of the menu and the first link of each kind on them; answer the problems found and, by
    route, the path read."""
    problems: list[str] = []
    page.on("console", lambda message: problems.append(f"{urlsplit(page.url).path}: console error: {message.text}")
            if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"{urlsplit(page.url).path}: script error: {error}"))
    base = page.url.split("/", 3)
    origin = f"{base[0]}//{base[2]}"
    page.goto(f"{origin}/?lang={lang}")
    menu = list(dict.fromkeys(_links(page, NAV)))
    seen: dict[str, str] = {}  # route template → the path read for it
    queue = [(path, True) for path in menu]
    while queue:
        path, follow = queue.pop(0)
        route = _route(app, path) or path
        if route in seen:
            continue
        seen[route] = path
        response = page.goto(origin + path)
        status = response.status if response is not None else 0
        if not 200 <= status < 400:
            problems.append(f"{path}: HTTP {status}")
            continue
        if page.get_attribute("html", "lang") != lang:
            problems.append(f"{path}: drawn in {page.get_attribute('html', 'lang')}, not {lang}")
        parts = _read(page)
        if lang == "zh-CN":
            problems += [f"{path}: English: {leak}" for leak in english_words(parts, data, words)]
        else:
            problems += [f"{path}: Chinese: {p!r}" for p in parts if CJK.search(strip(p, data))]
        if follow:  # a screen's own tabs (a route without parameters) are followed too, its rows are not
            queue += [(link, "{" not in (_route(app, link) or "{")) for link in _links(page, "main a[href]")]
    return problems, seen


#: what the crawl must reach on the demo data (else a list stopped linking its rows, or the data changed)
MUST_READ = {"/", "/flows", "/flows/{flow_id}/edit", "/flows/new", "/journeys", "/journeys/{journey_id:path}",
             "/journeys/failures", "/customers", "/customers/{customer_id}", "/tickets", "/tickets/{ticket_id}",
             "/tickets/setup/types/{key}", "/settlement", "/settlement/statements/{statement_id}", "/growth/channels",
             "/growth/campaigns", "/growth/channels/{key}", "/growth/campaigns/{campaign_id}", "/library",
             "/library/{script_id:int}", "/decisions", "/workforce", "/workforce/mass-sends", "/settings/connectors",
             "/quarantine", "/settings/users", "/settings/users/{user_id}", "/dashboard", "/dashboard/{board}",
             "/audit"}
#: a bound on the crawl: one page per route, so this grows only with new screens
MAX_PAGES = 60


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_every_screen_speaks_the_chosen_language_and_logs_no_error(server: tuple[kit.LiveServer, str],
                                                                  chromium: Browser, lang: str) -> None:
    live, password = server
    data, words = data_strings(live.database_url), identifiers(live.database_url)
    page = kit.new_page(chromium, locale=lang)
    try:
        kit.login(page, live.url, "admin", password)
        problems, seen = _audit(page, live.app, lang, data, words)
    finally:
        page.context.close()
    assert set(seen) >= MUST_READ, sorted(MUST_READ - set(seen))
    assert len(seen) <= MAX_PAGES, sorted(seen)
    assert problems == [], "\n".join(problems)
