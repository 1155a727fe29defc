"""The pages around the canvas: flows, customers, journeys and the audit log.

Server-rendered (Jinja2, templates in ``templates/pages/``) and usable without JavaScript: every
action is a plain ``<form method="post">`` carrying the session's CSRF token, answered by a 303
redirect (post/redirect/get) or by the page again with the problem explained. When htmx is
vendored (``static/vendor/htmx.min.js``) the flow list searches as you type; nothing depends on it.

Who may do what comes from :mod:`designer.permissions`, the same table the JSON API reads. A user
without the role gets a friendly 403 page in their language, not a JSON error.

Mount with ``app.include_router(pages.router)``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import re
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from designer import i18n
from designer.auth import current_user, get_db_url, safe_next
from designer.permissions import CUSTOMER_READERS, FLOW_READERS, KIND_EDITORS, may_edit_kind
from engine import auth
from engine import flows as flowsvc
from engine.customers import IdentityError, canonical, mask_phone, normalise
from engine.db import models
from engine.db.models import User, utcnow
from engine.db.session import session_factory, transaction
from engine.flow import ID_PATTERN
from engine.journeys import ACTIVE
from engine.pii import mask_text
from engine.registry import default_registry
from tideflow.demo import FLOWS_DIR, flow_files

HERE = Path(__file__).resolve().parent
HTMX = HERE / "static" / "vendor" / "htmx.min.js"
#: times are stored in UTC and shown in the designer's display timezone (the flows' default)
DISPLAY_TZ = ZoneInfo("Asia/Shanghai")
KINDS = ("journey", "ticket", "settlement")
FLOW_STATUSES = ("draft", "active", "paused", "archived")
JOURNEY_STATUSES = ("running", "waiting", "completed", "converted", "exited", "failed", "cancelled")
#: the trigger a blank flow of each kind starts with (its config is finished on the canvas)
BLANK_TRIGGER: dict[str, tuple[str, dict[str, Any]]] = {
    "journey": ("trigger.event", {}),
    "ticket": ("trigger.event", {}),
    "settlement": ("trigger.schedule", {"cron": "0 2 * * *"}),
}
#: flow ids that would shadow a page URL under /flows/
RESERVED_IDS = frozenset({"new"})
PER_PAGE = 50
AUDIT_ADMIN = ("admin",)
#: the notices a redirect may ask a page to show (?notice=...); never free text from the URL
NOTICES = frozenset({"duplicated", "archived", "restored", "cancel_sent"})
LANG_COOKIE = "tideflow_lang"

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
        "pg.forbidden.admin": "只有管理员可以查看这个页面。你当前的角色是「{role}」。",
        "pg.notfound": "找不到", "pg.conflict": "无法完成", "pg.unavailable": "暂时无法完成",
        "pg.yes": "是", "pg.no": "否", "pg.detail": "详情", "pg.view": "查看",
        "role.admin": "管理员", "role.marketer": "运营", "role.ops": "客服主管", "role.agent": "坐席",
        "role.finance": "财务", "role.developer": "开发",
        "fs.draft": "草稿", "fs.active": "运行中", "fs.paused": "已暂停", "fs.archived": "已归档",
        "js.running": "运行中", "js.waiting": "等待中", "js.completed": "已完成", "js.converted": "已转化",
        "js.exited": "已退出", "js.failed": "失败", "js.cancelled": "已取消",
        "notice.duplicated": "已复制为新草稿 {id}。", "notice.archived": "已归档流程 {id}，它不再接收新客户。",
        "notice.restored": "已恢复流程 {id}（恢复后为暂停或草稿状态，需要时请在编辑器中重新发布）。",
        "notice.cancel_sent": "已向旅程 {id} 发送取消信号，几秒后状态会变为「已取消」。",
        "fl.q": "按名称或 ID 搜索", "fl.kind.any": "全部类型", "fl.status.any": "全部（不含已归档）",
        "fl.new": "新建流程", "fl.id": "ID", "fl.updated": "更新时间", "fl.active_journeys": "进行中旅程",
        "fl.edit": "编辑", "fl.open": "打开", "fl.duplicate": "复制", "fl.duplicate.id": "新流程的 ID",
        "fl.duplicate.name": "新流程的名称", "fl.duplicate.submit": "复制为新草稿", "fl.archive": "归档",
        "fl.restore": "恢复", "fl.empty": "没有符合条件的流程。", "fl.copy_suffix": "（副本）",
        "fl.count": "共 {n} 个流程", "fl.by": "由 {who}",
        "nf.blank": "从空白开始", "nf.blank.help": "创建一个只有触发器的草稿，然后在画布上继续编辑。",
        "nf.id.help": "字母、数字、-、_ 或 .，以字母或数字开头，最多 80 个字符；创建后不能修改。",
        "nf.create": "创建并打开编辑器", "nf.templates": "从模板创建",
        "nf.templates.help": "模板会复制成一个新的草稿，可以自由修改；发布前不会影响任何客户。",
        "nf.use": "用此模板创建", "nf.nodes": "{n} 个节点", "nf.trigger": "触发方式",
        "nf.no_templates": "没有你的角色可以创建的模板。", "nf.no_kinds": "你的角色不能创建流程。",
        "err.id_invalid": "ID 只能包含字母、数字、-、_ 和 .，以字母或数字开头，最多 80 个字符。",
        "err.id_taken": "ID「{id}」已被占用，请换一个。", "err.id_reserved": "「{id}」是保留字，请换一个 ID。",
        "err.name_required": "请填写名称。", "err.kind_invalid": "请选择一种流程类型。",
        "err.template_unknown": "找不到模板「{id}」。", "err.flow_unknown": "找不到流程「{id}」。",
        "err.customer_unknown": "找不到客户「{id}」。", "err.journey_unknown": "找不到旅程「{id}」。",
        "err.temporal_down": "工作流引擎（Temporal）当前没有连接，所以现在无法取消旅程。",
        "err.temporal_down.fix": "请确认 Temporal 和 worker 已启动（例如 make run），稍后再试。",
        "err.not_active": "旅程 {id} 已经是「{state}」状态，不需要取消。",
        "err.signal_failed": "取消信号没有送达旅程 {id}（{error}）。",
        "err.signal_failed.fix": "工作流可能已经结束；刷新页面查看最新状态，或稍后重试。",
        "cu.q": "按姓名、客户 ID、手机号或邮箱搜索", "cu.identities": "身份标识", "cu.tags": "标签",
        "cu.created": "创建时间", "cu.attributes": "属性", "cu.timezone": "时区", "cu.consent": "订阅与授权",
        "cu.journeys": "所在旅程", "cu.messages": "收到的消息", "cu.merged": "该客户已合并到 {id}。",
        "cu.empty": "没有符合条件的客户。", "cu.default_tz": "未设置（按流程时区）", "cu.profile": "客户档案",
        "cu.masked": "为保护隐私，手机号、邮箱和各平台 ID 已部分隐藏。",
        "ik.phone": "手机号", "ik.email": "邮箱", "ik.wecom_external_userid": "企业微信外部联系人",
        "ik.wechat_openid": "公众号 openid", "ik.wechat_unionid": "微信 unionid", "ik.external_id": "外部系统 ID",
        "ik.buyer": "{shop} 买家 ID",
        "ms.sent": "已发送", "ms.skipped: capped": "已跳过：超出频次上限",
        "ms.skipped: no consent": "已跳过：客户已退订",
        "ms.skipped: no customer": "已跳过：找不到客户",
        "ms.skipped: channel not configured": "已跳过：渠道未配置", "ms.node": "节点",
        "jo.id": "旅程 ID", "jo.flow": "流程", "jo.node": "当前节点", "jo.started": "开始时间", "jo.ended": "结束时间",
        "jo.cancel": "取消旅程", "jo.filter.flow": "流程", "jo.flow.any": "全部流程", "jo.status.any": "全部状态",
        "jo.empty": "没有符合条件的旅程。", "jo.by_status": "按状态统计", "jo.total": "合计",
        "jo.engine_down": "工作流引擎（Temporal）当前没有连接：可以查看旅程，但暂时无法取消。",
        "jo.messages": "此旅程发送的消息",
        "au.title": "审计日志", "au.actor": "操作人", "au.action": "操作", "au.target": "对象", "au.detail": "详情",
        "au.empty": "没有审计记录。", "au.actor.q": "按操作人筛选", "au.action.q": "按操作筛选（前缀，例如 flow.）",
    },
    "en": {
        "pg.search": "Search", "pg.filter": "Filter", "pg.reset": "Clear filters", "pg.all": "All",
        "pg.actions": "Actions", "pg.prev": "Previous", "pg.next": "Next",
        "pg.pages": "Page {page} of {pages} · {total} in all", "pg.pagination": "Pages",
        "pg.tz": "China time", "pg.back": "Back", "pg.home": "Back to the overview", "pg.forbidden": "Access denied",
        "pg.forbidden.page": "This page needs one of these roles: {roles} (or admin). Your role is “{role}”.",
        "pg.forbidden.kind": "Your role “{role}” cannot change “{kind}” flows; that needs {roles} (or admin).",
        "pg.forbidden.fix": "Ask an admin to give your account one of these roles.",
        "pg.forbidden.admin": "Only admins may see this page. Your role is “{role}”.",
        "pg.notfound": "Not found", "pg.conflict": "Cannot do that", "pg.unavailable": "Not possible right now",
        "pg.yes": "yes", "pg.no": "no", "pg.detail": "Details", "pg.view": "View",
        "role.admin": "admin", "role.marketer": "marketer", "role.ops": "ops", "role.agent": "agent",
        "role.finance": "finance", "role.developer": "developer",
        "fs.draft": "Draft", "fs.active": "Active", "fs.paused": "Paused", "fs.archived": "Archived",
        "js.running": "Running", "js.waiting": "Waiting", "js.completed": "Completed", "js.converted": "Converted",
        "js.exited": "Exited", "js.failed": "Failed", "js.cancelled": "Cancelled",
        "notice.duplicated": "Duplicated as the new draft {id}.",
        "notice.archived": "Archived flow {id}; it takes no new customers.",
        "notice.restored": "Restored flow {id} (it is paused or a draft now; publish it again in the editor "
                           "when it should run).",
        "notice.cancel_sent": "Cancel sent to journey {id}; its status turns to Cancelled in a few seconds.",
        "fl.q": "Search by name or id", "fl.kind.any": "All kinds", "fl.status.any": "All but archived",
        "fl.new": "New flow", "fl.id": "ID", "fl.updated": "Updated", "fl.active_journeys": "Active journeys",
        "fl.edit": "Edit", "fl.open": "Open", "fl.duplicate": "Duplicate", "fl.duplicate.id": "New flow id",
        "fl.duplicate.name": "New flow name", "fl.duplicate.submit": "Duplicate as a new draft",
        "fl.archive": "Archive", "fl.restore": "Restore", "fl.empty": "No flows match.", "fl.copy_suffix": " (copy)",
        "fl.count": "{n} flows", "fl.by": "by {who}",
        "nf.blank": "Start from blank", "nf.blank.help": "Creates a draft with just a trigger; continue on the canvas.",
        "nf.id.help": "Letters, digits, '-', '_' or '.', starting with a letter or digit, at most 80 characters; "
                      "it cannot be changed later.",
        "nf.create": "Create and open the editor", "nf.templates": "Start from a template",
        "nf.templates.help": "A template is copied into a new draft you can change freely; it reaches no "
                             "customer until you publish it.",
        "nf.use": "Create from this template", "nf.nodes": "{n} nodes", "nf.trigger": "Trigger",
        "nf.no_templates": "No templates of a kind your role may create.", "nf.no_kinds": "Your role cannot "
        "create flows.",
        "err.id_invalid": "An id has letters, digits, '-', '_' and '.', starts with a letter or digit and has at "
                          "most 80 characters.",
        "err.id_taken": "The id “{id}” is taken; choose another.", "err.id_reserved": "“{id}” is reserved; "
        "choose another id.",
        "err.name_required": "Enter a name.", "err.kind_invalid": "Choose a kind of flow.",
        "err.template_unknown": "There is no template “{id}”.", "err.flow_unknown": "There is no flow “{id}”.",
        "err.customer_unknown": "There is no customer “{id}”.", "err.journey_unknown": "There is no journey “{id}”.",
        "err.temporal_down": "The workflow engine (Temporal) is not connected, so the journey cannot be "
                             "cancelled right now.",
        "err.temporal_down.fix": "Make sure Temporal and the worker are running (e.g. make run), then try again.",
        "err.not_active": "Journey {id} is already {state}; there is nothing to cancel.",
        "err.signal_failed": "The cancel signal did not reach journey {id} ({error}).",
        "err.signal_failed.fix": "The workflow may have ended already; reload the page to see its status, or try "
                                 "again later.",
        "cu.q": "Search by name, customer id, phone or email", "cu.identities": "Identities", "cu.tags": "Tags",
        "cu.created": "Created", "cu.attributes": "Attributes", "cu.timezone": "Timezone", "cu.consent": "Consent",
        "cu.journeys": "Journeys", "cu.messages": "Messages received", "cu.merged": "This customer was merged "
        "into {id}.",
        "cu.empty": "No customers match.", "cu.default_tz": "not set (the flow's timezone applies)",
        "cu.profile": "Customer profile",
        "cu.masked": "Phones, emails and platform ids are partly hidden to protect privacy.",
        "ik.phone": "Phone", "ik.email": "Email", "ik.wecom_external_userid": "WeCom external contact",
        "ik.wechat_openid": "WeChat OA openid", "ik.wechat_unionid": "WeChat unionid",
        "ik.external_id": "External system id", "ik.buyer": "{shop} buyer id",
        "ms.sent": "sent", "ms.skipped: capped": "skipped: capped", "ms.skipped: no consent": "skipped: no consent",
        "ms.skipped: no customer": "skipped: no customer",
        "ms.skipped: channel not configured": "skipped: channel not configured", "ms.node": "Node",
        "jo.id": "Journey id", "jo.flow": "Flow", "jo.node": "Current node", "jo.started": "Started",
        "jo.ended": "Ended", "jo.cancel": "Cancel journey", "jo.filter.flow": "Flow", "jo.flow.any": "All flows",
        "jo.status.any": "All statuses", "jo.empty": "No journeys match.", "jo.by_status": "By status",
        "jo.total": "Total",
        "jo.engine_down": "The workflow engine (Temporal) is not connected: journeys can be viewed but not "
                          "cancelled right now.",
        "jo.messages": "Messages sent in this journey",
        "au.title": "Audit log", "au.actor": "Actor", "au.action": "Action", "au.target": "Target",
        "au.detail": "Detail", "au.empty": "No audit entries.", "au.actor.q": "Filter by actor",
        "au.action.q": "Filter by action (prefix, e.g. flow.)",
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


router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _when(value: datetime | None) -> str:
    return value.astimezone(DISPLAY_TZ).strftime("%Y-%m-%d %H:%M") if value else "—"


def _compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


templates.env.filters["when"] = _when
templates.env.filters["compact"] = _compact_json


def _render(request: Request, user: User, name: str, status_code: int = 200, **extra: Any) -> HTMLResponse:
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
    return _render(request, problem.user, "layout/problem.html", status_code=problem.status,
                   title=t[problem.title], message=t[problem.message].format(**params),
                   fix=t[problem.fix].format(**params) if problem.fix else "", back=problem.back)


def _forbidden(user: User, roles: Iterable[str], back: str = "/") -> PageProblem:
    roles = tuple(roles)
    if roles == AUDIT_ADMIN:
        return PageProblem(403, user, "pg.forbidden", "pg.forbidden.admin", back=back, role=user.role)
    return PageProblem(403, user, "pg.forbidden", "pg.forbidden.page", "pg.forbidden.fix", back=back,
                       roles=",".join(roles), role=user.role)


def _forbidden_kind(user: User, kind: str, back: str = "/flows") -> PageProblem:
    return PageProblem(403, user, "pg.forbidden", "pg.forbidden.kind", "pg.forbidden.fix", back=back,
                       roles=",".join(KIND_EDITORS.get(kind, ())), role=user.role, kind=kind)


def page_user(*roles: str) -> Callable[..., Awaitable[User]]:
    """A dependency: the logged-in user if they have one of ``roles`` (admin always does); else the
    friendly 403 page. Not logged in: the login redirect, as for every page."""
    for role in roles:
        auth.check_role(role)

    async def dependency(user: Annotated[User, Depends(current_user)]) -> User:
        if not auth.has_role(user, *roles):
            raise _forbidden(user, roles)
        return user

    dependency.__name__ = f"page_user_{'_'.join(roles) or 'any'}"
    return dependency


FlowReader = Annotated[User, Depends(page_user(*FLOW_READERS))]
CustomerReader = Annotated[User, Depends(page_user(*CUSTOMER_READERS))]
Admin = Annotated[User, Depends(page_user(*AUDIT_ADMIN))]
DbUrl = Annotated[str, Depends(get_db_url)]


def _with_query(path: str, **params: str) -> str:
    """``path`` with ``params`` added to (or replacing those in) its query string."""
    base, _, query = path.partition("?")
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in params]
    pairs += [(k, v) for k, v in params.items() if v]
    return base + ("?" + urlencode(pairs) if pairs else "")


def _see_other(path: str) -> RedirectResponse:
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


def _page_number(value: str | None) -> int:
    try:
        return max(1, min(int(value or 1), 100_000))
    except ValueError:
        return 1


def _clip(value: str | None, limit: int = 200) -> str:
    return (value or "").strip()[:limit]


# --- flows -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlowTemplate:
    """A shipped flow from ``flows/`` that a new flow can be copied from."""

    key: str  # file stem, e.g. "welcome-new-contact"
    id: str
    name: str
    kind: str
    description: str
    trigger: str
    nodes: int
    document: dict[str, Any] = field(repr=False, compare=False, hash=False)


def _load_templates(directory: Path) -> tuple[FlowTemplate, ...]:
    found = []
    for path in flow_files(directory):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("nodes"), list):
            continue
        trigger = next((str(n.get("type")) for n in doc["nodes"] if str(n.get("type", "")).startswith("trigger.")),
                       "")
        found.append(FlowTemplate(key=path.stem, id=str(doc.get("id") or path.stem),
                                  name=str(doc.get("name") or path.stem), kind=str(doc.get("kind") or "journey"),
                                  description=str(doc.get("description") or ""), trigger=trigger,
                                  nodes=len(doc["nodes"]), document=doc))
    return tuple(found)


@lru_cache(maxsize=4)
def _cached_templates(directory: Path, stamp: tuple[tuple[str, float], ...]) -> tuple[FlowTemplate, ...]:
    return _load_templates(directory)


def flow_templates(directory: Path = FLOWS_DIR) -> tuple[FlowTemplate, ...]:
    """The shipped templates (re-read when a file in ``flows/`` changes)."""
    stamp = tuple((p.name, p.stat().st_mtime) for p in flow_files(directory))
    return _cached_templates(directory, stamp)


def _node_label(node_type: str, lang: str) -> str:
    found = default_registry().get(node_type)
    return found.label.get(lang, node_type) if found is not None and found.label else node_type


def blank_flow(flow_id: str, name: str, kind: str) -> dict[str, Any]:
    """A new draft with just the trigger that suits ``kind``."""
    trigger, config = BLANK_TRIGGER[kind]
    return {"schema": "tideflow/flow@1", "id": flow_id, "name": name, "kind": kind,
            "settings": {"timezone": "Asia/Shanghai"},
            "nodes": [{"id": "start", "type": trigger, "config": dict(config), "ui": {"x": 80, "y": 200}}],
            "edges": []}


def _free_id(db: Session, wanted: str) -> str:
    """``wanted`` if no flow has it, else ``wanted-2``, ``wanted-3`` ..."""
    if db.get(models.FlowRecord, wanted) is None and wanted not in RESERVED_IDS:
        return wanted
    stem = wanted[:74]
    for n in range(2, 1000):
        candidate = f"{stem}-{n}"
        if db.get(models.FlowRecord, candidate) is None:
            return candidate
    return stem + "-" + utcnow().strftime("%H%M%S")


def _id_error(db: Session, flow_id: str) -> tuple[str, dict[str, str]] | None:
    """A catalogue key and its parameters when ``flow_id`` cannot be used for a new flow."""
    if not re.fullmatch(ID_PATTERN, flow_id):
        return "err.id_invalid", {}
    if flow_id.lower() in RESERVED_IDS:
        return "err.id_reserved", {"id": flow_id}
    if db.get(models.FlowRecord, flow_id) is not None:
        return "err.id_taken", {"id": flow_id}
    return None


def _editable_kinds(user: User) -> list[str]:
    return [k for k in KINDS if may_edit_kind(user, k)]


@router.get("/flows", response_class=HTMLResponse)
def flows_page(request: Request, user: FlowReader, db_url: DbUrl, q: str = "", kind: str = "",
               status: str = "", page: str = "") -> HTMLResponse:
    """The flow list: search, filter by kind and status; duplicate, archive and restore in place."""
    q, kind, status = _clip(q), kind if kind in KINDS else "", status if status in FLOW_STATUSES else ""
    with session_factory(db_url)() as db:
        query = select(models.FlowRecord)
        if kind:
            query = query.where(models.FlowRecord.kind == kind)
        query = query.where(models.FlowRecord.status == status) if status else \
            query.where(models.FlowRecord.status != "archived")
        if q:
            like = f"%{q}%"
            query = query.where(models.FlowRecord.name.ilike(like) | models.FlowRecord.id.ilike(like))
        total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
        pager = Pager(request, _page_number(page), total)
        flows = list(db.scalars(query.order_by(models.FlowRecord.updated_at.desc(), models.FlowRecord.id)
                                .offset(pager.offset).limit(pager.per)))
        active: dict[str, int] = {}
        if flows:
            active = {str(f): int(n) for f, n in db.execute(
                select(models.Journey.flow_id, func.count())
                .where(models.Journey.flow_id.in_([f.id for f in flows]), models.Journey.status.in_(ACTIVE))
                .group_by(models.Journey.flow_id)).all()}
    _lang, t = i18n.text_for(request)
    copy_suffix = t["fl.copy_suffix"]
    rows = [{"flow": f, "may_edit": may_edit_kind(user, f.kind), "active": active.get(f.id, 0),
             "copy_id": f"{f.id[:74]}-copy", "copy_name": f"{f.name}{copy_suffix}"[:200]} for f in flows]
    return _render(request, user, "flows/flows.html", rows=rows, pager=pager, q=q, kind=kind, status=status,
                   kinds=KINDS, statuses=FLOW_STATUSES, may_create=bool(_editable_kinds(user)))


def _new_flow_page(request: Request, user: User, db_url: str, status_code: int = 200, *,
                   error: str = "", error_field: str = "", form: Mapping[str, str] | None = None,
                   template_error: tuple[str, str] | None = None) -> HTMLResponse:
    lang, _t = i18n.text_for(request)
    kinds = _editable_kinds(user)
    with session_factory(db_url)() as db:
        shown = [{"template": tpl, "trigger": _node_label(tpl.trigger, lang), "suggested_id": _free_id(db, tpl.id)}
                 for tpl in flow_templates() if tpl.kind in kinds]
    return _render(request, user, "flows/new_flow.html", status_code, kinds=kinds, templates=shown,
                   error=error, error_field=error_field, form=dict(form or {}),
                   template_error=template_error, triggers={k: _node_label(BLANK_TRIGGER[k][0], lang) for k in KINDS})


@router.get("/flows/new", response_class=HTMLResponse)
def new_flow_page(request: Request, user: FlowReader, db_url: DbUrl, kind: str = "") -> HTMLResponse:
    """Create a flow: from blank (id, name, kind) or from one of the shipped templates."""
    if not _editable_kinds(user):
        raise PageProblem(403, user, "pg.forbidden", "nf.no_kinds", "pg.forbidden.fix", back="/flows")
    return _new_flow_page(request, user, db_url, form={"kind": kind if kind in KINDS else ""})


def _create(db_url: str, user: User, document: dict[str, Any], audit: tuple[str, dict[str, Any]] | None) -> None:
    with transaction(db_url) as db:
        flowsvc.save_draft(db, document, user.username)  # records flow.created
        if audit is not None:
            auth.audit(db, user, audit[0], document["id"], audit[1])


@router.post("/flows/new", response_class=HTMLResponse)
def create_blank(request: Request, user: FlowReader, db_url: DbUrl,
                 flow_id: Annotated[str, Form(alias="id", max_length=200)] = "",
                 name: Annotated[str, Form(max_length=400)] = "",
                 kind: Annotated[str, Form(max_length=20)] = "") -> Response:
    """A blank draft of ``kind`` with just its trigger; then the editor."""
    flow_id, name = flow_id.strip(), name.strip()
    form = {"id": flow_id, "name": name, "kind": kind}
    _lang, t = i18n.text_for(request)
    if kind not in KINDS:
        return _new_flow_page(request, user, db_url, 422, error=t["err.kind_invalid"], error_field="kind", form=form)
    if not may_edit_kind(user, kind):
        raise _forbidden_kind(user, kind, back="/flows/new")
    with session_factory(db_url)() as db:
        problem = _id_error(db, flow_id)
    if problem is not None:
        status = 409 if problem[0] == "err.id_taken" else 422
        return _new_flow_page(request, user, db_url, status, error=t[problem[0]].format(**problem[1]),
                              error_field="id", form=form)
    if not name:
        return _new_flow_page(request, user, db_url, 422, error=t["err.name_required"], error_field="name", form=form)
    _create(db_url, user, blank_flow(flow_id, name[:200], kind), None)
    return _see_other(f"/flows/{flow_id}/edit")


@router.post("/flows/new/from-template", response_class=HTMLResponse)
def create_from_template(request: Request, user: FlowReader, db_url: DbUrl,
                         template: Annotated[str, Form(max_length=200)] = "",
                         flow_id: Annotated[str, Form(alias="id", max_length=200)] = "",
                         name: Annotated[str, Form(max_length=400)] = "") -> Response:
    """Copy a shipped template into a new draft under the id the user chose; then the editor."""
    flow_id, name = flow_id.strip(), name.strip()
    _lang, t = i18n.text_for(request)
    found = next((tpl for tpl in flow_templates() if tpl.key == template), None)
    if found is None:
        raise PageProblem(404, user, "pg.notfound", "err.template_unknown", back="/flows/new", id=template)
    if not may_edit_kind(user, found.kind):
        raise _forbidden_kind(user, found.kind, back="/flows/new")
    with session_factory(db_url)() as db:
        problem = _id_error(db, flow_id)
    if problem is not None:
        status = 409 if problem[0] == "err.id_taken" else 422
        return _new_flow_page(request, user, db_url, status,
                              template_error=(found.key, t[problem[0]].format(**problem[1])))
    document = copy.deepcopy(found.document)
    document["id"], document["name"] = flow_id, (name or found.name)[:200]
    _create(db_url, user, document, ("flow.created_from_template", {"template": found.key}))
    return _see_other(f"/flows/{flow_id}/edit")


def _flow_or_problem(db: Session, user: User, flow_id: str) -> models.FlowRecord:
    record = db.get(models.FlowRecord, flow_id)
    if record is None:
        raise PageProblem(404, user, "pg.notfound", "err.flow_unknown", back="/flows", id=flow_id)
    if not may_edit_kind(user, record.kind):
        raise _forbidden_kind(user, record.kind)
    return record


@router.post("/flows/{flow_id}/duplicate", response_class=HTMLResponse)
def duplicate_flow(request: Request, flow_id: str, user: FlowReader, db_url: DbUrl,
                   new_id: Annotated[str, Form(max_length=200)] = "",
                   name: Annotated[str, Form(max_length=400)] = "",
                   back: Annotated[str, Form(max_length=2000)] = "/flows") -> Response:
    """Copy a flow's current draft into a new draft with a new id."""
    new_id, name = new_id.strip(), name.strip()
    _lang, t = i18n.text_for(request)
    with session_factory(db_url)() as db:
        source = _flow_or_problem(db, user, flow_id)
        problem = _id_error(db, new_id)
        document = copy.deepcopy(source.draft)
        source_name, version = source.name, source.current_version
    if problem is not None:
        status = 409 if problem[0] == "err.id_taken" else 422
        raise PageProblem(status, user, "pg.conflict", problem[0], back=safe_next(back), **problem[1])
    document["id"] = new_id
    document["name"] = (name or f"{source_name}{t['fl.copy_suffix']}")[:200]
    _create(db_url, user, document, ("flow.duplicated", {"from": flow_id, "from_version": version}))
    return _see_other(_with_query(safe_next(back), notice="duplicated", id=new_id))


