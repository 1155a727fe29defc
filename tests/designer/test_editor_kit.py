"""The editor kit (tests/designer/editor_kit.py) checked: its app guards every route, its form reader submits
like a browser."""

from __future__ import annotations

from fastapi import FastAPI

from designer.auth import unguarded_routes
from tests.designer.editor_kit import editor_app, read_form, served

__all__ = ["editor_app"]


def test_the_kit_builds_an_app_whose_routes_are_all_guarded(editor_app: FastAPI) -> None:
    assert unguarded_routes(editor_app) == []
    routes = served(editor_app)
    assert ("GET", "/flows/{flow_id}/edit") in routes and ("POST", "/flows/expression/check") in routes


def test_form_reader_submits_like_a_browser() -> None:
    html = """<form><input name="a" value="1"><input type="checkbox" name="b" value="on" checked>
      <input type="checkbox" name="c" value="on"><select name="d"><option value="x">x</option>
      <option value="y" selected>y</option></select><textarea name="e">
hi</textarea><template><input name="f.__i__" value="no"></template><input name="g" value="2" disabled></form>"""
    assert read_form(html).fields == [("a", "1"), ("b", "on"), ("d", "y"), ("e", "hi")]
