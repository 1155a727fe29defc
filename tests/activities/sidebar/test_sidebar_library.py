"""The script library, approval, uses, suggestions and the customer picture on a real (SQLite) database,
with users of each role — what staff may and may not see or do."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from activities.sidebar import library, staff
from activities.sidebar.context import customer_for_contact, sidebar_for_customer, use_script
from activities.sidebar.library import LibraryError
from activities.sidebar.picture import ArchiveAccess, Panel, register_panel
from activities.sidebar.scripts import ScriptSpec
from activities.sidebar.suggestions import RuleSpec
from activities.workforce import staff as workforce_staff
from engine import auth
from engine.customers import resolve
from engine.db import models
from engine.db import workforce_models as wf
from engine.db.session import transaction

NOW = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
DISCLOSURE = "{{ customer.name }}您好：理财产品的历史收益率不代表未来表现，投资需谨慎。"


@pytest.fixture
def db(db_url: str) -> Iterator[Session]:
    with transaction(db_url) as session:
        yield session


@pytest.fixture
def db_any(any_db_url: str) -> Iterator[Session]:
    """On SQLite and on PostgreSQL."""
    with transaction(any_db_url) as session:
        yield session


def _user(db: Session, name: str, role: str, groups: list[str] | None = None) -> models.User:
    user = models.User(username=name, password_hash="x", role=role, display_name=name.title(), failed_logins=0)
    db.add(user)
    db.flush()
    if groups is not None:
        db.add(models.Agent(user_id=user.id, groups=groups, skills=[], contact={}))
    return user


@pytest.fixture
def people(db: Session) -> dict[str, models.User]:
    return _people(db)


def _people(db: Session) -> dict[str, models.User]:
    return {"mk": _user(db, "mk", "marketer"), "ops": _user(db, "ops", "ops"), "ops2": _user(db, "ops2", "ops"),
            "agent": _user(db, "agent", "agent", ["wealth"]), "retail": _user(db, "retail", "agent", ["retail"]),
            "fin": _user(db, "fin", "finance")}


def _customer(db: Session, works_on: str | None = "wealth") -> str:
    """王小明, with an inbound message; ``works_on``: a group with a ticket of theirs — the agent of that group
    reads their personal data and messages (engine/read_policy.py), an agent of another group does not."""
    cid = resolve(db, {"wecom_external_userid": "wmCustomerA0001", "phone": "13800138000"}, "王小明")
    db.add(models.Message(idempotency_key="in-1", customer_id=cid, channel="wecom", direction="in",
                          content="我的卡号 6222021234567890128，请问这款产品年化收益率多少？", status="received",
                          created_at=NOW - timedelta(minutes=1)))
    if works_on:
        _ticket(db, cid, works_on, "开户咨询", status="resolved")
    return cid


def _ticket(db: Session, cid: str, group: str, subject: str, status: str = "new") -> models.Ticket:
    if db.get(models.TicketType, "refund") is None:
        db.add(models.TicketType(key="refund", name="退款", fields=[]))
    if db.get(models.AgentGroup, group) is None:
        db.add(models.AgentGroup(key=group, name=group))
    db.flush()
    ticket = models.Ticket(type_key="refund", subject=subject, customer_id=cid, group_key=group, status=status)
    db.add(ticket)
    db.flush()
    return ticket


def test_a_compliance_script_is_used_only_once_another_reviewer_approved_it(
        db_any: Session) -> None:
    db = db_any
    people = _people(db)
    mk, ops, ops2, agent = people["mk"], people["ops"], people["ops2"], people["agent"]
    cid = _customer(db)
    spec = ScriptSpec(title="收益率风险提示", text=DISCLOSURE, keywords=["收益率"], requires_approval=True)
    script = library.create_script(db, ops, spec, NOW)
    assert script.status == "pending" and script.published is None
    assert library.usable_scripts(db, agent) == []
    with pytest.raises(LibraryError) as waiting:
        use_script(db, agent, script.id, NOW, customer_id=cid, chat_id=None)
    assert waiting.value.status == 409
    with pytest.raises(LibraryError, match="four-eyes") as own:
        library.review_script(db, ops, script.id, 1, True, "", NOW)
    assert own.value.status == 403
    with pytest.raises(LibraryError, match="role"):
        library.review_script(db, mk, script.id, 1, True, "", NOW)
    with pytest.raises(LibraryError, match="why"):
        library.review_script(db, ops2, script.id, 1, False, " ", NOW)
    library.review_script(db, ops2, script.id, 1, True, "合规已审", NOW)

    used = use_script(db, agent, script.id, NOW, customer_id=cid, chat_id=None)
    assert used["message"] == {"msgtype": "text", "text": {
        "content": "王小明您好：理财产品的历史收益率不代表未来表现，投资需谨慎。"}}
    assert used["version"] == 1

    # a new version waits for review; staff keep sending the approved one
    library.update_script(db, mk, script.id, spec.model_copy(update={"text": "新版本 {{ customer.name }}"}),
                          NOW, expected_version=1)
    with pytest.raises(LibraryError, match="changed meanwhile"):
        library.update_script(db, mk, script.id, spec, NOW, expected_version=1)
    again = use_script(db, agent, script.id, NOW, customer_id=cid, chat_id=None)
    assert again["message"]["text"]["content"].startswith("王小明您好：理财") and again["version"] == 1

    # the page reports what WeCom said; a repeated report changes nothing; another user's use is not theirs
    done = library.finish_use(db, agent, used["use_id"], "sent", "", NOW)
    assert done.status == "sent" and library.finish_use(db, agent, used["use_id"], "sent", "", NOW) is done
    with pytest.raises(LibraryError):
        library.finish_use(db, agent, used["use_id"], "failed", "x", NOW)
    with pytest.raises(LibraryError) as foreign:
        library.finish_use(db, people["retail"], again["use_id"], "cancelled", "", NOW)
    assert foreign.value.status == 404
    library.finish_use(db, agent, again["use_id"], "failed", "sendChatMessage:fail no permission", NOW)
    uses = library.uses_of(db, script.id)
    assert [(u.status, u.version, u.customer_id) for u in uses] == [
        ("failed", 1, cid), ("sent", 1, cid)]
    actions = [a.action for a in db.scalars(select(models.AuditEntry).order_by(models.AuditEntry.id))]
    for expected in ("script.created", "script.approved", "script.used", "script.updated", "script.sent",
                     "script.failed"):
        assert expected in actions


def test_staff_see_their_teams_and_the_customer_under_the_read_policy(db_any: Session) -> None:
    db = db_any
    people = _people(db)
    mk, agent, retail = people["mk"], people["agent"], people["retail"]
    cid = _customer(db)
    for team, title in (("", "通用问候"), ("wealth", "理财话术"), ("retail", "零售话术")):
        library.create_script(db, mk, ScriptSpec(title=title, text="{{ customer.name }}您好", team=team), NOW)
    assert {s.team for s in library.usable_scripts(db, agent)} == {"", "wealth"}
    assert {s.team for s in library.usable_scripts(db, retail)} == {"", "retail"}
    assert len(library.usable_scripts(db, mk)) == 3
    wealth = next(s for s in library.usable_scripts(db, agent) if s.team == "wealth")
    with pytest.raises(LibraryError) as hidden:
        use_script(db, retail, wealth.id, NOW, customer_id=cid, chat_id=None)
    assert hidden.value.status == 404

    if db.get(models.TicketType, "refund") is None:
        db.add(models.TicketType(key="refund", name="退款", fields=[]))
    for key in ("refunds", "wealth"):
        if db.get(models.AgentGroup, key) is None:
            db.add(models.AgentGroup(key=key, name=key))
    db.flush()
    db.add_all([models.Ticket(type_key="refund", subject="退款未到账", customer_id=cid, group_key="refunds"),
                models.Ticket(type_key="refund", subject="理财赎回", customer_id=cid, group_key="wealth")])
    db.add(models.Order(channel="tmall", shop="flagship", order_id="T1", source="taobao", customer_id=cid,
                        status="paid", amount_fen=19900, paid_at=NOW - timedelta(days=3)))
    db.add(models.Order(channel="youzan", shop="mini", order_id="Y1", source="youzan", customer_id=cid,
                        status="delivered", amount_fen=5000, paid_at=NOW - timedelta(days=1)))
    db.add(models.CouponCampaign(id="double11", name="双十一满减", value_fen=5000, status="active"))
    db.flush()
    db.add_all([models.Coupon(code="D11-ABCD1234", campaign_id="double11", customer_id=cid, idempotency_key="k1"),
                models.Coupon(code="D11-OLD00001", campaign_id="double11", customer_id=cid, idempotency_key="k2",
                              expires_at=NOW - timedelta(days=1))])
    db.flush()

    view = sidebar_for_customer(db, agent, cid, NOW)
    customer = view["customer"]
    assert customer["name"] == "王小明"
    assert {"kind": "phone", "value": "138****8000"} in customer["identities"]
    assert {"kind": "wecom_external_userid", "value": "wmCu****0001"} in customer["identities"]
    assert all("6222021234567890128" not in m["content"] for m in customer["messages"])
    assert [o["order_id"] for o in customer["orders"]] == ["Y1", "T1"]  # both shops, newest first
    assert [c["code"] for c in customer["coupons"]] == ["****1234"]  # the expired one is not held
    assert [t["subject"] for t in customer["tickets"]] == ["理财赎回"]  # not the refund group's ticket
    assert view["latest_message"].endswith("年化收益率多少？")
    ops_view = sidebar_for_customer(db, people["ops"], cid, NOW)
    assert len(ops_view["customer"]["tickets"]) == 2


def test_suggestions_follow_the_latest_message_and_the_situation(db: Session, people: dict[str, Any]) -> None:
    mk, ops2, agent = people["mk"], people["ops2"], people["agent"]
    cid = _customer(db)
    greet = library.create_script(db, mk, ScriptSpec(title="问候", text="您好"), NOW)
    disclosure = library.create_script(db, mk, ScriptSpec(title="风险提示", text=DISCLOSURE,
                                                          requires_approval=True), NOW)
    vip = library.create_script(db, mk, ScriptSpec(title="VIP 专属", text="尊敬的VIP {{ customer.name }}"), NOW)
    library.create_rule(db, mk, RuleSpec(name="问收益率", keywords=["收益率"], script_ids=[disclosure.id, greet.id],
                                         priority=10), NOW)
    library.create_rule(db, mk, RuleSpec(name="VIP", situations=[{"kind": "tier", "value": "VIP"}],
                                         script_ids=[vip.id]), NOW)
    library.create_rule(db, mk, RuleSpec(name="坏的", condition="customer.name.nope()", script_ids=[greet.id]), NOW)
    with pytest.raises(LibraryError, match="do not exist"):
        library.create_rule(db, mk, RuleSpec(name="x", keywords=["a"], script_ids=[999]), NOW)

    first = sidebar_for_customer(db, agent, cid, NOW)
    # the disclosure is not approved yet: it is not suggested; the greeting is
    assert [s["title"] for s in first["suggested"]] == ["问候"]
    assert first["problems"] and first["problems"][0].startswith("坏的")
    library.review_script(db, ops2, disclosure.id, 1, True, "ok", NOW)
    second = sidebar_for_customer(db, agent, cid, NOW)
    assert [s["title"] for s in second["suggested"]] == ["风险提示", "问候"]
    assert second["suggested"][0]["preview"].startswith("王小明您好：理财")
    assert second["suggested"][0]["reasons"] == [{"rule": "问收益率", "kind": "keyword", "value": "收益率"}]

    # a loyalty package adds its panel (tier, points): the VIP rule now applies too
    def loyalty(session: Session, customer_id: str, now: datetime) -> Panel:
        return Panel("loyalty", {"zh-CN": "会员", "en": "Loyalty"},
                     [{"label": {"zh-CN": "等级", "en": "Tier"}, "value": "VIP"}], {"tier": "VIP", "points": 1200})

    def broken(session: Session, customer_id: str, now: datetime) -> Panel:
        raise RuntimeError("archive down")

    register_panel("loyalty", loyalty)
    register_panel("archive", broken)
    try:
        third = sidebar_for_customer(db, agent, cid, NOW)
    finally:
        register_panel("loyalty", None)
        register_panel("archive", None)
    assert [s["title"] for s in third["suggested"]] == ["风险提示", "问候", "VIP 专属"]
    panels = {p["key"]: p for p in third["customer"]["panels"]}
    assert panels["loyalty"]["items"][0]["value"] == "VIP"
    assert "unavailable" in panels["archive"]["error"]
    # search narrows the library; it never lists unapproved versions
    assert [s["title"] for s in sidebar_for_customer(db, agent, cid, NOW, query="vip")["scripts"]] == ["VIP 专属"]


def test_hostile_scripts_fail_for_the_customer_without_recording_a_use(db: Session, people: dict[str, Any]) -> None:
    cid = _customer(db)
    costly = "{% for i in range(9999) %}{% for j in range(9999) %}{{ i }}{% endfor %}{% endfor %}"
    with pytest.raises(LibraryError, match="too costly on sample data") as refused:  # refused when saved now ...
        library.create_script(db, people["mk"], ScriptSpec(title="慢", text=costly), NOW)
    assert (refused.value.field, refused.value.status) == ("text", 422)
    # ... but one saved before that check existed is still bounded where it is rendered
    burn = library.create_script(db, people["mk"], ScriptSpec(title="慢", text="{{ customer.name }}"), NOW)
    burn.content = {"text": costly}
    burn.published = {**(burn.published or {}), "content": {"text": costly}}
    db.flush()
    with pytest.raises(LibraryError, match="cannot be sent") as refused:
        use_script(db, people["agent"], burn.id, NOW, customer_id=cid, chat_id=None)
    assert refused.value.status == 422 and library.uses_of(db, burn.id) == []
    listed = sidebar_for_customer(db, people["agent"], cid, NOW)["scripts"]
    assert listed[0]["preview"] == "" and "text" in listed[0]["problem"]


def test_images_are_checked_stored_once_and_sent_as_wecom_media(db: Session, people: dict[str, Any]) -> None:
    mk, agent = people["mk"], people["agent"]
    image = library.store_image(db, mk, PNG)
    assert image.content_type == "image/png" and library.store_image(db, mk, PNG).id == image.id
    for data, status in ((b"GIF89a....", 415), (b"", 422), (b"\xff\xd8\xff" + b"0" * (2 * 1024 * 1024), 413)):
        with pytest.raises(LibraryError) as refused:
            library.store_image(db, mk, data)
        assert refused.value.status == status
    with pytest.raises(LibraryError, match="image 99"):
        library.create_script(db, mk, ScriptSpec(kind="image", title="x", image_id=99), NOW)
    script = library.create_script(db, mk, ScriptSpec(kind="image", title="价目表", image_id=image.id), NOW)
    uploads: list[int] = []

    def media_for(img: Any) -> str:
        found = library.cached_media_id(img, "corp/1", NOW)
        if found is None:
            uploads.append(img.id)
            found = f"MEDIA{len(uploads)}"
            library.remember_media_id(img, "corp/1", found, NOW)
        return found

    assert use_script(db, agent, script.id, NOW, customer_id=None, chat_id="wrChat1", media_for=media_for)[
        "message"] == {"msgtype": "image", "image": {"mediaid": "MEDIA1"}}
    use_script(db, agent, script.id, NOW, customer_id=None, chat_id="wrChat1", media_for=media_for)
    assert uploads == [image.id]
    assert library.cached_media_id(image, "corp/1", NOW + timedelta(days=2, hours=13)) is None  # 3-day media
    with pytest.raises(LibraryError) as unconfigured:
        use_script(db, agent, script.id, NOW, customer_id=None, chat_id="wrChat1")
    assert unconfigured.value.status == 409


def test_wecom_members_sign_in_as_their_linked_user_only(db: Session, people: dict[str, Any]) -> None:
    admin = _user(db, "root", "admin")
    staff.link(db, admin, "wecom-main", "zhangsan", "agent", NOW)
    staff.link(db, admin, "wecom-main", "caiwu", "fin", NOW)
    user, session_token, csrf = staff.sign_in(db, "wecom-main", "zhangsan", NOW)
    assert user.username == "agent" and csrf
    found = auth.session_user(db, session_token, NOW + timedelta(minutes=5))
    assert found is not None and found[0].id == user.id
    for connector, userid, why in (("wecom-main", None, "not a member"), ("wecom-main", "lisi", "not linked"),
                                   ("other", "zhangsan", "not linked"), ("wecom-main", "caiwu", "role")):
        with pytest.raises(staff.SignInRefused, match=why):
            staff.sign_in(db, connector, userid, NOW)
    # ops set the member on the agent's contact: that links them too (workforce's one home for members)
    agent = db.get(models.Agent, people["retail"].id)
    assert agent is not None
    agent.contact = {"wecom_userid": "wangwu"}
    db.flush()
    assert staff.sign_in(db, "wecom-main", "wangwu", NOW)[0].username == "retail"
    workforce_staff.mark_departed(db, "wecom-main", "zhangsan", NOW)
    with pytest.raises(staff.SignInRefused, match="left"):
        staff.sign_in(db, "wecom-main", "zhangsan", NOW)
    auth.disable_user(db, "fin", admin)
    staff.link(db, admin, "wecom-main", "caiwu", "mk", NOW)
    assert staff.sign_in(db, "wecom-main", "caiwu", NOW)[0].username == "mk"
    auth.disable_user(db, "mk", admin)
    with pytest.raises(staff.SignInRefused, match="disabled"):
        staff.sign_in(db, "wecom-main", "caiwu", NOW)
    with pytest.raises(auth.AuthError):
        staff.link(db, admin, "wecom-main", "has space", "agent", NOW)
    assert staff.unlink(db, admin, "wecom-main", "caiwu", NOW)
    assert not staff.unlink(db, admin, "wecom-main", "caiwu", NOW)
    assert [link["userid"] for link in staff.links(db, "wecom-main")] == ["zhangsan"]


def test_a_new_contact_becomes_one_customer(db: Session) -> None:
    first = customer_for_contact(db, "wmNewContact01")
    assert customer_for_contact(db, "wmNewContact01") == first
    with pytest.raises(LibraryError):
        customer_for_contact(db, "x" * 300)


def _archived(db: Session, cid: str, msgid: str, member: str, text: str, minutes_ago: int,
              direction: str = "customer") -> None:
    db.add(wf.ArchivedMessage(connector_id="wecom-main", msgid=msgid, seq=minutes_ago, sender="wmCustomerA0001",
                              tolist=[member], msgtype="text", direction=direction, staff_userid=member,
                              customer_id=cid, text=text, msgtime=NOW - timedelta(minutes=minutes_ago)))


def test_the_archive_feeds_suggestions_and_only_officers_read_it(db: Session, people: dict[str, Any]) -> None:
    cid = _customer(db)  # its inbound message (in the messages table) is a minute old
    _archived(db, cid, "m1", "lina", "那这个产品保本吗？", 0)
    _archived(db, cid, "m2", "bob", "给 bob 的消息：退款什么时候到", 2)
    db.flush()
    library.create_rule(db, people["mk"], RuleSpec(name="问保本", keywords=["保本"], script_ids=[
        library.create_script(db, people["mk"], ScriptSpec(title="不保本提示", text="本产品不保本。"), NOW).id]), NOW)
    own = sidebar_for_customer(db, people["agent"], cid, NOW, archive=ArchiveAccess("wecom-main", member="lina"))
    assert own["latest_message"] == "那这个产品保本吗？" and "archive" not in own["customer"]
    assert [s["title"] for s in own["suggested"]] == ["不保本提示"]
    stranger = sidebar_for_customer(db, people["agent"], cid, NOW, archive=ArchiveAccess("wecom-main", member=None))
    assert stranger["latest_message"].endswith("年化收益率多少？")  # not someone else's chat
    officer = sidebar_for_customer(db, people["ops"], cid, NOW,
                                   archive=ArchiveAccess("wecom-main", member=None, read_all=True))
    assert [m["msgid"] for m in officer["customer"]["archive"]] == ["m2", "m1"]  # oldest first
    assert officer["latest_message"] == "那这个产品保本吗？"
    viewed = db.scalars(select(models.AuditEntry).where(models.AuditEntry.action == "workforce.archive_viewed"))
    assert [(a.actor, a.detail["via"]) for a in viewed] == [("ops", "sidebar")]


def test_the_sidebar_shows_each_role_what_the_read_policy_lets_it_read(db: Session,
                                                                       people: dict[str, Any]) -> None:
    """Issue 18 item 4 in the chat sidebar: the web app's one policy (engine/read_policy.py), as each role.
    王小明 has a ticket in group wealth (the agent's) and one in vip (nobody's here); retail's agent works none."""
    people["admin"] = _user(db, "root", "admin")
    cid = _customer(db)  # inbound message, and a wealth ticket
    customer = db.get(models.Customer, cid)
    assert customer is not None
    customer.attributes = {"mobile": "13800138000", "note": "她说 13800138000 是新号", "vip_level": 3}
    own = _ticket(db, cid, "wealth", "赎回咨询")
    other = _ticket(db, cid, "vip", "VIP 专线")
    journey = f"journey/welcome/{cid}"
    for key, text, workflow in ((f"ticket/{own.id}/reply/1", "赎回已受理", None),
                                (f"ticket/{other.id}/reply/1", "VIP专线回复", None),
                                (f"{journey}/hello/1", "欢迎礼包", journey)):
        db.add(models.Message(idempotency_key=key, customer_id=cid, channel="wecom", content=text, direction="out",
                              status="sent", workflow_id=workflow, created_at=NOW - timedelta(minutes=5)))
    greeting = library.create_script(db, people["mk"], ScriptSpec(title="问候", text="{{ customer.name }}您好"), NOW)
    plain = library.create_script(db, people["mk"], ScriptSpec(title="通知", text="活动明天开始"), NOW)
    library.create_rule(db, people["mk"], RuleSpec(name="猜号码", condition="customer.mobile == '13800138000'",
                                                   script_ids=[plain.id]), NOW)
    inbound = "我的卡号 **** **** **** 0128，请问这款产品年化收益率多少？"
    # role: (clear personal data, message texts it reads, texts listed as metadata only)
    expected = {
        "admin": (True, {"赎回已受理", "VIP专线回复", "欢迎礼包", inbound}, set()),
        "ops": (True, {"赎回已受理", "VIP专线回复", "欢迎礼包", inbound}, set()),
        "agent": (True, {"赎回已受理", inbound}, {"欢迎礼包"}),
        "retail": (False, set(), {"欢迎礼包", inbound}),
        "mk": (False, {"欢迎礼包", inbound}, {"赎回已受理", "VIP专线回复"}),
    }
    for who, (clear, reads, metadata) in expected.items():
        view = sidebar_for_customer(db, people[who], cid, NOW)
        shown = view["customer"]
        texts = {m["content"] for m in shown["messages"] if m["content"] is not None}
        assert texts == reads, who
        assert sum(1 for m in shown["messages"] if m["content"] is None) == len(metadata), who
        assert all(m.get("content_hidden") for m in shown["messages"] if m["content"] is None), who
        everything = repr(view)
        assert "6222021234567890128" not in everything, who
        hidden = {"赎回已受理", "VIP专线回复", "欢迎礼包"} - reads | (set() if inbound in reads else {"年化收益率"})
        for text in hidden:
            assert text not in everything, (who, text)
        suggested = [s["title"] for s in view["suggested"]]
        if clear:
            assert shown["name"] == "王小明" and shown["attributes"]["mobile"] == "138****8000", who
            assert not shown["pii_masked"] and suggested == ["通知"], who  # the condition could read the number
            used = use_script(db, people[who], greeting.id, NOW, customer_id=cid, chat_id=None)
            assert used["message"]["text"]["content"] == "王小明您好", who
        else:
            assert shown["pii_masked"] and "王小明" not in everything and "13800138000" not in everything, who
            assert shown["name"] == "王**" and shown["attributes"]["mobile"] == "138****8000", who
            assert shown["attributes"]["vip_level"] == 3 and suggested == [], who  # no oracle on masked data
            assert all(i["value"] != "13800138000" for i in shown["identities"]), who
            previews = {s["title"]: s["preview"] for s in view["scripts"]}
            assert previews["问候"] == "王**您好", who
            with pytest.raises(LibraryError, match="personal data") as refused:
                use_script(db, people[who], greeting.id, NOW, customer_id=cid, chat_id=None)
            assert refused.value.status == 403 and refused.value.field == "script_id"
            assert use_script(db, people[who], plain.id, NOW, customer_id=cid, chat_id=None)["message"]
        assert (view["latest_message"] == inbound) == (inbound in reads), who


