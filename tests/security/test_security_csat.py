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
