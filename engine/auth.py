"""Who may use Tideflow: users and roles, API tokens, web sessions, and the audit log.

This module is the engine side of authentication and knows nothing of HTTP; the
designer's ``designer/auth.py`` turns it into FastAPI dependencies and routes.

Decisions worth knowing:

- Usernames are case-insensitive: they are stored stripped and lower-cased, and
  ``login`` lower-cases what it is given. The display name keeps the user's own spelling.
- Passwords are hashed with argon2id (``argon2-cffi``'s defaults); a hash made
  with older parameters is upgraded on the next successful login.
- Secrets are never stored in plaintext: API tokens and session tokens are kept
  as SHA-256 hex digests, so a leaked database does not leak working credentials.
  (They are long random strings, so a fast hash is the right tool; passwords are
  not, so they get argon2.)
- Functions take the caller's ``Session`` and never commit: the caller owns the
  transaction (``engine.db.session.transaction``). ``login`` is the one place where
  that matters on failure — see its docstring.
- Every audit write goes through :func:`audit`, which refuses to store anything
  that looks like a secret.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from engine.db.models import ApiToken, AuditEntry, User, WebSession
from engine.db.people_models import PasswordLink
from engine.text import Msg, MsgError

ROLES: Final[tuple[str, ...]] = ("admin", "marketer", "ops", "agent", "finance", "developer", "auditor")
"""Every role a user may have. ``admin`` may do everything the others may."""

MIN_PASSWORD_LENGTH: Final = 8
MAX_PASSWORD_LENGTH: Final = 1024  # bounds the work one login attempt can cause
MAX_FAILED_LOGINS: Final = 5
LOCKOUT: Final = timedelta(minutes=15)
SESSION_LIFETIME: Final = timedelta(hours=12)
TOKEN_PREFIX: Final = "tf_"  # noqa: S105 - a marker, not a secret
TOKEN_DISPLAY_CHARS: Final = 8
TOKEN_TOUCH_INTERVAL: Final = timedelta(minutes=1)
#: what an API token may do: ``full`` — everything its user's role may; ``read`` — only reading (GET, HEAD);
#: ``events`` — only sending events (``POST /api/events…``) and reading
TOKEN_SCOPES: Final[tuple[str, ...]] = ("full", "read", "events")
#: how long an invitation or a password-reset link works
INVITE_LIFETIME: Final = timedelta(days=7)
RESET_LIFETIME: Final = timedelta(days=1)
LINK_PREFIX: Final = "pl_"

_hasher = PasswordHasher()


class AuthError(MsgError):
    """A request about users, tokens or sessions that cannot be honoured; the message says why."""


class LoginFailed(AuthError):
    """Wrong username or password (deliberately not saying which)."""

    def __init__(self) -> None:
        super().__init__(Msg("wrong username or password"))


class LoginLocked(AuthError):
    """Too many failed logins: the account is locked until ``until`` (UTC)."""

    def __init__(self, until: datetime) -> None:
        self.until = until
        super().__init__(
            Msg("too many failed logins; the account is locked until %(until)s UTC",
                until=until.strftime('%Y-%m-%d %H:%M:%S'))
        )

    def retry_after(self, now: datetime) -> int:
        """Whole seconds until the account unlocks (at least 1)."""
        return max(1, int((self.until - now).total_seconds() + 0.999))


class TokenNotFound(AuthError):
    """No API token with that id that the caller may manage."""


# --- roles -------------------------------------------------------------------------------------


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AuthError(Msg("unknown role %(role)s; the roles are: %(roles)s", role=repr(role),
                            roles=", ".join(ROLES)))
    return role


def has_role(user: User, *roles: str) -> bool:
    """True when ``user`` has one of ``roles`` (or any role when none are named). Admin passes every check."""
    return user.role == "admin" or not roles or user.role in roles


# --- passwords ---------------------------------------------------------------------------------


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AuthError(Msg("the password is too short: use at least %(n)s characters", n=MIN_PASSWORD_LENGTH))
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AuthError(Msg("the password is too long: use at most %(n)s characters", n=MAX_PASSWORD_LENGTH))
    if not password.strip():
        raise AuthError(Msg("the password cannot be only spaces"))


def random_password() -> str:
    """A password nobody knows: an invited user's until they set their own through the link."""
    return secrets.token_urlsafe(24)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def normalize_username(username: str) -> str:
    return username.strip().lower()


