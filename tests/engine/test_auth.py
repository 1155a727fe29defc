"""Users, passwords, API tokens, web sessions, lockout and the audit log (engine side)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from engine import auth
from engine.db.models import ApiToken, AuditEntry, User, WebSession
from engine.db.session import session_factory, transaction

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


@pytest.fixture
def alice(db_url: str) -> int:
    with transaction(db_url) as db:
        return auth.create_user(db, "Alice", PASSWORD, "marketer", display_name="Alice Liu").id


def _user(db_url: str, user_id: int) -> User:
    with session_factory(db_url)() as db:  # a read: it may run while a write transaction is open
        user = db.get(User, user_id)
        assert user is not None
        return user


# --- users ---------------------------------------------------------------------------------------


def test_create_user_hashes_the_password_and_normalises_the_name(db_url: str, alice: int) -> None:
    user = _user(db_url, alice)
    assert user.username == "alice"
    assert user.display_name == "Alice Liu"
    assert user.role == "marketer"
    assert PASSWORD not in user.password_hash
    assert user.password_hash.startswith("$argon2id$")
    assert PasswordHasher().verify(user.password_hash, PASSWORD)


def test_duplicate_username_is_refused_case_insensitively(db_url: str, alice: int) -> None:
    with transaction(db_url) as db, pytest.raises(auth.AuthError, match="already taken"):
        auth.create_user(db, " ALICE ", "another password", "ops")


def test_unknown_role_names_the_allowed_ones(db_url: str) -> None:
    with transaction(db_url) as db, pytest.raises(auth.AuthError) as err:
        auth.create_user(db, "bob", "long enough pw", "superuser")
    assert "superuser" in str(err.value)
    for role in auth.ROLES:
        assert role in str(err.value)


def test_weak_password_is_refused_with_the_minimum(db_url: str) -> None:
    with transaction(db_url) as db, pytest.raises(auth.AuthError, match="at least 8 characters"):
        auth.create_user(db, "bob", "short", "agent")
    assert issubclass(auth.AuthError, ValueError)


@pytest.mark.parametrize("name", ["", "   ", "two words", "x" * 81])
def test_bad_usernames_are_refused(db_url: str, name: str) -> None:
    with transaction(db_url) as db, pytest.raises(auth.AuthError):
        auth.create_user(db, name, PASSWORD, "agent")


def test_user_creation_is_audited_without_the_password(db_url: str, alice: int) -> None:
    with transaction(db_url) as db:
        entries = list(db.scalars(select(AuditEntry).where(AuditEntry.action == "user.created")))
    assert [e.target for e in entries] == ["user:alice"]
    assert PASSWORD not in repr([e.detail for e in entries])


def test_has_role_lets_admin_do_everything() -> None:
    admin = User(username="root", role="admin")
    agent = User(username="a", role="agent")
    assert auth.has_role(admin, "finance")
    assert auth.has_role(agent, "agent", "ops")
    assert not auth.has_role(agent, "marketer")
    assert auth.has_role(agent)


# --- API tokens ----------------------------------------------------------------------------------


def test_token_is_returned_once_and_stored_only_as_a_hash(db_url: str, alice: int) -> None:
    with transaction(db_url) as db:
        plaintext = auth.create_token(db, _user(db_url, alice), "ci")
    assert plaintext.startswith("tf_") and len(plaintext) > 40
    with transaction(db_url) as db:
        row = db.scalars(select(ApiToken)).one()
        assert row.token_hash == hashlib.sha256(plaintext.encode()).hexdigest()
        assert row.prefix == plaintext[:8]
        assert row.name == "ci"
        assert plaintext not in repr([e.detail for e in db.scalars(select(AuditEntry))])


def test_authenticate_token(db_url: str, alice: int) -> None:
    with transaction(db_url) as db:
        plaintext = auth.create_token(db, _user(db_url, alice), "ci")
    with transaction(db_url) as db:
        user = auth.authenticate_token(db, plaintext)
        assert user is not None and user.id == alice
        assert auth.authenticate_token(db, plaintext + "x") is None
        assert auth.authenticate_token(db, "tf_unknown") is None
        assert auth.authenticate_token(db, "not-a-token") is None
        assert auth.authenticate_token(db, "") is None


def test_last_used_at_is_touched_at_most_once_a_minute(db_url: str, alice: int) -> None:
    with transaction(db_url) as db:
        plaintext = auth.create_token(db, _user(db_url, alice), "ci")

    def last_used() -> datetime | None:
        with transaction(db_url) as db:
            return db.scalars(select(ApiToken)).one().last_used_at

    for at in (T0, T0 + timedelta(seconds=30), T0 + timedelta(seconds=61)):
        with transaction(db_url) as db:
            assert auth.authenticate_token(db, plaintext, now=at) is not None
        if at == T0 + timedelta(seconds=30):
            assert last_used() == T0
    assert last_used() == T0 + timedelta(seconds=61)


def test_revoked_token_and_disabled_user_are_refused(db_url: str, alice: int) -> None:
    with transaction(db_url) as db:
        bob = auth.create_user(db, "bob", PASSWORD, "ops")
        alice_token, alice_plain = auth.issue_token(db, _user(db_url, alice), "ci")
        bob_plain = auth.create_token(db, bob, "bob's")
    with transaction(db_url) as db:
        revoked = auth.revoke_token(db, alice_token.id, _user(db_url, alice))
        assert revoked.revoked_at is not None
        assert auth.revoke_token(db, alice_token.id, _user(db_url, alice)).revoked_at == revoked.revoked_at
        assert auth.authenticate_token(db, alice_plain) is None
        bob_user = auth.find_user(db, "bob")
        assert bob_user is not None
        bob_user.disabled_at = T0
    with transaction(db_url) as db:
        assert auth.authenticate_token(db, bob_plain) is None


def test_only_the_owner_or_an_admin_may_revoke(db_url: str, alice: int) -> None:
    with transaction(db_url) as db:
        mallory = auth.create_user(db, "mallory", PASSWORD, "agent")
        root = auth.create_user(db, "root", PASSWORD, "admin")
        token, plaintext = auth.issue_token(db, _user(db_url, alice), "ci")
    with transaction(db_url) as db:
        with pytest.raises(auth.TokenNotFound, match=f"no API token with id {token.id}"):
            auth.revoke_token(db, token.id, mallory)
        with pytest.raises(auth.TokenNotFound):
            auth.revoke_token(db, 99999, root)
        assert auth.authenticate_token(db, plaintext) is not None
        auth.revoke_token(db, token.id, root)
        assert auth.authenticate_token(db, plaintext) is None
        assert [t.id for t in auth.list_tokens(db, _user(db_url, alice))] == [token.id]
        assert auth.list_tokens(db, mallory) == []


def test_token_needs_a_name(db_url: str, alice: int) -> None:
    with transaction(db_url) as db, pytest.raises(auth.AuthError, match="name"):
        auth.create_token(db, _user(db_url, alice), "  ")


# --- web sessions --------------------------------------------------------------------------------


def test_login_opens_a_twelve_hour_session(db_url: str, alice: int) -> None:
    with transaction(db_url) as db:
        user, session_token, csrf = auth.login(db, "ALICE", PASSWORD, T0)
    assert user.id == alice
    assert session_token != csrf and len(session_token) >= 40 and len(csrf) >= 40
    with transaction(db_url) as db:
        stored = db.scalars(select(WebSession)).one()
        assert stored.token_hash == hashlib.sha256(session_token.encode()).hexdigest()
        assert stored.expires_at == T0 + timedelta(hours=12)
        found = auth.session_user(db, session_token, T0 + timedelta(hours=11, minutes=59))
        assert found is not None
        assert found[0].id == alice and found[1].csrf_token == csrf
        assert auth.session_user(db, session_token, T0 + timedelta(hours=12)) is None
        assert auth.session_user(db, "nonsense", T0) is None
        assert auth.session_user(db, "", T0) is None


def test_logout_ends_the_session(db_url: str, alice: int) -> None:
    with transaction(db_url) as db:
        _, session_token, _ = auth.login(db, "alice", PASSWORD, T0)
    with transaction(db_url) as db:
        auth.logout(db, session_token)
        auth.logout(db, "unknown")
    with transaction(db_url) as db:
        assert auth.session_user(db, session_token, T0) is None
        assert "logout" in set(db.scalars(select(AuditEntry.action)))


def test_wrong_password_and_unknown_user_fail_alike(db_url: str, alice: int) -> None:
    messages = []
    for name, password in (("alice", "wrong password"), ("nobody", "wrong password")):
        with transaction(db_url) as db, pytest.raises(auth.LoginFailed) as err:
            auth.login(db, name, password, T0)
        messages.append(str(err.value))
    assert messages[0] == messages[1] == "wrong username or password"


def test_disabled_user_cannot_log_in_and_loses_sessions(db_url: str, alice: int) -> None:
    with transaction(db_url) as db:
        _, session_token, _ = auth.login(db, "alice", PASSWORD, T0)
        user = db.get(User, alice)
        assert user is not None
        user.disabled_at = T0
    with transaction(db_url) as db:
        assert auth.session_user(db, session_token, T0) is None
        with pytest.raises(auth.LoginFailed):
            auth.login(db, "alice", PASSWORD, T0)


def _fail(db_url: str, now: datetime, password: str = "wrong password") -> Exception:  # noqa: S107
    """One login attempt, caught inside the transaction as the designer does, so the counter sticks."""
    with transaction(db_url) as db:
        try:
            auth.login(db, "alice", password, now)
        except auth.AuthError as exc:
            return exc
    raise AssertionError("login unexpectedly succeeded")


def test_five_failures_lock_the_account_for_fifteen_minutes(db_url: str, alice: int) -> None:
    for i in range(4):
        assert isinstance(_fail(db_url, T0 + timedelta(seconds=i)), auth.LoginFailed)
    fifth = _fail(db_url, T0 + timedelta(seconds=4))
    assert isinstance(fifth, auth.LoginLocked)
    unlock = T0 + timedelta(seconds=4, minutes=15)
    assert fifth.until == unlock
    assert "locked until 2025-03-01 09:15:04 UTC" in str(fifth)
    assert fifth.retry_after(T0 + timedelta(seconds=4)) == 15 * 60

    # the right password does not help while locked
    during = _fail(db_url, T0 + timedelta(minutes=10), PASSWORD)
    assert isinstance(during, auth.LoginLocked) and during.until == unlock

    with transaction(db_url) as db:
        user, _, _ = auth.login(db, "alice", PASSWORD, unlock)
        assert user.failed_logins == 0 and user.locked_until is None
        actions = list(db.scalars(select(AuditEntry.action)))
    assert actions.count("login.failed") == 4
    assert actions.count("user.locked") == 1


def test_success_resets_the_failure_count(db_url: str, alice: int) -> None:
    for i in range(4):
        _fail(db_url, T0 + timedelta(seconds=i))
    with transaction(db_url) as db:
        auth.login(db, "alice", PASSWORD, T0 + timedelta(seconds=5))
    for i in range(4):
        assert isinstance(_fail(db_url, T0 + timedelta(seconds=10 + i)), auth.LoginFailed)


def test_failures_rolled_back_do_not_count(db_url: str, alice: int) -> None:
    for _ in range(6):
        with pytest.raises(auth.LoginFailed), transaction(db_url) as db:
            auth.login(db, "alice", "wrong password", T0)
    assert _user(db_url, alice).failed_logins == 0


def test_outdated_hash_is_upgraded_on_login(db_url: str, alice: int) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    with transaction(db_url) as db:
        user = db.get(User, alice)
        assert user is not None
        user.password_hash = weak.hash(PASSWORD)
    with transaction(db_url) as db:
        auth.login(db, "alice", PASSWORD, T0)
    upgraded = _user(db_url, alice).password_hash
    assert not PasswordHasher().check_needs_rehash(upgraded)
    assert PasswordHasher().verify(upgraded, PASSWORD)


def test_naive_datetimes_are_refused(db_url: str, alice: int) -> None:
    with transaction(db_url) as db, pytest.raises(ValueError, match="naive"):
        auth.login(db, "alice", PASSWORD, datetime(2025, 1, 1))


# --- audit and first run -------------------------------------------------------------------------


def test_audit_never_stores_secret_looking_values(db_url: str) -> None:
    with transaction(db_url) as db:
        entry = auth.audit(db, "system", "settings.changed", "connector:wecom", {
            "password": "p", "api_key": "k", "token": "t", "client_secret": "s",
            "nested": {"session_token": "x", "corp_id": "ww123"}, "token_id": 7, "prefix": "tf_abcde",
        })
    with transaction(db_url) as db:
        stored = db.get(AuditEntry, entry.id)
        assert stored is not None
        assert stored.detail == {
            "password": "***", "api_key": "***", "token": "***", "client_secret": "***",
            "nested": {"session_token": "***", "corp_id": "ww123"}, "token_id": 7, "prefix": "tf_abcde",
        }
        assert stored.actor == "system" and stored.target == "connector:wecom"


def test_ensure_demo_admin_only_on_an_empty_database(db_url: str) -> None:
    with transaction(db_url) as db:
        created = auth.ensure_demo_admin(db)
    assert created is not None
    username, password = created
    assert username == "admin" and len(password) >= 12
    with transaction(db_url) as db:
        user, _, _ = auth.login(db, username, password, T0)
        assert user.role == "admin"
        assert auth.ensure_demo_admin(db) is None
        assert password not in repr([e.detail for e in db.scalars(select(AuditEntry))])
