"""Identity resolution: many channel ids → one customer; a new link merges customers (engine.customers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from engine import customers
from engine.customers import IdentityError, canonical, customer_view, normalise, resolve, tags_of
from engine.db import models
from engine.db.session import transaction
from tests.racing import race


# -- normalisation (pure) ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw",
    ["13800138000", "138 0013 8000", "138-0013-8000", "(138)00138000", "8613800138000", "+8613800138000",
     "+86 138 0013 8000", " 13800138000 ", 13800138000],
)
def test_chinese_mobiles_become_e164(raw: str | int) -> None:
    assert normalise("phone", raw) == "+8613800138000"


def test_other_international_numbers_are_kept() -> None:
    assert normalise("phone", "+1 (415) 555-0100") == "+14155550100"


@pytest.mark.parametrize("raw", ["12345", "phone", "+86", "010-1234", "23800138000x", ""])
def test_bad_phones_are_refused(raw: str) -> None:
    with pytest.raises(IdentityError, match=r"use e\.g\. \+8613800138000|1–200 characters"):
        normalise("phone", raw)


def test_phone_error_masks_the_number() -> None:
    with pytest.raises(IdentityError, match=r"phone '238\*\*\*\*3800' is not a phone number") as exc:
        normalise("phone", "2380013800")
    assert "2380013800" not in str(exc.value)


def test_emails_are_lower_cased() -> None:
    assert normalise("email", "  Li.Lei@Example.COM ") == "li.lei@example.com"
    with pytest.raises(IdentityError, match="not an email"):
        normalise("email", "li.lei@example")


def test_other_kinds_are_trimmed_only() -> None:
    assert normalise("wecom_external_userid", " wmAbCdEf ") == "wmAbCdEf"


@pytest.mark.parametrize("value", [None, True, 1.5, ["x"], "", "x" * 201])
def test_unusable_values(value: object) -> None:
    with pytest.raises(IdentityError):
        normalise("external_id", value)


@pytest.mark.parametrize("kind", ["phone", "email", "wecom_external_userid", "wechat_openid", "wechat_unionid",
                                  "external_id", "customer_id", "youzan_buyer", "taobao_buyer", "shopify_buyer"])
def test_known_kinds(kind: str) -> None:
    customers.check_kind(kind)


@pytest.mark.parametrize("kind", ["mobile", "qq", "amazon_buyer", "Phone"])
def test_unknown_kinds_list_the_known_ones(kind: str) -> None:
    with pytest.raises(IdentityError, match=f"unknown identity kind '{kind}'; use one of customer_id, email"):
        customers.check_kind(kind)


def test_mask_phone() -> None:
    masked = customers.mask_phone("+8613800138000")
    assert masked.endswith("****8000") and "13800138000" not in masked
    assert customers.mask_phone("123") == "****"


# -- resolve -------------------------------------------------------------------------------------------
def _identities(db_url: str, customer_id: str) -> set[tuple[str, str]]:
    with transaction(db_url) as db:
        return {(i.kind, i.value) for i in db.scalars(
            select(models.Identity).where(models.Identity.customer_id == customer_id))}


def test_resolve_creates_a_customer_with_normalised_identities(db_url: str) -> None:
    with transaction(db_url) as db:
        cid = resolve(db, {"phone": "138 0013 8000", "email": "Li@Example.com"}, "李雷", {"vip_level": 2})
    assert cid.startswith("c_")
    assert _identities(db_url, cid) == {("phone", "+8613800138000"), ("email", "li@example.com")}
    with transaction(db_url) as db:
        customer = db.get(models.Customer, cid)
        assert customer is not None
        assert (customer.name, customer.attributes, customer.merged_into) == ("李雷", {"vip_level": 2}, None)


def test_events_racing_on_one_new_identity_make_one_customer(any_db_url: str) -> None:
    """A store writes a new customer and identity with its event row, in one flush: a concurrent store of the
    same new identity collides on that flush (or the commit), is retried and finds the winner's customer."""
    from engine.events import EventIn, store_many

    def one(i: int) -> str:  # with a timezone the collision comes at the autoflush before reading the customer
        profile = {"timezone": "Asia/Shanghai"} if i % 2 else None
        stored = store_many([EventIn(id=f"race-{i}", type="custom.race", source="api",
                                     customer={"phone": "13800138000"}, profile=profile)], any_db_url)
        return str(stored[0].payload["customer_id"])

    results = race(6, one)
    assert all(isinstance(r, str) for r in results), results
    assert len(set(results)) == 1
    with transaction(any_db_url) as db:
        assert db.scalars(select(models.Customer.id)).all() == [results[0]]
        assert db.get(models.Customer, results[0]).timezone == "Asia/Shanghai"  # type: ignore[union-attr]
        assert len(db.scalars(select(models.EventRecord.id)).all()) == 6


