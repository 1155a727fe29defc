"""The designer's authentication: login page, sessions and CSRF, API tokens, roles, rate limiting."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Form
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient

from designer.auth import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    LoginRateLimiter,
    current_user,
    install,
    public,
    require,
    router,
    unguarded_routes,
)
from engine import auth
from engine.db.models import User, WebSession
from engine.db.session import transaction

PASSWORD = "correct horse battery"
pytestmark = pytest.mark.usefixtures("cheap_passwords")  # these tests are about HTTP: cheap argon2 keeps them fast


def build_app(db_url: str) -> FastAPI:
    app = FastAPI()
    app.state.database_url = db_url
    install(app)
    app.include_router(router)

    @app.get("/api/campaigns")
    def list_campaigns(user: Annotated[User, Depends(require("marketer"))]) -> dict[str, Any]:
        return {"user": user.username}

    @app.post("/api/campaigns")
    def create_campaign(user: Annotated[User, Depends(require("marketer"))]) -> dict[str, Any]:
        return {"created_by": user.username}

    @app.post("/campaigns/form")
    def campaign_form(user: Annotated[User, Depends(require("marketer"))],
                      title: Annotated[str, Form()]) -> dict[str, Any]:
        return {"title": title, "by": user.username}

    @app.get("/campaigns", response_class=HTMLResponse)
    def campaigns_page(user: Annotated[User, Depends(require("marketer"))]) -> str:
        return f"<h1>campaigns of {user.username}</h1>"

    @app.get("/healthz", dependencies=[Depends(public)])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


@pytest.fixture
def users(db_url: str) -> None:
    with transaction(db_url) as db:
        auth.create_user(db, "mia", PASSWORD, "marketer")
        auth.create_user(db, "alex", PASSWORD, "agent")
        auth.create_user(db, "root", PASSWORD, "admin")


@pytest.fixture
def client(db_url: str, users: None) -> Iterator[TestClient]:
    with TestClient(build_app(db_url), follow_redirects=False) as c:
        yield c


def login(client: TestClient, username: str, password: str = PASSWORD, next_path: str = "/",
          **form: str) -> httpx.Response:
    page = client.get("/login")
    assert page.status_code == 200
    token = client.cookies.get(LOGIN_CSRF_COOKIE)
    assert token and f'value="{token}"' in page.text
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token,
                                       "next": next_path, **form})


def session_csrf(client: TestClient) -> str:
    me = client.get("/api/me")
    assert me.status_code == 200, me.text
    token = me.json()["csrf_token"]
    assert isinstance(token, str)
    return token


def make_token(client: TestClient, name: str = "ci") -> dict[str, Any]:
    created = client.post("/api/auth/tokens", json={"name": name},
                          headers={"X-CSRF-Token": session_csrf(client)})
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


# --- login page ----------------------------------------------------------------------------------


def test_login_page_is_chinese_by_default(client: TestClient) -> None:
    page = client.get("/login")
    assert page.status_code == 200
    assert '<html lang="zh-CN">' in page.text and "用户名" in page.text and "密码" in page.text
    assert page.headers["cache-control"] == "no-store"
    cookie = page.headers["set-cookie"]
    assert f"{LOGIN_CSRF_COOKIE}=" in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()


@pytest.mark.parametrize(("query", "accept"), [("?lang=en", ""), ("", "en-US,en;q=0.9"),
                                               ("", "fr-FR, en;q=0.5, zh;q=0.3")])
def test_login_page_in_english_when_preferred(client: TestClient, query: str, accept: str) -> None:
    page = client.get("/login" + query, headers={"Accept-Language": accept} if accept else {})
    assert '<html lang="en">' in page.text and "Username" in page.text and "Password" in page.text


def test_chinese_wins_when_preferred_over_english(client: TestClient) -> None:
    page = client.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    assert '<html lang="zh-CN">' in page.text


def test_login_page_escapes_next(client: TestClient) -> None:
    page = client.get("/login", params={"next": '/x"><script>alert(1)</script>'})
    assert "<script>alert(1)" not in page.text


# --- logging in ----------------------------------------------------------------------------------


def test_login_success_sets_a_safe_cookie_and_redirects_to_next(client: TestClient) -> None:
    done = login(client, "mia", next_path="/campaigns?tab=drafts")
    assert done.status_code == 303
    assert done.headers["location"] == "/campaigns?tab=drafts"
    cookie = next(c for c in done.headers.get_list("set-cookie") if c.startswith(f"{SESSION_COOKIE}="))
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower() and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http in tests; https requests get Secure
    assert client.get("/campaigns").text == "<h1>campaigns of mia</h1>"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example",
                                    "javascript:alert(1)", ""])
def test_login_never_redirects_off_site(client: TestClient, target: str) -> None:
    done = login(client, "mia", next_path=target)
    assert done.status_code == 303 and done.headers["location"] == "/"


def test_secure_cookie_over_https(db_url: str, users: None) -> None:
    with TestClient(build_app(db_url), base_url="https://testserver", follow_redirects=False) as c:
        done = login(c, "mia")
    cookie = next(c for c in done.headers.get_list("set-cookie") if c.startswith(f"{SESSION_COOKIE}="))
    assert "Secure" in cookie


def test_wrong_password_rerenders_with_401_in_the_right_language(client: TestClient) -> None:
    failed = login(client, "mia", "wrong password")
    assert failed.status_code == 401
    assert "用户名或密码错误" in failed.text
    assert SESSION_COOKIE not in client.cookies
    unknown = login(client, "nobody", "wrong password", lang="en")
    assert unknown.status_code == 401
    assert "Wrong username or password." in unknown.text


def test_login_form_needs_its_double_submit_token(client: TestClient) -> None:
    client.get("/login")
    forged = client.post("/login", data={"username": "mia", "password": PASSWORD, "csrf_token": "forged"})
    assert forged.status_code == 403
    assert SESSION_COOKIE not in client.cookies
    client.cookies.clear()
    no_cookie = client.post("/login", data={"username": "mia", "password": PASSWORD, "csrf_token": ""})
    assert no_cookie.status_code == 403


def test_lockout_after_five_failures_answers_429(client: TestClient) -> None:
    for _ in range(4):
        assert login(client, "mia", "wrong password").status_code == 401
    locked = login(client, "mia", "wrong password")
    assert locked.status_code == 429
    assert 14 * 60 < int(locked.headers["retry-after"]) <= 15 * 60
    assert "账户已锁定" in locked.text and "15 分钟" in locked.text
    still = login(client, "mia", PASSWORD, lang="en")
    assert still.status_code == 429 and "locked" in still.text
    assert SESSION_COOKIE not in client.cookies


def test_rate_limit_per_address(client: TestClient) -> None:
    for i in range(10):
        assert login(client, f"nobody{i}", "wrong password").status_code == 401
    limited = login(client, "mia")
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert "尝试过于频繁" in limited.text
    assert SESSION_COOKIE not in client.cookies


def test_rate_limiter_window_slides() -> None:
    now = [1000.0]
    limiter = LoginRateLimiter(limit=3, window=60, clock=lambda: now[0])
    assert [limiter.hit("1.2.3.4") for _ in range(3)] == [None, None, None]
    assert limiter.hit("1.2.3.4") == pytest.approx(60)
    assert limiter.hit("5.6.7.8") is None
    now[0] += 30
    assert limiter.hit("1.2.3.4") == pytest.approx(30)
    now[0] += 30.5
    assert limiter.hit("1.2.3.4") is None


def test_logged_in_user_visiting_login_goes_to_next(client: TestClient) -> None:
    login(client, "mia")
    again = client.get("/login", params={"next": "/campaigns"})
    assert again.status_code == 303 and again.headers["location"] == "/campaigns"


# --- unauthenticated ----------------------------------------------------------------------------


def test_pages_redirect_to_login(client: TestClient) -> None:
    page = client.get("/campaigns", params={"tab": "a b"})
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/campaigns%3Ftab%3Da%2Bb"
    follow = client.get(page.headers["location"])
    assert 'name="next" value="/campaigns?tab=a+b"' in follow.text


def test_htmx_requests_get_hx_redirect(client: TestClient) -> None:
    page = client.get("/campaigns", headers={"HX-Request": "true"})
    assert page.status_code == 401
    assert page.headers["hx-redirect"] == "/login?next=/campaigns"


def test_api_answers_401_json(client: TestClient) -> None:
    response = client.get("/api/campaigns")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"detail": {"message": "you are not logged in",
                                          "fix": "log in or send Authorization: Bearer <token>"}}


def test_expired_session_is_treated_as_logged_out(client: TestClient, db_url: str) -> None:
    login(client, "mia")
    with transaction(db_url) as db:
        for web_session in db.query(WebSession):
            web_session.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    api = client.get("/api/me")
    assert api.status_code == 401 and "expired" in api.json()["detail"]["message"]
    page = client.get("/campaigns")
    assert page.status_code == 303 and page.headers["location"].startswith("/login")


# --- sessions and CSRF ---------------------------------------------------------------------------


def test_me_reports_the_session(client: TestClient) -> None:
    login(client, "mia")
    me = client.get("/api/me").json()
    assert me["username"] == "mia" and me["role"] == "marketer" and me["auth"] == "session"
    assert len(me["csrf_token"]) >= 40


def test_cookie_writes_need_the_csrf_token(client: TestClient) -> None:
    login(client, "mia")
    token = session_csrf(client)
    refused = client.post("/api/campaigns")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]["message"]
    assert client.post("/api/campaigns", headers={"X-CSRF-Token": "wrong"}).status_code == 403
    assert client.post("/api/campaigns", headers={"X-CSRF-Token": token}).json() == {"created_by": "mia"}
    # reading needs no token
    assert client.get("/api/campaigns").status_code == 200


def test_form_posts_may_send_csrf_as_a_field(client: TestClient) -> None:
    login(client, "mia")
    token = session_csrf(client)
    assert client.post("/campaigns/form", data={"title": "x"}).status_code == 403
    ok = client.post("/campaigns/form", data={"title": "春季促销", "csrf_token": token})
    assert ok.status_code == 200 and ok.json() == {"title": "春季促销", "by": "mia"}


def test_logout_needs_csrf_and_ends_the_session(client: TestClient) -> None:
    login(client, "mia")
    token = session_csrf(client)
    assert client.post("/logout").status_code == 403
    out = client.post("/logout", data={"csrf_token": token})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert SESSION_COOKIE not in client.cookies
    assert client.get("/api/me").status_code == 401


def test_logout_without_a_session_just_goes_to_login(client: TestClient) -> None:
    out = client.post("/logout")
    assert out.status_code == 303 and out.headers["location"] == "/login"


def test_old_session_is_ended_when_logging_in_again(client: TestClient, db_url: str) -> None:
    client.get("/login")  # a second tab still shows the login form, with its cookie
    saved = next(c for c in client.cookies.jar if c.name == LOGIN_CSRF_COOKIE)
    form_token = saved.value or ""
    login(client, "mia")
    client.cookies.jar.set_cookie(saved)
    again = client.post("/login", data={"username": "alex", "password": PASSWORD, "csrf_token": form_token})
    assert again.status_code == 303
    with transaction(db_url) as db:
        assert db.query(WebSession).count() == 1
    assert client.get("/api/me").json()["username"] == "alex"


# --- roles ---------------------------------------------------------------------------------------


def test_role_is_required(client: TestClient) -> None:
    login(client, "alex")
    refused = client.get("/api/campaigns")
    assert refused.status_code == 403
    assert "marketer" in refused.json()["detail"]["message"]
    assert "agent" in refused.json()["detail"]["message"]
    assert client.get("/campaigns").status_code == 403


def test_admin_passes_every_role_check(client: TestClient) -> None:
    login(client, "root")
    assert client.get("/api/campaigns").json() == {"user": "root"}


def test_unknown_role_fails_at_declaration() -> None:
    with pytest.raises(ValueError, match="unknown role 'marketing'"):
        require("marketing")


# --- API tokens ----------------------------------------------------------------------------------


def test_token_lifecycle(client: TestClient) -> None:
    login(client, "mia")
    created = make_token(client, "shop sync")
    assert created["token"].startswith("tf_") and created["prefix"] == created["token"][:8]
    assert created["name"] == "shop sync"

    listed = client.get("/api/auth/tokens").json()
    assert [(t["id"], t["prefix"], t["name"]) for t in listed] == [(created["id"], created["prefix"],
                                                                   "shop sync")]
    assert created["token"] not in repr(listed) and "token_hash" not in repr(listed)

    bearer = TestClient(client.app, follow_redirects=False)
    headers = {"Authorization": f"Bearer {created['token']}"}
    me = bearer.get("/api/me", headers=headers).json()
    assert me["auth"] == "token" and me["csrf_token"] is None and me["username"] == "mia"
    # bearer requests are exempt from CSRF
    assert bearer.post("/api/campaigns", headers=headers).json() == {"created_by": "mia"}
    # and pages accept them too (no redirect)
    assert bearer.get("/campaigns", headers=headers).status_code == 200

    revoked = client.delete(f"/api/auth/tokens/{created['id']}", headers={"X-CSRF-Token": session_csrf(client)})
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    refused = bearer.get("/api/me", headers=headers)
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]["message"]
    # a bad bearer token on a page is answered like an API call, not redirected
    assert bearer.get("/campaigns", headers=headers).status_code == 401


def test_bad_authorization_header(client: TestClient) -> None:
    for value in ("Basic bWlhOnB3", "Bearer", "Bearer tf_nope"):
        response = client.get("/api/me", headers={"Authorization": value})
        assert response.status_code == 401


def test_tokens_cannot_mint_tokens(client: TestClient) -> None:
    login(client, "mia")
    plaintext = make_token(client)["token"]
    client.cookies.clear()
    minted = client.post("/api/auth/tokens", json={"name": "more"},
                         headers={"Authorization": f"Bearer {plaintext}"})
    assert minted.status_code == 403
    assert "browser session" in minted.json()["detail"]["message"]


def test_token_name_is_validated(client: TestClient) -> None:
    login(client, "mia")
    csrf = {"X-CSRF-Token": session_csrf(client)}
    assert client.post("/api/auth/tokens", json={"name": ""}, headers=csrf).status_code == 422
    blank = client.post("/api/auth/tokens", json={"name": "   "}, headers=csrf)
    assert blank.status_code == 422 and blank.json()["detail"]["field"] == "name"


def test_others_tokens_cannot_be_revoked(client: TestClient) -> None:
    login(client, "mia")
    token_id = make_token(client)["id"]
    client.cookies.clear()
    login(client, "alex")
    csrf = {"X-CSRF-Token": session_csrf(client)}
    assert client.get("/api/auth/tokens").json() == []
    missing = client.delete(f"/api/auth/tokens/{token_id}", headers=csrf)
    assert missing.status_code == 404
    assert missing.json()["detail"]["message"] == f"no API token with id {token_id}"
    client.cookies.clear()
    login(client, "root")
    assert client.delete(f"/api/auth/tokens/{token_id}",
                         headers={"X-CSRF-Token": session_csrf(client)}).status_code == 200


# --- the route table ------------------------------------------------------------------------------


def test_every_route_declares_its_guard(db_url: str) -> None:
    app = build_app(db_url)
    assert unguarded_routes(app) == []

    @app.get("/api/oops")
    def oops() -> None: ...

    @app.post("/api/nested")
    def nested(user: Annotated[User, Depends(current_user)]) -> None: ...

    assert unguarded_routes(app) == ["GET /api/oops"]


def test_login_page_shows_no_secrets_in_markup(client: TestClient) -> None:
    page = login(client, "mia", "wrong password")
    assert "wrong password" not in page.text
    assert re.search(r'name="username" type="text" value="mia"', page.text)
