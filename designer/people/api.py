"""Users in the JSON API (admins only): create one with a password or an invitation link, change their role,
name and ticket groups, disable and enable them, make a password-reset link, and manage their API tokens
(create with a scope, revoke, see when each was last used).

The rules live in :mod:`engine.auth` (every change audited before → after); the functions below are shared
with the users pages (:mod:`designer.people.pages`). A secret — an invitation or reset link, a new token — is
answered once and never stored in plaintext.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from designer.auth import TokenCreated, TokenInfo, get_db_url, require
from designer.errors import ApiError, detail
from engine import auth
from engine.db import models
from engine.db.models import User, utcnow
from engine.db.session import session_factory, transaction
from engine.text import Msg

router = APIRouter(prefix="/api/users", tags=["users"])
Admin = Annotated[User, Depends(require("admin"))]
DbUrl = Annotated[str, Depends(get_db_url)]
Role = Literal["admin", "marketer", "ops", "agent", "finance", "developer"]
Scope = Literal["full", "read", "events"]


# -- views ------------------------------------------------------------------------------------------------


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str | None
    role: str
    status: Literal["active", "invited", "disabled", "locked"]
    created_at: datetime
    disabled_at: datetime | None
    groups: list[str] = Field(description="the ticket groups (queues) the user works in, as an agent")
    link_expires_at: datetime | None = Field(description="an unused invitation or reset link expires then")
    tokens: int = Field(description="API tokens not revoked")


def user_out(db: Session, user: User, now: datetime | None = None) -> UserOut:
    now = now or utcnow()
    agent = db.get(models.Agent, user.id)
    link = auth.pending_links(db, [user.id], now).get(user.id)
    tokens = db.scalar(select(func.count()).select_from(models.ApiToken).where(
        models.ApiToken.user_id == user.id, models.ApiToken.revoked_at.is_(None))) or 0
    status: Literal["active", "invited", "disabled", "locked"] = "active"
    if user.disabled_at is not None:
        status = "disabled"
    elif link is not None and link.purpose == "invite":
        status = "invited"
    elif user.locked_until is not None and user.locked_until > now:
        status = "locked"
    return UserOut(id=user.id, username=user.username, display_name=user.display_name, role=user.role, status=status,
                   created_at=user.created_at, disabled_at=user.disabled_at,
                   groups=[str(g) for g in (agent.groups if agent else [])],
                   link_expires_at=link.expires_at if link is not None else None, tokens=int(tokens))


class LinkOut(BaseModel):
    url: str = Field(description="the one-time link: give it to the user; shown this once")
    purpose: Literal["invite", "reset"]
    expires_at: datetime


class UserCreated(BaseModel):
    user: UserOut
    link: LinkOut | None = Field(description="the invitation link, when no password was set")


# -- the work (shared with the pages) -------------------------------------------------------------------


def _auth_error(exc: auth.AuthError, field: str, fix: Msg) -> ApiError:
    return ApiError(422 if not exc.message.startswith("this is the last") else 409, exc.message, fix, field)


def link_url(request: Request, token: str) -> str:
    return str(request.base_url).rstrip("/") + f"/password/{token}"


def target_user(db: Session, user_id: int) -> User:
    found = db.get(User, user_id)
    if found is None:
        raise ApiError(404, Msg("user %(user_id)s does not exist", user_id=user_id),
                       Msg("GET /api/users lists the users"), "id")
    return found


def create(db: Session, request: Request, admin: User, username: str, role: str, display_name: str | None,
           password: str | None) -> tuple[User, LinkOut | None]:
    """A new user: with ``password``, ready to log in; without, invited (a one-time link, valid 7 days)."""
    invited = not password
    try:
        user = auth.create_user(db, username, password or auth.random_password(), role, display_name,
                                created_by=admin)
    except auth.AuthError as exc:
        text = str(exc)
        field = "role" if "role" in text else "password" if "password" in text else "username"
        raise _auth_error(exc, field, Msg("pick another username") if field == "username" else
                          Msg("use one of the listed roles") if field == "role" else
                          Msg("use at least %(n)s characters, or leave it empty to invite",
                              n=auth.MIN_PASSWORD_LENGTH)) from None
    if not invited:
        return user, None
    link, token = auth.create_password_link(db, user, "invite", admin)
    return user, LinkOut(url=link_url(request, token), purpose="invite", expires_at=link.expires_at)


def change(db: Session, admin: User, user: User, role: str | None = None, display_name: str | None = None,
           groups: list[str] | None = None) -> User:
    """Change a user's role, display name and/or ticket groups (each audited before → after)."""
    try:
        if role is not None:
            auth.set_role(db, user, role, admin)
    except auth.AuthError as exc:
        raise _auth_error(exc, "role", Msg("make another user admin first")) from None
    if display_name is not None:
        auth.set_display_name(db, user, display_name, admin)
    if groups is not None:
        set_groups(db, admin, user, groups)
    return user


