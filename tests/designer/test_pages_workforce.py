"""The workforce pages and API without a browser: roles (agents and marketers do not read the archive), the
archive viewer's watermark and its audit entry, a regex RE2 cannot run refused with the field named, the
handover plan page showing who cannot move, and both languages complete."""

from __future__ import annotations

import re

from fastapi import FastAPI

from activities.workforce.handover import BLOCK_REASONS
from designer.display import LABELS, label
from designer.i18n import language
from designer.i18n_check import missing
from designer.workforce import labels as _labels  # noqa: F401  (registers the wf.* labels)
from tests.connectors.fake_wecom import fake_wecom
from tests.designer.pages_kit import Browser, audit_entries
from tests.designer.workforce_pages_kit import app

__all__ = ["app", "fake_wecom"]


def test_the_catalogue_is_complete_in_both_languages() -> None:
    gaps = [str(g) for g in missing() if "workforce" in g.where]  # test_i18n.py checks the whole tree
    assert gaps == []


def test_why_an_item_cannot_move_is_the_planners_english_translated_by_the_catalogue() -> None:
    assert LABELS["wf.block"].entries == BLOCK_REASONS  # one table: the planner's, whose English an item keeps
    for key, english in BLOCK_REASONS.items():
        with language("en"):
            assert label(key, "wf.block") == english
        with language("zh-CN"):
            chinese = label(key, "wf.block")
        assert re.search("[\u4e00-\u9fff]", chinese) and not re.search("[a-z]", chinese), (key, chinese)


def test_roles_and_the_watermarked_audited_archive(app: FastAPI, db_url: str) -> None:
    for role in ("agent", "marketer", "finance"):
        page = Browser(app, role).get("/workforce/archive?customer_id=c-1")
        assert page.status_code == 403, role
    officer = Browser(app, "ops")
    page = officer.get("/workforce/archive?customer_id=c-1")
    assert page.status_code == 200 and "138****8000" in page.text
    assert 'id="watermark"' in page.text and "ops user ·" in page.text  # the viewer's name and the time
    [entry] = audit_entries(db_url, "workforce.archive_viewed", "customer:c-1")
    assert entry.actor == "ops" and entry.detail == {"messages": 1}
    api = officer.get("/api/workforce/archive", params={"connector_id": "wecom-main", "customer_id": "c-1"})
    assert api.status_code == 200 and api.json()["viewer"] == "ops user"
    assert len(audit_entries(db_url, "workforce.archive_viewed")) == 2
    assert Browser(app, "marketer").get("/workforce/mass-sends").status_code == 200


def test_word_lists_refuse_what_re2_cannot_run(app: FastAPI, db_url: str) -> None:
    officer = Browser(app, "ops")
    made = officer.client.post("/api/workforce/word-lists", json={"team": "7", "name": "销售"},
                               headers={"X-CSRF-Token": officer.csrf})
    assert made.status_code == 201
    list_id = made.json()["id"]
    bad = officer.client.post(f"/api/workforce/word-lists/{list_id}/words", json=[{"pattern": r"(a)\1",
                                                                                   "kind": "regex"}],
                              headers={"X-CSRF-Token": officer.csrf})
    assert bad.status_code == 422 and bad.json()["detail"]["field"] == "words[0].pattern"
    assert "back-references" in bad.json()["detail"]["message"]
    ok = officer.post_form(f"/workforce/compliance/lists/{list_id}/words", {"pattern": "保证收益", "kind": "keyword",
                                                                            "severity": "high"})
    assert ok.status_code == 303
    assert "保证收益" in officer.get("/workforce/compliance").text


def test_marking_a_member_departed_shows_the_plan(app: FastAPI, db_url: str) -> None:
    supervisor = Browser(app, "ops")
    answer = supervisor.post_form("/workforce/staff/depart", {"userid": "zhangsan", "strategy": "round_robin"})
    assert answer.status_code == 303 and answer.headers["location"].startswith("/workforce/handovers/")
    page = supervisor.get(answer.headers["location"])
    assert "wmC1" in page.text and "lisi" in page.text and "在职转接" in page.text  # WeCom says he is employed
    assert audit_entries(db_url, "workforce.handover_planned")
    refused = supervisor.post_form("/workforce/staff/depart", {"userid": "nobody"})
    assert refused.status_code == 404 and "nobody" in refused.text
    assert Browser(app, "marketer").post_form("/workforce/staff/depart", {"userid": "zhangsan"}).status_code == 403