async def _unschedule(request: Request, flow_id: str) -> None:
    """An archived flow runs on no clock: drop its Temporal schedule and the router's cache."""
    engine_router = getattr(request.app.state, "router", None)
    if engine_router is None:
        return  # the worker syncs schedules from the database when it starts
    engine_router.invalidate()
    from engine.scheduling import sync_flow

    try:
        await sync_flow(engine_router.client, None, flow_id, engine_router.task_queue)
    except Exception:  # the worker re-syncs schedules from the database
        return


def _set_status(db_url: str, user: User, flow_id: str, archive: bool) -> str:
    with transaction(db_url) as db:
        record = _flow_or_problem(db, user, flow_id)
        before = record.status
        if archive:
            after = "archived"
        elif before != "archived":
            return before
        else:
            after = "paused" if record.current_version is not None else "draft"
        if before != after:
            record.status, record.updated_at, record.updated_by = after, utcnow(), user.username
            auth.audit(db, user, "flow.archived" if archive else "flow.restored", flow_id,
                       {"from": before, "to": after})
        return after


@router.post("/flows/{flow_id}/archive", response_class=HTMLResponse)
async def archive_flow(request: Request, flow_id: str, user: FlowReader, db_url: DbUrl,
                       back: Annotated[str, Form(max_length=2000)] = "/flows") -> Response:
    """Archive: the flow takes no new customers (running journeys finish on their version)."""
    await run_in_threadpool(_set_status, db_url, user, flow_id, True)
    await _unschedule(request, flow_id)
    return _see_other(_with_query(safe_next(back), notice="archived", id=flow_id))


