"""The page kit: how every server-rendered page of the designer is drawn and guarded.

Pages are server-rendered (Jinja2, one template folder per area under ``templates/``) and usable
without JavaScript: every action is a plain ``<form method="post">`` carrying the session's CSRF token,
answered by a 303 redirect (post/redirect/get) or by the page again with the problem explained. When
htmx is vendored (``static/vendor/htmx.min.js``) lists search as you type; nothing depends on it.

This module holds what the areas share: the one template environment (with gettext from
:mod:`designer.i18n` and the display filters of :mod:`designer.display`), :func:`render`, the friendly
problem page (:class:`PageProblem`, raised anywhere in a route whose class is :class:`PageRoute`), the
role guard :func:`page_user` (who may do what comes from :mod:`designer.permissions`, the table the JSON
API reads too), the :class:`Pager` and the redirect helpers. A user without the role gets a 403 page in their language,
not a JSON error.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from designer import display, i18n, nav
from designer.auth import RoleRequired, csrf_token, current_user, get_db_url, mark_guard, wants_html
from designer.errors import http_error
from designer.i18n import _
from designer.permissions import KIND_EDITORS
from engine import auth
from engine.db.models import User

HERE = Path(__file__).resolve().parent
HTMX = HERE / "static" / "vendor" / "htmx.min.js"
PER_PAGE = 50
ADMIN = ("admin",)
#: the notices a redirect may ask a page to show (?notice=...); never free text from the URL
NOTICES = frozenset({"duplicated", "archived", "restored", "cancel_sent", "cancelled", "retried"})

#: the designer's one template environment (``templates/<area>/...``)
templates = Jinja2Templates(directory=str(HERE / "templates"))
yuan = display.yuan  # the fen → ¥ filter, for code that formats outside a template


# --- rendering -------------------------------------------------------------------------------------


class PageProblem(Exception):
    """Raised anywhere in a page route: answered with the friendly problem page.

    ``title``, ``message`` and ``fix`` are already in the reader's language (``_("...") % {...}``).
    """

    def __init__(self, status: int, user: User | None, title: str, message: str, fix: str = "",
                 back: str = "/") -> None:
        super().__init__(message)
        self.status, self.user, self.title, self.message, self.fix = status, user, title, message, fix
        self.back = back
        #: "come back later" pages (429, 503) say when, as the API's answers do (designer/errors.py)
        self.headers: dict[str, str] = {"Retry-After": "5"} if status in (429, 503) else {}


class PageRoute(APIRoute):
    """A route whose :class:`PageProblem` becomes the problem page (the app's handlers stay untouched)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except PageProblem as problem:
                return problem_page(request, problem)

        return route


i18n.install(templates.env)
display.install(templates.env)
templates.env.globals["nav_menu"] = nav.menu  # the main menu (designer/nav.py), drawn by base.html


def page_context(request: Request, user: Any, **extra: Any) -> dict[str, Any]:
    """What every page template gets: language, user, CSRF token, current path (text comes from ``_``)."""
    return {"lang": i18n.current_language(), "user": user, "csrf": csrf_token(request) or "",
            "path": request.url.path, **extra}


def notice_text(notice: str, id: str) -> str:
    """The sentence a redirect's ``?notice=`` asks a page to show."""
    texts = {
        "duplicated": _("Duplicated as the new draft %(id)s."),
        "archived": _("Archived flow %(id)s; it takes no new customers."),
        "restored": _("Restored flow %(id)s (it is paused or a draft now; publish it again in the editor when it "
                      "should run)."),
        "cancel_sent": _("Cancel sent to journey %(id)s; its status turns to Cancelled in a few seconds."),
        "cancelled": _("Journey %(id)s is cancelled."),
        "retried": _("The failed step of journey %(id)s runs again."),
    }
    return texts[notice] % {"id": id}


def render(request: Request, user: User | None, name: str, status_code: int = 200, **extra: Any) -> HTMLResponse:
    context = page_context(request, user, htmx=HTMX.is_file(), **extra)
    notice = request.query_params.get("notice")
    if notice in NOTICES and "notice" not in extra:
        context["notice"] = notice_text(notice, request.query_params.get("id", ""))
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    remember_language(request, response)
    return response


def remember_language(request: Request, response: Response) -> None:
    """An explicit ``?lang=`` is remembered (cookie), so the next page keeps the language."""
    if request.query_params.get("lang"):
        response.set_cookie(i18n.LANG_COOKIE, i18n.current_language(), max_age=365 * 24 * 3600, path="/",
                            samesite="lax")


def problem_page(request: Request, problem: PageProblem) -> HTMLResponse:
    response = render(request, problem.user, "layout/problem.html", status_code=problem.status,
                      title=problem.title, message=problem.message, fix=problem.fix, back=problem.back)
    response.headers.update(problem.headers)
    return response


def _roles(roles: Iterable[str]) -> str:
    return i18n.listing([display.label(r, "role") for r in roles])


def forbidden(user: User, roles: Iterable[str], back: str = "/") -> PageProblem:
    roles = tuple(roles)
    role = display.label(user.role, "role")
    if roles == ADMIN:
        return PageProblem(403, user, _("Access denied"),
                           _("Only admins may see this page. Your role is “%(role)s”.") % {"role": role}, back=back)
    return PageProblem(403, user, _("Access denied"),
                       _("This page needs one of these roles: %(roles)s (or admin). Your role is “%(role)s”.")
                       % {"roles": _roles(roles), "role": role},
                       _("Ask an admin to give your account one of these roles."), back=back)


def forbidden_kind(user: User, kind: str, back: str = "/flows") -> PageProblem:
    return PageProblem(403, user, _("Access denied"),
                       _("Your role “%(role)s” cannot change “%(kind)s” flows; that needs %(roles)s (or admin).")
                       % {"role": display.label(user.role, "role"), "kind": display.label(kind, "flow_kind"),
                          "roles": _roles(KIND_EDITORS.get(kind, ()))},
                       _("Ask an admin to give your account one of these roles."), back=back)


def page_user(*roles: str) -> Callable[..., Awaitable[User]]:
    """A dependency: the logged-in user if they have one of ``roles`` (admin always does); else the
    friendly 403 page. Not logged in: the login redirect, as for every page."""
    for role in roles:
        auth.check_role(role)

    async def dependency(user: Annotated[User, Depends(current_user)]) -> User:
        if not auth.has_role(user, *roles):
            raise forbidden(user, roles)
        return user

    dependency.__name__ = f"page_user_{'_'.join(roles) or 'any'}"
    return mark_guard(dependency, roles)


def install(app: FastAPI) -> None:
    """A browser opening a page its role may not see gets the 403 page saying which role it needs; API
    clients (``/api``, a token, or no ``text/html`` in Accept) keep the JSON error."""

    @app.exception_handler(RoleRequired)
    async def _role_required(request: Request, exc: RoleRequired) -> Response:
        if wants_html(request):
            return problem_page(request, forbidden(exc.user, exc.roles, back="/"))
        return await http_error(request, exc)


DbUrl = Annotated[str, Depends(get_db_url)]


def with_query(path: str, **params: str) -> str:
    """``path`` with ``params`` added to (or replacing those in) its query string."""
    base, _, query = path.partition("?")
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in params]
    pairs += [(k, v) for k, v in params.items() if v]
    return base + ("?" + urlencode(pairs) if pairs else "")


def see_other(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


@dataclass
class Pager:
    """One page of a list: the page number (from 1), page size and total count, with links."""

    request: Request
    page: int
    total: int
    per: int = PER_PAGE

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per))

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per

    def url(self, page: int) -> str:
        params = dict(self.request.query_params)
        params.pop("notice", None)
        params.pop("id", None)
        params["page"] = str(page)
        return self.request.url.path + "?" + urlencode(params)

    @property
    def prev_url(self) -> str | None:
        return self.url(self.page - 1) if self.page > 1 else None

    @property
    def next_url(self) -> str | None:
        return self.url(self.page + 1) if self.page < self.pages else None


def page_number(value: str | None) -> int:
    try:
        return max(1, min(int(value or 1), 100_000))
    except ValueError:
        return 1


def clip(value: str | None, limit: int = 200) -> str:
    return (value or "").strip()[:limit]
