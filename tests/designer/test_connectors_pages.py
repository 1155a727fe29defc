"""The connectors page's sync status, resync and unmapped messages through the real forms (admin only):
what a pushed connector shows and refuses, bad resync times, an unknown connector, other roles, paging."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from connectors.base import Unmapped
from engine import connector_ops
from engine import connectors as configured
from engine.db.session import transaction
from tests.designer.pages_kit import Browser, add_users, audit_entries, build_app

HOOK = "shop-hook"


@pytest.fixture
def app(db_url: str, cheap_passwords: None) -> FastAPI:
    add_users(db_url)
    with transaction(db_url) as db:
        configured.save(db, HOOK, "webhook", "Shop webhook", {}, {"secret": "s" * 32}, enabled=True)
    return build_app(db_url)


def kept(count: int, start: int = 0) -> list[Any]:
    return [Unmapped(reason="tag 108 gives no event", raw=f'{{"msg_id": "{i}", "phone": "13812345678"}}',
                     message_id=str(i), kind="108") for i in range(start, start + count)]


def test_a_pushed_connector_shows_its_backlog_but_no_resync(db_url: str, app: FastAPI) -> None:
    admin = Browser(app, "admin")
    connector_ops.store_unmapped(db_url, HOOK, kept(2))
    page = admin.get("/settings/connectors").text
    section = page[page.index(f'data-sync-status="{HOOK}"'):]
    assert "0 个事件尚未路由到旅程" in section and "2 条未映射的消息" in section
    assert f'action="/settings/connectors/{HOOK}/resync"' not in page
    r = admin.post_form(f"/settings/connectors/{HOOK}/resync")  # sent anyway: said why, where the user looks
    assert r.status_code == 409 and "由平台推送而非轮询" in r.text and 'role="alert"' in r.text
    assert not audit_entries(db_url, "connector.resync")


def test_the_unmapped_messages_page_pages_and_masks(db_url: str, app: FastAPI) -> None:
    admin = Browser(app, "admin")
    connector_ops.store_unmapped(db_url, HOOK, kept(55))
    connector_ops.store_unmapped(db_url, HOOK, kept(1, start=54))  # delivered again: counted on its row
    first = admin.get(f"/settings/connectors/{HOOK}/unmapped")
    assert first.status_code == 200
    assert "55 条未映射的消息" in first.text and first.text.count("<tr data-message=") == 50
    assert "138****5678" in first.text and "13812345678" not in first.text
    assert "共投递 2 次" in first.text and "<code>108</code> × 55" in first.text
    older = first.text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    second = admin.get(older)
    assert second.text.count("<tr data-message=") == 5 and 'rel="next"' not in second.text
    assert admin.get("/settings/connectors/nope/unmapped").status_code == 404
    assert admin.get(f"/settings/connectors/{HOOK}/unmapped?before_id=0").status_code == 422


@pytest.mark.parametrize("since", ["yesterday", "2026-13-40T10:00"])
def test_a_bad_resync_time_is_explained(app: FastAPI, since: str) -> None:
    r = Browser(app, "admin").post_form(f"/settings/connectors/{HOOK}/resync", {"since": since})
    assert r.status_code == 422 and "重新同步的起始时间无效" in r.text


def test_only_admins(app: FastAPI) -> None:
    marketer = Browser(app, "marketer")
    assert marketer.get(f"/settings/connectors/{HOOK}/unmapped").status_code == 403
    assert marketer.post_form(f"/settings/connectors/{HOOK}/resync").status_code == 403
    assert Browser(app, "admin").post_form(f"/settings/connectors/{HOOK}/resync", csrf=False).status_code == 403