@router.post("/flows/{flow_id}/restore", response_class=HTMLResponse)
async def restore_flow(request: Request, flow_id: str, user: FlowReader, db_url: DbUrl,
                       back: Annotated[str, Form(max_length=2000)] = "/flows") -> Response:
    """Restore an archived flow as paused (published before) or draft; publishing makes it run again."""
    await run_in_threadpool(_set_status, db_url, user, flow_id, False)
    engine_router = getattr(request.app.state, "router", None)
    if engine_router is not None:
        engine_router.invalidate()
    return _see_other(_with_query(safe_next(back), notice="restored", id=flow_id))


# --- customers -------------------------------------------------------------------------------------


def mask_identity(kind: str, value: str) -> str:
    """How an identity is shown: phones ``139****0001``, emails ``a***@domain``, long platform ids
    keep their first and last four characters."""
    if kind == "phone":
        return mask_phone(value)
    if kind == "email" and "@" in value:
        local, domain = value.split("@", 1)
        return local[:1] + "***@" + domain
    if kind == "customer_id":
        return value
    if len(value) > 10:
        return value[:4] + "****" + value[-4:]
    return value[:2] + "****" + value[-2:] if len(value) > 6 else "****"


def _identity_label(t: i18n.Text, kind: str) -> str:
    if kind.endswith("_buyer"):
        return t["ik.buyer"].format(shop=kind.removesuffix("_buyer"))
    key = f"ik.{kind}"
    return t.get(key, kind)


