"""The main menu (designer/nav.py): every role sees exactly the screens its role may open.

For every role of engine.auth.ROLES, logged in through the real form: each link of the menu answers 200, and
every destination of the registry that answers 200 for the role is in its menu (the first of an entry's
destinations that the role may open). The roles come from the routes' own guards, so this also catches a
route whose guard changed without the menu noticing."""

from __future__ import annotations

import re
from html import unescape

import pytest
from fastapi import FastAPI

from connectors.wecom.connector import WeComConnector
from designer import nav
from designer.auth import guard_roles
from engine import auth
from engine import connectors as configured
from engine.auth import ROLES
from engine.db.session import transaction
from tests.connectors.fake_wecom import WECOM_CORP_ID, WECOM_KEY, WECOM_SECRET, WECOM_TOKEN
from tests.designer.pages_kit import PASSWORD, Browser, build_app

NAV = re.compile(r'<nav aria-label="[^"]*" class="main-nav">(.*?)</nav>', re.S)
HREF = re.compile(r'<a href="([^"]+)"')


@pytest.fixture
def app(db_url: str, monkeypatch: pytest.MonkeyPatch, cheap_passwords: None) -> FastAPI:
    monkeypatch.setattr(configured, "connector_classes", lambda: {"wecom": WeComConnector})
    with transaction(db_url) as db:
        for role in ROLES:
            auth.create_user(db, role, PASSWORD, role, f"{role} user")
        # the workforce screens need a WeCom connector (without one they explain that, with a 409)
        configured.save(db, "wecom-main", "wecom", "企业微信", {"corp_id": WECOM_CORP_ID, "api_base": "http://127.0.0.1:9"},
                        {"token": WECOM_TOKEN, "encoding_aes_key": WECOM_KEY, "secret": WECOM_SECRET})
    return build_app(db_url)


def menu_links(html: str) -> list[str]:
    found = NAV.search(html)
    assert found, "no main menu on the page"
    return [unescape(href) for href in HREF.findall(found.group(1))]


def test_the_role_list_is_every_role() -> None:
    assert set(ROLES) >= {"admin", "marketer", "ops", "agent", "finance", "developer", "auditor"}


@pytest.mark.parametrize("role", ROLES)
def test_every_link_opens_and_no_screen_is_missing(app: FastAPI, role: str) -> None:
    browser = Browser(app, role)
    page = browser.get("/")
    assert page.status_code == 200
    links = menu_links(page.text)
    assert len(links) == len(set(links)), links

    for href in links:
        r = browser.get(href)
        assert r.status_code == 200, f"{role}: the menu offers {href}, which answers {r.status_code}"
        assert r.url.path.startswith(href.rstrip("/") or "/"), (role, href, r.url)

    expected = []
    for entry in nav.ENTRIES:
        opens = [path for path in entry.paths if browser.get(path).status_code == 200]
        if opens:
            expected.append(opens[0])
    assert links == expected, f"{role}: menu {links}, but the role may open {expected}"


def test_the_regressions_of_issue_21_stay_fixed(app: FastAPI) -> None:
    """Agents saw Flows and Journeys, finance and developers Customers, auditors all three: each a 403."""
    assert not {"/flows", "/journeys"} & set(menu_links(Browser(app, "agent").get("/").text))
    for role in ("finance", "developer"):
        assert "/customers" not in menu_links(Browser(app, role).get("/").text)
    assert menu_links(Browser(app, "auditor").get("/").text) == ["/", "/audit"]
    assert "/workforce/mass-sends" in menu_links(Browser(app, "marketer").get("/").text)
    assert "/growth/review" in menu_links(Browser(app, "ops").get("/").text)


def test_admins_get_a_more_menu_in_both_languages(app: FastAPI) -> None:
    for lang, more, users in (("zh-CN", "更多", "用户"), ("en", "More", "Users")):
        html = Browser(app, "admin", lang=lang).get("/").text
        section = NAV.search(html)
        assert section
        assert f"<summary>{more}</summary>" in section.group(1)
        assert f'<li><a href="/settings/users">{users}</a></li>' in section.group(1)
    # a role whose links all fit gets no menu
    assert "<details" not in NAV.search(Browser(app, "agent").get("/").text).group(1)  # type: ignore[union-attr]


def test_the_current_screen_is_marked_also_inside_more(app: FastAPI) -> None:
    html = Browser(app, "admin").get("/settings/users").text
    section = NAV.search(html)
    assert section
    assert '<summary class="current">' in section.group(1)
    assert '<a href="/settings/users" aria-current="page">' in section.group(1)
    assert html.count('aria-current="page"') == 1


def test_a_destination_without_a_guarded_route_is_refused(app: FastAPI) -> None:
    with pytest.raises(nav.NavError, match="/nowhere"):
        nav.resolve(app, (nav.NavEntry(("/nowhere",), "Nowhere"),))


def test_the_menu_is_split_only_when_it_does_not_fit(app: FastAPI) -> None:
    resolved = nav.resolve(app)
    for role in ROLES:
        user = auth.User(username=role, role=role)  # type: ignore[call-arg]
        menu = resolved.menu(user)
        assert len(menu.inline) <= nav.INLINE_MAX, role
        assert bool(menu.more) == (len(menu.links) > nav.INLINE_MAX), role


def _screens(app: FastAPI) -> list[tuple[str, tuple[str, ...]]]:
    """Every page a role guard admits to a GET without ids in its path (no API, no downloads): path and roles."""
    found = []
    for route in app.routes:
        for ctx in route.effective_route_contexts() if hasattr(route, "effective_route_contexts") else [route]:
            path, methods = getattr(ctx, "path", ""), getattr(ctx, "methods", None) or ()
            if "GET" not in methods or "{" in path or path.startswith("/api") or "." in path.rsplit("/", 1)[-1]:
                continue
            roles = guard_roles(ctx.dependant) if hasattr(ctx, "dependant") else None
            if roles is not None and path != "/":
                found.append((path, roles))
    return found


def test_every_screen_lies_under_a_menu_entry_each_of_its_roles_sees(app: FastAPI) -> None:
    """A new screen either gets an entry in designer/nav.py or lives under an area its readers reach from the menu
    (the ticket set-up under Tickets, the archive under Workforce, ...)."""
    resolved = nav.resolve(app)
    screens = _screens(app)
    assert {"/tickets/setup/groups", "/workforce/archive", "/library/staff", "/journeys/failures"} <= {
        p for p, _ in screens}
    for path, roles in screens:
        for role in ROLES:
            user = auth.User(username=role, role=role)  # type: ignore[call-arg]
            if auth.has_role(user, *roles):
                links = resolved.menu(user).links
                assert any(link.current(path) for link in links), f"{role} may open {path}; no menu entry leads there"

