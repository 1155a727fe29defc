"""Helpers for the page tests: the designer app, users of every role, logging in
through the real form, and posting forms with the session's CSRF token."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from designer.app import create_app
from engine import auth
from engine.db import models
from engine.db.session import session_factory, transaction
from tests.dbtemplate import migrated_sqlite

PASSWORD = "a-long-password"
ROLES = ("admin", "marketer", "ops", "agent", "finance", "developer")


def build_app(db_url: str) -> FastAPI:
    """``designer.app.create_app`` as in tests/designer/test_app.py (it mounts every area's pages)."""
    return create_app(db_url, connect=False)


def add_users(db_url: str) -> None:
    """One user per role, named after it (``admin``, ``marketer`` ...). Call it before
    :func:`tideflow.demo.seed`, which adds a demo ``admin`` only to an empty user table."""
    with transaction(db_url) as db:
        for role in ROLES:
            auth.create_user(db, role, PASSWORD, role, f"{role} user")


def role_tokens(db_url: str) -> dict[str, str]:
    """Migrate a fresh database, add one user per role (:func:`add_users`, hashed cheaply) and answer an API
    token for each, by username."""
    migrated_sqlite(db_url)
    # cheap_passwords' hasher, set here: the callers are module-scoped fixtures, which cannot ask for that
    # function-scoped fixture
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        add_users(db_url)
        with transaction(db_url) as db:
            return {user.username: auth.create_token(db, user, "test") for user in db.scalars(select(models.User))}


class Browser:
    """A TestClient logged in as one user; ``post_form`` adds the CSRF token like a page's form does."""

    def __init__(self, app: FastAPI, username: str, lang: str = "zh-CN") -> None:
        self.client = TestClient(app, headers={"Accept-Language": lang})
        self.client.get("/login")
        token = self.client.cookies.get("tideflow_login_csrf")
        r = self.client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token or ""},
                             follow_redirects=False)
        assert r.status_code == 303, r.text
        self.csrf = str(self.client.get("/api/me").json()["csrf_token"])

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, **kwargs)

    def post_form(self, path: str, data: dict[str, str] | None = None, csrf: bool = True) -> httpx.Response:
        body = dict(data or {})
        if csrf:
            body["csrf_token"] = self.csrf
        return self.client.post(path, data=body, follow_redirects=False)


def audit_entries(db_url: str, action: str, target: str | None = None) -> list[models.AuditEntry]:
    with session_factory(db_url)() as db:
        query = select(models.AuditEntry).where(models.AuditEntry.action == action)
        if target is not None:
            query = query.where(models.AuditEntry.target == target)
        return list(db.scalars(query.order_by(models.AuditEntry.id)))


def flow(db_url: str, flow_id: str) -> models.FlowRecord | None:
    with session_factory(db_url)() as db:
        return db.get(models.FlowRecord, flow_id)