# --- users -------------------------------------------------------------------------------------


def find_user(db: Session, username: str) -> User | None:
    return db.scalar(select(User).where(User.username == normalize_username(username)))


def create_user(
    db: Session, username: str, password: str, role: str, display_name: str | None = None,
    *, created_by: User | str = "system",
) -> User:
    """Add a user. Raises :class:`AuthError` for a taken username, an unknown role or a weak password.

    The username is stored stripped and lower-cased (usernames are case-insensitive).
    """
    name = normalize_username(username)
    if not name:
        raise AuthError(Msg("the username is empty"))
    if len(name) > 80:
        raise AuthError(Msg("the username is too long: use at most 80 characters"))
    if any(ch.isspace() or not ch.isprintable() for ch in name):
        raise AuthError(Msg("the username cannot contain spaces or control characters"))
    check_role(role)
    check_password_strength(password)
    if find_user(db, name) is not None:
        raise AuthError(Msg("the username %(name)s is already taken", name=repr(name)))
    if display_name is not None:
        display_name = display_name.strip()[:120] or None
    user = User(username=name, password_hash=hash_password(password), role=role,
                display_name=display_name, failed_logins=0)
    db.add(user)
    db.flush()
    audit(db, created_by, "user.created", f"user:{name}", {},
          after={"role": role, "display_name": display_name})
    return user


def user_by_id(db: Session, user_id: int) -> User:
    user = db.get(User, user_id)
    if user is None:
        raise AuthError(Msg("no user with id %(user_id)s", user_id=user_id))
    return user


def set_role(db: Session, user: User, role: str, by: User | str) -> User:
    """Give ``user`` another role (audited before → after). An admin cannot take the admin role from the
    last active admin, so the workspace always has someone who can manage it."""
    check_role(role)
    if user.role == role:
        return user
    if user.role == "admin" and user.disabled_at is None and _active_admins(db) <= 1:
        raise AuthError(Msg("this is the last active admin; make another user admin first"))
    before = user.role
    user.role = role
    audit(db, by, "user.role_changed", f"user:{user.username}", {}, before={"role": before}, after={"role": role})
    forget_tokens()  # a cached token lookup holds the old role
    return user


def set_display_name(db: Session, user: User, display_name: str | None, by: User | str) -> User:
    name = (display_name or "").strip()[:120] or None
    if name != user.display_name:
        audit(db, by, "user.renamed", f"user:{user.username}", {}, before={"display_name": user.display_name},
              after={"display_name": name})
        user.display_name = name
    return user


def _active_admins(db: Session) -> int:
    return int(db.scalar(select(func.count()).select_from(User).where(User.role == "admin",
                                                                      User.disabled_at.is_(None))) or 0)


def enable_user(db: Session, user: User, by: User | str) -> User:
    """Let a disabled user log in again (their old sessions and tokens stay ended)."""
    if user.disabled_at is not None:
        before = user.disabled_at.isoformat()
        user.disabled_at = None
        user.failed_logins, user.locked_until = 0, None
        audit(db, by, "user.enabled", f"user:{user.username}", {}, before={"disabled_at": before},
              after={"disabled_at": None})
    return user


# --- password links (invitations and resets) ------------------------------------------------------


def create_password_link(db: Session, user: User, purpose: str, by: User | str,
                         now: datetime | None = None) -> tuple[PasswordLink, str]:
    """A one-time link for ``user`` to set their password: ``invite`` (valid 7 days) or ``reset`` (1 day).

    Returns the row and the token (shown once, stored only as its digest). Earlier unused links of the user
    stop working, so only the newest link is good."""
    if purpose not in ("invite", "reset"):
        raise AuthError(Msg("unknown purpose %(purpose)s; use invite or reset", purpose=repr(purpose)))
    if user.disabled_at is not None:
        raise AuthError(Msg("the user is disabled; enable them first"))
    now = _utc(now)
    for old in db.scalars(select(PasswordLink).where(PasswordLink.user_id == user.id, PasswordLink.used_at.is_(None),
                                                     PasswordLink.expires_at > now)):
        old.expires_at = now
    plaintext = LINK_PREFIX + secrets.token_urlsafe(32)
    link = PasswordLink(token_hash=_sha256(plaintext), user_id=user.id, purpose=purpose,
                        created_by=(by.username if isinstance(by, User) else by)[:80], created_at=now,
                        expires_at=now + (INVITE_LIFETIME if purpose == "invite" else RESET_LIFETIME),
                        prefix=plaintext[:TOKEN_DISPLAY_CHARS + len(LINK_PREFIX)])
    db.add(link)
    db.flush()
    audit(db, by, f"user.{purpose}_link", f"user:{user.username}", {"expires_at": link.expires_at.isoformat()}, at=now)
    return link, plaintext


