"""Every page works under the Content-Security-Policy (issue 18, item 6), in real Chromium: each page
of the app — the canvas and the API reference included — is opened as an admin on demo data, and
the browser must report no CSP violation and no script error; the canvas still draws its nodes and
Swagger UI (served from the package, not a CDN) still renders the operations."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute
from playwright.sync_api import Page, expect

from designer.auth import CONTENT_SECURITY_POLICY
from engine.db import models
from engine.db.session import session_factory
from tests.e2e import browser as kit
from tideflow.demo import seed

pytestmark = pytest.mark.browser

#: pages loading at once (see the test)
TABS = 4
#: pages that need ids: filled from the demo data
PARAMETERISED = {
    "/flows/{flow_id}/edit": "flow", "/flows/{flow_id}": "flow", "/customers/{customer_id}": "customer",
    "/journeys/{journey_id:path}": "journey", "/tickets/{ticket_id}": "ticket",
}


def _page_paths(app: Any, ids: dict[str, str]) -> list[str]:
    """Every HTML page the app serves to a GET (no API, no fragment endpoints, no public survey)."""
    paths = []
    contexts = [ctx for route in app.routes for ctx in (
        route.effective_route_contexts() if hasattr(route, "effective_route_contexts") else [route])]
    for route in contexts:
        if not (isinstance(route, APIRoute) or hasattr(route, "original_route")) \
                or "GET" not in (getattr(route, "methods", None) or ()):
            continue
        path = str(route.path)
        if path.startswith(("/api", "/hooks", "/csat", "/static", "/openapi", "/metrics", "/healthz", "/readyz",
                            "/logout")) or "/fragment" in path or "/partials" in path:
            continue
        if re.search(r"\.(csv|png|svg|dmn|xml|zip|pdf)$", path) or re.search(r"/(download|export|poster)\b", path):
            continue  # a file to save, not a page (every download has its own browser test)
        if "{" in path:
            kind = PARAMETERISED.get(path)
            if kind is None or kind not in ids:
                continue
            path = re.sub(r"\{[^}]+\}", ids[kind], path)
        paths.append(path)
    return sorted(set(paths))


def _ids(database_url: str) -> dict[str, str]:
    with session_factory(database_url)() as db:
        ids = {"flow": db.query(models.FlowRecord.id).first(), "customer": db.query(models.Customer.id).first(),
               "journey": db.query(models.Journey.workflow_id).first()}
    return {k: str(v[0]) for k, v in ids.items() if v}


def _watch(tab: Page, problems: list[str]) -> None:
    """Note the tab's CSP refusals and script errors in ``problems``."""
    tab.on("console", lambda m: problems.append(f"{tab.url}: {m.text}")
           if m.type == "error" and ("Content Security Policy" in m.text or "Refused" in m.text) else None)
    tab.on("pageerror", lambda e: problems.append(f"{tab.url}: script error {e}"))


def test_every_page_works_under_the_content_security_policy(live_server: kit.LiveServer, page: Page) -> None:
    seed(live_server.database_url)
    kit.add_user(live_server.database_url, "ada", "admin")
    problems: list[str] = []
    _watch(page, problems)
    base = live_server.url
    kit.login(page, base, "ada")
    # the pages load TABS at a time, each in its own tab of the logged-in context: most of a page's time is the
    # half second without requests that "networkidle" waits for, and those waits of the tabs overlap
    tabs = [page, *(page.context.new_page() for _ in range(TABS - 1))]
    for tab in tabs[1:]:
        _watch(tab, problems)
    paths = _page_paths(live_server.app, _ids(live_server.database_url))
    visited = []
    for start in range(0, len(paths), TABS):
        loading = [(tab, path, tab.goto(base + path, wait_until="commit"))
                   for tab, path in zip(tabs, paths[start:start + TABS], strict=False)]
        for tab, path, response in loading:
            assert response is not None
            tab.wait_for_load_state("load")  # what goto waits for by default
            if response.status >= 400:
                continue  # a page this data has nothing for (its own tests cover it)
            assert response.headers.get("content-security-policy") == CONTENT_SECURITY_POLICY, path
            tab.wait_for_load_state("networkidle")
            visited.append(path)
    for tab in tabs[1:]:
        tab.close()
    assert "/" in visited and "/flows" in visited and "/docs" in visited and len(visited) >= 8, visited
    # the canvas still draws its nodes, and Swagger UI (from the package, not a CDN) its operations
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(base) else None)
    page.goto(f"{base}/flows/welcome-new-contact/edit")
    expect(page.locator(".drawflow-node").first).to_be_visible()
    page.goto(f"{base}/docs")
    expect(page.locator(".opblock").first).to_be_visible(timeout=20_000)
    assert problems == [] and outside == []
