"""The agent console pages (/tickets …): my queue with SLA badges and claim, one ticket's actions, the
review chain decided by three people, sub-tasks, the supervisor view, availability, the signed
satisfaction survey — and isolation: an agent of another group gets the 404 page, not the ticket."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from activities.tickets import review, service
from designer.auth import unguarded_routes
from designer.pages import yuan
from designer.tickets.csat import csat_ok, csat_token
from designer.tickets.views import duration_text, sla_badge
from engine import auth
from engine.db import models
from engine.db.models import utcnow
from engine.db.session import session_factory, transaction
from tests.designer.pages_kit import PASSWORD, Browser
from tests.designer.ticket_pages_kit import ALWAYS, POLICY, app, make

__all__ = ["app"]


def uid(db_url: str, username: str) -> int:
    with session_factory(db_url)() as db:
        found = db.scalar(select(models.User.id).where(models.User.username == username))
        assert found is not None
        return int(found)


def events(db_url: str, ticket_id: int, kind: str) -> list[models.TicketEvent]:
    with session_factory(db_url)() as db:
        return list(db.scalars(select(models.TicketEvent).where(models.TicketEvent.ticket_id == ticket_id,
                                                                models.TicketEvent.kind == kind)))


def ticket(db_url: str, ticket_id: int) -> models.Ticket:
    with session_factory(db_url)() as db:
        found = db.get(models.Ticket, ticket_id)
        assert found is not None
        return found


def rows(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr id="tk-row-(\d+)"', html)]


# --- who may see what ---------------------------------------------------------------------------------


def test_every_console_route_is_guarded_and_roles_are_enforced(app: FastAPI, db_url: str) -> None:
    assert unguarded_routes(app) == []
    tid = make(db_url)
    anonymous = TestClient(app)
    for path in ("/tickets", f"/tickets/{tid}", "/tickets/supervisor"):
        r = anonymous.get(path, follow_redirects=False)
        assert r.status_code in (302, 303, 307) and "/login" in r.headers["location"], path
    for role in ("marketer", "developer"):
        page = Browser(app, role).get("/tickets")
        assert page.status_code == 403 and "没有权限" in page.text
    assert Browser(app, "agent").get("/tickets/supervisor").status_code == 403
    for role in ("ops", "admin"):
        assert Browser(app, role).get("/tickets/supervisor").status_code == 200
    assert Browser(app, "finance").get("/tickets").status_code == 200  # approvers see their reviews
    assert 'href="/tickets"' in Browser(app, "agent").get("/").text  # the nav entry
    assert 'href="/tickets"' not in Browser(app, "marketer").get("/flows").text


def test_an_agent_of_another_group_gets_404_for_the_ticket_and_every_action(app: FastAPI, db_url: str) -> None:
    alpha = make(db_url, customer=True)
    bob = Browser(app, "bob")
    assert alpha not in rows(bob.get("/tickets?scope=groups&status=all").text)
    missing = bob.get("/tickets/999999")
    seen = bob.get(f"/tickets/{alpha}")
    assert seen.status_code == missing.status_code == 404
    assert "王芳" not in seen.text and "快递破损" not in seen.text
    for action, data in (("claim", {}), ("reply", {"body": "hi"}), ("note", {"body": "n"}),
                         ("status", {"status": "pending"}), ("priority", {"priority": "P1"}),
                         ("resolve", {}), ("subtasks", {"group": "beta", "subject": "x"}),
                         ("reviews/1/decision", {"decision": "approve"})):
        r = bob.post_form(f"/tickets/{alpha}/{action}", data)
        assert r.status_code == 404, (action, r.status_code)
    assert not events(db_url, alpha, "reply") and ticket(db_url, alpha).assignee_id is None
    # finance (not an agent) sees no ticket it has no review of
    assert Browser(app, "finance").get(f"/tickets/{alpha}").status_code == 404


# --- the queue ----------------------------------------------------------------------------------------


def test_my_queue_filters_sla_badges_and_claim(app: FastAPI, db_url: str) -> None:
    waiting = make(db_url, "未分配", policy=True)
    mine = make(db_url, "我的", assignee="agent", priority="P2")
    late = make(db_url, "超时了", policy=True, age=timedelta(hours=9))
    beta = make(db_url, "B 组的", group="beta")
    others = make(db_url, "别人的", assignee="admin")
    agent = Browser(app, "agent")
    page = agent.get("/tickets")
    assert page.status_code == 200
    assert set(rows(page.text)) == {waiting, mine, late}
    assert set(rows(agent.get("/tickets?scope=groups").text)) == {waiting, mine, late, others}
    assert rows(agent.get("/tickets?priority=P2").text) == [mine]
    assert beta not in rows(agent.get("/tickets?queue=beta&scope=groups").text)
    # htmx (filters, the 30-second refresh) gets just the list
    fragment = agent.get("/tickets?priority=P2", headers={"HX-Request": "true", "HX-Target": "tk-list"}).text
    assert fragment.startswith("<div id=\"tk-list\"") and "<html" not in fragment and rows(fragment) == [mine]
    # SLA badges: the new one has business time left, the 9-hour-old one breached its 8 h resolution
    row = re.search(rf'<tr id="tk-row-{late}".*?</tr>', page.text, re.S)
    assert row is not None and 'data-sla="breached"' in row.group(0) and "超时" in row.group(0)
    row = re.search(rf'<tr id="tk-row-{waiting}".*?</tr>', page.text, re.S)
    assert row is not None and 'data-sla="ok"' in row.group(0) and re.search("剩余 1小时5[89]分", row.group(0))

    # claim with htmx: the row comes back, now mine, without a claim button
    r = agent.client.post(f"/tickets/{waiting}/claim", data={"csrf_token": agent.csrf},
                          headers={"HX-Request": "true"})
    assert r.status_code == 200 and r.text.strip().startswith(f'<tr id="tk-row-{waiting}"')
    assert "<b>我</b>" in r.text and "认领" not in r.text
    assert ticket(db_url, waiting).assignee_id == uid(db_url, "agent")
    # a plain form (no JavaScript): 303 back to the list with a notice
    r = agent.post_form(f"/tickets/{late}/claim", {"back": "/tickets"})
    assert r.status_code == 303 and r.headers["location"].startswith("/tickets?")
    assert "已认领工单" in agent.get(r.headers["location"]).text
    # capacity (the group's: 3): a fourth open ticket cannot be claimed
    fourth = make(db_url, "第四个")
    full = agent.post_form(f"/tickets/{fourth}/claim")
    assert full.status_code == 409 and "容量上限" in full.text
    # no CSRF token: refused
    assert agent.post_form(f"/tickets/{fourth}/claim", csrf=False).status_code == 403


def test_availability_toggle(app: FastAPI, db_url: str) -> None:
    agent = Browser(app, "agent")
    page = agent.get("/tickets")
    assert 'aria-pressed="true">在线' in page.text
    r = agent.client.post("/tickets/me/availability", data={"csrf_token": agent.csrf, "availability": "away"},
                          headers={"HX-Request": "true"})
    assert r.status_code == 200 and 'id="tk-avail"' in r.text and 'aria-pressed="true">离开' in r.text
    with session_factory(db_url)() as db:
        assert db.get(models.Agent, uid(db_url, "agent")).availability == "away"  # type: ignore[union-attr]
    r = agent.post_form("/tickets/me/availability", {"availability": "busy"})
    assert r.status_code == 422
    assert Browser(app, "ops").post_form("/tickets/me/availability", {"availability": "online"}).status_code == 404


# --- one ticket ---------------------------------------------------------------------------------------


def test_the_agent_works_a_ticket_from_its_page(app: FastAPI, db_url: str) -> None:
    tid = make(db_url, customer=True, assignee="agent", fields={"category": "物流"}, amount_fen=680000,
               order={"channel": "youzan", "shop": "s1", "order_id": "O-9"}, refund_id="R-1")
    agent = Browser(app, "agent")
    page = agent.get(f"/tickets/{tid}")
    assert page.status_code == 200
    assert "王芳" in page.text and "139****0001" in page.text and "13900000001" not in page.text
    assert "VIP 3" in page.text and "¥6,800.00" in page.text and "O-9" in page.text and "R-1" in page.text
    assert agent.post_form(f"/tickets/{tid}/reply", {"body": "您好，已为您处理"}).status_code == 303
    [sent] = events(db_url, tid, "reply")
    assert sent.public and sent.data["delivery"] == "sent"
    assert agent.post_form(f"/tickets/{tid}/note", {"body": "内部：客户备用手机 13912345678"}).status_code == 303
    empty = agent.post_form(f"/tickets/{tid}/note", {"body": "  "})
    assert empty.status_code == 422 and "内容不能为空" in empty.text
    assert agent.post_form(f"/tickets/{tid}/priority", {"priority": "P1"}).status_code == 303
    assert agent.post_form(f"/tickets/{tid}/status", {"status": "pending", "reason": "等客户回复"}).status_code == 303
    assert agent.post_form(f"/tickets/{tid}/fields", {"f.category": "质量"}).status_code == 303
    bad = agent.post_form(f"/tickets/{tid}/fields", {"f.category": "天气"})
    assert bad.status_code == 422
    after = ticket(db_url, tid)
    assert (after.priority, after.status, after.fields["category"]) == ("P1", "pending", "质量")
    html = agent.get(f"/tickets/{tid}?done=status").text
    assert "已修改状态" in html
    timeline = html[html.index('id="timeline"'):]
    for text in ("回复客户", "您好，已为您处理", "内部备注", "139****5678", "优先级：P3 → P1",
                 "状态：待处理 → 等待客户", "修改字段：category"):
        assert text in timeline, text
    assert "13912345678" not in html  # PII masked in notes too
    # transfer to another queue: the agent loses sight of it and lands on the list
    moved = agent.post_form(f"/tickets/{tid}/transfer", {"group": "beta", "note": "归 B 组"})
    assert moved.status_code == 303 and moved.headers["location"].startswith("/tickets?")
    assert agent.get(f"/tickets/{tid}").status_code == 404
    assert Browser(app, "bob").get(f"/tickets/{tid}").status_code == 200


def test_resolving_sends_the_survey_link_and_the_customer_rates_once(app: FastAPI, db_url: str) -> None:
    tid = make(db_url, customer=True, assignee="agent")
    other = make(db_url, "另一个", customer=True)
    agent = Browser(app, "agent")
    public = TestClient(app)  # the customer: no login
    token = csat_token(tid)
    assert public.get(f"/csat/{tid}/{token}").status_code == 409  # not resolved yet
    assert agent.post_form(f"/tickets/{tid}/resolve", {"reason": "已补发", "survey": "1"}).status_code == 303
    assert ticket(db_url, tid).status == "resolved"
    [link] = events(db_url, tid, "reply")
    assert link.data.get("csat") and f"/csat/{tid}/" in link.body
    token = link.body.rsplit(f"/csat/{tid}/", 1)[1].split()[0]  # the link as sent (its expiry is inside)
    # forged or moved tokens are refused
    assert public.get(f"/csat/{tid}/{'0' * 40}").status_code == 404
    assert public.get(f"/csat/{other}/{token}").status_code == 404
    assert public.post(f"/csat/{tid}/{'0' * 40}", data={"score": "1"}).status_code == 404
    form = public.get(f"/csat/{tid}/{token}")
    assert form.status_code == 200 and 'name="score"' in form.text
    assert public.post(f"/csat/{tid}/{token}", data={"score": "9"}).status_code == 422
    done = public.post(f"/csat/{tid}/{token}", data={"score": "4", "comment": "挺快的"})
    assert done.status_code == 200 and "感谢" in done.text
    again = public.post(f"/csat/{tid}/{token}", data={"score": "1"})
    assert again.status_code == 409
    [answer] = events(db_url, tid, "csat")
    assert answer.data == {"score": 4, "comment": "挺快的"}
    with session_factory(db_url)() as db:  # journeys can react: one survey.answered event of the customer
        [survey] = db.scalars(select(models.EventRecord).where(models.EventRecord.type == "survey.answered")).all()
        assert survey.customer_id == ticket(db_url, tid).customer_id
        assert survey.payload["score"] == 4 and survey.payload["ticket_id"] == tid
    page = agent.get(f"/tickets/{tid}").text
    assert "4 / 5 分" in page and "挺快的" in page


def test_three_level_review_decided_in_the_console(app: FastAPI, db_url: str) -> None:
    tid = make(db_url, "大额退款", assignee="agent", amount_fen=800000)
    with transaction(db_url) as db:
        auth.create_user(db, "head", PASSWORD, "ops", "部门主管")
        steps = [review.ReviewStep(name="组长复核", approver="supervisor"),
                 review.ReviewStep(name="部门主管复核", approver="user:head"),
                 review.ReviewStep(name="财务复核", approver="role:finance")]
        service.open_review(db, service.get_ticket(db, tid), "review", 1, steps, utcnow())
    agent, lead, head, fin = (Browser(app, n) for n in ("agent", "ops", "head", "finance"))
    page = agent.get(f"/tickets/{tid}").text
    assert 'data-step="1" data-status="waiting"' in page and "tk.review" not in page
    assert "/reviews/1/decision" not in page  # the agent sees the chain but does not decide it
    assert agent.post_form(f"/tickets/{tid}/reviews/1/decision", {"decision": "approve"}).status_code == 403
    # the lead (the group's supervisor) sees it in "waiting for my review" and decides it
    assert f'data-review="{tid}"' in lead.get("/tickets").text
    no_reason = lead.post_form(f"/tickets/{tid}/reviews/1/decision", {"decision": "reject"})
    assert no_reason.status_code == 409 and "需要填写理由" in no_reason.text
    assert lead.post_form(f"/tickets/{tid}/reviews/1/decision", {"decision": "approve"}).status_code == 303
    # the head sends it back with a reason; the lead approves again; the head delegates to the lead, who approves
    assert head.post_form(f"/tickets/{tid}/reviews/2/decision",
                          {"decision": "send_back", "reason": "缺少凭证"}).status_code == 303
    assert lead.post_form(f"/tickets/{tid}/reviews/1/decision", {"decision": "approve"}).status_code == 303
    assert head.post_form(f"/tickets/{tid}/reviews/2/delegate",
                          {"to_user": str(uid(db_url, "ops")), "reason": "出差"}).status_code == 303
    assert head.post_form(f"/tickets/{tid}/reviews/2/decision", {"decision": "approve"}).status_code == 403
    assert lead.post_form(f"/tickets/{tid}/reviews/2/decision", {"decision": "approve"}).status_code == 303
    # finance is in no group, yet sees the ticket it must review (and may only decide)
    assert f'data-review="{tid}"' in fin.get("/tickets").text
    seen = fin.get(f"/tickets/{tid}")
    assert seen.status_code == 200 and "/reviews/3/decision" in seen.text and 'id="reply-form"' not in seen.text
    assert fin.post_form(f"/tickets/{tid}/reply", {"body": "x"}).status_code == 403  # not staff
    assert fin.post_form(f"/tickets/{tid}/reviews/3/decision", {"decision": "approve", "reason": "凭证齐全"}
                         ).status_code == 303
    page = agent.get(f"/tickets/{tid}").text
    assert 'id="review-outcome">复核通过' in page
    for text in ("第 2 级（部门主管复核）退回", "缺少凭证", "第 2 级 委托给 ops user", "第 3 级（财务复核）通过",
                 "凭证齐全", "复核结果：复核通过"):
        assert text in page, text
    assert f'data-review="{tid}"' not in fin.get("/tickets").text


def test_subtasks_across_departments_and_their_progress(app: FastAPI, db_url: str) -> None:
    tid = make(db_url, "双十一活动", assignee="agent")
    agent = Browser(app, "agent")
    assert agent.post_form(f"/tickets/{tid}/subtasks", {"group": "beta", "subject": "采购赠品"}).status_code == 303
    assert agent.post_form(f"/tickets/{tid}/subtasks", {"group": "alpha", "subject": "设计海报"}).status_code == 303
    assert agent.post_form(f"/tickets/{tid}/subtasks", {"group": "nope", "subject": "x"}).status_code == 422
    page = agent.get(f"/tickets/{tid}").text
    assert "已完成 0 / 2（0%）" in page and "采购赠品" in page and "B 组" in page
    with session_factory(db_url)() as db:
        child = db.scalar(select(models.Ticket.id).where(models.Ticket.parent_id == tid,
                                                         models.Ticket.group_key == "beta"))
    bob = Browser(app, "bob")
    assert bob.get(f"/tickets/{child}").status_code == 200
    assert bob.post_form(f"/tickets/{child}/resolve", {}).status_code == 303
    assert "已完成 1 / 2（50%）" in agent.get(f"/tickets/{tid}").text


def test_supervisor_view_queues_risk_and_load(app: FastAPI, db_url: str) -> None:
    make(db_url, "A1", assignee="agent")
    late = make(db_url, "快超时", policy=True, age=timedelta(hours=7, minutes=40), replied=True)
    over = make(db_url, "没回复", policy=True, age=timedelta(hours=3))
    make(db_url, "B1", group="beta")
    page = Browser(app, "ops").get("/tickets/supervisor", params={"lang": "en"}).text
    queue = re.search(r'<tr data-queue="alpha">(.*?)</tr>', page, re.S)
    # open, pending, unassigned
    assert queue is not None and "<td>3</td><td>0</td>\n        <td>2</td>" in queue.group(1)
    soon = re.search(rf'<tr data-ticket="{late}">(.*?)</tr>', page, re.S)
    assert soon is not None and re.search(r"resolution · breaches soon · (19|20) min left", soon.group(1))
    missed = re.search(rf'<tr data-ticket="{over}">(.*?)</tr>', page, re.S)
    assert missed is not None and re.search(r"first response · breached · 1h [01]m over", missed.group(1))
    agent_row = re.search(rf'<tr data-agent="{uid(db_url, "agent")}">(.*?)</tr>', page, re.S)
    assert agent_row is not None and "1 / 3" in agent_row.group(1) and "Online" in agent_row.group(1)


# --- pure helpers -------------------------------------------------------------------------------------


def test_badge_duration_money_and_token_helpers(db_url: str) -> None:
    assert duration_text(timedelta(hours=2, minutes=5)) == "2小时5分"
    assert duration_text(timedelta(seconds=42)) == "42秒"
    assert yuan(680000) == "¥6,800.00" and yuan(-5) == "-¥0.05" and yuan(None) == "—"
    assert csat_token(7, "k1") != csat_token(7, "k2") and csat_token(7, "k1") != csat_token(8, "k1")
    assert csat_ok(7, csat_token(7, "k1"), "k1") and not csat_ok(7, csat_token(7, "k1")[:-1] + "x", "k1")
    now = datetime.fromisoformat("2026-11-23T10:00:00+08:00")
    found = models.Ticket(id=1, status="open", priority="P3", created_at=now - timedelta(hours=7, minutes=45),
                          updated_at=now,
                          sla={"policy": POLICY, "calendar": ALWAYS}, first_response_at=now)
    badge = sla_badge(found, now)
    assert (badge.state, badge.text, badge.metric) == ("warning", "剩余 15分钟", "解决")
    found.status = "pending"
    found.sla = {"policy": POLICY, "calendar": ALWAYS, "pauses": [[now.isoformat(), None]]}
    assert sla_badge(found, now).state == "paused"
    found.sla, found.status = {}, "open"
    assert sla_badge(found, now).state == "none"


def test_a_reply_that_cannot_reach_the_customer_is_said_before_and_after(app: FastAPI, db_url: str) -> None:
    """The channel is WeCom, not set up: the console warns above the reply box, the button says the reply is
    only recorded, and after sending the page says it did not reach the customer (not "Reply sent")."""
    tid = make(db_url, customer=True, assignee="agent")
    with transaction(db_url) as db:
        service.get_ticket(db, tid).channel = "wecom"
    agent = Browser(app, "agent")
    page = agent.get(f"/tickets/{tid}").text
    assert 'id="reply-reach" data-reason="not_configured"' in page and "企业微信渠道还没有配置" in page
    assert "记录回复（不会送达）" in page
    r = agent.post_form(f"/tickets/{tid}/reply", {"body": "您好"})
    assert r.status_code == 303 and "delivery=not_configured" in r.headers["location"]
    after = agent.get(r.headers["location"]).text
    assert 'id="tk-delivery-warning"' in after and "没有发给客户：渠道未配置" in after
    assert "已回复客户" not in after
    assert 'data-delivery="not_configured"' in after
    [reply] = events(db_url, tid, "reply")
    assert reply.data["delivery"] == "skipped: channel not configured"
    en = Browser(app, "agent", "en").get(r.headers["location"]).text
    assert "did not reach the customer: the channel is not set up" in en and "Reply sent" not in en
    # over a channel that works (dry-run here) the console says sent, and warns about nothing
    with transaction(db_url) as db:
        service.get_ticket(db, tid).channel = "dry-run"
    page = agent.get(f"/tickets/{tid}").text
    assert 'id="reply-reach"' not in page
    ok = agent.post_form(f"/tickets/{tid}/reply", {"body": "第二条"})
    assert "delivery=sent" in ok.headers["location"] and "已回复客户" in agent.get(ok.headers["location"]).text


def test_a_timed_out_review_step_says_why_in_the_readers_language(app: FastAPI, db_url: str) -> None:
    """The reason a step that ran out of time keeps is ours (wording.stored): Chinese or English on the page, English
    in the API; a reviewer's own words are kept as typed, even when they look like the stored form."""
    tid = make(db_url, "大额退款", assignee="agent", amount_fen=800000)
    now = utcnow()
    with transaction(db_url) as db:
        steps = [review.ReviewStep(name="组长复核", approver="supervisor", timeout="PT1H", on_timeout="skip"),
                 review.ReviewStep(name="财务复核", approver="role:finance")]
        service.open_review(db, service.get_ticket(db, tid), "review", 1, steps, now)
        service.review_timeouts(db, service.get_ticket(db, tid), service.review_rows(db, tid), now + timedelta(hours=2))
    typed = 'tideflow-msg:{"t":"approved by the CEO","v":{}}'
    assert Browser(app, "finance").post_form(f"/tickets/{tid}/reviews/2/decision",
                                             {"decision": "approve", "reason": typed}).status_code == 303
    chinese = Browser(app, "agent").get(f"/tickets/{tid}?lang=zh-CN").text
    english = Browser(app, "agent", "en").get(f"/tickets/{tid}?lang=en").text
    assert "未及时决定：按该级的超时规则跳过" in chinese and "no decision in time" not in chinese
    assert "no decision in time: skipped, as the step says on timeout" in english
    assert "tideflow-msg:{&#34;t&#34;:&#34;approved by the CEO" in chinese  # shown as typed, not as our sentence
    api = Browser(app, "agent", "en").get(f"/api/tickets/{tid}/reviews").json()
    assert [s["reason"] for s in api["steps"]] == ["no decision in time: skipped, as the step says on timeout", typed]