def _masked_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: _masked_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked_value(v) for v in value]
    return value


def _customer_search(q: str) -> Any:
    """A WHERE clause: name contains ``q``, or the id is ``q``, or an identity's value is ``q``."""
    values = {q}
    for kind in ("phone", "email"):
        with contextlib.suppress(IdentityError):
            values.add(normalise(kind, q))
    by_identity = select(models.Identity.customer_id).where(models.Identity.value.in_(values))
    return or_(models.Customer.name.ilike(f"%{q}%"), models.Customer.id == q, models.Customer.id.in_(by_identity))


@router.get("/customers", response_class=HTMLResponse)
def customers_page(request: Request, user: CustomerReader, db_url: DbUrl, q: str = "",
                   page: str = "") -> HTMLResponse:
    """Customers, newest first; search by name, id, phone or email."""
    q = _clip(q)
    _lang, t = i18n.text_for(request)
    with session_factory(db_url)() as db:
        query = select(models.Customer).where(models.Customer.merged_into.is_(None))
        if q:
            query = query.where(_customer_search(q))
        total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
        pager = Pager(request, _page_number(page), total)
        customers = list(db.scalars(query.order_by(models.Customer.created_at.desc(), models.Customer.id)
                                    .offset(pager.offset).limit(pager.per)))
        ids = [c.id for c in customers]
        identities: dict[str, list[tuple[str, str]]] = {}
        tags: dict[str, list[str]] = {}
        if ids:
            for row in db.scalars(select(models.Identity).where(models.Identity.customer_id.in_(ids))
                                  .order_by(models.Identity.kind)):
                identities.setdefault(row.customer_id, []).append(
                    (_identity_label(t, row.kind), mask_identity(row.kind, row.value)))
            for cid, tag in db.execute(select(models.CustomerTag.customer_id, models.CustomerTag.tag)
                                       .where(models.CustomerTag.customer_id.in_(ids))
                                       .order_by(models.CustomerTag.tag)).all():
                tags.setdefault(str(cid), []).append(str(tag))
    rows = [{"customer": c, "identities": identities.get(c.id, []), "tags": tags.get(c.id, [])} for c in customers]
    return _render(request, user, "customers/customers.html", rows=rows, pager=pager, q=q)


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
def customer_page(request: Request, customer_id: str, user: CustomerReader, db_url: DbUrl) -> Response:
    """One customer: profile, masked identities, tags, journeys and the messages they got."""
    _lang, t = i18n.text_for(request)
    with session_factory(db_url)() as db:
        found = db.get(models.Customer, customer_id)
        if found is None:
            raise PageProblem(404, user, "pg.notfound", "err.customer_unknown", back="/customers", id=customer_id)
        cid = canonical(db, customer_id)
        if cid != customer_id:
            return _see_other(f"/customers/{cid}")
        identities = [{"kind": _identity_label(t, i.kind), "value": mask_identity(i.kind, i.value)}
                      for i in db.scalars(select(models.Identity).where(models.Identity.customer_id == cid)
                                          .order_by(models.Identity.kind))]
        tags = list(db.scalars(select(models.CustomerTag.tag).where(models.CustomerTag.customer_id == cid)
                               .order_by(models.CustomerTag.tag)))
        journeys = list(db.scalars(select(models.Journey).where(models.Journey.customer_id == cid)
                                   .order_by(models.Journey.started_at.desc()).limit(100)))
        messages = list(db.scalars(select(models.Message).where(models.Message.customer_id == cid)
                                   .order_by(models.Message.created_at.desc(), models.Message.id.desc()).limit(100)))
        merged = list(db.scalars(select(models.Customer.id).where(models.Customer.merged_into == cid)))
        flow_names = _flow_names(db, {j.flow_id for j in journeys} | {m.flow_id for m in messages if m.flow_id})
    return _render(request, user, "customers/customer.html", customer=found, identities=identities, tags=tags,
                   attributes=_masked_value(dict(found.attributes or {})), consent=dict(found.consent or {}),
                   journeys=journeys, messages=[_message_row(t, m) for m in messages], merged=merged,
                   flow_names=flow_names, may_see_journeys=auth.has_role(user, *FLOW_READERS))