def test_resolve_finds_the_same_customer_by_any_spelling(db_url: str) -> None:
    with transaction(db_url) as db:
        first = resolve(db, {"phone": "13800138000"})
    with transaction(db_url) as db:
        assert resolve(db, {"phone": "+86 138-0013-8000"}) == first
        assert db.scalar(select(models.Customer.id).where(models.Customer.id != first)) is None


def test_resolve_links_a_new_identity_to_the_known_customer(db_url: str) -> None:
    with transaction(db_url) as db:
        cid = resolve(db, {"wecom_external_userid": "wm001"}, "韩梅梅")
    with transaction(db_url) as db:
        assert resolve(db, {"wecom_external_userid": "wm001", "phone": "13900139000"},
                       "Meimei", {"city": "上海"}) == cid
    assert _identities(db_url, cid) == {("wecom_external_userid", "wm001"), ("phone", "+8613900139000")}
    with transaction(db_url) as db:
        customer = db.get(models.Customer, cid)
        assert customer is not None
        assert customer.name == "韩梅梅"  # a known name is not overwritten
        assert customer.attributes == {"city": "上海"}


def test_resolve_by_customer_id(db_url: str) -> None:
    with transaction(db_url) as db:
        cid = resolve(db, {"email": "a@example.com"})
    with transaction(db_url) as db:
        assert resolve(db, {"customer_id": cid, "external_id": "crm-1"}) == cid
    assert ("external_id", "crm-1") in _identities(db_url, cid)
    with transaction(db_url) as db, pytest.raises(IdentityError, match="does not exist"):
        resolve(db, {"customer_id": "c_nobody"})


def test_resolve_refuses_bad_identities_and_writes_nothing(db_url: str) -> None:
    with pytest.raises(IdentityError), transaction(db_url) as db:
        resolve(db, {"email": "ok@example.com", "qq": "12345"})
    with transaction(db_url) as db:
        assert db.scalar(select(models.Customer.id)) is None


def _merge_two(db_url: str) -> tuple[str, str, str]:
    """Customer A known by phone (older), B by WeChat openid; then an event links both."""
    with transaction(db_url) as db:
        a = resolve(db, {"phone": "13800138000"}, "李雷", {"orders_count": 3, "city": "杭州"})
        db.add(models.CustomerTag(customer_id=a, tag="尝鲜客"))
        db.add(models.CustomerTag(customer_id=a, tag="VIP"))
        db.get(models.Customer, a).created_at = datetime.now(UTC) - timedelta(days=3)  # type: ignore[union-attr]
    with transaction(db_url) as db:
        b = resolve(db, {"wechat_openid": "oAbc123"}, None, {"orders_count": 0, "gender": "m"})
        db.add(models.CustomerTag(customer_id=b, tag="VIP"))
        db.add(models.CustomerTag(customer_id=b, tag="公众号粉丝"))
        db.get(models.Customer, b).consent = {"wechat_oa": "opted_out"}  # type: ignore[union-attr]
        db.add(models.EventRecord(source="wechat", external_id="e1", type="wechat.subscribed", customer_id=b,
                                  occurred_at=datetime.now(UTC)))
    with transaction(db_url) as db:
        survivor = resolve(db, {"phone": "+8613800138000", "wechat_openid": "oAbc123", "email": "li@example.com"})
    return a, b, survivor


def test_a_linking_event_merges_two_customers_into_the_older(db_url: str) -> None:
    a, b, survivor = _merge_two(db_url)
    assert survivor == a
    assert _identities(db_url, a) == {("phone", "+8613800138000"), ("wechat_openid", "oAbc123"),
                                      ("email", "li@example.com")}
    assert _identities(db_url, b) == set()
    with transaction(db_url) as db:
        loser = db.get(models.Customer, b)
        winner = db.get(models.Customer, a)
        assert loser is not None and winner is not None
        assert loser.merged_into == a and winner.merged_into is None
        assert tags_of(db, a) == ["VIP", "公众号粉丝", "尝鲜客"]
        assert tags_of(db, b) == []
        # the survivor's values win; the other's fill the gaps
        assert winner.attributes == {"orders_count": 3, "city": "杭州", "gender": "m"}
        assert winner.consent == {"wechat_oa": "opted_out"}
        assert winner.name == "李雷"
        assert db.scalar(select(models.EventRecord.customer_id)) == a
        audit = db.scalars(select(models.AuditEntry).where(models.AuditEntry.action == "customer.merged")).all()
        assert [(e.target, e.detail) for e in audit] == [(a, {"merged": b})]


