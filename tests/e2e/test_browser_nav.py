"""The main menu in real Chromium at 1280×800 (issue 16): for the admin (the most links, some under "More"), ops
(the most links that all stay in the bar), a marketer and an agent (the narrowest), in Chinese and in English —

- the bar is one row: every link and the "More" summary share one line box, the header is one line high, the
  menu does not run under the user's name on the right and the page does not scroll sideways;
- the More menu opens (by mouse, and by keyboard: Enter on its summary, Tab to a link, Enter), closes on Escape
  and on a click elsewhere, and its links navigate;
- every link shown answers 200 for that role (none answers 403).

Saves docs/screenshots/nav-more.png (the admin's open More menu, in Chinese)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from connectors.wecom.connector import WeComConnector
from designer import nav
from engine import connectors as configured
from engine.db.session import transaction
from tests.connectors.fake_wecom import WECOM_CORP_ID, WECOM_KEY, WECOM_SECRET, WECOM_TOKEN
from tests.e2e import browser as kit

pytestmark = pytest.mark.browser

NAV = "header.top nav.main-nav"
ROLES = {"admin": "系统管理员 Administrator", "marketer": "市场部 王小明", "ops": "客服主管 李华", "agent": "坐席 张三"}


@pytest.fixture
def server(live_server: kit.LiveServer, monkeypatch: pytest.MonkeyPatch) -> kit.LiveServer:
    monkeypatch.setattr(configured, "connector_classes", lambda: {"wecom": WeComConnector})
    with transaction(live_server.database_url) as db:  # the workforce screens open only with a WeCom connector
        configured.save(db, "wecom-main", "wecom", "企业微信", {"corp_id": WECOM_CORP_ID, "api_base": "http://127.0.0.1:9"},
                        {"token": WECOM_TOKEN, "encoding_aes_key": WECOM_KEY, "secret": WECOM_SECRET})
    for role, name in ROLES.items():
        kit.add_user(live_server.database_url, role, role, display_name=name)
    return live_server


def _one_row(page: Page) -> None:
    boxes = page.evaluate("""(sel) => {
        const nav = document.querySelector(sel);
        const items = [...nav.querySelectorAll(':scope > a, :scope > details > summary')];
        const r = (e) => { const b = e.getBoundingClientRect(); return {top: b.top, bottom: b.bottom, left: b.left,
                                                                          right: b.right, height: b.height}; };
        return {items: items.map(r), nav: r(nav), header: r(document.querySelector('header.top')),
                who: r(document.querySelector('header.top .who')),
                brand: r(document.querySelector('header.top .brand')),
                scroll: document.documentElement.scrollWidth, width: window.innerWidth};
    }""", NAV)
    items = boxes["items"]
    assert items, "no links in the menu"
    tops = {round(item["top"]) for item in items}
    assert max(tops) - min(tops) <= 2, f"the menu wraps: link tops {sorted(tops)}"
    line = max(item["height"] for item in items)
    assert boxes["nav"]["height"] < 1.6 * line, boxes["nav"]
    assert boxes["header"]["height"] < 2.5 * line + 20, boxes["header"]  # 10 px padding above and below
    assert max(item["right"] for item in items) <= boxes["who"]["left"], "the menu runs under the user's name"
    assert abs(boxes["who"]["top"] - boxes["brand"]["top"]) < line, "the user's name went to a second row"
    assert boxes["scroll"] <= boxes["width"], "the page scrolls sideways"


def _links_answer_200(page: Page, base: str, role: str) -> list[str]:
    hrefs = page.locator(f"{NAV} a").evaluate_all("(links) => links.map((a) => a.getAttribute('href'))")
    for href in hrefs:
        status = page.request.get(base + href, headers={"Accept": "text/html"}).status
        assert status == 200, f"{role} is shown {href}, which answers {status}"
    return list(hrefs)


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_menu_is_one_row_and_more_opens_and_navigates(server: kit.LiveServer, chromium: Browser,
                                                          lang: str) -> None:
    base = server.url
    for role in ROLES:
        page = kit.new_page(chromium, locale=lang)
        try:
            kit.login(page, base, role)
            page.goto(f"{base}/?lang={lang}")
            _one_row(page)
            hrefs = _links_answer_200(page, base, role)
            more = page.locator(f"{NAV} details.more")
            if role != "admin":
                assert more.count() == 0, f"{role}: every link fits in the bar"
                if role == "agent":
                    assert "/flows" not in hrefs and "/journeys" not in hrefs
                if role == "marketer":
                    assert "/workforce/mass-sends" in hrefs
                if role == "ops":
                    assert len(hrefs) == nav.INLINE_MAX and "/growth/review" in hrefs
                continue
            expect(more.locator("summary")).to_have_text("更多" if lang == "zh-CN" else "More")
            inside = more.locator("ul a")
            expect(inside.first).to_be_hidden()
            more.locator("summary").click()
            expect(inside.first).to_be_visible()
            if role == "admin" and lang == "zh-CN":
                kit.screenshot(page, "nav-more")
            page.mouse.click(1000, 700)  # a click elsewhere closes it, as Escape does (static/nav.js)
            expect(inside.first).to_be_hidden()
            more.locator("summary").click()
            page.keyboard.press("Escape")
            expect(inside.first).to_be_hidden()
            expect(more.locator("summary")).to_be_focused()
            more.locator("summary").click()
            last = inside.last
            target = str(last.get_attribute("href"))
            with page.expect_navigation():
                last.click()
            assert page.url.split("?")[0] == base + target
            assert page.locator("h1").count() == 1
            # the current screen sits in More: the summary says so, and the menu is still one row
            expect(page.locator(f"{NAV} details.more summary")).to_have_class("current")
            _one_row(page)

            # by keyboard: Enter opens the menu, Tab reaches its first link, Enter follows it
            page.goto(f"{base}/")
            summary = page.locator(f"{NAV} details.more summary")
            summary.focus()
            page.keyboard.press("Enter")
            expect(page.locator(f"{NAV} details.more")).to_have_attribute("open", "")
            first = str(page.locator(f"{NAV} details.more ul a").first.get_attribute("href"))
            page.keyboard.press("Tab")
            with page.expect_navigation():
                page.keyboard.press("Enter")
            assert page.url.split("?")[0] == base + first
        finally:
            page.context.close()
