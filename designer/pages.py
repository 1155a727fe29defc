"""The page kit: how every server-rendered page of the designer is drawn and guarded.

Pages are server-rendered (Jinja2, one template folder per area under ``templates/``) and usable
without JavaScript: every action is a plain ``<form method="post">`` carrying the session's CSRF token,
answered by a 303 redirect (post/redirect/get) or by the page again with the problem explained. When
htmx is vendored (``static/vendor/htmx.min.js``) lists search as you type; nothing depends on it.

This module holds what the areas share: the one template environment and its display filters
(``when``, ``compact``, ``yuan``), :func:`render`, the friendly problem page (:class:`PageProblem`,
raised anywhere in a route whose class is :class:`PageRoute`), the role guard :func:`page_user`
(who may do what comes from :mod:`designer.permissions`, the table the JSON API reads too), the
:class:`Pager` and the redirect helpers. A user without the role gets a 403 page in their language,
not a JSON error.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from fastapi import Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from designer import i18n
from designer.auth import current_user, get_db_url
from designer.permissions import KIND_EDITORS
from engine import auth
from engine.db.models import User

HERE = Path(__file__).resolve().parent
HTMX = HERE / "static" / "vendor" / "htmx.min.js"
#: times are stored in UTC and shown in the designer's display timezone (the flows' default)
DISPLAY_TZ = ZoneInfo("Asia/Shanghai")
PER_PAGE = 50
ADMIN = ("admin",)
#: the notices a redirect may ask a page to show (?notice=...); never free text from the URL
NOTICES = frozenset({"duplicated", "archived", "restored", "cancel_sent", "cancelled", "retried"})
LANG_COOKIE = "tideflow_lang"

#: the designer's one template environment (``templates/<area>/...``)
templates = Jinja2Templates(directory=str(HERE / "templates"))


# --- text ------------------------------------------------------------------------------------------

i18n.add({
    "zh-CN": {
        "pg.search": "搜索", "pg.filter": "筛选", "pg.reset": "清除筛选", "pg.all": "全部", "pg.actions": "操作",
        "pg.prev": "上一页", "pg.next": "下一页", "pg.pages": "第 {page} / {pages} 页，共 {total} 条",
        "pg.pagination": "分页", "pg.tz": "北京时间", "pg.back": "返回", "pg.home": "回到概览",
        "pg.forbidden": "没有权限",
        "pg.forbidden.page": "这个页面需要以下角色之一：{roles}（管理员也可以）。你当前的角色是「{role}」。",
        "pg.forbidden.kind": "你的角色「{role}」不能修改「{kind}」类型的流程，这需要：{roles}（管理员也可以）。",
        "pg.forbidden.fix": "如需访问，请联系管理员为你的账号分配相应角色。",
        "pg.forbidden.admin": "只有管理员可以查看这个页面。你当前的角色是「{role}」。", "pg.notfound": "找不到",
        "pg.conflict": "无法完成", "pg.unavailable": "暂时无法完成", "pg.yes": "是", "pg.no": "否",
        "pg.detail": "详情", "pg.view": "查看", "role.admin": "管理员", "role.marketer": "运营",
        "role.ops": "客服主管", "role.agent": "坐席", "role.finance": "财务", "role.developer": "开发",
    },
    "en": {
        "pg.search": "Search", "pg.filter": "Filter", "pg.reset": "Clear filters", "pg.all": "All",
        "pg.actions": "Actions", "pg.prev": "Previous", "pg.next": "Next",
        "pg.pages": "Page {page} of {pages} · {total} in all", "pg.pagination": "Pages", "pg.tz": "China time",
        "pg.back": "Back", "pg.home": "Back to the overview", "pg.forbidden": "Access denied",
        "pg.forbidden.page": "This page needs one of these roles: {roles} (or admin). Your role is “{role}”.",
        "pg.forbidden.kind": "Your role “{role}” cannot change “{kind}” flows; that needs {roles} (or admin).",
        "pg.forbidden.fix": "Ask an admin to give your account one of these roles.",
        "pg.forbidden.admin": "Only admins may see this page. Your role is “{role}”.", "pg.notfound": "Not found",
        "pg.conflict": "Cannot do that", "pg.unavailable": "Not possible right now", "pg.yes": "yes", "pg.no": "no",
        "pg.detail": "Details", "pg.view": "View", "role.admin": "admin", "role.marketer": "marketer",
        "role.ops": "ops", "role.agent": "agent", "role.finance": "finance", "role.developer": "developer",
    },
})


# --- rendering -------------------------------------------------------------------------------------


class PageProblem(Exception):
    """Raised anywhere in a page route: answered with the friendly problem page in the user's language.

    ``message`` and ``fix`` are catalogue keys, formatted with ``params``.
    """

    def __init__(self, status: int, user: User, title: str, message: str, fix: str = "",
                 back: str = "/", **params: str) -> None:
        super().__init__(message)
        self.status, self.user, self.title, self.message, self.fix = status, user, title, message, fix
        self.back, self.params = back, params


class PageRoute(APIRoute):
    """A route whose :class:`PageProblem` becomes the problem page (the app's handlers stay untouched)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except PageProblem as problem:
                return _problem_page(request, problem)

        return route


def _when(value: datetime | None) -> str:
    return value.astimezone(DISPLAY_TZ).strftime("%Y-%m-%d %H:%M") if value else "—"


def _compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def yuan(fen: int | None) -> str:
    """¥1,234.56 from integer fen (exact: no floats)."""
    if fen is None:
        return "—"
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"


templates.env.filters["when"] = _when
templates.env.filters["compact"] = _compact_json
templates.env.filters["yuan"] = yuan


def render(request: Request, user: User, name: str, status_code: int = 200, **extra: Any) -> HTMLResponse:
    context = i18n.page_context(request, user, htmx=HTMX.is_file(), **extra)
    t: i18n.Text = context["t"]
    notice = request.query_params.get("notice")
    if notice in NOTICES and "notice" not in extra:
        context["notice"] = t[f"notice.{notice}"].format(id=request.query_params.get("id", ""))
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    asked = request.query_params.get("lang")
    if asked:  # remember an explicit choice, so the next page keeps the language
        response.set_cookie(LANG_COOKIE, context["lang"], max_age=365 * 24 * 3600, path="/", samesite="lax")
    return response


def _problem_page(request: Request, problem: PageProblem) -> HTMLResponse:
    lang, t = i18n.text_for(request)
    params = dict(problem.params)
    if "roles" in params:
        params["roles"] = ("、" if lang == "zh-CN" else ", ").join(t[f"role.{r}"] for r in params["roles"].split(","))
    if "role" in params:
        params["role"] = t[f"role.{params['role']}"]
    if "kind" in params:
        params["kind"] = t[f"kind.{params['kind']}"]
    if "state" in params:
        params["state"] = t[f"js.{params['state']}"]
    return render(request, problem.user, "layout/problem.html", status_code=problem.status,
                   title=t[problem.title], message=t[problem.message].format(**params),
                   fix=t[problem.fix].format(**params) if problem.fix else "", back=problem.back)


def forbidden(user: User, roles: Iterable[str], back: str = "/") -> PageProblem:
    roles = tuple(roles)
    if roles == ADMIN:
        return PageProblem(403, user, "pg.forbidden", "pg.forbidden.admin", back=back, role=user.role)
    return PageProblem(403, user, "pg.forbidden", "pg.forbidden.page", "pg.forbidden.fix", back=back,
                       roles=",".join(roles), role=user.role)


def forbidden_kind(user: User, kind: str, back: str = "/flows") -> PageProblem:
    return PageProblem(403, user, "pg.forbidden", "pg.forbidden.kind", "pg.forbidden.fix", back=back,
                       roles=",".join(KIND_EDITORS.get(kind, ())), role=user.role, kind=kind)


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
    return dependency


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