def test_canonical_follows_merge_pointers(db_url: str) -> None:
    a, b, _ = _merge_two(db_url)
    with transaction(db_url) as db:
        assert canonical(db, b) == a
        assert canonical(db, a) == a
        assert canonical(db, "c_unknown") == "c_unknown"
        # the old id still resolves, and the view shows the survivor
        assert resolve(db, {"customer_id": b}) == a
        view = customer_view(db, b)
    assert view["id"] == a and view["name"] == "李雷" and view["tags"] == ["VIP", "公众号粉丝", "尝鲜客"]
    assert view["orders_count"] == 3 and view["gender"] == "m"


def test_merge_chains_are_followed(db_url: str) -> None:
    a, b, _ = _merge_two(db_url)
    with transaction(db_url) as db:
        c = resolve(db, {"youzan_buyer": "yz-9"})
        db.get(models.Customer, c).created_at = datetime.now(UTC) - timedelta(days=30)  # type: ignore[union-attr]
    with transaction(db_url) as db:
        assert resolve(db, {"youzan_buyer": "yz-9", "wechat_openid": "oAbc123"}) == c  # c is the oldest now
        assert canonical(db, b) == c and canonical(db, a) == c
        assert tags_of(db, c) == ["VIP", "公众号粉丝", "尝鲜客"]


def test_a_merge_pointer_cycle_does_not_hang(db_url: str) -> None:
    with transaction(db_url) as db:
        a = resolve(db, {"external_id": "a"})
        b = resolve(db, {"external_id": "b"})
        db.get(models.Customer, a).merged_into = b  # type: ignore[union-attr]
        db.get(models.Customer, b).merged_into = a  # type: ignore[union-attr]
        db.flush()
        assert canonical(db, a) in {a, b}


def test_customer_view(db_url: str) -> None:
    with transaction(db_url) as db:
        cid = resolve(db, {"phone": "13800138000"}, "李雷", {"birthday": "1990-05-01", "name": "attribute"})
        db.add(models.CustomerTag(customer_id=cid, tag="尝鲜客"))
    with transaction(db_url) as db:
        view = customer_view(db, cid)
        assert customer_view(db, None) == {} and customer_view(db, "c_nobody") == {}
    assert view == {"birthday": "1990-05-01", "name": "李雷", "id": cid, "timezone": None, "tags": ["尝鲜客"]}


def test_a_merge_moves_journeys_orders_and_coupons_and_keeps_the_old_ids_reachable(db_url: str) -> None:
    """The journeys (the enrolment bookkeeping and what the router signals) move with the merge."""
    from engine.customers import merged_ids

    with transaction(db_url) as db:
        a = resolve(db, {"external_id": "A-1"})
        b = resolve(db, {"phone": "13800138000"})
        db.add_all([models.Journey(workflow_id=f"journey/f/{cid}", flow_id="f", version=1, customer_id=cid,
                                   status="waiting", checkpoint=1) for cid in (a, b)])
        db.add(models.Order(channel="api", shop="s", order_id="o1", source="api", customer_id=b, status="paid",
                            amount_fen=100))
    with transaction(db_url) as db:
        survivor = resolve(db, {"external_id": "A-1", "phone": "+8613800138000"})
    assert survivor == a
    with transaction(db_url) as db:
        journeys = {j.workflow_id: j.customer_id for j in db.scalars(select(models.Journey))}
        assert journeys == {f"journey/f/{a}": a, f"journey/f/{b}": a}
        assert db.scalar(select(models.Order.customer_id)) == a
        assert set(merged_ids(db, b)) == set(merged_ids(db, a)) == {a, b}
        db.add(models.Journey(workflow_id="journey/g/late", flow_id="g", version=1, customer_id=b, status="running",
                              checkpoint=0))  # a row written under the old id after the merge (a race)
    with transaction(db_url) as db:
        from engine.router import entry_history
        assert len(entry_history(db, ["g"], merged_ids(db, a)).of("g", *merged_ids(db, a))) == 1