def test_one_slow_script_leaves_the_others_previewed_and_says_its_own_reason(db: Session,
                                                                             people: dict[str, Any]) -> None:
    """The previews are evaluated in one pool call; when that call overruns its deadline (one script too slow),
    each script is evaluated on its own, so the others show their preview and only the slow one is not
    previewed, with the reason. A busy pool evaluated none of them: each says so."""
    from activities.sidebar.context import scripts_for
    from engine.isolation import EvaluationBusy, EvaluationTimeout

    cid = _customer(db)
    good = library.create_script(db, people["mk"], ScriptSpec(title="问候", text="{{ customer.name }}您好"), NOW)
    slow = library.create_script(db, people["mk"], ScriptSpec(title="慢", text="慢 {{ customer.name }}"), NOW)
    calls: list[int] = []

    def pool(fn: Any, *args: Any, **kwargs: Any) -> Any:  # the evaluation pool, with a deadline
        if fn.__name__ == "previews":
            calls.append(len(args[0]))
            if any(script_id == slow.id for script_id, _kind, _content in args[0]):
                raise EvaluationTimeout("the evaluation took longer than 2 s and was stopped")
        return fn(*args, **kwargs)

    listed = {s["id"]: s for s in sidebar_for_customer(db, people["agent"], cid, NOW, run=pool)["scripts"]}
    assert listed[good.id]["preview"] == "王小明您好" and "problem" not in listed[good.id]
    assert listed[slow.id]["preview"] == "" and "took longer than 2 s" in str(listed[slow.id]["problem"])
    assert calls[0] == 2 and sorted(calls[1:]) == [1, 1]  # the batch, then each on its own

    def busy(fn: Any, *args: Any, **kwargs: Any) -> Any:
        if fn.__name__ == "previews":
            raise EvaluationBusy("every evaluation process is busy")
        return fn(*args, **kwargs)

    listed = {s["id"]: s for s in scripts_for(db, people["agent"], None, run=busy)["scripts"]}
    assert all("busy" in str(s["problem"]) for s in listed.values()) and len(listed) == 2
