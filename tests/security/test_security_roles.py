"""Authentication, roles, CSRF, cookies and isolation, checked against the assembled app.

- every route answers an anonymous request with 401 (API) or a redirect to the login page (pages),
  except a short, fixed list of public routes (login, logout, health, signed webhooks, signed survey links);
- a marketer cannot see connector settings, and nobody ever gets a connector secret back;
- roles that may not edit journeys cannot publish one;
- revoked tokens and tokens or sessions of a disabled user stop working at once;
- a cookie-authenticated write without the CSRF token is refused (JSON and form posts);
- the session cookie is HttpOnly and SameSite=Lax, and Secure over HTTPS or when configured;
- an agent cannot read another group's ticket by changing the id, on any ticket route.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from connectors.webhook.connector import WebhookConnector
from designer.app import create_app
from designer.auth import SESSION_COOKIE, unguarded_routes
from engine import auth
from engine import connectors as configured
from engine.db.session import transaction
from engine.settings import get_settings
from tests.designer.pages_kit import PASSWORD, ROLES, Browser, add_users

pytestmark = pytest.mark.usefixtures("cheap_passwords")

PUBLIC = {
    "GET /login", "POST /login", "POST /logout",  # the login page itself; logout checks CSRF for live sessions
    "GET /healthz", "GET /readyz", "GET /api/health", "GET /api/ready",  # probes: no data
    "GET /hooks/{connector_id}", "POST /hooks/{connector_id}",  # signed by the platform, verified by the connector
    "GET /csat/{ticket_id}/{token}", "POST /csat/{ticket_id}/{token}",  # the customer's survey link: HMAC token
    # the chat sidebar guards itself: no session → WeCom's sign-in; the sign-in's redirect is checked against the
    # state cookie this browser got and WeCom's own answer (designer/sidebar/pages.py)
    "GET /sidebar", "GET /sidebar/oauth",
    # an invited user sets a password through a one-time link: the token is the credential (stored hashed,
    # expires, used once: engine/auth.py create_password_link / use_password_link)
    "GET /password/{token}", "POST /password/{token}",
}
HOOK_SECRET = "whsec-roles-0123456789abcdef"
JOURNEY = {"schema": "tideflow/flow@1", "id": "roles-journey", "name": "roles", "kind": "journey", "settings": {},
           "nodes": [{"id": "start", "type": "trigger.event", "config": {"event": "order.paid"}},
                     {"id": "tag", "type": "action.tag", "config": {"add": ["x"]}}],
           "edges": [{"from": "start", "port": "out", "to": "tag"}]}


@pytest.fixture
def app(db_url: str, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    monkeypatch.setattr(configured, "connector_classes", lambda: {"webhook": WebhookConnector})
    add_users(db_url)
    return create_app(db_url, connect=False)


@pytest.fixture
def tokens(db_url: str, app: FastAPI) -> dict[str, str]:
    with transaction(db_url) as db:
        return {role: auth.create_token(db, auth.find_user(db, role), "t") for role in ROLES}  # type: ignore[arg-type]


def _routes(app: FastAPI) -> Iterator[tuple[str, str, Any]]:
    for route in app.routes:
        contexts = route.effective_route_contexts() if hasattr(route, "effective_route_contexts") else [route]
        for ctx in contexts:
            dependant = getattr(ctx, "dependant", None)
            if dependant is None:
                continue
            for method in sorted(getattr(ctx, "methods", None) or ()):
                if method != "HEAD":
                    yield method, str(getattr(ctx, "path", "?")), dependant


def _is_public(dependant: Any) -> bool:
    return any(getattr(dep.call, "__tideflow_public__", False) or _is_public(dep) for dep in dependant.dependencies)


# -- every route is guarded ------------------------------------------------------------------------------------------


def test_only_the_listed_routes_are_public(app: FastAPI) -> None:
    assert unguarded_routes(app) == []
    public = {f"{method} {path}" for method, path, dependant in _routes(app) if _is_public(dependant)}
    assert public == PUBLIC


def test_every_other_route_turns_an_anonymous_request_away(app: FastAPI) -> None:
    client = TestClient(app)
    let_in: list[str] = []
    checked = 0
    for method, path, dependant in _routes(app):
        if f"{method} {path}" in PUBLIC or _is_public(dependant):
            continue
        url = re.sub(r"\{[^}/]+(?::path)?\}", "1", path)
        r = client.request(method, url, follow_redirects=False)
        checked += 1
        turned_away = r.status_code == 401 or (r.status_code == 303 and r.headers["location"].startswith("/login"))
        if not turned_away:
            let_in.append(f"{method} {path} → {r.status_code}")
    assert checked > 80
    assert let_in == []


def test_the_api_reference_is_for_logged_in_users(app: FastAPI, tokens: dict[str, str]) -> None:
    client = TestClient(app)
    for path in ("/openapi.json", "/docs"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
    agent = {"Authorization": f"Bearer {tokens['agent']}"}
    assert "/api/flows" in client.get("/openapi.json", headers=agent).json()["paths"]
    assert "/openapi.json" in client.get("/docs", headers=agent).text


def test_a_forged_session_cookie_and_a_made_up_token_are_refused(app: FastAPI) -> None:
    client = TestClient(app)
    assert client.get("/api/me", headers={"Authorization": "Bearer tf_" + "x" * 43}).status_code == 401
    assert client.get("/api/me", headers={"Authorization": "Basic YWRtaW46YWRtaW4="}).status_code == 401
    client.cookies.set(SESSION_COOKIE, "forged-session-value")
    assert client.get("/api/me").status_code == 401
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


# -- connector secrets -----------------------------------------------------------------------------------------------


def test_connector_secrets_are_write_only_and_admin_only(app: FastAPI, tokens: dict[str, str]) -> None:
    client = TestClient(app)

    def as_(role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[role]}"}

    r = client.put("/api/connectors/shop-hook", headers=as_("admin"), json={
        "kind": "webhook", "name": "shop", "settings": {}, "secrets": {"secret": HOOK_SECRET}})
    assert r.status_code == 201, r.text
    for role in ("marketer", "ops", "agent", "finance", "developer"):
        assert client.get("/api/connectors", headers=as_(role)).status_code == 403
        assert client.get("/api/connectors/shop-hook", headers=as_(role)).status_code == 403
        assert client.put("/api/connectors/shop-hook", headers=as_(role), json={
            "kind": "webhook", "name": "x", "secrets": {"secret": "x" * 20}}).status_code == 403
        assert client.delete("/api/connectors/shop-hook", headers=as_(role)).status_code == 403
    for path in ("/api/connectors", "/api/connectors/shop-hook", "/openapi.json"):
        r = client.get(path, headers=as_("admin"))
        assert r.status_code == 200 and HOOK_SECRET not in r.text
    assert client.get("/api/connectors/shop-hook", headers=as_("admin")).json()["secrets_set"] == {
        "secret": True, "previous_secret": False}
    page = Browser(app, "admin").get("/settings/connectors")
    assert page.status_code == 200 and HOOK_SECRET not in page.text
    assert Browser(app, "marketer").get("/settings/connectors", follow_redirects=False).status_code == 403


# -- roles -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["agent", "developer", "finance", "ops"])
def test_roles_that_do_not_edit_journeys_cannot_publish_one(app: FastAPI, tokens: dict[str, str], role: str) -> None:
    client = TestClient(app)
    marketer = {"Authorization": f"Bearer {tokens['marketer']}"}
    assert client.post("/api/flows", json=JOURNEY, headers=marketer).status_code == 201
    r = client.post("/api/flows/roles-journey/publish", headers={"Authorization": f"Bearer {tokens[role]}"})
    assert r.status_code == 403, r.text
    assert client.post("/api/flows/roles-journey/publish", headers=marketer).status_code == 201


# -- tokens and disabled users ---------------------------------------------------------------------------------------


def test_revoked_tokens_and_disabled_users_stop_working_at_once(app: FastAPI, db_url: str,
                                                                tokens: dict[str, str]) -> None:
    client = TestClient(app)
    marketer = {"Authorization": f"Bearer {tokens['marketer']}"}
    assert client.get("/api/me", headers=marketer).status_code == 200
    browser = Browser(app, "marketer")
    assert browser.get("/api/me").status_code == 200

    # revoke one token: only that one stops
    [listed] = client.get("/api/auth/tokens", headers=marketer).json()
    with transaction(db_url) as db:
        second = auth.create_token(db, auth.find_user(db, "marketer"), "second")  # type: ignore[arg-type]
    assert client.delete(f"/api/auth/tokens/{listed['id']}", headers=marketer).status_code == 200
    assert client.get("/api/me", headers=marketer).status_code == 401
    assert client.get("/api/me", headers={"Authorization": f"Bearer {second}"}).status_code == 200
    # another user cannot revoke (or even see) someone else's token
    [_, other] = client.get("/api/auth/tokens", headers={"Authorization": f"Bearer {second}"}).json()
    ops = {"Authorization": f"Bearer {tokens['ops']}"}
    assert client.delete(f"/api/auth/tokens/{other['id']}", headers=ops).status_code == 404
    assert client.get("/api/me", headers={"Authorization": f"Bearer {second}"}).status_code == 200

    # disable the user: the other token and the browser session stop too, and so does logging in
    with transaction(db_url) as db:
        auth.disable_user(db, "marketer", "admin")
    assert client.get("/api/me", headers={"Authorization": f"Bearer {second}"}).status_code == 401
    assert browser.get("/api/me").status_code == 401
    fresh = TestClient(app)
    fresh.get("/login")
    r = fresh.post("/login", data={"username": "marketer", "password": PASSWORD,
                                   "csrf_token": fresh.cookies.get("tideflow_login_csrf") or ""},
                   follow_redirects=False)
    assert r.status_code == 401


def test_a_token_cannot_mint_more_tokens(app: FastAPI, tokens: dict[str, str]) -> None:
    r = TestClient(app).post("/api/auth/tokens", json={"name": "more"},
                             headers={"Authorization": f"Bearer {tokens['admin']}"})
    assert r.status_code == 403


# -- CSRF ------------------------------------------------------------------------------------------------------------


def test_cookie_writes_need_the_csrf_token(app: FastAPI) -> None:
    admin = Browser(app, "admin")
    body = {"kind": "webhook", "name": "shop", "settings": {}, "secrets": {"secret": HOOK_SECRET}}
    assert admin.client.put("/api/connectors/a-hook", json=body).status_code == 403
    assert admin.client.put("/api/connectors/a-hook", json=body,
                            headers={"X-CSRF-Token": "not-the-token"}).status_code == 403
    assert admin.client.put("/api/connectors/a-hook", json=body,
                            headers={"X-CSRF-Token": admin.csrf}).status_code == 201
    form = {"kind": "webhook", "id": "b-hook", "name": "b", "secrets.secret": HOOK_SECRET}
    assert admin.post_form("/settings/connectors", form, csrf=False).status_code == 403
    assert admin.post_form("/settings/connectors/a-hook/delete", {}, csrf=False).status_code == 403
    assert admin.post_form("/settings/connectors/a-hook/delete", {}).status_code == 303
    # logging out needs the token too, so another site cannot end the session
    assert admin.post_form("/logout", {}, csrf=False).status_code == 403
    assert admin.get("/api/me").status_code == 200


# -- cookies ---------------------------------------------------------------------------------------------------------


def _login(app: FastAPI, base_url: str) -> str:
    client = TestClient(app, base_url=base_url)
    page = client.get("/login")
    # sent back by hand: a Secure cookie is not returned over plain http by the test client
    [csrf] = re.findall(r"tideflow_login_csrf=([^;]+)", page.headers["set-cookie"])
    client.cookies.clear()
    r = client.post("/login", data={"username": "agent", "password": PASSWORD, "csrf_token": csrf},
                    headers={"Cookie": f"tideflow_login_csrf={csrf}"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    [cookie] = [c for c in r.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "=")]
    return cookie.lower()


def test_the_session_cookie_is_httponly_samesite_and_secure_over_https(
        app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = _login(app, "http://tideflow.test")
    assert "httponly" in plain and "samesite=lax" in plain and "path=/" in plain and "secure" not in plain
    assert "secure" in _login(app, "https://tideflow.test")
    monkeypatch.setenv("TIDEFLOW_SECURE_COOKIES", "true")
    get_settings.cache_clear()
    try:
        assert "secure" in _login(app, "http://tideflow.test")  # behind a TLS-terminating proxy
    finally:
        monkeypatch.delenv("TIDEFLOW_SECURE_COOKIES")
        get_settings.cache_clear()


def test_responses_refuse_framing_and_sniffing(app: FastAPI) -> None:
    client = TestClient(app)
    for path in ("/login", "/api/health", "/api/me"):
        r = client.get(path)
        assert r.headers["x-frame-options"] == "DENY", path
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["referrer-policy"] == "same-origin", path


# -- tickets: isolation by group -------------------------------------------------------------------------------------


def test_an_agent_cannot_read_another_groups_ticket_by_id(app: FastAPI, db_url: str, tokens: dict[str, str]) -> None:
    client = TestClient(app)

    def call(role: str, method: str, path: str, body: Any = None) -> Any:
        return client.request(method, path, json=body, headers={"Authorization": f"Bearer {tokens[role]}"})

    with transaction(db_url) as db:
        other = auth.create_user(db, "agent-b", PASSWORD, "agent")
        other_token = auth.create_token(db, other, "t")
        ids = {"agent": auth.find_user(db, "agent").id, "agent-b": other.id}  # type: ignore[union-attr]
    assert call("ops", "PUT", "/api/agent-groups/alpha", {"key": "alpha", "name": "A"}).status_code == 200
    assert call("ops", "PUT", "/api/agent-groups/beta", {"key": "beta", "name": "B"}).status_code == 200
    assert call("ops", "PUT", f"/api/agents/{ids['agent']}", {"groups": ["alpha"]}).status_code == 200
    assert call("ops", "PUT", f"/api/agents/{ids['agent-b']}", {"groups": ["beta"]}).status_code == 200
    r = call("ops", "POST", "/api/ticket-types", {"key": "sec-refund", "name": "退款", "default_group": "beta"})
    assert r.status_code == 201, r.text
    r = call("ops", "POST", "/api/tickets", {"type": "sec-refund", "subject": "退款 ¥500",
                                             "customer": {"phone": "13800138000"}})
    assert r.status_code == 201, r.text
    theirs = r.json()["id"]
    beta = {"Authorization": f"Bearer {other_token}"}
    assert client.get(f"/api/tickets/{theirs}", headers=beta).status_code == 200  # their own group sees it

    # every GET route about one ticket: the alpha agent gets 404, as for a ticket that does not exist
    reads = sorted({path for method, path, _ in _routes(app) if method == "GET" and "{ticket_id}" in path})
    assert "/api/tickets/{ticket_id}" in reads
    for path in reads:
        url = path.replace("{ticket_id}", str(theirs))
        r = call("agent", "GET", url)
        assert r.status_code == 404, f"{path}: {r.status_code} {r.text[:200]}"
        assert "退款 ¥500" not in r.text
    listed = call("agent", "GET", "/api/tickets")
    assert listed.status_code == 200 and "退款 ¥500" not in listed.text
    # and it cannot act on it either
    for path, body in [("claim", None), ("notes", {"text": "x"}), ("reply", {"text": "x"}),
                       ("priority", {"priority": "P1"})]:
        r = call("agent", "POST", f"/api/tickets/{theirs}/{path}", body)
        assert r.status_code in (404, 422), f"{path}: {r.status_code} {r.text[:200]}"
        assert "退款 ¥500" not in r.text


def test_the_cli_disables_a_user(tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    from tideflow.cli import main

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("TIDEFLOW_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        assert main(["users", "create", "zhao", "--role", "marketer", "--password", PASSWORD, "--token"]) == 0
        token = capsys.readouterr().out.split("API token: ")[1].strip()
        assert main(["users", "disable", "zhao"]) == 0
        assert "sessions ended, API tokens revoked" in capsys.readouterr().out
        with transaction(url) as db:
            assert auth.authenticate_token(db, token) is None
        assert main(["users", "disable", "nobody"]) == 1
        assert "no user named 'nobody'" in capsys.readouterr().err
    finally:
        get_settings.cache_clear()
