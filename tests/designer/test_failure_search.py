"""Searching failed journeys by the words of their reason finds an old reason saved as a ``Msg`` too — not only
among the latest few thousand read back (``MAX_REASONS_READ``): by its template's words in English or in the
reader's language, in SQL, and by its values' words among the reasons whose saved text holds them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from designer.journeys import api as journeys_api
from engine.db import models
from engine.db.failure_models import JourneyFailure
from engine.db.models import utcnow
from engine.db.session import transaction
from tests.designer.pages_kit import Browser, add_users, build_app
from wording import Msg
from wording.stored import MAX_REASON, PREFIX, stored

#: an action's refusal (a real template of the catalogue), the oldest failure of all
OLD = Msg("%(where)s timed out after %(seconds)s s (%(error)s)", where="node 'issue'", seconds=30,
          error="coupon-XJ-4471")
#: newer failures, each a different reason (their values differ), enough to push OLD out of the latest read back
NEWER = 12


def _fail(db: Any, n: int, reason: str, age: timedelta) -> None:
    at = utcnow() - age
    db.add(models.Journey(workflow_id=f"journey/f/c{n}", flow_id="f", version=1, customer_id=f"c{n}",
                          status="failed", current_node="issue", started_at=at, updated_at=at, ended_at=at))
    db.add(JourneyFailure(workflow_id=f"journey/f/c{n}", run_id="r", flow_id="f", node_id="issue",
                          node_type="coupon.issue", kind="action", error=stored(reason, MAX_REASON), attempts=3,
                          failed_at=at))


@pytest.fixture
def search(db_url: str, cheap_passwords: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(journeys_api, "MAX_REASONS_READ", NEWER // 2)  # the bound, scaled down to this test
    with transaction(db_url) as db:
        _fail(db, 0, OLD, timedelta(days=30))
        for n in range(1, NEWER + 1):
            _fail(db, n, Msg("cannot compute %(left)s + %(right)s", left=f"bags_{n}", right="'x'"),
                  timedelta(minutes=n))
        _fail(db, NEWER + 1, "the shop answered 502 Bad Gateway", timedelta(days=40))  # plain text, as before
    add_users(db_url)
    app = build_app(db_url)
    browsers = {"en": Browser(app, "marketer", "en"), "zh-CN": Browser(app, "marketer")}

    def found(words: str, lang: str) -> list[str]:
        answer = browsers[lang].get("/api/journeys/failed", params={"q": words, "lang": lang}).json()
        return sorted(j["customer_id"] for j in answer["journeys"])

    return found


def test_an_old_reason_is_found_by_its_templates_words_in_either_language(search: Any) -> None:
    assert search("timed out after", "en") == ["c0"]
    assert search("超时", "zh-CN") == ["c0"]
    assert search("TIMED OUT", "zh-CN") == ["c0"]  # English words find it on a Chinese page too
    assert search("超时", "en") == []  # the reader's language and English, not every language


def test_an_old_reason_is_found_by_its_values_words(search: Any) -> None:
    assert search("XJ-4471", "en") == ["c0"]
    assert search("node 'issue' timed", "en") == ["c0"]  # across a value and the template: by its longest word


def test_newer_reasons_and_plain_text_are_found_as_before(search: Any) -> None:
    assert search("bags_3 +", "en") == ["c3"]
    assert search("e bags_3 + 'x", "zh-CN") == ["c3"]
    assert search("无法计算", "zh-CN") == sorted(f"c{n}" for n in range(1, NEWER + 1))
    assert search("bad gateway", "en") == [f"c{NEWER + 1}"]


def test_the_saved_form_is_never_what_matches(search: Any) -> None:
    for words in (PREFIX, "%(where)s", '"t":', '"v"', "s (%(error"):
        assert search(words, "en") == [], words
    # a letter is in most templates: then only the reasons read back count (the latest half dozen here)
    assert search("a", "en") == sorted([*(f"c{n}" for n in range(1, NEWER // 2 + 1)), f"c{NEWER + 1}"])
