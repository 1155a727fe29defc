"""The quarantine pages (/quarantine): only admins see them (others get the HTML 403 page); the list filters
by kind and status with counts; a payload edit that is not a JSON object, not JSON at all or too deep is
refused with the field named and what was typed kept; a drop asks first; sending again says what the server
answered — the error that made it fail again, or the journey it started (real Temporal dev server and
worker). Every change is in the audit log with what it was before and after."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from engine import auth, quarantine
from engine import events as ingest
from engine.db import models
from engine.db.quarantine_models import QuarantineEntry
from engine.db.session import session_factory, transaction
from engine.events import MAX_ATTEMPTS, EventIn
from engine.settings import get_settings
from tests.designer.events_kit import Api, event, nested, publish
from tests.designer.pages_kit import PASSWORD, ROLES, Browser, add_users, audit_entries, build_app
from tests.engine.flowkit import WELCOME

pytestmark = pytest.mark.usefixtures("cheap_passwords")


def _put(db_url: str, kind: str, ref: str, error: str, payload: dict[str, Any]) -> int:
    with transaction(db_url) as db:
        return quarantine.put(db, kind, ref, error, payload, attempts=MAX_ATTEMPTS).id


def _entry(db_url: str, entry_id: int) -> QuarantineEntry:
    with session_factory(db_url)() as db:
        found = db.get(QuarantineEntry, entry_id)
        assert found is not None
        db.expunge(found)
        return found


PUSH = {"source": "youzan-shop", "id": "T-1", "type": "order.payed", "customer": {"phone": "13900000301"},
        "payload": {"tid": "T-1"}}


@pytest.fixture
def seeded(db_url: str) -> dict[str, int]:
    add_users(db_url)
    ids = {
        "event": _put(db_url, "event", "api:poison-1", "RecursionError: maximum recursion depth exceeded",
                      {"id": "api:poison-1", "type": "wecom.contact_added", "payload": {"a": {"a": {}}}}),
        "push": _put(db_url, "push", "youzan-shop:T-1", "type: unknown event type 'order.payed'", PUSH),
        "ticket": _put(db_url, "ticket_start", "ticket:7", "RuntimeError: the ticket's flow is not active",
                       {"ticket_id": 7}),
        "old": _put(db_url, "push", "youzan-shop:T-0", "type: unknown event type 'order.payed'", PUSH),
    }
    with transaction(db_url) as db:
        quarantine.drop(db, ids["old"], "admin")
    return ids


def test_only_admins_see_the_quarantine_and_others_get_the_html_403(db_url: str, seeded: dict[str, int]) -> None:
    app = build_app(db_url)
    for role in ROLES:
        who = Browser(app, role)
        for path in ("/quarantine", f"/quarantine/{seeded['event']}", f"/quarantine/{seeded['event']}/drop"):
            r = who.get(path)
            if role == "admin":
                assert r.status_code == 200, (role, path, r.text[:500])
            else:
                assert r.status_code == 403 and r.headers["content-type"].startswith("text/html"), (role, path)
                assert "管理员" in r.text and "poison-1" not in r.text
        for action in ("redrive", "drop", "payload") if role != "admin" else ():
            r = who.post_form(f"/quarantine/{seeded['event']}/{action}", {"confirm": "yes", "payload": "{}"})
            assert r.status_code == 403, (role, action, r.status_code)
        home = who.get("/").text
        assert ('href="/quarantine"' in home) == (role == "admin"), role  # the nav (and the home page's alert)
    assert _entry(db_url, seeded["event"]).status == "open"  # nobody changed anything
    assert audit_entries(db_url, "quarantine.fixed") == [] and len(audit_entries(db_url, "quarantine.dropped")) == 1


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr data-entry="\d+" data-kind="([a-z_]+)"', html)


def test_the_list_filters_by_kind_and_status_with_counts(db_url: str, seeded: dict[str, int]) -> None:
    admin = Browser(build_app(db_url), "admin", "en")
    page = admin.get("/quarantine?lang=en").text
    assert sorted(_rows(page)) == ["event", "push", "ticket_start"]  # open ones by default
    assert 'data-status="open">open<b>3</b>' in page and 'data-status="dropped">dropped<b>1</b>' in page
    assert 'data-kind="push">Connector push (not a valid event)<b>1</b>' in page
    assert "The payload is nested too deeply to be processed." in page  # the error in words
    assert "RecursionError: maximum recursion depth exceeded" in page and "3 attempts" in page
    assert _rows(admin.get("/quarantine?kind=push").text) == ["push"]
    everything = admin.get("/quarantine?kind=push&status=all").text
    assert _rows(everything) == ["push", "push"] and 'data-kind="push">Connector push (not a valid event)<b>2</b>' \
        in everything
    assert _rows(admin.get("/quarantine?status=dropped").text) == ["push"]
    assert _rows(admin.get("/quarantine?status=redriven").text) == []
    assert sorted(_rows(admin.get("/quarantine?kind=nonsense&status=nonsense").text)) == [
        "event", "push", "ticket_start"]  # unknown filters fall back to the defaults
    chinese = Browser(build_app(db_url), "admin").get("/quarantine?lang=zh-CN").text
    assert "隔离区" in chinese and "Connector push" not in chinese


def test_a_bad_payload_edit_is_refused_with_the_field_named(db_url: str, seeded: dict[str, int]) -> None:
    admin = Browser(build_app(db_url), "admin", "en")
    entry = seeded["event"]
    path = f"/quarantine/{entry}/payload"
    r = admin.post_form(path + "?lang=en", {"payload": '{"note": "flat",}'})
    assert r.status_code == 422 and 'data-field="payload"' in r.text
    assert "not valid JSON" in r.text and "line 1 column" in r.text
    assert "{&#34;note&#34;: &#34;flat&#34;,}" in r.text or '{&quot;note&quot;: &quot;flat&quot;,}' in r.text  # kept
    r = admin.post_form(path, {"payload": "[1, 2]"})
    assert r.status_code == 422 and "must be a JSON object" in r.text and 'aria-invalid="true"' in r.text
    deep = "{" + '"a": {' * 40 + "}" * 41
    r = admin.post_form(path, {"payload": deep})
    assert r.status_code == 422 and "TIDEFLOW_MAX_JSON_DEPTH" in r.text
    assert _entry(db_url, entry).payload["payload"] == {"a": {"a": {}}}  # nothing was saved
    assert audit_entries(db_url, "quarantine.fixed") == []
    # a ticket start has no payload: no editor, and the route refuses
    assert 'id="qt-edit"' not in admin.get(f"/quarantine/{seeded['ticket']}").text
    assert admin.post_form(f"/quarantine/{seeded['ticket']}/payload", {"payload": "{}"}).status_code == 422

    r = admin.post_form(path, {"payload": '{"note": "flattened", "客户": "李雷"}'})
    assert r.status_code == 303 and r.headers["location"] == f"/quarantine/{entry}?done=fixed"
    page = admin.get(r.headers["location"]).text
    assert "The payload is saved" in page and "flattened" in page
    assert _entry(db_url, entry).payload["payload"] == {"note": "flattened", "客户": "李雷"}
    [fixed] = audit_entries(db_url, "quarantine.fixed", f"quarantine:{entry}")
    assert fixed.actor == "admin" and fixed.before == {"payload": {"a": {"a": {}}}}
    assert fixed.after == {"payload": {"note": "flattened", "客户": "李雷"}}


def test_drop_asks_first_then_keeps_the_entry_on_record(db_url: str, seeded: dict[str, int]) -> None:
    admin = Browser(build_app(db_url), "admin", "en")
    entry = seeded["push"]
    assert f'href="/quarantine/{entry}/drop"' in admin.get(f"/quarantine/{entry}").text
    confirm = admin.get(f"/quarantine/{entry}/drop?lang=en").text
    assert "Drop this entry?" in confirm and "youzan-shop:T-1" in confirm and 'name="confirm" value="yes"' in confirm
    r = admin.post_form(f"/quarantine/{entry}/drop")  # not confirmed: back to the question, nothing done
    assert r.status_code == 303 and r.headers["location"] == f"/quarantine/{entry}/drop"
    assert _entry(db_url, entry).status == "open"
    r = admin.post_form(f"/quarantine/{entry}/drop", {"confirm": "yes"})
    assert r.status_code == 303 and r.headers["location"] == f"/quarantine?done=dropped&id={entry}"
    assert f"Entry {entry} is dropped" in admin.get(r.headers["location"]).text
    assert _entry(db_url, entry).status == "dropped"
    [dropped] = audit_entries(db_url, "quarantine.dropped", f"quarantine:{entry}")
    assert (dropped.before, dropped.after) == ({"status": "open"}, {"status": "dropped"})
    again = admin.post_form(f"/quarantine/{entry}/drop", {"confirm": "yes"})
    assert again.status_code == 409 and "not open" in again.text
    assert 'id="qt-redrive"' not in admin.get(f"/quarantine/{entry}").text  # nothing to send any more


def test_sending_a_push_again_that_is_still_invalid_says_why(db_url: str, seeded: dict[str, int]) -> None:
    admin = Browser(build_app(db_url), "admin", "en")
    r = admin.post_form(f"/quarantine/{seeded['push']}/redrive")
    assert r.status_code == 422 and 'id="qt-failed"' in r.text
    assert "still not a valid event" in r.text and "order.payed" in r.text
    assert _entry(db_url, seeded["push"]).status == "open"
    r = admin.post_form(f"/quarantine/{seeded['event']}/redrive")  # no Temporal in this app: said, not hidden
    assert r.status_code == 503 and "Temporal is not reachable" in r.text


# -- sending again on the real stack: Temporal dev server and worker ---------------------------------------


async def _login(http: httpx.AsyncClient, username: str) -> str:
    await http.get("/login")
    r = await http.post("/login", data={"username": username, "password": PASSWORD,
                                        "csrf_token": http.cookies.get("tideflow_login_csrf") or ""})
    assert r.status_code == 303, r.text
    return str((await http.get("/api/me")).json()["csrf_token"])


@pytest.fixture
async def live(dev_env: Any, db_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Api, Any]]:
    from designer.app import create_app
    from engine.router import Router
    from engine.worker import build_worker

    queue = f"qpages-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("TIDEFLOW_TASK_QUEUE", queue)
    get_settings.cache_clear()
    add_users(db_url)
    with transaction(db_url) as db:
        token = auth.create_token(db, db.scalar(select(models.User).where(models.User.username == "admin")), "t")
    app = create_app(db_url, connect=False)
    app.state.router = Router(dev_env.client, db_url, queue)
    async with build_worker(dev_env.client, queue, db_url), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        api = Api(httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                    headers={"Authorization": f"Bearer {token}"}), db_url)
        yield api, (app, http)
        await api.http.aclose()


async def test_sending_again_shows_the_error_then_the_journey_it_started(live: tuple[Api, Any]) -> None:
    api, (app, http) = live
    await publish(api, WELCOME)
    assert (await api.post("/api/events", [event("ok-1", phone="13900000401")], 202))[0]["routing"] == "done"
    stored = ingest.store_many([EventIn.model_validate({**event("poison", phone="13900000402"),
                                                        "payload": nested(600)})], api.url)
    customer = stored[0].payload["customer_id"]
    for _ in range(MAX_ATTEMPTS):
        await app.state.pipeline.reroute_once(older_than_seconds=0)
    [entry] = (await api.get("/api/quarantine"))["entries"]
    csrf = await _login(http, "admin")
    page = f"/quarantine/{entry['id']}"
    shown = (await http.get(page + "?lang=en")).text
    assert "api:poison" in shown and "RecursionError" in shown and "nested deeper than 32 levels" in shown

    # unchanged, it fails again: the page says why (the server's error) and the entry stays open, one attempt more
    r = await http.post(page + "/redrive", data={"csrf_token": csrf})
    assert r.status_code == 409 and 'id="qt-failed"' in r.text and "RecursionError" in r.text, r.text[:3000]
    assert f"{MAX_ATTEMPTS + 1} attempts" in r.text, re.findall(r"qt-attempts\">[^<]*", r.text)
    [failed] = audit_entries(api.url, "quarantine.redrive_failed")
    assert failed.before["attempts"] == MAX_ATTEMPTS and failed.after["attempts"] == MAX_ATTEMPTS + 1

    # fixed on the page and sent again: the journey it started is named, with a link
    r = await http.post(page + "/payload", data={"csrf_token": csrf, "payload": '{"note": "flattened"}'})
    assert r.status_code == 303, r.text
    r = await http.post(page + "/redrive", data={"csrf_token": csrf})
    assert r.status_code == 200 and 'id="qt-outcome"' in r.text, r.text[:3000]
    journey = f"journey/welcome/{customer}"
    assert f'href="/journeys/{journey}"' in r.text and 'data-status="redriven"' in r.text
    assert await api.messages_of(customer, 1) == ["你好 张三"]
    [done] = audit_entries(api.url, "quarantine.redriven", f"quarantine:{entry['id']}")
    assert (done.before, done.after, done.detail["started"]) == ({"status": "open"}, {"status": "redriven"},
                                                                 [journey])
    assert (await api.get("/api/quarantine"))["total"] == 0


def test_the_connectors_sync_status_links_to_what_of_theirs_waits_in_the_quarantine(db_url: str,
                                                                                    seeded: dict[str, int]) -> None:
    from engine import connectors as configured

    with transaction(db_url) as db:
        configured.save(db, "youzan-shop", "webhook", "有赞推送", {}, {"secret": "s" * 32}, enabled=True)
        configured.save(db, "other-hook", "webhook", "其他", {}, {"secret": "s" * 32}, enabled=True)
    page = Browser(build_app(db_url), "admin", "en").get("/settings/connectors?lang=en").text

    def section(connector: str) -> str:  # one connector's sync status, up to the next one's
        return page.split(f'data-sync-status="{connector}"', 1)[1].split("data-sync-status=", 1)[0]

    mine = section("youzan-shop")
    assert 'data-fact="quarantined"' in mine and "1 entry kept failing" in mine and 'href="/quarantine"' in mine
    assert 'data-fact="quarantined"' not in section("other-hook")


def test_a_push_sent_again_without_the_engine_says_it_is_stored_but_not_routed(db_url: str,
                                                                                seeded: dict[str, int]) -> None:
    entry = _put(db_url, "push", "youzan-shop:T-2", "type: unknown event type 'order.paid'",
                 {**PUSH, "id": "T-2", "type": "order.paid"})  # the type became known since (a newer connector)
    admin = Browser(build_app(db_url), "admin", "en")
    r = admin.post_form(f"/quarantine/{entry}/redrive")
    assert r.status_code == 200 and 'id="qt-outcome"' in r.text, r.text[:2000]
    assert 'id="qt-started"' not in r.text and "It started no journey" in r.text
    assert 'id="qt-routing"' in r.text  # stored, not routed: said, not hidden
    with session_factory(db_url)() as db:
        stored = db.scalar(select(models.EventRecord).where(models.EventRecord.external_id == "T-2"))
        assert stored is not None and stored.status == "received"
    assert _entry(db_url, entry).status == "redriven"