def password_link(db: Session, plaintext: str, now: datetime | None = None) -> tuple[PasswordLink, User] | None:
    """The unused, unexpired link behind ``plaintext`` and its (enabled) user, or None."""
    if not plaintext.startswith(LINK_PREFIX) or len(plaintext) > 200:
        return None
    link = db.get(PasswordLink, _sha256(plaintext))
    if link is None or link.used_at is not None or link.expires_at <= _utc(now):
        return None
    user = db.get(User, link.user_id)
    if user is None or user.disabled_at is not None:
        return None
    return link, user


def use_password_link(db: Session, plaintext: str, password: str, now: datetime | None = None) -> User:
    """Set the password through a link (once). Ends the user's web sessions, clears a lockout. Raises
    :class:`AuthError` for an unknown, used or expired link, or a weak password."""
    now = _utc(now)
    found = password_link(db, plaintext, now)
    if found is None:
        raise AuthError(Msg("this link is unknown, was used already, or has expired; ask an admin for a new one"))
    link, user = found
    check_password_strength(password)
    user.password_hash = hash_password(password)
    user.failed_logins, user.locked_until = 0, None
    link.used_at = now
    db.execute(delete(WebSession).where(WebSession.user_id == user.id))
    audit(db, user, "user.password_set", f"user:{user.username}", {"via": link.purpose}, at=now)
    return user


def pending_links(db: Session, user_ids: list[int], now: datetime | None = None) -> dict[int, PasswordLink]:
    """The newest usable link per user (an invitation not yet accepted, a reset not yet used)."""
    if not user_ids:
        return {}
    rows = db.scalars(select(PasswordLink).where(PasswordLink.user_id.in_(user_ids), PasswordLink.used_at.is_(None),
                                                 PasswordLink.expires_at > _utc(now))
                      .order_by(PasswordLink.created_at))
    return {link.user_id: link for link in rows}


# --- API tokens --------------------------------------------------------------------------------


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token(db: Session, user: User, name: str, scope: str = "full",
                by: User | None = None) -> tuple[ApiToken, str]:
    """Create an API token for ``user`` (by ``by``, an admin, or the user themself); returns the row and the
    plaintext (shown once, never stored). ``scope`` narrows what the token may do (:data:`TOKEN_SCOPES`)."""
    label = name.strip()
    if not label:
        raise AuthError(Msg("give the token a name, e.g. 'ci' or 'shop sync'"))
    if len(label) > 80:
        raise AuthError(Msg("the token name is too long: use at most 80 characters"))
    if scope not in TOKEN_SCOPES:
        raise AuthError(Msg("unknown token scope %(scope)s; the scopes are: %(scopes)s", scope=repr(scope),
                            scopes=", ".join(TOKEN_SCOPES)))
    if user.disabled_at is not None:
        raise AuthError(Msg("the user is disabled; a token of theirs would not work"))
    maker = by or user
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=label, token_hash=_sha256(plaintext),
                     prefix=plaintext[:TOKEN_DISPLAY_CHARS], scope=scope, created_by=maker.username)
    db.add(token)
    db.flush()
    audit(db, maker, "token.created", f"token:{token.id}", {"user": user.username},
          after={"name": label, "prefix": token.prefix, "scope": scope})
    return token, plaintext


def create_token(db: Session, user: User, name: str) -> str:
    """Create an API token for ``user`` and return its plaintext, which is shown once and never stored."""
    return issue_token(db, user, name)[1]


def authenticate_token(db: Session, plaintext: str, now: datetime | None = None) -> User | None:
    """The user an API token belongs to, or None when it is unknown, revoked, or its user is disabled.

    Records ``last_used_at``, at most once a minute per token to keep reads cheap.
    """
    found = authenticate_token_scoped(db, plaintext, now)
    return found[0] if found else None


