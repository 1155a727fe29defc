"""Shared by the editor's HTTP tests (and checked by test_editor_kit.py): the app as tests/designer/test_app.py builds
it plus ``designer.flows.editor.router``, one user per role, logged-in clients that send the CSRF token like
the editor page does, and a parser that submits a rendered form the way a browser would."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from designer.app import create_app
from designer.flows import editor
from tests.dbtemplate import seeded_sqlite
from tests.designer.pages_kit import PASSWORD, add_users


def served(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves, through included routers too."""
    found = set()
    for route in app.routes:
        # FastAPI keeps an included router as one entry holding its effective routes
        for ctx in route.effective_route_contexts() if hasattr(route, "effective_route_contexts") else [route]:
            for method in getattr(ctx, "methods", None) or ():
                found.add((method, str(getattr(ctx, "path", ""))))
    return found


def build_app(db_url: str) -> FastAPI:
    app = create_app(db_url, connect=False)
    wanted = {(m, r.path) for r in editor.router.routes if isinstance(r, APIRoute) for m in r.methods or ()}
    if not wanted <= served(app):
        app.include_router(editor.router)  # until designer.app includes it itself
    return app


class Session:
    """A TestClient logged in as ``username``; ``post`` sends the session's CSRF token as a header."""

    def __init__(self, app: FastAPI, username: str, lang: str = "zh-CN") -> None:
        self.client = TestClient(app, headers={"Accept-Language": lang})
        self.client.get("/login")
        token = self.client.cookies.get("tideflow_login_csrf") or ""
        r = self.client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token},
                             follow_redirects=False)
        assert r.status_code == 303, r.text
        self.csrf = str(self.client.get("/api/me").json()["csrf_token"])

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: Any = None, **kwargs: Any) -> httpx.Response:
        """POST a form (a dict, or (name, value) pairs in page order) with the CSRF header."""
        if isinstance(data, list):
            data = dict(data)
        return self.client.post(path, data=data, headers={"X-CSRF-Token": self.csrf}, **kwargs)

    def post_json(self, path: str, body: Any) -> httpx.Response:
        return self.client.post(path, json=body, headers={"X-CSRF-Token": self.csrf})


@pytest.fixture
def editor_app(db_url: str, cheap_passwords: None) -> FastAPI:
    """The app over a database with one user per role (named after the role), the shipped flows and
    the demo customers."""
    seeded_sqlite(db_url, add_users)  # add_users, then seed, from a template built once (tests/dbtemplate.py)
    return build_app(db_url)


@pytest.fixture
def login(editor_app: FastAPI) -> Iterator[Callable[..., Session]]:
    yield lambda username, lang="zh-CN": Session(editor_app, username, lang)


class FormReader(HTMLParser):
    """What a browser would submit for the first ``<form>``: inputs (checked boxes only), selected
    options, textareas; nothing inside ``<template>`` or disabled controls."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.fields: list[tuple[str, str]] = []
        self.controls: dict[str, dict[str, str | None]] = {}
        self._template = 0
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "template":
            self._template += 1
        if self._template:
            return
        name = a.get("name")
        if name and tag in ("input", "select", "textarea"):
            self.controls[name] = {"tag": tag, **a}
        if tag == "input" and name and "disabled" not in a:
            kind = a.get("type") or "text"
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.fields.append((name, a.get("value") or "on"))
            elif kind not in ("submit", "button"):
                self.fields.append((name, a.get("value") or ""))
        elif tag == "select" and name:
            self._select, self._options = name, []
        elif tag == "option" and self._select is not None:
            self._options.append((a.get("value") or "", "selected" in a))
        elif tag == "textarea" and name:
            self._textarea, self._text = name, []

    def handle_endtag(self, tag: str) -> None:
        if tag == "template":
            self._template -= 1
        if self._template:
            return
        if tag == "select" and self._select is not None:
            chosen = [v for v, on in self._options if on] or [v for v, _ in self._options[:1]]
            self.fields.append((self._select, chosen[0] if chosen else ""))
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            text = "".join(self._text)
            self.fields.append((self._textarea, text[1:] if text.startswith("\n") else text))
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None and not self._template:
            self._text.append(data)


def read_form(html: str) -> FormReader:
    reader = FormReader()
    reader.feed(html)
    return reader