def set_groups(db: Session, admin: User, user: User, groups: list[str]) -> None:
    """The ticket groups the user works in (makes them an agent when they are not one yet)."""
    wanted = sorted(dict.fromkeys(g.strip() for g in groups if g.strip()))
    for key in wanted:
        if db.get(models.AgentGroup, key) is None:
            raise ApiError(422, Msg("ticket group '%(key)s' does not exist", key=key),
                           Msg("create it on the ticket groups page first"),
                           "groups")
    agent = db.get(models.Agent, user.id)
    before = sorted(str(g) for g in (agent.groups if agent else []))
    if agent is None:
        if not wanted:
            return
        agent = models.Agent(user_id=user.id, groups=[], skills=[], availability="offline", working_hours={},
                             contact={})
        db.add(agent)
    if before == wanted:
        return
    agent.groups, agent.updated_at = wanted, utcnow()
    auth.audit(db, admin, "agent.groups", f"user:{user.username}", {}, before={"groups": before},
               after={"groups": wanted})


def disable(db: Session, admin: User, user: User) -> User:
    if user.id == admin.id:
        raise ApiError(409, Msg("you cannot disable yourself"), Msg("ask another admin"), "id")
    try:
        return auth.disable_user(db, user.username, admin)
    except auth.AuthError as exc:
        raise _auth_error(exc, "id", Msg("make another user admin first")) from None


def password_link(db: Session, request: Request, admin: User, user: User, purpose: str = "reset") -> LinkOut:
    try:
        link, token = auth.create_password_link(db, user, purpose, admin)
    except auth.AuthError as exc:
        raise _auth_error(exc, "id", Msg("enable the user first")) from None
    return LinkOut(url=link_url(request, token), purpose="invite" if purpose == "invite" else "reset",
                   expires_at=link.expires_at)


def tokens_of(db: Session, user: User) -> list[TokenInfo]:
    return [TokenInfo.of(t) for t in auth.list_tokens(db, user)]


def make_token(db: Session, admin: User, user: User, name: str, scope: str) -> TokenCreated:
    try:
        token, plaintext = auth.issue_token(db, user, name, scope, by=admin)
    except auth.AuthError as exc:
        raise _auth_error(exc, "scope" if "scope" in str(exc) else "name",
                          Msg("name it (1–80 characters) and pick full, read or events")) from None
    return TokenCreated(token=plaintext, id=token.id, prefix=token.prefix, name=token.name, scope=token.scope,
                        created_at=token.created_at)


def revoke(db: Session, admin: User, user: User, token_id: int) -> TokenInfo:
    token = db.get(models.ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise ApiError(404, Msg("user %(id)s has no API token %(token_id)s", id=user.id, token_id=token_id),
                       Msg("GET its tokens for their ids"), "token_id")
    return TokenInfo.of(auth.revoke_token(db, token_id, admin))


def _session_only(request: Request) -> None:
    found = getattr(request.state, "tideflow_auth", None)
    if getattr(found, "method", None) != "session":
        raise HTTPException(status_code=403, detail=detail(
            Msg("API tokens are made from a logged-in browser session, not with another token"),
            Msg("log in to the designer as an admin and make the token on the users page")))


# -- routes ------------------------------------------------------------------------------------------------


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=80, examples=["li.na"])
    display_name: str | None = Field(default=None, max_length=120, examples=["李娜"])
    role: Role
    password: str | None = Field(default=None, max_length=auth.MAX_PASSWORD_LENGTH,
                                 description="leave out to invite: the answer carries a one-time link instead")


class UserChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role | None = None
    display_name: str | None = Field(default=None, max_length=120)
    groups: list[str] | None = Field(default=None, max_length=50, description="ticket group keys")


class LinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    purpose: Literal["invite", "reset"] = "reset"


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=80)
    scope: Scope = "full"


async def _tx(url: str, work: Any) -> Any:
    def run() -> Any:
        with transaction(url) as db:
            return work(db)

    return await run_in_threadpool(run)


@router.get("", response_model=list[UserOut])
async def list_users(user: Admin, url: DbUrl) -> list[UserOut]:
    def work() -> list[UserOut]:
        with session_factory(url)() as db:
            return [user_out(db, u) for u in db.scalars(select(User).order_by(User.username))]

    return list(await run_in_threadpool(work))


@router.post("", response_model=UserCreated, status_code=201)
async def create_user(body: UserIn, request: Request, user: Admin, url: DbUrl) -> UserCreated:
    """Create a user: with a password, or invited (the answer's ``link`` lets them set their own)."""
    def work(db: Session) -> UserCreated:
        made, link = create(db, request, user, body.username, body.role, body.display_name, body.password)
        db.flush()
        return UserCreated(user=user_out(db, made), link=link)

    result: UserCreated = await _tx(url, work)
    return result


@router.get("/{user_id}", response_model=UserOut)
async def get_user(user_id: int, user: Admin, url: DbUrl) -> UserOut:
    def work() -> UserOut:
        with session_factory(url)() as db:
            return user_out(db, target_user(db, user_id))

    result: UserOut = await run_in_threadpool(work)
    return result


@router.patch("/{user_id}", response_model=UserOut)
async def change_user(user_id: int, body: UserChange, user: Admin, url: DbUrl) -> UserOut:
    """Change the role, display name and/or ticket groups."""
    def work(db: Session) -> UserOut:
        target = change(db, user, target_user(db, user_id), body.role, body.display_name, body.groups)
        db.flush()
        return user_out(db, target)

    result: UserOut = await _tx(url, work)
    return result


@router.post("/{user_id}/disable", response_model=UserOut)
async def disable_user(user_id: int, user: Admin, url: DbUrl) -> UserOut:
    """Disable: their sessions end, their tokens are revoked, they cannot log in. Harmless twice."""
    result: UserOut = await _tx(url, lambda db: user_out(db, disable(db, user, target_user(db, user_id))))
    return result


@router.post("/{user_id}/enable", response_model=UserOut)
async def enable_user(user_id: int, user: Admin, url: DbUrl) -> UserOut:
    result: UserOut = await _tx(url, lambda db: user_out(db, auth.enable_user(db, target_user(db, user_id), user)))
    return result


@router.post("/{user_id}/password-link", response_model=LinkOut, status_code=201)
async def make_password_link(user_id: int, body: LinkIn, request: Request, user: Admin, url: DbUrl) -> LinkOut:
    """A one-time link for the user to set a new password (a reset, 1 day; or a new invitation, 7 days).
    Earlier unused links stop working."""
    result: LinkOut = await _tx(url, lambda db: password_link(db, request, user, target_user(db, user_id),
                                                              body.purpose))
    return result


@router.get("/{user_id}/tokens", response_model=list[TokenInfo])
async def list_user_tokens(user_id: int, user: Admin, url: DbUrl) -> list[TokenInfo]:
    def work() -> list[TokenInfo]:
        with session_factory(url)() as db:
            return tokens_of(db, target_user(db, user_id))

    return list(await run_in_threadpool(work))


@router.post("/{user_id}/tokens", response_model=TokenCreated, status_code=201)
async def create_user_token(user_id: int, body: TokenIn, request: Request, user: Admin, url: DbUrl) -> TokenCreated:
    """An API token for the user, narrowed by ``scope``: the secret is in this answer only."""
    _session_only(request)
    result: TokenCreated = await _tx(url, lambda db: make_token(db, user, target_user(db, user_id), body.name,
                                                                body.scope))
    return result


@router.delete("/{user_id}/tokens/{token_id}", response_model=TokenInfo)
async def revoke_user_token(user_id: int, token_id: int, user: Admin, url: DbUrl) -> TokenInfo:
    result: TokenInfo = await _tx(url, lambda db: revoke(db, user, target_user(db, user_id), token_id))
    return result
