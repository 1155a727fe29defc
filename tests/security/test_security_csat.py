"""Survey links (``/csat/<id>/<token>``) expire and cannot be forged or stretched (issue 18, item 6).
The single use is checked through the pages in tests/designer/test_pages_tickets.py and the stack test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from activities.tickets.survey import check, link_token

KEY = "test-instance-key"
SENT = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def test_a_link_works_until_it_expires() -> None:
    token = link_token(42, SENT, days=14, key=KEY)
    assert check(42, token, SENT + timedelta(days=13, hours=23), KEY) == "ok"
    assert check(42, token, SENT + timedelta(days=14, seconds=1), KEY) == "expired"


def test_a_link_cannot_be_moved_to_another_ticket_or_stretched() -> None:
    token = link_token(42, SENT, key=KEY)
    expires, mac = token.split(".")
    assert check(43, token, SENT, KEY) == "invalid"
    assert check(42, f"{int(expires) + 86_400 * 365}.{mac}", SENT, KEY) == "invalid"
    assert check(42, token, SENT, "another-instance") == "invalid"
    assert check(42, "garbage", SENT, KEY) == "invalid"


def test_links_of_the_old_form_never_expired_so_they_are_refused_now() -> None:
    import hashlib
    import hmac

    secret = hashlib.sha256(b"tideflow/csat/v1\x00" + KEY.encode()).digest()
    old = hmac.new(secret, b"ticket:42", hashlib.sha256).hexdigest()[:40]
    assert check(42, old, SENT, KEY) == "expired"


# -- through the public pages ------------------------------------------------------------------------------
from fastapi import FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from designer.tickets.csat import csat_token  # noqa: E402
from tests.designer.ticket_pages_kit import app, make  # noqa: E402,F401  (the ticket pages' fixture)


def test_an_expired_link_is_gone_and_a_used_link_rates_nothing_more(app: FastAPI, db_url: str) -> None:  # noqa: F811
    from sqlalchemy import update

    from engine.db import models
    from engine.db.session import transaction

    tid = make(db_url, customer=True)
    with transaction(db_url) as db:
        db.execute(update(models.Ticket).where(models.Ticket.id == tid).values(status="resolved"))
    public = TestClient(app)
    stale = csat_token(tid, now=datetime.now(UTC) - timedelta(days=15))
    gone = public.get(f"/csat/{tid}/{stale}")
    assert gone.status_code == 410 and "过期" in gone.text
    assert public.post(f"/csat/{tid}/{stale}", data={"score": "5"}).status_code == 410
    fresh = csat_token(tid)
    assert public.post(f"/csat/{tid}/{fresh}", data={"score": "4"}).status_code == 200
    again = public.post(f"/csat/{tid}/{fresh}", data={"score": "1"})
    assert again.status_code == 409  # single use
    assert "4" in public.get(f"/csat/{tid}/{fresh}").text and public.get(f"/csat/{tid}/{fresh}").status_code == 200