def _flow_names(db: Session, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    return {str(i): str(n) for i, n in db.execute(select(models.FlowRecord.id, models.FlowRecord.name)
                                                  .where(models.FlowRecord.id.in_(ids))).all()}


def _message_row(t: i18n.Text, m: models.Message) -> dict[str, Any]:
    key = f"ms.{m.status}"
    return {"at": m.created_at, "channel": m.channel, "status": m.status,
            "status_label": t.get(key, m.status), "skipped": not m.status.startswith("sent"),
            "content": mask_text(m.content), "flow": m.flow_id, "node": m.node_id, "journey": m.workflow_id}


# --- journeys --------------------------------------------------------------------------------------


@router.get("/journeys", response_class=HTMLResponse)
def journeys_page(request: Request, user: FlowReader, db_url: DbUrl, flow: str = "", status: str = "",
                  page: str = "") -> HTMLResponse:
    """Journey instances: counts per status, filter by flow and status, cancel a running one."""
    flow, status = _clip(flow, 80), status if status in JOURNEY_STATUSES else ""
    with session_factory(db_url)() as db:
        counts_q = select(models.Journey.status, func.count()).group_by(models.Journey.status)
        query = select(models.Journey)
        if flow:
            counts_q = counts_q.where(models.Journey.flow_id == flow)
            query = query.where(models.Journey.flow_id == flow)
        counts = {str(s): int(n) for s, n in db.execute(counts_q).all()}
        if status:
            query = query.where(models.Journey.status == status)
        total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
        pager = Pager(request, _page_number(page), total)
        journeys = list(db.scalars(query.order_by(models.Journey.started_at.desc(), models.Journey.workflow_id)
                                   .offset(pager.offset).limit(pager.per)))
        flows = {f.id: f for f in db.scalars(select(models.FlowRecord).order_by(models.FlowRecord.name))}
        wanted = {j.customer_id for j in journeys if j.customer_id}
        names = {str(i): str(n) for i, n in db.execute(select(models.Customer.id, models.Customer.name)
                                                       .where(models.Customer.id.in_(wanted))).all() if n}
    rows = [{"journey": j, "flow": flows.get(j.flow_id), "customer": names.get(j.customer_id or ""),
             "may_cancel": j.status in ACTIVE and may_edit_kind(user, flows[j.flow_id].kind if j.flow_id in flows
                                                                  else "journey")} for j in journeys]
    return _render(request, user, "journeys/journeys.html", rows=rows, pager=pager, counts=counts,
                   statuses=JOURNEY_STATUSES, flow=flow, status=status, flows=list(flows.values()),
                   engine_down=getattr(request.app.state, "router", None) is None,
                   may_see_customers=auth.has_role(user, *CUSTOMER_READERS))


@router.post("/journeys/cancel", response_class=HTMLResponse)
async def cancel_journey(request: Request, user: FlowReader, db_url: DbUrl,
                         journey_id: Annotated[str, Form(max_length=200)] = "",
                         back: Annotated[str, Form(max_length=2000)] = "/journeys") -> Response:
    """Signal ``cancel`` to a running journey's workflow (needs the right to edit its flow's kind)."""
    back = safe_next(back)

    def _check() -> None:
        with session_factory(db_url)() as db:
            journey = db.get(models.Journey, journey_id)
            if journey is None:
                raise PageProblem(404, user, "pg.notfound", "err.journey_unknown", back=back, id=journey_id)
            kind = db.scalar(select(models.FlowRecord.kind).where(models.FlowRecord.id == journey.flow_id))
            if not may_edit_kind(user, kind or "journey"):
                raise _forbidden_kind(user, kind or "journey", back=back)
            if journey.status not in ACTIVE:
                raise PageProblem(409, user, "pg.conflict", "err.not_active", back=back, id=journey_id,
                                  state=journey.status)

    await run_in_threadpool(_check)
    engine_router = getattr(request.app.state, "router", None)
    if engine_router is None:
        raise PageProblem(503, user, "pg.unavailable", "err.temporal_down", "err.temporal_down.fix", back=back)
    try:
        await engine_router.client.get_workflow_handle(journey_id).signal("cancel", f"by {user.username}")
    except Exception as exc:
        raise PageProblem(502, user, "pg.unavailable", "err.signal_failed", "err.signal_failed.fix", back=back,
                          id=journey_id, error=type(exc).__name__) from None

    def _audit() -> None:
        with transaction(db_url) as db:
            auth.audit(db, user, "journey.cancel_requested", journey_id, {})

    await run_in_threadpool(_audit)
    return _see_other(_with_query(back, notice="cancel_sent", id=journey_id))


@router.get("/journeys/{journey_id:path}", response_class=HTMLResponse)
def journey_page(request: Request, journey_id: str, user: FlowReader, db_url: DbUrl) -> HTMLResponse:
    """One journey: its flow and version, customer, status, current node and the messages it sent."""
    _lang, t = i18n.text_for(request)
    with session_factory(db_url)() as db:
        journey = db.get(models.Journey, journey_id)
        if journey is None:
            raise PageProblem(404, user, "pg.notfound", "err.journey_unknown", back="/journeys", id=journey_id)
        flow = db.get(models.FlowRecord, journey.flow_id)
        messages = list(db.scalars(select(models.Message).where(models.Message.workflow_id == journey_id)
                                   .order_by(models.Message.id)))
    return _render(request, user, "journeys/journey.html", journey=journey, flow=flow,
                   messages=[_message_row(t, m) for m in messages],
                   may_cancel=journey.status in ACTIVE and may_edit_kind(user, flow.kind if flow else "journey"),
                   engine_down=getattr(request.app.state, "router", None) is None,
                   may_see_customers=auth.has_role(user, *CUSTOMER_READERS))


# --- audit log -------------------------------------------------------------------------------------


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, user: Admin, db_url: DbUrl, actor: str = "", action: str = "",
               page: str = "") -> HTMLResponse:
    """Who did what, newest first (admins only)."""
    actor, action = _clip(actor, 80), _clip(action, 60)
    with session_factory(db_url)() as db:
        query = select(models.AuditEntry)
        if actor:
            query = query.where(models.AuditEntry.actor == actor.lower())
        if action:
            query = query.where(models.AuditEntry.action.startswith(action, autoescape=True))
        total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
        pager = Pager(request, _page_number(page), total)
        entries = list(db.scalars(query.order_by(models.AuditEntry.id.desc()).offset(pager.offset)
                                  .limit(pager.per)))
    return _render(request, user, "audit/audit.html", entries=entries, pager=pager, actor=actor, action=action)
