"""Shared helpers for browser tests: Debian's Chromium driven by Python Playwright, the designer served
live on a free port, logging in through the real login form, and screenshots for the docs.

Chromium is the distribution's (``/usr/bin/chromium``, installed by ``.ci/run`` with apt when missing);
Playwright never downloads a browser of its own. Everything runs headless, so CI needs no display.

The fixtures live here and are registered once for the whole suite (``pytest_plugins`` in
tests/conftest.py), so the session's one Chromium is shared by every browser test. Browser tests run in
their own pytest process (see the Makefile): Playwright's sync API keeps an event loop running in the
main thread for the session, which asyncio tests cannot share. A module looks like::

    import pytest
    from designer.flows import pages
    from tests.e2e import browser as kit

    pytestmark = pytest.mark.browser
    # fixtures: chromium (session), page (a fresh 1280×800 page), live_server (the app on a free port)

    @pytest.fixture
    def live_routers() -> list[APIRouter]:   # what to mount besides designer.app's own routes
        return [pages.router]

    def test_something(live_server: kit.LiveServer, page: Page) -> None:
        kit.add_user(live_server.database_url, "mia", "marketer")
        kit.login(page, live_server.url, "mia")
        page.goto(live_server.url + "/flows")
        kit.screenshot(page, "flows")
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from playwright.sync_api import Browser, Page, Playwright, ViewportSize, sync_playwright

from designer.app import create_app
from engine import auth
from engine.db import models
from engine.db.session import transaction
from tests.waiting import wait_until

#: the browser binary; TIDEFLOW_CHROMIUM overrides it (e.g. a developer's own Chromium build)
CHROMIUM = os.environ.get("TIDEFLOW_CHROMIUM", "/usr/bin/chromium")
#: root in a container needs --no-sandbox; the rest keeps Chromium from phoning home during tests
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
#: where the docs' screenshots live; the tests write there only when TIDEFLOW_SCREENSHOTS=1 (``make screenshots``)
#: so that ``make test`` leaves the checkout as it found it; otherwise into a scratch directory
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SCREENSHOTS = (DOCS_SCREENSHOTS if os.environ.get("TIDEFLOW_SCREENSHOTS") == "1"
               else Path(tempfile.gettempdir()) / "tideflow-screenshots")
#: the password of users made by :func:`add_user`
PASSWORD = "browser-test-password"
HOST = "127.0.0.1"


def chromium_missing() -> str | None:
    """Why Chromium cannot be used here, or None when it can."""
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        return f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set TIDEFLOW_CHROMIUM)"
    return None


def launch(playwright: Playwright, **options: Any) -> Browser:
    """Headless Debian Chromium with the project's flags."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, **options)


def new_page(browser: Browser, locale: str = "zh-CN") -> Page:
    """A page in a fresh context (own cookies) at 1280×800; its ``Accept-Language`` follows ``locale``."""
    context = browser.new_context(viewport=VIEWPORT, locale=locale,
                                  extra_http_headers={"Accept-Language": locale})
    context.set_default_timeout(15_000)
    return context.new_page()


# --- the live server -------------------------------------------------------------------------------


def _has_route(app: FastAPI, route: APIRoute) -> bool:
    return any(isinstance(r, APIRoute) and r.path == route.path and r.methods == route.methods for r in app.routes)


def include_once(app: FastAPI, router: APIRouter) -> None:
    """Mount ``router`` unless the app already serves its routes (once designer.app includes it itself)."""
    routes = [r for r in router.routes if isinstance(r, APIRoute)]
    if routes and all(_has_route(app, r) for r in routes):
        return
    app.include_router(router)


