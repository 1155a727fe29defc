"""Every screen in both languages, as Chromium draws it (scripts run, htmx swapped in): the demo admin on the demo
data opens every page of the main menu and the screens' own tabs and, one level deeper, the first link of each
kind on those pages (a flow's canvas with its versions tab and a diff of two versions, a customer, a journey, a
ticket, a statement, a campaign, a script, a suggestion rule, a quarantine entry, a mass send, a handover, a
connector's unmapped messages …), in Chinese and in English, and for each page the audit asserts:

- the page answers below 400 in the language asked for (``<html lang>``) and logs no script error and no console
  error (a failed load, a CSP refusal);
- in Chinese, the text a person reads — text of visible elements and their ``title`` / ``placeholder`` /
  ``aria-label`` / ``alt`` — holds no English word outside the allow-list (:data:`TECHNICAL`: product names,
  protocols, units …) and the data (names and ids from the database: flows, customers, groups, tickets …);
  ``<code>``, ``<pre>``, ``<kbd>``, form fields' values and anything marked ``translate="no"`` are not read;
- in English, no Chinese outside that data.

docs/i18n.md ("The browser audit") says how to extend the allow-list. Bounded: about 53 pages per language
(one per route, at most :data:`MAX_PAGES`), one Chromium context per language, each page read once its ``load``
event fired, htmx's requests settled and the canvas drew its nodes; 15–20 s a language."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.routing import Match

from activities.loyalty import ledger
from activities.sidebar import library
from activities.sidebar.scripts import ScriptSpec
from activities.sidebar.suggestions import RuleSpec
from activities.tickets import service
from activities.workforce.handover import BLOCK_REASONS, Move, Plan
from activities.workforce.mass_sends import NOT_STARTED
from connectors.base import Unmapped
from connectors.wecom.api_errors import wecom_error
from connectors.wecom.connector import WeComConnector
from engine import connector_ops, flows, quarantine
from engine import connectors as configured
from engine.db import models
from engine.db import workforce_models as wf
from engine.db.failure_models import JourneyFailure
from engine.db.growth_models import GrowthChannel, ReferralCampaign
from engine.db.models import utcnow
from engine.db.session import transaction
from engine.events import MAX_ATTEMPTS
from tests.connectors.fake_wecom import WECOM_CORP_ID, WECOM_KEY, WECOM_SECRET, WECOM_TOKEN
from tests.designer.page_text import CJK, data_strings, english_words, identifiers, strip
from tests.e2e import browser as kit
from tideflow.demo import seed
from wording import Msg, message_of
from wording.stored import MAX_REASON, stored

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
    journey, points on a customer, a channel code, a referral campaign, a script and a suggestion rule, a
    quarantined event, a failed mass send, a planned handover, an unmapped message, and a second version of
    every demo flow (for the canvas's versions tab and diff). Yields the server and the demo admin's password."""
    report = seed(live_server.database_url)
    monkeypatch.setattr(configured, "connector_classes", lambda: {"wecom": WeComConnector})
    with transaction(live_server.database_url) as db:
        configured.save(db, "wecom-main", "wecom", "企业微信", {"corp_id": WECOM_CORP_ID, "api_base": "http://127.0.0.1:9"},
                        {"token": WECOM_TOKEN, "encoding_aes_key": WECOM_KEY, "secret": WECOM_SECRET})
        cid = kit.demo_customer(db)
        now = utcnow()
        db.add_all([
            kit.waiting_welcome(cid, now),
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
        shown = library.create_script(db, admin, script, now)
        library.create_rule(db, admin, RuleSpec(name="问退款 → 安抚", keywords=["退款"], script_ids=[shown.id]), now)
        failure = LookupError(Msg("no connector '%(connector_id)s'", connector_id="shop-9"))
        quarantine.put(db, "event", "api:audit-1", quarantine.reason(failure),
                       {"id": "api:audit-1", "type": "order.paid", "payload": {"amount": 99}}, attempts=MAX_ATTEMPTS)
        _mass_send(db, cid, now)
        _handover(db, now)
        _second_versions(db)
    connector_ops.store_unmapped(live_server.database_url, "wecom-main", [  # as a pushed shop's unknown tag is kept
        Unmapped(reason=Msg("tag %(tag)s gives no event", tag="108"), raw='{"msg_id": "audit-1", "tag": 108}',
                 message_id="audit-1", kind="108")])
    yield live_server, str(report["admin"]["password"])


def _mass_send(db: Session, cid: str, now: datetime) -> None:
    """A one-to-one mass send that failed, as the workflow leaves one: a sender's task WeCom refused."""
    send = wf.MassSend(connector_id="wecom-main", chat_type="single", name="双11预告", text="双11活动预告",
                       status="failed", error=str(NOT_STARTED), created_by="admin", created_at=now, updated_at=now)
    db.add(send)
    db.flush()
    refused = wecom_error("add_msg_template", 40013, "")
    db.add_all([wf.MassSendTask(mass_send_id=send.id, sender="zhangsan", status="failed", recipients=1,
                                error=stored(message_of(refused), MAX_REASON), created_at=now),
                wf.MassSendRecipient(mass_send_id=send.id, recipient="wmAuditCustomer", connector_id="wecom-main",
                                     sender="zhangsan", customer_id=cid, status="failed")])


def _handover(db: Session, now: datetime) -> None:
    """A planned handover as :func:`activities.workforce.handovers.create_plan` writes one: a customer that
    moves, one that cannot, a warning."""
    moves = [Move(kind="customer", id="wmAuditMoves", to="lisi", rule="round_robin"),
             Move(kind="customer", id="wmAuditStays", to=None, blocked="transferred_twice",
                  movable_from=now + timedelta(days=30))]
    result = Plan(handover="zhangsan", resigned=True, moves=moves,
                  warnings=[Msg("last login unknown for %(userids)s: WeCom refuses a member who has not logged "
                                "in within a year", userids="lisi")])
    handover = wf.Handover(connector_id="wecom-main", handover_userid="zhangsan", mode="resigned",
                           strategy={"kind": "round_robin"}, status="planned", trigger="admin",
                           summary={**result.summary(), "departed": True},
                           warnings=[stored(w) for w in result.warnings], created_by="admin", created_at=now,
                           updated_at=now)
    db.add(handover)
    db.flush()
    db.add_all([wf.HandoverItem(handover_id=handover.id, kind=m.kind, external_id=m.id, takeover_userid=m.to,
                                status="blocked" if m.blocked else "planned", reason=m.blocked or "",
                                detail=BLOCK_REASONS[m.blocked] if m.blocked else m.rule,
                                movable_from=m.movable_from) for m in moves])


def _second_versions(db: Session) -> None:
    """Publish each demo flow once more with one node renamed, so its versions panel has two versions to compare."""
    for record in db.scalars(select(models.FlowRecord).where(models.FlowRecord.current_version.is_not(None))):
        version = db.get(models.FlowVersion, (record.id, record.current_version))
        assert version is not None
        document = copy.deepcopy(version.document)
        node = document["nodes"][-1]
        node["name"] = f"{node.get('name') or node['id']}（改）"
        flows.publish(db, record.id, "admin", document=document)


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


def _check(where: str, parts: list[str], lang: str, data: set[str], words: set[str]) -> list[str]:
    if lang == "zh-CN":
        return [f"{where}: English: {leak}" for leak in english_words(parts, data, words)]
    return [f"{where}: Chinese: {p!r}" for p in parts if CJK.search(strip(p, data))]


def _versions(page: Page) -> Iterator[tuple[str, list[str]]]:
    """Open the canvas's versions tab, then compare the last two versions: what each shows, by its route."""
    page.locator("#tf-tab-versions").click()
    page.locator("#tf-versions table").wait_for()
    yield "/flows/{flow_id}/versions", _read(page)
    page.locator("form.tf-compare button[type=submit]").click()
    page.locator("#tf-diff .tf-diff").wait_for()
    yield "/flows/{flow_id}/diff", _read(page)


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
        problems += _check(path, _read(page), lang, data, words)
        if route == "/flows/{flow_id}/edit":  # the canvas's versions tab and a diff are fragments htmx draws in
            for panel, parts in _versions(page):
                seen[panel] = path
                problems += _check(f"{path} ({panel})", parts, lang, data, words)
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
             "/audit", "/quarantine/{entry_id:int}", "/workforce/mass-sends/{send_id}",
             "/workforce/handovers/{handover_id}", "/library/rules/{rule_id:int}",
             "/settings/connectors/{connector_id}/unmapped", "/flows/{flow_id}/versions", "/flows/{flow_id}/diff"}
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