def token_allows(scope: str, method: str, path: str) -> bool:
    """Whether a token of ``scope`` may make this request (the role check comes on top)."""
    if scope == "full" or method.upper() in ("GET", "HEAD", "OPTIONS"):
        return True
    return scope == "events" and method.upper() == "POST" and (path == "/api/events" or
                                                                path.startswith("/api/events/"))


def authenticate_token_scoped(db: Session, plaintext: str, now: datetime | None = None) -> tuple[User, str] | None:
    """:func:`authenticate_token` with the token's scope: (user, scope), or None."""
    if not plaintext.startswith(TOKEN_PREFIX) or len(plaintext) > 200:
        return None
    row = db.execute(
        select(ApiToken, User).join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == _sha256(plaintext))
    ).first()
    if row is None:
        return None
    token, user = row
    if token.revoked_at is not None or user.disabled_at is not None:
        return None
    now = _utc(now)
    if token.last_used_at is None or now - token.last_used_at >= TOKEN_TOUCH_INTERVAL:
        token.last_used_at = now
    return user, token.scope or "full"


#: a token's user is looked up again at most this often per process; revoking a token or disabling a user in
#: this process takes effect at once, in other processes within this many seconds
TOKEN_CACHE_SECONDS: Final = 2.0
_token_cache: dict[str, tuple[float, User, int, datetime | None, str]] = {}
_token_cache_lock = threading.Lock()


def forget_tokens() -> None:
    """Drop this process's cached token lookups (after a revocation, a disabled user, a role change)."""
    with _token_cache_lock:
        _token_cache.clear()


def _fresh_lookup(digest: str) -> tuple[float, User, int, datetime | None, str] | None:
    with _token_cache_lock:
        hit = _token_cache.get(digest)
    return hit if hit is not None and time.monotonic() - hit[0] < TOKEN_CACHE_SECONDS else None


def _needs_touch(last_used: datetime | None, now: datetime) -> bool:
    """Whether a token's ``last_used_at`` is to be written now (at most once per :data:`TOKEN_TOUCH_INTERVAL`)."""
    return last_used is None or now - last_used >= TOKEN_TOUCH_INTERVAL


def cached_token_user(plaintext: str, now: datetime | None = None) -> tuple[User, str] | None:
    """What :func:`token_user` answers when that needs no database — the token's lookup is cached and fresh and
    its ``last_used_at`` needs no writing —, else None: then call :func:`token_user` (off the event loop, it may
    wait for the database). An unknown token is never cached, so it is always None here."""
    if not plaintext.startswith(TOKEN_PREFIX) or len(plaintext) > 200:
        return None
    hit = _fresh_lookup(_sha256(plaintext))
    if hit is None or _needs_touch(hit[3], _utc(now)):
        return None
    return hit[1], hit[4]


def token_user(database_url: str | None, plaintext: str, now: datetime | None = None) -> tuple[User, str] | None:
    """:func:`authenticate_token_scoped` for a request (the user and the token's scope), without taking the
    write lock on every request: the lookup is read-only and cached for :data:`TOKEN_CACHE_SECONDS`, and
    ``last_used_at`` is written (in a short transaction of its own) at most once a minute per token.
    The user returned is detached: read it only."""
    from sqlalchemy import or_, update

    from engine.db.session import session_factory, transaction

    answer = cached_token_user(plaintext, now)
    if answer is not None:
        return answer
    if not plaintext.startswith(TOKEN_PREFIX) or len(plaintext) > 200:
        return None
    digest = _sha256(plaintext)
    now = _utc(now)
    hit = _fresh_lookup(digest)  # fresh, but its last_used_at is due
    fetched_at = time.monotonic()
    if hit is not None:
        fetched_at, user, token_id, last_used, scope = hit
    else:
        with session_factory(database_url)() as db:
            row = db.execute(select(ApiToken, User).join(User, User.id == ApiToken.user_id)
                             .where(ApiToken.token_hash == digest)).first()
            if row is None:
                return None
            token, user = row
            if token.revoked_at is not None or user.disabled_at is not None:
                return None
            token_id, last_used, scope = token.id, token.last_used_at, token.scope or "full"
            db.expunge_all()
    if _needs_touch(last_used, now):
        with transaction(database_url) as db:
            db.execute(update(ApiToken).where(ApiToken.id == token_id, or_(
                ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - TOKEN_TOUCH_INTERVAL))
                .values(last_used_at=now))
        last_used = now
    with _token_cache_lock:
        _token_cache[digest] = (fetched_at, user, token_id, last_used, scope)
    return user, scope


