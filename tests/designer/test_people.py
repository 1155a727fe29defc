"""Users and their API tokens without the CLI: an admin creates or invites, changes roles and ticket groups,
disables, makes reset links and scoped tokens — every change in the audit log before → after, no secret in it,
and the audit log filters and exports. Non-admins get 403 (JSON for the API, the page for browsers)."""

from __future__ import annotations

import csv
import html
import io
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from engine.db import models
from engine.db.session import session_factory, transaction
from tests.designer.pages_kit import PASSWORD, Browser, add_users, audit_entries, build_app


@pytest.fixture
def app(db_url: str, cheap_passwords: None) -> Any:
    add_users(db_url)
    with transaction(db_url) as db:
        db.add(models.AgentGroup(key="refund", name="退款组", rr_last=0))
    return build_app(db_url)


def _api(browser: Browser, method: str, path: str, **kwargs: Any) -> Any:
    return browser.client.request(method, path, headers={"X-CSRF-Token": browser.csrf}, **kwargs)


def _login(app: Any, username: str, password: str) -> int:
    client = TestClient(app)
    client.get("/login")
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": client.cookies.get("tideflow_login_csrf") or ""},
                       follow_redirects=False).status_code


def test_an_admin_invites_a_user_who_sets_a_password_once(app: Any, db_url: str) -> None:
    admin = Browser(app, "admin")
    r = _api(admin, "POST", "/api/users", json={"username": "Li.Na", "display_name": "李娜", "role": "agent"})
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["user"]["username"] == "li.na" and made["user"]["status"] == "invited"
    url = made["link"]["url"]
    token = url.rsplit("/", 1)[1]
    assert token.startswith("pl_")
    page = TestClient(app).get(f"/password/{token}")
    assert page.status_code == 200 and "li.na" in page.text and page.headers["cache-control"] == "no-store"
    guest = TestClient(app)
    assert guest.post(f"/password/{token}", data={"password": "short", "confirm": "short"}).status_code == 422
    assert guest.post(f"/password/{token}", data={"password": "a-good-password", "confirm": "different!"}
                      ).status_code == 422
    done = guest.post(f"/password/{token}", data={"password": "a-good-password", "confirm": "a-good-password"})
    assert done.status_code == 200 and "密码已设置" in done.text
    assert _login(app, "li.na", "a-good-password") == 303
    again = TestClient(app).get(f"/password/{token}")  # once only
    assert again.status_code == 410 and "已过期" in again.text
    assert _api(admin, "GET", f"/api/users/{made['user']['id']}").json()["status"] == "active"
    # nothing secret was written down
    with session_factory(db_url)() as db:
        text = repr([(e.detail, e.before, e.after) for e in db.scalars(select(models.AuditEntry))])
    assert token not in text and "a-good-password" not in text
    assert [e.actor for e in audit_entries(db_url, "user.password_set", "user:li.na")] == ["li.na"]


