"""Page text in both languages: every string has its Chinese translation, and the main pages render in
zh-CN and English with no leftover key, no unfilled placeholder and (in Chinese) no English sentence.

The catalogue check extracts with Babel exactly as ``make i18n`` does (templates, Python ``_()``/``Msg``,
node-schema help texts) and compares with ``designer/locale/zh_CN/LC_MESSAGES/messages.po``; a fuzzy entry
counts as missing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
from babel.messages.pofile import read_po
from fastapi import FastAPI
from sqlalchemy import select

from activities.tickets import service
from designer import i18n
from designer.forms import FIELD_LABELS
from designer.i18n_check import catalogue, extract, missing
from designer.i18n_extract import node_schemas, schema_strings
from engine import auth
from engine.customers import resolve
from engine.db import models
from engine.db.failure_models import JourneyFailure
from engine.db.models import utcnow
from engine.db.session import session_factory, transaction
from engine.registry import default_registry
from tests.dbtemplate import seeded_sqlite
from tests.designer.page_text import CJK, data_strings, english_phrases, english_words, strip
from tests.designer.pages_kit import PASSWORD, Browser, add_users, build_app

# --- the catalogue --------------------------------------------------------------------------------------


def test_every_extracted_string_has_a_chinese_translation() -> None:
    extracted = extract()
    assert len(extracted) > 900  # templates, Python, node schemas: the extraction itself works
    assert {"Flows", "Only admins may see this page. Your role is “%(role)s”.",
            "unknown node type '%(type)s'", "give up after this long"} <= {m.id for m in extracted}
    gaps = missing(extracted)
    assert gaps == [], "\n".join(str(g) for g in gaps)


def test_a_fuzzy_or_empty_entry_counts_as_missing(tmp_path: Any) -> None:
    po = tmp_path / "messages.po"
    po.write_text('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
                  '#, fuzzy\nmsgid "Flows"\nmsgstr "流程"\n\nmsgid "Journeys"\nmsgstr ""\n\n'
                  'msgid "Customers"\nmsgstr "客户"\n', encoding="utf-8")
    with po.open("rb") as handle:
        translated = read_po(handle, locale="zh_CN")
    extracted = extract()
    gaps = {g.msgid for g in missing(extracted, translated)}
    assert {"Flows", "Journeys", "Overview"} <= gaps and "Customers" not in gaps


def test_placeholders_agree_between_english_and_chinese() -> None:
    errors = [(m.id, m.string, e) for m, e in catalogue().check()]
    assert errors == []
    for message in catalogue():  # also the %(name)s placeholders without the python-format flag
        if not message.id or not message.string:
            continue
        source = message.id if isinstance(message.id, str) else " ".join(message.id)
        target = message.string if isinstance(message.string, str) else " ".join(message.string)
        assert set(re.findall(r"%\((\w+)\)s", source)) == set(re.findall(r"%\((\w+)\)s", target)), message.id


def test_node_types_carry_both_languages_and_every_form_field_is_labelled() -> None:
    for name, node_type in default_registry().types.items():
        if not node_type.__module__.startswith(("engine.", "activities.")):
            continue
        for what in (node_type.label, node_type.description):
            assert what.get("en") and what.get("zh-CN"), name
            assert CJK.search(what["zh-CN"]), (name, what)

    def keys(schema: Any) -> Iterator[str]:
        if isinstance(schema, dict):
            for key, value in schema.items():
                if key == "properties" and isinstance(value, dict):
                    yield from value
                if key not in ("examples", "default"):
                    yield from keys(value)
        elif isinstance(schema, list):
            for item in schema:
                yield from keys(item)

    from designer.flows.editor import settings_schema

    unlabelled = {k for _, schema in [*node_schemas(), ("settings", settings_schema())] for k in keys(schema)
                  if k not in FIELD_LABELS}
    assert unlabelled == set()  # else the form falls back to pydantic's English title ("Response Map")
    translated = catalogue()
    for text, where in schema_strings():  # what the forms show, as the designer draws them
        entry = translated.get(text)
        assert entry is not None and entry.string and not entry.fuzzy, (where, text)


# --- pages in both languages ----------------------------------------------------------------------------

OLD_KEY = re.compile(r"\b(?:pg|fl|nf|tk|st|ss|cn|cu|jo|js|fs|ms|ik|au|editor|nav|field|cat|what|dmn|role|kind|"
                     r"notice|err|lang)\.[a-z_]+\b")


class _Visible(HTMLParser):
    """The text a person reads: text nodes outside scripts and code, and title / placeholder / aria-label."""

    SKIP = {"script", "style", "code", "pre", "textarea", "template", "kbd", "samp"}

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skipping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping.append(tag)
        for name, value in attrs:
            if name in ("title", "placeholder", "aria-label", "alt") and value:
                self.parts.append(value)

    def handle_endtag(self, tag: str) -> None:
        if self.skipping and self.skipping[-1] == tag:
            self.skipping.pop()

    def handle_data(self, data: str) -> None:
        if not self.skipping and data.strip():
            self.parts.append(data.strip())


def visible(html: str) -> list[str]:
    parser = _Visible()
    parser.feed(html)
    return parser.parts


@pytest.fixture
def app(db_url: str, cheap_passwords: None) -> FastAPI:
    seeded_sqlite(db_url, add_users)
    with transaction(db_url) as db:
        cid = resolve(db, {"phone": "13900000001", "youzan_buyer": "yz-77"}, "王芳", {"vip_level": 3})
        db.add(models.Journey(workflow_id="journey/welcome-new-contact/c1", flow_id="welcome-new-contact",
                              version=1, customer_id=cid, status="waiting", current_node="wait1"))
        for status in ("sent", "skipped: capped"):
            db.add(models.Message(idempotency_key=f"k-{status}", customer_id=cid, channel="wecom",
                                  category="promotional", content="你好 王芳",
                                  status=status, flow_id="welcome-new-contact", node_id="hello",
                                  workflow_id="journey/welcome-new-contact/c1"))
        ids = {u.username: u.id for u in db.scalars(select(models.User))}
        db.add(models.AgentGroup(key="alpha", name="售后组", strategy="least_loaded", supervisor_id=ids["ops"],
                                 calendar={}, capacity=3, notify_channel="dry-run", rr_last=0))
        db.flush()
        db.add(models.Agent(user_id=ids["agent"], groups=["alpha"], skills=[], capacity=None, availability="online",
                            working_hours={}, contact={}))
        db.add(models.TicketType(key="complaint", name="投诉", default_group="alpha", default_priority="P3",
                                 fields=[], auto_events=[]))
        db.flush()
        ticket, _ = service.create_ticket(db, type_key="complaint", subject="快递破损", group="alpha", now=utcnow(),
                                          customer_id=cid, channel="dry-run")
        ticket.workflow_id = ""
        auth.audit(db, "system", "flow.published", "welcome-new-contact", {"version": 1})
        # a journey that failed, with its reason: the failed-journeys page and the journey page's "why"
        db.add(models.Journey(workflow_id="journey/welcome-new-contact/c2", flow_id="welcome-new-contact",
                              version=1, customer_id=cid, status="failed", current_node="hello"))
        db.add(JourneyFailure(workflow_id="journey/welcome-new-contact/c2", run_id="r1", flow_id="welcome-new-contact",
                              node_id="hello", node_type="action.send_message", kind="action",
                              error="企业微信 errcode 41001", attempts=3, failed_at=utcnow()))
    return build_app(db_url)


PAGES = ("/", "/flows", "/flows/new", "/flows/welcome-new-contact/edit", "/customers", "/journeys",
         "/journeys/journey/welcome-new-contact/c1", "/tickets", "/tickets/1", "/tickets/supervisor", "/settlement",
         "/audit", "/settings/connectors", "/flows/nope/edit", "/journeys/nope",
         "/flows/welcome-new-contact/settings/form", "/workforce", "/workforce/mass-sends", "/workforce/compliance",
         "/library", "/library/staff", "/growth/channels", "/growth/campaigns", "/growth/review", "/decisions",
         # the pages main added while the catalogues moved to gettext
         "/journeys/failures", "/journeys/journey/welcome-new-contact/c2", "/dashboard/marketer", "/dashboard/ops",
         "/dashboard/finance", "/dashboard/ops/live", "/tickets/calendars", "/tickets/calendars/alpha",
         "/settings/messaging", "/settings/users", "/tickets/setup/groups", "/tickets/setup/groups/alpha",
         "/tickets/setup/groups/new", "/tickets/setup/agents", "/tickets/setup/types", "/tickets/setup/types/complaint",
         "/tickets/setup/types/new", "/audit?from=2026-13-40", "/dashboard/nope", "/tickets/calendars/nope")


def test_main_pages_render_in_both_languages_without_leftover_keys(app: FastAPI, db_url: str) -> None:
    data = data_strings(db_url)
    with session_factory(db_url)() as db:
        customer = db.scalar(select(models.Customer.id))
        wang = db.scalar(select(models.Journey.customer_id).where(models.Journey.status == "failed"))
        agent = db.scalar(select(models.User.id).where(models.User.username == "agent"))
    pages = [*PAGES, f"/customers/{customer}", f"/customers/{wang}", f"/settings/users/{agent}",
             f"/tickets/setup/agents/{agent}"]
    pages += [f"/flows/welcome-new-contact/nodes/n1/form?type={name}" for name, _ in node_schemas()]
    wrong: list[Any] = []
    for lang in ("zh-CN", "en"):
        admin = Browser(app, "admin", lang=lang)
        for path in pages:
            r = admin.get(path)
            assert r.status_code in (200, 404, 409, 422), (lang, path, r.status_code)  # 4xx: the page saying why
            if "/nodes/" not in path and "/settings/form" not in path and not path.endswith("/live"):  # fragments
                assert f'lang="{lang}"' in r.text, (lang, path)
            parts = visible(r.text)
            text = "\n".join(parts)
            if OLD_KEY.search(text) or "%(" in text:  # a key of the old catalogues, a placeholder left unfilled
                wrong.append((lang, path, OLD_KEY.search(text) or "%("))
            if lang == "zh-CN":
                wrong += [(path, leak) for leak in english_phrases(parts, data)]
            else:
                wrong += [(path, p) for p in parts if CJK.search(strip(p, data))]
    assert wrong == [], "\n".join(map(str, wrong))


def test_the_login_page_and_its_errors_speak_the_chosen_language(app: FastAPI) -> None:
    from fastapi.testclient import TestClient

    client = TestClient(app)
    assert "登录" in client.get("/login").text
    page = client.get("/login?lang=en")
    assert "Log in" in page.text and "登录" not in page.text
    token = client.cookies.get("tideflow_login_csrf")
    wrong = client.post("/login", data={"username": "admin", "password": "nope!" + PASSWORD, "csrf_token": token,
                                        "lang": "en"})
    assert wrong.status_code == 401 and "Wrong username or password." in wrong.text
    wrong = client.post("/login", data={"username": "admin", "password": "nope!", "csrf_token": token})
    assert "用户名或密码错误。" in wrong.text


def test_the_language_choice_is_remembered_and_the_api_stays_english_unless_asked(app: FastAPI) -> None:
    admin = Browser(app, "admin", lang="zh-CN")
    assert "流程" in admin.get("/flows").text
    english = admin.get("/flows?lang=en")
    assert "New flow" in english.text and english.cookies.get(i18n.LANG_COOKIE) == "en"
    assert "New flow" in admin.get("/flows").text  # the cookie keeps it
    document = {"schema": "tideflow/flow@1", "id": "x", "name": "x", "kind": "journey", "nodes": [], "edges": []}
    from fastapi.testclient import TestClient

    token = TestClient(app)  # no language stated: the API's own English
    with transaction(str(app.state.database_url)) as db:
        plaintext = auth.create_token(db, db.scalar(select(models.User).where(models.User.username == "admin")),
                                      "t")
    token.headers["Authorization"] = f"Bearer {plaintext}"
    plain = token.post("/api/flows/validate", json=document).json()["problems"][0]
    assert plain["message"] == "the flow has no nodes" and plain["code"] == "no_trigger"
    same = token.post("/api/flows/validate", json=document, headers={"Accept-Language": "zh-CN"}).json()
    assert same["problems"][0]["message"] == "the flow has no nodes"  # a header nobody chose changes nothing
    chinese = token.post("/api/flows/validate?lang=zh-CN", json=document).json()  # what the canvas sends
    assert chinese["problems"][0]["message"] == "流程中没有节点" and chinese["problems"][0]["code"] == "no_trigger"
    chinese = admin.client.post("/api/flows/validate", json=document, headers={"X-CSRF-Token": admin.csrf}).json()
    assert chinese["problems"][0]["message"] == "the flow has no nodes"  # the cookie says en: chosen above
    admin.get("/flows?lang=zh-CN")
    chinese = admin.client.post("/api/flows/validate", json=document, headers={"X-CSRF-Token": admin.csrf}).json()
    assert chinese["problems"][0]["message"] == "流程中没有节点"  # chosen in the UI: the cookie


def test_the_audit_finds_one_english_word_but_not_names_ids_addresses_or_data() -> None:
    parts = ["保存", "Save", "按 ID 搜索", "wm****01", "d***@example.com", "journey/welcome/c_1", "2026-12-07 22:42",
             "李雷 Li Lei", "中国时间 (GMT+08:00)", "走 out 端口", "已下单？ (bought)", "WeCom 企业微信", "GMV",
             "每 15 秒 refresh", "Sent to the customer"]
    found = english_words(parts, {"李雷 Li Lei"}, {"out", "bought"})
    assert [f.split("  ⟵  ")[0] for f in found] == ["Save", "refresh", "Sent to the customer"]