def list_tokens(db: Session, user: User) -> list[ApiToken]:
    """The user's own tokens, revoked ones included, oldest first."""
    return list(db.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)))


def revoke_token(db: Session, token_id: int, by_user: User, now: datetime | None = None) -> ApiToken:
    """Revoke a token. Users revoke their own; admins revoke anyone's. Revoking twice is harmless.

    Raises :class:`TokenNotFound` when there is no such token or it is someone else's (the two
    are not told apart, so ids of other users' tokens are not revealed).
    """
    token = db.get(ApiToken, token_id)
    if token is None or (token.user_id != by_user.id and by_user.role != "admin"):
        raise TokenNotFound(Msg("no API token with id %(token_id)s", token_id=token_id))
    if token.revoked_at is None:
        token.revoked_at = _utc(now)
        owner = db.get(User, token.user_id)
        audit(db, by_user, "token.revoked", f"token:{token.id}",
              {"prefix": token.prefix, "user": owner.username if owner else None},
              before={"revoked_at": None}, after={"revoked_at": token.revoked_at.isoformat()})
    forget_tokens()
    return token


def disable_user(db: Session, username: str, by: User | str = "system", now: datetime | None = None) -> User:
    """Disable a user: their web sessions end, their API tokens are revoked, and they cannot log in.

    The row stays (audit entries and tickets name it). Disabling twice is harmless. Raises
    :class:`AuthError` when there is no such user.
    """
    user = find_user(db, username)
    if user is None:
        raise AuthError(Msg("no user named %(name)s", name=repr(normalize_username(username))))
    if user.disabled_at is None:
        if user.role == "admin" and _active_admins(db) <= 1:
            raise AuthError(Msg("this is the last active admin; make another user admin first"))
        at = _utc(now)
        user.disabled_at = at
        for token in db.scalars(select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))):
            token.revoked_at = at
        db.execute(delete(WebSession).where(WebSession.user_id == user.id))
        audit(db, by, "user.disabled", f"user:{user.username}", {}, at=at, before={"disabled_at": None},
              after={"disabled_at": at.isoformat()})
    forget_tokens()
    return user


# --- web sessions ------------------------------------------------------------------------------


def login(db: Session, username: str, password: str, now: datetime) -> tuple[User, str, str]:
    """Check a username and password and open a web session: returns (user, session token, csrf token).

    Raises :class:`LoginFailed` for wrong credentials (never saying whether the username exists)
    and :class:`LoginLocked` while the account is locked; the fifth consecutive failure locks it
    for 15 minutes. The failure counter is written through ``db`` *before* raising, so catch the
    exception inside the transaction (or commit) — a rolled-back failure does not count.
    """
    now = _utc(now)
    user = find_user(db, username)
    if user is None or user.disabled_at is not None:
        verify_password(_dummy_hash(), password)  # same work either way: timing does not reveal users
        raise LoginFailed()
    if user.locked_until is not None and user.locked_until > now:
        raise LoginLocked(user.locked_until)
    if not verify_password(user.password_hash, password):
        user.failed_logins = (user.failed_logins or 0) + 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.failed_logins = 0
            user.locked_until = now + LOCKOUT
            audit(db, "system", "user.locked", f"user:{user.username}",
                  {"until": user.locked_until.isoformat()}, at=now)
            raise LoginLocked(user.locked_until)
        audit(db, "anonymous", "login.failed", f"user:{user.username}",
              {"failed_logins": user.failed_logins}, at=now)
        raise LoginFailed()
    user.failed_logins = 0
    user.locked_until = None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    session_token, csrf_token = open_session(db, user, now)
    audit(db, user, "login", f"user:{user.username}", {}, at=now)
    return user, session_token, csrf_token


def open_session(db: Session, user: User, now: datetime) -> tuple[str, str]:
    """Open a web session for ``user``, who was authenticated by the caller (a password, WeCom sign-in):
    returns (session token, csrf token). The caller audits how the user got in."""
    now = _utc(now)
    db.execute(delete(WebSession).where(WebSession.user_id == user.id, WebSession.expires_at <= now))
    session_token = secrets.token_urlsafe(32)
    csrf_token = secrets.token_urlsafe(32)
    db.add(WebSession(token_hash=_sha256(session_token), user_id=user.id, csrf_token=csrf_token,
                      created_at=now, expires_at=now + SESSION_LIFETIME))
    db.flush()
    return session_token, csrf_token