class LiveServer:
    """``designer.app.create_app(database_url, connect=False)`` plus ``routers``, served by uvicorn in a
    background thread on a free port of 127.0.0.1. Use as a context manager; ``url`` is its base URL."""

    def __init__(self, database_url: str, routers: Iterable[APIRouter] = (), app: FastAPI | None = None) -> None:
        self.database_url = database_url
        self.app = app or create_app(database_url, connect=False)
        for router in routers:
            include_once(self.app, router)
        self._server = uvicorn.Server(uvicorn.Config(self.app, host=HOST, port=0, log_level="warning",
                                                     lifespan="on", access_log=False))
        self._thread = threading.Thread(target=self._server.run, name="live-server", daemon=True)
        self.url = ""

    def start(self, timeout: float = 20.0) -> LiveServer:
        self._thread.start()

        def started() -> bool:
            if not self._thread.is_alive():
                raise RuntimeError("the live server stopped while starting; see the log above")
            return bool(self._server.started)

        wait_until(started, timeout, "the live server to start", every=0.02)
        sockets = [s for server in self._server.servers for s in server.sockets]
        port = sockets[0].getsockname()[1]
        self.url = f"http://{HOST}:{port}"
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


# --- users, login, screenshots ---------------------------------------------------------------------


def add_user(database_url: str, username: str, role: str, password: str = PASSWORD,
             display_name: str | None = None) -> None:
    """Create a user with ``role`` (admin, marketer, ops, agent, finance, developer)."""
    with transaction(database_url) as db:
        auth.create_user(db, username, password, role, display_name)


def login(page: Page, base_url: str, username: str, password: str = PASSWORD, next_path: str = "/") -> None:
    """Log in through the real login form and wait until the browser has left it."""
    # leave the current page first: its scripts (polling, redirects on 401) must not race our navigation
    page.goto("about:blank")
    page.goto(f"{base_url}/login?next={next_path}")
    page.locator("#username").fill(username)
    page.locator("#password").fill(password)
    with page.expect_navigation():
        page.locator("form[action='/login'] button[type=submit]").click()
    if "/login" in page.url:
        error = page.locator(".error")
        message = error.inner_text() if error.count() else "(no message)"
        raise AssertionError(f"login as {username!r} failed: {message}")


def screenshot(page: Page, name: str) -> Path:
    """Save the visible 1280×800 viewport as ``<name>.png``: in ``docs/screenshots`` (shown in README.md)
    with TIDEFLOW_SCREENSHOTS=1, else in a scratch directory; the page is rendered and saved either way."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False, animations="disabled", caret="hide")
    return path


# --- fixtures (assign them in a test module, see the module docstring) -----------------------------


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    """One headless Chromium for the session. Skipped when Chromium is missing, except in CI."""
    missing = chromium_missing()
    if missing:
        if os.environ.get("CI") or os.environ.get("TIDEFLOW_CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    """A fresh context (no cookies) and page at 1280×800, zh-CN."""
    tab = new_page(chromium)
    try:
        yield tab
    finally:
        tab.context.close()


@pytest.fixture
def live_routers() -> list[APIRouter]:
    """Routers to mount on the live app besides its own; override in a test module."""
    return []


@pytest.fixture
def live_server(db_url: str, live_routers: list[APIRouter], cheap_passwords: None) -> Iterator[LiveServer]:
    """The designer on a free port over the test's migrated database (``db_url``), with cheap password
    hashing so logging in takes milliseconds."""
    with LiveServer(db_url, live_routers) as server:
        yield server


def demo_customer(db: Any) -> str:
    """The id of the first demo customer (李雷, phone 13800000001) that ``tideflow.demo.seed`` made."""
    identity = db.get(models.Identity, ("phone", "+8613800000001"))
    assert identity is not None, "the demo customers were not seeded"
    return str(identity.customer_id)


def waiting_welcome(customer_id: str, now: datetime) -> models.Journey:
    """The demo customer's 新客欢迎 journey, started two days ago and waiting for an order."""
    return models.Journey(workflow_id=f"journey/welcome-new-contact/{customer_id}", flow_id="welcome-new-contact",
                          version=1, customer_id=customer_id, status="waiting", current_node="wait_order",
                          started_at=now - timedelta(days=2))
