"""The users pages (admins): ``/settings/users`` lists everyone with their role, ticket groups, status and
tokens and adds a user (with a first password, or an invitation link); ``/settings/users/{id}`` changes the
role, display name and ticket groups, disables or enables, makes a password-reset link and creates, scopes and
revokes API tokens (with when each was last used). ``/password/{token}`` is where an invited user — or one
whose password was reset — sets a password (public: the one-time link is the credential).

Thin routes over :mod:`designer.people.api` (the same functions the JSON API calls). A secret (a link, a new
token) is rendered on the answer to the POST that made it, never put in a URL.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from designer import i18n
from designer.auth import get_db_url, public
from designer.errors import ApiError, localized
from designer.i18n import _
from designer.pages import ADMIN, PageProblem, PageRoute, page_user, render, see_other, templates, with_query
from designer.people import api
from designer.people import labels as _labels  # noqa: F401  (user statuses, token scopes, link purposes)
from engine import auth
from engine.db import models
from engine.db.models import User
from engine.db.session import session_factory, transaction

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Admin = Annotated[User, Depends(page_user(*ADMIN))]
DbUrl = Annotated[str, Depends(get_db_url)]
NOTICES = frozenset({"saved", "disabled", "enabled", "revoked"})


def _groups(db: Session) -> dict[str, str]:
    return {g.key: g.name for g in db.scalars(select(models.AgentGroup).order_by(models.AgentGroup.key))}


def _notice(request: Request) -> str | None:
    """The sentence for ``?done=`` after an action (never free text from the URL)."""
    texts = {"saved": _("Saved."), "disabled": _("The user is disabled: sessions ended, tokens revoked."),
             "enabled": _("The user is enabled again."), "revoked": _("The token is revoked.")}
    return texts.get(request.query_params.get("done") or "")


def _list(request: Request, user: User, db_url: str, status_code: int = 200, **extra: Any) -> HTMLResponse:
    with session_factory(db_url)() as db:
        users = [api.user_out(db, u) for u in db.scalars(select(User).order_by(User.username))]
        groups = _groups(db)
    return render(request, user, "people/users.html", status_code=status_code, users=users, groups=groups,
                  roles=auth.ROLES, notice=_notice(request), **extra)


@router.get("/settings/users", response_class=HTMLResponse)
def users_page(request: Request, user: Admin, db_url: DbUrl) -> HTMLResponse:
    """Everyone who may log in, and the form to add a user."""
    return _list(request, user, db_url)


@router.post("/settings/users", response_class=HTMLResponse)
async def add_user(request: Request, user: Admin, db_url: DbUrl,
                   username: Annotated[str, Form(max_length=80)] = "",
                   display_name: Annotated[str, Form(max_length=120)] = "",
                   role: Annotated[str, Form(max_length=20)] = "",
                   password: Annotated[str, Form(max_length=auth.MAX_PASSWORD_LENGTH)] = "") -> Response:
    """Create the user; without a password the answer shows their invitation link once."""
    def work() -> tuple[int, api.LinkOut | None]:
        with transaction(db_url) as db:
            made, link = api.create(db, request, user, username, role, display_name or None, password or None)
            db.flush()
            return made.id, link

    try:
        user_id, link = await run_in_threadpool(work)
    except ApiError as exc:
        return _list(request, user, db_url, status_code=exc.status,
                     error=localized(exc.body, i18n.current_language()),
                     form={"username": username, "display_name": display_name, "role": role})
    if link is None:
        return see_other(f"/settings/users/{user_id}?done=saved")
    return _detail(request, user, db_url, user_id, link=link)


def _detail(request: Request, user: User, db_url: str, user_id: int, status_code: int = 200,
            **extra: Any) -> HTMLResponse:
    with session_factory(db_url)() as db:
        target = db.get(User, user_id)
        if target is None:
            raise PageProblem(404, user, _("Not found"), _("There is no user %(id)s.") % {"id": user_id},
                              back="/settings/users")
        shown = api.user_out(db, target)
        tokens = api.tokens_of(db, target)
        groups = _groups(db)
    return render(request, user, "people/user.html", status_code=status_code, target=shown, tokens=tokens,
                  groups=groups, roles=auth.ROLES, scopes=auth.TOKEN_SCOPES, is_self=user_id == user.id,
                  notice=_notice(request), **extra)


@router.get("/settings/users/{user_id}", response_class=HTMLResponse)
def user_page(request: Request, user_id: int, user: Admin, db_url: DbUrl) -> HTMLResponse:
    return _detail(request, user, db_url, user_id)


async def _act(request: Request, user: User, db_url: str, user_id: int, work: Any, done: str = "saved",
               show: str | None = None) -> Response:
    """Run ``work(db, target)`` in one transaction: back to the user's page with a notice, or — ``show`` — the
    page with what it made (a link, a token) shown once; a refusal shows the page with its reason."""
    def run() -> Any:
        with transaction(db_url) as db:
            return work(db, api.target_user(db, user_id))

    try:
        made = await run_in_threadpool(run)
    except ApiError as exc:
        return _detail(request, user, db_url, user_id, status_code=exc.status,
                       error=localized(exc.body, i18n.current_language()))
    if show is not None:
        return _detail(request, user, db_url, user_id, **{show: made})
    return see_other(with_query(f"/settings/users/{user_id}", done=done))


@router.post("/settings/users/{user_id}", response_class=HTMLResponse)
async def save_user(request: Request, user_id: int, user: Admin, db_url: DbUrl) -> Response:
    """Role, display name and ticket groups (checkboxes ``group``)."""
    form = await request.form()
    role = str(form.get("role") or "") or None
    name = str(form.get("display_name") or "")
    groups = [str(g) for g in form.getlist("group")] if form.get("groups_shown") else None
    return await _act(request, user, db_url, user_id, lambda db, target: api.change(db, user, target, role, name,
                                                                                     groups))


@router.post("/settings/users/{user_id}/disable", response_class=HTMLResponse)
async def disable_user(request: Request, user_id: int, user: Admin, db_url: DbUrl) -> Response:
    return await _act(request, user, db_url, user_id, lambda db, target: api.disable(db, user, target), "disabled")


@router.post("/settings/users/{user_id}/enable", response_class=HTMLResponse)
async def enable_user(request: Request, user_id: int, user: Admin, db_url: DbUrl) -> Response:
    return await _act(request, user, db_url, user_id, lambda db, target: auth.enable_user(db, target, user),
                      "enabled")


@router.post("/settings/users/{user_id}/password-link", response_class=HTMLResponse)
async def password_link(request: Request, user_id: int, user: Admin, db_url: DbUrl,
                        purpose: Annotated[str, Form(max_length=10)] = "reset") -> Response:
    kind = "invite" if purpose == "invite" else "reset"
    return await _act(request, user, db_url, user_id,
                      lambda db, target: api.password_link(db, request, user, target, kind), show="link")


@router.post("/settings/users/{user_id}/tokens", response_class=HTMLResponse)
async def create_token(request: Request, user_id: int, user: Admin, db_url: DbUrl,
                       name: Annotated[str, Form(max_length=80)] = "",
                       scope: Annotated[str, Form(max_length=20)] = "full") -> Response:
    return await _act(request, user, db_url, user_id,
                      lambda db, target: api.make_token(db, user, target, name, scope), show="new_token")


@router.post("/settings/users/{user_id}/tokens/{token_id}/revoke", response_class=HTMLResponse)
async def revoke_token(request: Request, user_id: int, token_id: int, user: Admin, db_url: DbUrl) -> Response:
    return await _act(request, user, db_url, user_id,
                      lambda db, target: api.revoke(db, user, target, token_id), "revoked")


# -- the password page (public: the link is the credential) ---------------------------------------------------


def _password_page(request: Request, token: str, db_url: str, status_code: int = 200,
                   error: str = "", done: bool = False) -> HTMLResponse:
    lang = i18n.current_language()
    with session_factory(db_url)() as db:
        found = auth.password_link(db, token)
        username = found[1].username if found else ""
    if found is None and not done:
        status_code, error = 410, _("This link is unknown, was used already, or has expired. Ask an admin for a new "
                                    "one.")
    response = templates.TemplateResponse(request, "people/password.html", {
        "lang": lang, "token": token, "username": username, "error": error, "usable": found is not None,
        "done": done, "min": auth.MIN_PASSWORD_LENGTH}, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@router.get("/password/{token}", response_class=HTMLResponse, dependencies=[Depends(public)])
def password_page(request: Request, token: str, db_url: DbUrl) -> HTMLResponse:
    return _password_page(request, token[:200], db_url)


@router.post("/password/{token}", response_class=HTMLResponse, dependencies=[Depends(public)])
def set_password(request: Request, token: str, db_url: DbUrl,
                 password: Annotated[str, Form(max_length=auth.MAX_PASSWORD_LENGTH)] = "",
                 confirm: Annotated[str, Form(max_length=auth.MAX_PASSWORD_LENGTH)] = "") -> Response:
    if password != confirm:
        return _password_page(request, token[:200], db_url, 422, _("The two passwords differ."))
    try:
        with transaction(db_url) as db:
            auth.use_password_link(db, token[:200], password)
    except auth.AuthError as exc:
        message = i18n.error_text(exc)
        if "too short" in str(exc):
            message = _("The password is too short: use at least %(n)s characters.") % {
                "n": auth.MIN_PASSWORD_LENGTH}
        return _password_page(request, token[:200], db_url, 422, message)
    return _password_page(request, token[:200], db_url, done=True)