def test_roles_groups_disable_and_reset_are_audited_before_and_after(app: Any, db_url: str) -> None:
    admin = Browser(app, "admin")
    uid = _api(admin, "POST", "/api/users", json={"username": "amy", "role": "agent",
                                                  "password": "amy-password-1"}).json()["user"]["id"]
    r = _api(admin, "PATCH", f"/api/users/{uid}", json={"role": "ops", "groups": ["refund"], "display_name": "Amy"})
    assert r.status_code == 200 and (r.json()["role"], r.json()["groups"]) == ("ops", ["refund"])
    assert _api(admin, "PATCH", f"/api/users/{uid}", json={"groups": ["nope"]}).json()["detail"]["field"] == "groups"
    role = audit_entries(db_url, "user.role_changed", "user:amy")[-1]
    assert (role.actor, role.before, role.after) == ("admin", {"role": "agent"}, {"role": "ops"})
    groups = audit_entries(db_url, "agent.groups", "user:amy")[-1]
    assert (groups.before, groups.after) == ({"groups": []}, {"groups": ["refund"]})

    client = TestClient(app)  # amy logs in with her own password
    client.get("/login")
    client.post("/login", data={"username": "amy", "password": "amy-password-1",
                                "csrf_token": client.cookies.get("tideflow_login_csrf") or ""})
    assert client.get("/api/me").status_code == 200
    assert _api(admin, "POST", f"/api/users/{uid}/disable").json()["status"] == "disabled"
    assert client.get("/api/me").status_code == 401  # her session ended at once
    assert _login(app, "amy", "amy-password-1") == 401
    disabled = audit_entries(db_url, "user.disabled", "user:amy")[-1]
    assert disabled.before == {"disabled_at": None} and disabled.after["disabled_at"]
    assert _api(admin, "POST", f"/api/users/{uid}/password-link").status_code == 422  # enable first
    assert _api(admin, "POST", f"/api/users/{uid}/enable").json()["status"] == "active"
    link = _api(admin, "POST", f"/api/users/{uid}/password-link", json={"purpose": "reset"}).json()
    assert link["purpose"] == "reset"
    token = link["url"].rsplit("/", 1)[1]
    TestClient(app).post(f"/password/{token}", data={"password": "amy-new-password", "confirm": "amy-new-password"})
    assert _login(app, "amy", "amy-password-1") == 401 and _login(app, "amy", "amy-new-password") == 303

    # the last admin stays an admin, and an admin cannot disable themself
    me = _api(admin, "GET", "/api/me").json()
    assert _api(admin, "PATCH", f"/api/users/{me['id']}", json={"role": "ops"}).status_code == 409
    assert _api(admin, "POST", f"/api/users/{me['id']}/disable").status_code == 409