def session_user(db: Session, token: str, now: datetime) -> tuple[User, WebSession] | None:
    """The user and session behind a session cookie, or None when unknown, expired or the user is disabled."""
    if not token or len(token) > 200:
        return None
    row = db.execute(
        select(WebSession, User).join(User, User.id == WebSession.user_id)
        .where(WebSession.token_hash == _sha256(token))
    ).first()
    if row is None:
        return None
    web_session, user = row
    if web_session.expires_at <= _utc(now) or user.disabled_at is not None:
        return None
    return user, web_session


def logout(db: Session, token: str) -> None:
    """End the web session behind ``token``; unknown tokens are ignored."""
    web_session = db.get(WebSession, _sha256(token)) if token else None
    if web_session is None:
        return
    user = db.get(User, web_session.user_id)
    db.delete(web_session)
    if user is not None:
        audit(db, user, "logout", f"user:{user.username}", {})


def purge_expired_sessions(db: Session, now: datetime) -> int:
    """Delete every expired web session; returns how many went."""
    result = db.execute(delete(WebSession).where(WebSession.expires_at <= _utc(now)))
    return int(getattr(result, "rowcount", 0) or 0)


# --- audit log ---------------------------------------------------------------------------------

_SECRET_KEYS: Final = frozenset({"password", "passwd", "secret", "token", "api_key", "apikey",
                                 "authorization", "cookie", "csrf", "csrf_token", "session"})
_SECRET_SUFFIXES: Final = ("password", "secret", "_token", "_key")


def _looks_secret(key: str) -> bool:
    k = key.lower()
    return k in _SECRET_KEYS or k.endswith(_SECRET_SUFFIXES)


def _scrub(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): ("***" if _looks_secret(str(k)) else _scrub(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def audit(
    db: Session,
    actor: User | str,
    action: str,
    target: str | None = None,
    detail: Mapping[str, Any] | None = None,
    at: datetime | None = None,
    *,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    only_changed: bool = False,
) -> AuditEntry:
    """Record who did what to what, and what it looked like before and after. The one home for audit writes.

    ``actor`` is a user or a name such as ``"system"``. ``before`` / ``after`` hold the changed thing's
    fields (with ``only_changed``, just those that differ — :func:`changes`); a ``detail`` with
    ``before`` / ``after`` keys is read the same way. Never pass secrets; as a safety net, values under keys
    that look secret (``password``, ``token``, ``*_secret``, ``*_key``...) are stored as ``"***"`` — to say
    that a secret changed, name it in ``detail`` (e.g. ``{"secrets_changed": ["app_secret"]}``).
    """
    name = actor.username if isinstance(actor, User) else actor
    rest = dict(detail or {})
    if before is None and isinstance(rest.get("before"), Mapping):
        before = rest.pop("before")
    if after is None and isinstance(rest.get("after"), Mapping):
        after = rest.pop("after")
    if only_changed:
        before, after = changes(before or {}, after or {})
    entry = AuditEntry(at=_utc(at), actor=name[:80], action=action[:60],
                       target=target[:200] if target is not None else None, detail=_scrub(rest),
                       before=_scrub(dict(before)) if before is not None else None,
                       after=_scrub(dict(after)) if after is not None else None)
    db.add(entry)
    return entry


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fields that differ between two views of one thing, as (before, after) for :func:`audit`."""
    keys = [k for k in {**before, **after} if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}


# --- first run ---------------------------------------------------------------------------------


def ensure_demo_admin(db: Session) -> tuple[str, str] | None:
    """On an empty user table, create ``admin`` with a random password and return (username, password).

    Returns None when any user exists. ``make run`` prints the credentials once; they are not stored.
    """
    if db.scalar(select(func.count()).select_from(User)):
        return None
    password = secrets.token_urlsafe(12)
    create_user(db, "admin", password, "admin", display_name="Administrator")
    return "admin", password


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError(Msg("naive datetime given; pass a timezone-aware UTC time"))
    return now.astimezone(UTC)
