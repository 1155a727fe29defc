"""API-token authentication per request: read-only and cached, ``last_used_at`` written at most once a minute,
and a revocation or a disabled user takes effect at once in this process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event

from engine import auth
from engine.db.models import ApiToken
from engine.db.session import get_engine, session_factory, transaction


@contextmanager
def statements(url: str) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement.split()[0].upper() + " " + statement)

    engine = get_engine(url)
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_requests_read_the_token_without_writing_and_revocation_is_immediate(db_url: str) -> None:
    auth.forget_tokens()
    with transaction(db_url) as db:
        user = auth.create_user(db, "sender", "a-long-password-1", "developer")
        plaintext = auth.create_token(db, user, "ci")
    t0 = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
    with statements(db_url) as first:
        first_found = auth.token_user(db_url, plaintext, t0)
        assert first_found is not None and first_found[0].username == "sender" and first_found[1] == "full"
    assert any(s.startswith("UPDATE") for s in first)  # first use: last_used_at recorded
    with statements(db_url) as later:
        for second in range(1, 50):
            found = auth.token_user(db_url, plaintext, t0 + timedelta(seconds=second))
            assert found is not None and found[0].role == "developer" and found[1] == "full"
    assert later == [], later[:3]  # within the minute and the cache: no statement at all, no write lock
    auth.forget_tokens()
    with statements(db_url) as after_a_minute:
        assert auth.token_user(db_url, plaintext, t0 + timedelta(seconds=61)) is not None
    assert [s.split()[0] for s in after_a_minute if not s.startswith(("SELECT", "BEGIN", "COMMIT"))] == ["UPDATE"]
    with session_factory(db_url)() as db:
        assert db.query(ApiToken).one().last_used_at == t0 + timedelta(seconds=61)

    with transaction(db_url) as db:
        token = db.query(ApiToken).one()
        auth.revoke_token(db, token.id, db.merge(user))
    assert auth.token_user(db_url, plaintext, t0 + timedelta(seconds=62)) is None
    assert auth.token_user(db_url, "tf_" + "x" * 300) is None


def test_a_cached_lookup_is_answered_without_the_database_until_it_needs_it(db_url: str) -> None:
    """The web answers most requests' tokens on its event loop (no thread hop): only from a fresh cached lookup
    whose last use needs no writing; anything else is None, and the caller asks :func:`auth.token_user`."""
    auth.forget_tokens()
    with transaction(db_url) as db:
        user = auth.create_user(db, "cached", "a-long-password-2", "developer")
        plaintext = auth.create_token(db, user, "ci")
    t0 = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
    assert auth.cached_token_user(plaintext, t0) is None  # never looked up in this process
    assert auth.token_user(db_url, plaintext, t0) is not None
    with statements(db_url) as seen:
        found = auth.cached_token_user(plaintext, t0 + timedelta(seconds=30))
        assert found is not None and found[0].username == "cached" and found[1] == "full"
    assert seen == []
    # last used a minute ago: the touch is due, so the database is needed
    assert auth.cached_token_user(plaintext, t0 + timedelta(seconds=61)) is None
    assert auth.cached_token_user("tf_" + "x" * 300, t0) is None
    assert auth.cached_token_user("not-a-token", t0) is None
    with transaction(db_url) as db:
        auth.revoke_token(db, db.query(ApiToken).one().id, db.merge(user))
    assert auth.cached_token_user(plaintext, t0 + timedelta(seconds=31)) is None  # revoked here: at once