def test_scoped_tokens_do_what_their_scope_allows_and_show_when_last_used(app: Any, db_url: str) -> None:
    admin = Browser(app, "admin")
    with session_factory(db_url)() as db:
        dev = db.scalar(select(models.User).where(models.User.username == "developer"))
        assert dev is not None
        dev_id = dev.id
    made = {scope: _api(admin, "POST", f"/api/users/{dev_id}/tokens", json={"name": f"ci-{scope}", "scope": scope})
            for scope in ("read", "events", "full")}
    assert all(r.status_code == 201 for r in made.values()), [r.text for r in made.values()]
    read, events, full = (made[s].json()["token"] for s in ("read", "events", "full"))

    def call(token: str, method: str, path: str, **kwargs: Any) -> Any:
        return TestClient(app).request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)

    event = {"id": "e-1", "type": "custom.ping", "source": "ci", "customer": {"external_id": "c-1"}}
    assert call(read, "GET", "/api/flows").status_code == 200
    refused = call(read, "POST", "/api/events", json=event)
    assert refused.status_code == 403 and refused.json()["detail"]["field"] == "scope"
    assert "'read'" in refused.json()["detail"]["message"]
    assert call(events, "POST", "/api/events", json=event).status_code == 202
    assert call(events, "POST", "/api/flows/validate", json={}).status_code == 403
    assert call(full, "POST", "/api/flows/validate", json={"schema": "tideflow/flow@1"}).status_code == 200
    listed = {t["name"]: t for t in _api(admin, "GET", f"/api/users/{dev_id}/tokens").json()}
    assert listed["ci-read"]["scope"] == "read" and listed["ci-read"]["last_used_at"]
    assert listed["ci-read"]["created_by"] == "admin"
    assert "token" not in listed["ci-read"]  # the secret is never listed

    # a token cannot mint tokens; revoking works at once
    assert call(full, "POST", f"/api/users/{dev_id}/tokens", json={"name": "more"}).status_code == 403
    revoked = _api(admin, "DELETE", f"/api/users/{dev_id}/tokens/{listed['ci-full']['id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert call(full, "GET", "/api/flows").status_code == 401
    entry = audit_entries(db_url, "token.created")[-1]
    assert entry.after is not None and entry.after["scope"] == "full" and entry.detail["user"] == "developer"
    with session_factory(db_url)() as db:
        text = repr([(e.detail, e.before, e.after) for e in db.scalars(select(models.AuditEntry))])
    assert read not in text and events not in text and full not in text


def test_only_admins_manage_users(app: Any) -> None:
    ops = Browser(app, "ops")
    assert ops.get("/api/users").status_code == 403
    page = ops.get("/settings/users")
    assert page.status_code == 403 and "<html" in page.text and "管理员" in page.text
    assert TestClient(app).get("/api/users").status_code == 401


def test_the_users_pages_create_invite_and_make_tokens(app: Any, db_url: str) -> None:
    admin = Browser(app, "admin")
    listing = admin.get("/settings/users")
    assert listing.status_code == 200 and 'data-user="finance"' in listing.text
    shown = admin.post_form("/settings/users", {"username": "wei", "display_name": "魏", "role": "finance",
                                                "password": ""})
    assert shown.status_code == 200 and "邀请链接" in shown.text
    assert re.search(r'value="http://testserver/password/pl_[\w-]+"', shown.text)
    bad = admin.post_form("/settings/users", {"username": "wei", "role": "finance", "password": ""})
    assert bad.status_code == 422 and "用户名 'wei' 已被占用" in html.unescape(bad.text)  # in the page's words
    english = Browser(app, "admin", "en").post_form("/settings/users", {"username": "wei", "role": "finance",
                                                                         "password": ""})
    assert english.status_code == 422 and "the username 'wei' is already taken" in html.unescape(english.text)
    with session_factory(db_url)() as db:
        wei = db.scalar(select(models.User).where(models.User.username == "wei"))
        assert wei is not None
    made = admin.post_form(f"/settings/users/{wei.id}/tokens", {"name": "对账脚本", "scope": "read"})
    assert made.status_code == 200 and re.search(r'value="tf_[\w-]+"', made.text)
    page = admin.get(f"/settings/users/{wei.id}")
    assert "对账脚本" in page.text and "只读" in page.text and "tf_" in page.text  # the prefix only
    assert re.search(r'value="tf_[\w-]+"', page.text) is None  # never shown again
    saved = admin.post_form(f"/settings/users/{wei.id}", {"role": "ops", "display_name": "魏工", "groups_shown": "1",
                                                          "group": "refund"})
    assert saved.status_code == 303 and "done=saved" in saved.headers["location"]
    with session_factory(db_url)() as db:
        agent = db.get(models.Agent, wei.id)
        assert agent is not None and agent.groups == ["refund"]


def test_the_audit_log_filters_and_exports(app: Any, db_url: str) -> None:
    admin = Browser(app, "admin")
    _api(admin, "POST", "/api/users", json={"username": "zoe", "role": "agent", "password": "zoe-password-1"})
    uid = _api(admin, "GET", "/api/users").json()
    zoe = next(u for u in uid if u["username"] == "zoe")
    _api(admin, "PATCH", f"/api/users/{zoe['id']}", json={"role": "ops"})
    page = admin.get("/audit", params={"action": "user.role", "target": "user:zoe"})
    assert page.status_code == 200 and 'data-action="user.role_changed"' in page.text
    assert 'data-action="user.created"' not in page.text
    change = re.search(r'data-field="role"><b>role</b>:\s*<span class="audit-before">(.*?)</span> →\s*'
                       r'<span class="audit-after">(.*?)</span>', page.text)
    assert change is not None and tuple(html.unescape(g) for g in change.groups()) == ('"agent"', '"ops"')
    assert admin.get("/audit", params={"from": "2026-13-40"}).status_code == 422
    exported = admin.get("/audit.csv", params={"target": "user:zoe"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
    assert [r["action"] for r in rows] == ["user.role_changed", "user.created"]
    assert rows[0]["before"] == '{"role": "agent"}' and rows[0]["after"] == '{"role": "ops"}'
    assert "zoe-password-1" not in exported.text and PASSWORD not in exported.text
    api_rows = _api(admin, "GET", "/api/audit", params={"target": "user:zoe", "limit": 1})
    assert api_rows.headers["x-total-count"] == "2" and api_rows.json()[0]["after"] == {"role": "ops"}
    assert Browser(app, "ops").get("/audit.csv").status_code == 403
