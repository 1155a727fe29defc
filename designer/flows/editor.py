"""The canvas editor: the editor page, property forms generated from config JSON Schemas, live
expression/template checks, version diffs, auto-layout, the statistics funnel and preview.

The flow document (``tideflow/flow@1``) is the only thing the editor stores: the browser keeps it
in memory, draws it with Drawflow through ``static/editor/adapter.js`` and saves it with
``PUT /api/flows/{id}``. Drawflow's own export is never sent anywhere.

Everything here that is not a route is a pure function with its own tests: :func:`build_form` /
:func:`parse_form` (JSON Schema ⇄ HTML form fields), :func:`flow_diff`, :func:`auto_layout`,
:func:`main_path`.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from designer import i18n
from designer.auth import get_db_url, require
from designer.i18n import Text, page_context, text_for
from designer.permissions import FLOW_READERS, may_edit_kind
from engine import auth as engine_auth
from engine import expressions
from engine import flows as flowsvc
from engine.customers import customer_view
from engine.db import models
from engine.db.models import User
from engine.db.session import session_factory
from engine.durations import DurationError, parse_duration
from engine.event_types import EVENT_TYPES
from engine.flow import FlowSettings
from engine.nodes.base import NodeType
from engine.registry import Registry, default_registry
from engine.validate import check_expression, validate

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent.parent  # designer/
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(tags=["editor"], include_in_schema=False)  # pages and fragments, not the JSON API

Reader = Annotated[User, Depends(require(*FLOW_READERS))]
DbUrl = Annotated[str, Depends(get_db_url)]

#: a sample customer for template previews when the database has none
SAMPLE_CUSTOMER: dict[str, Any] = {
    "id": "sample", "name": "韩梅梅", "orders_count": 0, "vip_level": 1, "days_since_interaction": 3,
    "birthday": "1992-11-23", "timezone": "Asia/Shanghai", "tags": ["尝鲜客"],
}
SAMPLE_EVENT: dict[str, Any] = {"id": "sample", "type": "order.paid", "source": "preview",
                                "payload": {"order_id": "T1001", "amount_fen": 12900}}
CATEGORY_ORDER = ("trigger", "wait", "logic", "action", "ticket", "settlement", "plugin", "end")
PREVIEW_MAX_DAYS = 90

#: UI strings: (key, zh-CN, en)
_STRINGS: tuple[tuple[str, str, str], ...] = (
    ("editor.title", "编辑流程", "Edit flow"),
    ("editor.palette", "节点", "Nodes"),
    ("editor.search", "搜索节点…", "Search nodes…"),
    ("editor.save", "保存草稿", "Save draft"),
    ("editor.publish", "发布", "Publish"),
    ("editor.undo", "撤销", "Undo"),
    ("editor.redo", "重做", "Redo"),
    ("editor.delete", "删除", "Delete"),
    ("editor.zoom_in", "放大", "Zoom in"),
    ("editor.zoom_out", "缩小", "Zoom out"),
    ("editor.zoom_reset", "100%", "100%"),
    ("editor.layout", "自动布局", "Auto-layout"),
    ("editor.settings", "流程设置", "Flow settings"),
    ("editor.stats", "实时数据", "Live stats"),
    ("editor.tab.props", "属性", "Properties"),
    ("editor.tab.preview", "预览", "Preview"),
    ("editor.tab.versions", "版本", "Versions"),
    ("editor.tab.funnel", "漏斗", "Funnel"),
    ("editor.props.empty", "在画布上选择一个节点以编辑它的属性。",
     "Select a node on the canvas to edit its properties."),
    ("editor.problems", "问题", "Problems"),
    ("editor.no_problems", "没有问题，可以发布。", "No problems: ready to publish."),
    ("editor.readonly", "只读：你的角色不能修改此类流程。", "Read-only: your role cannot change flows of this kind."),
    ("editor.archived", "此流程已归档，只读。", "This flow is archived and read-only."),
    ("editor.apply", "应用", "Apply"),
    ("editor.node_name", "节点名称", "Node name"),
    ("editor.node_id", "节点 ID", "Node id"),
    ("editor.ports", "输出端口", "Output ports"),
    ("editor.add_row", "添加一行", "Add a row"),
    ("editor.remove_row", "删除此行", "Remove this row"),
    ("editor.key", "键", "Key"),
    ("editor.value", "值", "Value"),
    ("editor.tags_hint", "多个值用逗号分隔", "separate values with commas"),
    ("editor.json_hint", "JSON 格式", "JSON"),
    ("editor.duration_hint", "ISO 8601 时长：PT30M = 30 分钟，PT2H = 2 小时，P1D = 1 天，P7D = 7 天",
     "ISO 8601 duration: PT30M = 30 minutes, PT2H = 2 hours, P1D = 1 day, P7D = 7 days"),
    ("editor.expression_hint", "表达式，可用 customer / event / vars / journey / now",
     "an expression over customer / event / vars / journey / now"),
    ("editor.template_hint", "消息模板，例如 {{ customer.name }}", "a message template, e.g. {{ customer.name }}"),
    ("editor.check_ok", "✓ 表达式正确", "✓ the expression is valid"),
    ("editor.duration_ok", "✓ {value}", "✓ {value}"),
    ("editor.preview_for", "预览（以「{name}」为例）：", "Preview (for “{name}”):"),
    ("editor.empty", "（空）", "(empty)"),
    ("editor.unknown_type", "未知节点类型「{type}」：可能是未安装的插件。",
     "Unknown node type “{type}”: perhaps a plugin that is not installed."),
    ("editor.no_config", "此节点没有需要设置的属性。", "This node has nothing to set."),
    ("editor.versions.none", "还没有发布过的版本。", "No version has been published yet."),
    ("editor.versions.compare", "比较", "Compare"),
    ("editor.versions.draft", "当前草稿", "current draft"),
    ("editor.versions.rollback", "回滚到此版本", "Roll back to this version"),
    ("editor.versions.by", "发布人", "By"),
    ("editor.versions.at", "发布时间", "Published"),
    ("editor.diff.title", "v{a} → {b} 的变化", "Changes v{a} → {b}"),
    ("editor.diff.none", "两个版本没有区别。", "The two versions are the same."),
    ("editor.diff.nodes_added", "新增节点", "Nodes added"),
    ("editor.diff.nodes_removed", "删除节点", "Nodes removed"),
    ("editor.diff.nodes_changed", "修改节点", "Nodes changed"),
    ("editor.diff.nodes_moved", "仅移动位置", "Only moved"),
    ("editor.diff.edges_added", "新增连线", "Edges added"),
    ("editor.diff.edges_removed", "删除连线", "Edges removed"),
    ("editor.diff.settings", "流程设置", "Flow settings"),
    ("editor.funnel.title", "转化漏斗（已发布版本 v{version}）", "Funnel (published version v{version})"),
    ("editor.funnel.none", "流程尚未发布，暂无数据。", "The flow is not published yet: no data."),
    ("editor.funnel.entered", "进入", "Entered"),
    ("editor.funnel.step", "步骤", "Step"),
    ("editor.preview.customer", "客户", "Customer"),
    ("editor.preview.name", "姓名", "Name"),
    ("editor.preview.attributes", "属性（JSON）", "Attributes (JSON)"),
    ("editor.preview.tags", "标签", "Tags"),
    ("editor.preview.events", "事件脚本", "Event script"),
    ("editor.preview.at", "时间", "At"),
    ("editor.preview.at_hint", "例如 day 3、P3D、PT2H", "e.g. day 3, P3D, PT2H"),
    ("editor.preview.type", "事件类型", "Event type"),
    ("editor.preview.payload", "内容（JSON）", "Payload (JSON)"),
    ("editor.preview.days", "模拟天数", "Days to simulate"),
    ("editor.preview.run", "运行预览", "Run preview"),
    ("editor.preview.play", "逐步播放", "Play"),
    ("editor.preview.running", "正在模拟…", "Simulating…"),
    ("editor.preview.status", "结果", "Result"),
    ("editor.preview.messages", "发出的消息", "Messages sent"),
    ("editor.preview.invalid", "流程还有问题，无法预览：", "The flow has problems and cannot be previewed:"),
    ("editor.preview.failed", "预览失败：{error}", "The preview failed: {error}"),
    ("editor.preview.bad_input", "输入有误：{error}", "Invalid input: {error}"),
    ("editor.preview.day", "第 {day} 天", "day {day}"),
    ("what.step", "经过", "passed"),
    ("what.action", "执行", "did"),
    ("what.deferred", "推迟", "deferred"),
    ("what.goal", "达成目标", "goal reached"),
    ("what.exit", "退出", "exited"),
    ("what.failed", "失败", "failed"),
    ("what.cancel", "取消", "cancelled"),
    ("editor.forbidden", "你的角色（{role}）不能查看流程编辑器。", "Your role ({role}) cannot open the flow editor."),
    ("editor.not_found", "流程「{id}」不存在。", "There is no flow “{id}”."),
    ("editor.back", "返回流程列表", "Back to the flows"),
    ("cat.trigger", "触发", "Triggers"),
    ("cat.wait", "等待", "Waits"),
    ("cat.logic", "逻辑", "Logic"),
    ("cat.action", "动作", "Actions"),
    ("cat.end", "结束", "Endings"),
    ("cat.plugin", "插件", "Plugins"),
    ("cat.ticket", "工单", "Tickets"),
    ("cat.settlement", "结算", "Settlement"),
    ("field.event", "事件类型", "Event type"),
    ("field.filter", "过滤条件", "Filter"),
    ("field.template", "消息模板", "Message template"),
    ("field.channel", "渠道", "Channel"),
    ("field.category", "消息类别", "Message category"),
    ("field.fallback_channel", "备用渠道", "Fallback channel"),
    ("field.attachments", "附件", "Attachments"),
    ("field.duration", "等待时长", "Duration"),
    ("field.timeout", "最长等待", "Wait at most"),
    ("field.expr", "条件表达式", "Condition"),
    ("field.cases", "分支", "Cases"),
    ("field.port", "端口名", "Port name"),
    ("field.branches", "分流", "Branches"),
    ("field.weight", "权重", "Weight"),
    ("field.add", "添加标签", "Add tags"),
    ("field.remove", "移除标签", "Remove tags"),
    ("field.campaign", "优惠券活动", "Coupon campaign"),
    ("field.flow", "目标流程", "Target flow"),
    ("field.audience", "目标人群", "Audience"),
    ("field.tags_any", "包含任一标签", "Any of these tags"),
    ("field.schedule", "频率", "Schedule"),
    ("field.at", "时间", "At"),
    ("field.cron", "Cron 表达式", "Cron expression"),
    ("field.batch_size", "批大小", "Batch size"),
    ("field.attribute", "日期属性", "Date attribute"),
    ("field.offset_days", "偏移天数", "Offset (days)"),
    ("field.yearly", "每年", "Every year"),
    ("field.every", "间隔", "Every"),
    ("field.time", "当地时间", "Local time"),
    ("field.weekdays", "星期（1–7）", "Weekdays (1–7)"),
    ("field.date_attribute", "日期属性", "Date attribute"),
    ("field.url", "URL", "URL"),
    ("field.method", "方法", "Method"),
    ("field.headers", "请求头", "Headers"),
    ("field.body", "请求体", "Body"),
    ("field.set", "设置属性", "Set attributes"),
    ("field.increment", "累加属性", "Increment attributes"),
    ("field.unset", "删除属性", "Remove attributes"),
    ("field.timezone", "时区", "Timezone"),
    ("field.entry", "再次进入", "Re-entry"),
    ("field.reentry", "再次进入", "Re-entry"),
    ("field.reentry_after", "间隔", "After"),
    ("field.exit_on", "退出事件", "Exit on events"),
    ("field.goal", "转化目标", "Goal"),
    ("field.within", "期限", "Within"),
    ("field.quiet_hours", "免打扰时段", "Quiet hours"),
    ("field.start", "开始", "Start"),
    ("field.end", "结束", "End"),
    ("field.frequency_capped", "受频次上限约束", "Frequency capped"),
    ("field.name", "名称", "Name"),
    ("field.settings", "运行设置", "Settings"),
    ("field.description", "说明", "Description"),
    ("editor.js.saved", "已保存草稿", "Draft saved"),
    ("editor.js.saving", "正在保存…", "Saving…"),
    ("editor.js.save_failed", "保存失败：", "Saving failed: "),
    ("editor.js.published", "已发布为 v{version}", "Published as v{version}"),
    ("editor.js.publish_failed", "发布失败：", "Publishing failed: "),
    ("editor.js.publish_blocked", "还有问题未解决，不能发布", "Fix the problems before publishing"),
    ("editor.js.unsaved", "有未保存的修改", "Unsaved changes"),
    ("editor.js.selected", "已选择 {n} 个节点：可一起移动或删除。",
     "{n} nodes selected: move or delete them together."),
    ("editor.js.rollback_confirm", "回滚到 v{version}？这会以它的内容发布一个新版本，并替换当前草稿。",
     "Roll back to v{version}? This publishes its content as a new version and replaces the draft."),
    ("editor.js.rolled_back", "已回滚：发布为 v{version}", "Rolled back: published as v{version}"),
    ("editor.js.problems_n", "{n} 个问题", "{n} problems"),
    ("editor.js.fix", "修复方法：", "Fix: "),
    ("editor.js.flow", "流程", "Flow"),
    ("editor.js.entered", "进入", "in"),
    ("editor.js.waiting", "等待中", "waiting"),
    ("editor.js.failed", "失败", "failed"),
    ("editor.js.applied", "已应用", "Applied"),
    ("editor.js.invalid_fields", "有字段需要修改（已暂存到草稿）", "Some fields need attention (kept in the draft)"),
    ("editor.js.node_added", "已添加节点 {id}", "Added node {id}"),
    ("editor.js.deleted", "已删除 {n} 个节点", "Deleted {n} nodes"),
)
i18n.add({"zh-CN": {k: zh for k, zh, _ in _STRINGS}, "en": {k: en for k, _, en in _STRINGS}})


# -- JSON Schema → form fields ------------------------------------------------------------------------------
@dataclass
class FormField:
    """One control of a generated form. ``name`` is the dotted path the browser posts back."""

    name: str
    key: str
    widget: str  # text number checkbox select tags numbers expression template duration json rows pairs group
    label: str
    help: str = ""
    value: Any = ""
    required: bool = False
    options: list[tuple[str, str]] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)
    datalist: str | None = None
    children: list[FormField] = field(default_factory=list)  # group
    rows: list[list[FormField]] = field(default_factory=list)  # rows / pairs: one list per item
    blank: list[FormField] = field(default_factory=list)  # rows / pairs: a new row, index "__i__"


@dataclass
class Pickers:
    """Choices for fields that name something in the database (coupon campaigns, flows)."""

    campaigns: list[tuple[str, str]] = field(default_factory=list)
    flows: list[tuple[str, str]] = field(default_factory=list)


_MISSING: Any = object()
_SCALARS = ("string", "integer", "number", "boolean")
_NULL = {"type": "null"}


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> dict[str, Any]:
    """Follow ``$ref`` (local ``#/$defs/...`` only), keeping the referring schema's own keywords."""
    out = dict(schema)
    seen = 0
    while "$ref" in out and seen < 20:
        ref = str(out.pop("$ref"))
        target: Any = root
        for part in ref.removeprefix("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        out = {**target, **out}
        seen += 1
    return out


def _unwrap(schema: Mapping[str, Any], root: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """``anyOf: [X, null]`` → (X with the outer title/description/default, True); else (schema, False)."""
    s = _resolve(schema, root)
    options = s.get("anyOf")
    if isinstance(options, list) and _NULL in options:
        rest = [o for o in options if o != _NULL]
        if len(rest) == 1:
            inner = _resolve(rest[0], root)
            outer = {k: v for k, v in s.items() if k != "anyOf"}
            return {**inner, **outer}, True
        return {**{k: v for k, v in s.items() if k != "anyOf"}, "anyOf": rest}, True
    return s, False


def _choices(s: Mapping[str, Any]) -> list[Any] | None:
    """The allowed values of an enum (``Literal[...]``; a single literal is a ``const``)."""
    if isinstance(s.get("enum"), list):
        return list(s["enum"])
    return [s["const"]] if "const" in s else None


def widget_of(schema: Mapping[str, Any], root: Mapping[str, Any]) -> str:
    """Which control edits a value of this (resolved, unwrapped) schema."""
    s = _resolve(schema, root)
    if _choices(s) is not None:
        return "select"
    fmt = s.get("format")
    kind = s.get("type")
    if fmt == "decision-table":  # logic.decision_table: a grid editor over the table's JSON
        return "decision_table"
    if kind == "string" and fmt in ("expression", "template", "duration"):
        return str(fmt)
    if kind == "string":
        return "text"
    if kind in ("integer", "number"):
        return "number"
    if kind == "boolean":
        return "checkbox"
    if kind == "array":
        items, _ = _unwrap(s.get("items", {}), root)
        if items.get("type") == "string" and _choices(items) is None:
            return "tags"
        if items.get("type") in ("integer", "number"):
            return "numbers"
        if items.get("type") == "object" and items.get("properties"):
            return "rows"
        return "json"
    if kind == "object":
        extra = s.get("additionalProperties")
        if s.get("properties"):
            return "group"
        if isinstance(extra, Mapping):
            value, optional = _unwrap(extra, root)
            if not optional and value.get("type") in _SCALARS and "anyOf" not in value:
                return "pairs"
        return "json"
    return "json"


def _label(key: str, schema: Mapping[str, Any], t: Mapping[str, str]) -> str:
    found = t.get(f"field.{key}")
    return found if found else str(schema.get("title") or key)


def _text_of(value: Any, widget: str) -> Any:
    if value is None or value is _MISSING:
        return ""
    if widget == "checkbox":
        return bool(value)
    if widget in ("tags", "numbers"):
        return ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
    if widget in ("json", "decision_table"):
        return json.dumps(value, ensure_ascii=False, indent=1)
    return str(value)


def _picker(key: str, schema: Mapping[str, Any], pickers: Pickers) -> tuple[str | None, list[tuple[str, str]]]:
    """(datalist id, select options) for fields that name database things; (None, []) for others."""
    if schema.get("type") != "string" or _choices(schema) is not None:
        return None, []
    if key == "campaign" and pickers.campaigns:
        return None, pickers.campaigns
    if key == "flow":
        return "tf-flows", []
    if key == "event" or key.endswith("_event"):
        return "tf-event-types", []
    return None, []


def _field(key: str, name: str, schema: Mapping[str, Any], root: Mapping[str, Any], value: Any,
           required: bool, t: Mapping[str, str], pickers: Pickers) -> FormField:
    s, optional = _unwrap(schema, root)
    widget = widget_of(s, root)
    shown = value if value is not _MISSING and value is not None else s.get("default", _MISSING)
    f = FormField(name=name, key=key, widget=widget, label=_label(key, s, t), help=str(s.get("description") or ""),
                  required=required and not optional, value=_text_of(shown, widget))
    examples = s.get("examples")
    if isinstance(examples, list) and examples and not isinstance(examples[0], dict | list):
        f.attrs["placeholder"] = str(examples[0])
    for source, target in (("minLength", "minlength"), ("maxLength", "maxlength"), ("minimum", "min"),
                           ("maximum", "max"), ("pattern", "pattern")):
        if source in s:
            f.attrs[target] = s[source]
    if widget == "number":
        f.attrs["step"] = "1" if s.get("type") == "integer" else "any"
    if widget == "select":
        f.options = [(str(v), str(v)) for v in _choices(s) or []]
        if optional or (not f.required and "default" not in s):
            f.options.insert(0, ("", "—"))
    elif widget == "text":
        f.datalist, options = _picker(key, s, pickers)
        if options:
            f.widget = "select"
            f.options = [("", "—"), *options]
            if f.value and f.value not in {o[0] for o in options}:
                f.options.append((str(f.value), str(f.value)))
    elif widget == "group":
        current = value if isinstance(value, Mapping) else {}
        needed = set(s.get("required", []))
        f.children = [_field(k, f"{name}.{k}", p, root, current.get(k, _MISSING), k in needed, t, pickers)
                      for k, p in s["properties"].items()]
    elif widget == "rows":
        items, _ = _unwrap(s["items"], root)
        needed = set(items.get("required", []))
        current_rows = value if isinstance(value, list) else []
        for i, row in enumerate(current_rows):
            row_map = row if isinstance(row, Mapping) else {}
            f.rows.append([_field(k, f"{name}.{i}.{k}", p, root, row_map.get(k, _MISSING), k in needed, t, pickers)
                           for k, p in items["properties"].items()])
        f.blank = [_field(k, f"{name}.__i__.{k}", p, root, _MISSING, k in needed, t, pickers)
                   for k, p in items["properties"].items()]
    elif widget == "pairs":
        value_schema, _ = _unwrap(s["additionalProperties"], root)
        current_map = value if isinstance(value, Mapping) else {}
        for i, (k, v) in enumerate(current_map.items()):
            f.rows.append(_pair(f"{name}.{i}", k, value_schema, root, v, t, pickers))
        f.blank = _pair(f"{name}.__i__", "", value_schema, root, _MISSING, t, pickers)
    return f


def _pair(prefix: str, key: str, value_schema: Mapping[str, Any], root: Mapping[str, Any], value: Any,
          t: Mapping[str, str], pickers: Pickers) -> list[FormField]:
    key_field = FormField(name=f"{prefix}.key", key="key", widget="text", label=t.get("editor.key", "key"), value=key)
    value_field = _field("value", f"{prefix}.value", value_schema, root, value, False, t, pickers)
    value_field.label = t.get("editor.value", "value")
    return [key_field, value_field]


def build_form(schema: Mapping[str, Any], config: Mapping[str, Any], t: Mapping[str, str],
               pickers: Pickers | None = None, prefix: str = "") -> list[FormField]:
    """The controls for an object schema (a node type's config), filled with ``config``."""
    root = schema
    s = _resolve(schema, root)
    needed = set(s.get("required", []))
    return [_field(k, f"{prefix}{k}", p, root, config.get(k, _MISSING), k in needed, t, pickers or Pickers())
            for k, p in s.get("properties", {}).items()]


# -- form → config ------------------------------------------------------------------------------------------
@dataclass
class Parsed:
    """What a submitted form means: the config, per-field errors, and list index → form index names."""

    config: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)

    def form_name(self, path: str) -> str:
        """The form control name for a config path (rows may have been renumbered)."""
        parts = path.split(".")
        for cut in range(len(parts), 0, -1):
            head = ".".join(parts[:cut])
            if head in self.names:
                return ".".join([self.names[head], *parts[cut:]])
        return path


_SPLIT = re.compile(r"[,，、\n]+")


def _indices(prefix: str, keys: Iterable[str]) -> list[str]:
    found: list[str] = []
    start = prefix + "."
    for key in keys:
        if key.startswith(start):
            index = key[len(start):].split(".", 1)[0]
            if index not in found and index != "__i__":
                found.append(index)
    return found


def _number(text: str, integer: bool) -> Any:
    try:
        number = float(text)
    except ValueError:
        return text  # the model rejects it with a message naming the field
    if integer or (number.is_integer() and "." not in text and "e" not in text.lower()):
        return int(number) if number.is_integer() else text
    return number


class _Reader:
    def __init__(self, form: Mapping[str, Any], keys: list[str], root: Mapping[str, Any], out: Parsed) -> None:
        self.form, self.keys, self.root, self.out = form, keys, root, out

    def text(self, name: str) -> str:
        value = self.form.get(name)
        return value if isinstance(value, str) else ""

    def value(self, name: str, schema: Mapping[str, Any], prev: Any) -> Any:
        s, optional = _unwrap(schema, self.root)
        widget = widget_of(s, self.root)
        raw = self.text(name)
        if widget == "checkbox":
            return name in self.form
        if widget in ("text", "expression", "duration"):
            return raw.strip() or _MISSING
        if widget == "template":
            return raw if raw.strip() else _MISSING
        if widget == "number":
            return _number(raw.strip(), s.get("type") == "integer") if raw.strip() else _MISSING
        if widget == "select":
            if not raw:
                return _MISSING
            return next((v for v in _choices(s) or [] if str(v) == raw), raw)
        if widget in ("tags", "numbers"):
            items = [p.strip() for p in _SPLIT.split(raw) if p.strip()]
            if widget == "numbers":
                items_schema, _ = _unwrap(s.get("items", {}), self.root)
                return [_number(p, items_schema.get("type") == "integer") for p in items]
            return items
        if widget in ("json", "decision_table"):
            if not raw.strip():
                return _MISSING
            try:
                return json.loads(raw)
            except json.JSONDecodeError as exc:
                self.out.errors[name] = f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
                return prev if prev is not None else _MISSING
        if widget == "group":
            return self.group(name, s, prev if isinstance(prev, Mapping) else {}, optional)
        if widget == "rows":
            item_schema, _ = _unwrap(s["items"], self.root)
            prev_rows = prev if isinstance(prev, list) else []
            rows: list[Any] = []
            for index in _indices(name, self.keys):
                old = prev_rows[int(index)] if index.isdigit() and int(index) < len(prev_rows) else {}
                row = self.object(f"{name}.{index}", item_schema, old if isinstance(old, Mapping) else {})
                if row:
                    self.out.names[f"{name}.{len(rows)}"] = f"{name}.{index}"
                    rows.append(row)
            return rows
        if widget == "pairs":
            value_schema = s["additionalProperties"]
            pairs: dict[str, Any] = {}
            for index in _indices(name, self.keys):
                key = self.text(f"{name}.{index}.key").strip()
                value = self.value(f"{name}.{index}.value", value_schema, None)
                if key and value is not _MISSING:
                    pairs[key] = value
                    self.out.names[f"{name}.{key}"] = f"{name}.{index}.value"
            return pairs
        return raw or _MISSING

    def group(self, name: str, s: Mapping[str, Any], prev: Mapping[str, Any], optional: bool) -> Any:
        found = self.object(name, s, prev)
        if optional and not found:
            return _MISSING
        return found

    def object(self, prefix: str, schema: Mapping[str, Any], prev: Mapping[str, Any]) -> dict[str, Any]:
        s = _resolve(schema, self.root)
        needed = set(s.get("required", []))
        out: dict[str, Any] = {}
        for key, prop in s.get("properties", {}).items():
            name = f"{prefix}.{key}" if prefix else key
            value = self.value(name, prop, prev.get(key))
            if value is _MISSING:
                continue
            p, _ = _unwrap(prop, self.root)
            if key not in prev and key not in needed:
                if "default" in p and value == p["default"]:
                    continue
                if value in ([], {}) or (value is False and "default" not in p):
                    continue
            out[key] = value
            fmt = p.get("format")
            if isinstance(value, str) and fmt in ("expression", "template") and (err := check_expression(value, fmt)):
                self.out.errors[name] = f"{fmt} {err}"
        return out


def parse_form(schema: Mapping[str, Any], form: Mapping[str, Any], prev: Mapping[str, Any] | None = None,
               keys: Iterable[str] | None = None, model: type[BaseModel] | None = None, prefix: str = "") -> Parsed:
    """Turn a submitted form back into a config: values typed by the schema, empty optional fields and
    untouched defaults left out (so opening and applying a form does not rewrite the document).

    Per-field errors come from the config model (when given) and from compiling expressions and
    templates; they name the form control (``cases.2.expr``). The config is returned even when
    there are errors: a draft may be invalid, and the canvas shows its problems.
    """
    out = Parsed(config={})
    reader = _Reader(form, list(keys if keys is not None else form.keys()), schema, out)
    out.config = reader.object(prefix.rstrip("."), schema, prev or {})
    if model is not None:
        try:
            model.model_validate(out.config)
        except ValidationError as exc:
            for e in exc.errors(include_url=False):
                path = ".".join(str(p) for p in e["loc"])
                name = out.form_name(path) if path else "_form"
                message = "is required" if e["type"] == "missing" else str(e["msg"]).removeprefix("Value error, ")
                out.errors.setdefault(prefix + name if path else name, message)
    return out


# -- node shape ---------------------------------------------------------------------------------------------
def ports_of(node_type: type[NodeType] | None, config: Mapping[str, Any]) -> list[str]:
    """The output ports of a node with this config (switch/split: from the config), or the static ones
    while the config is invalid."""
    if node_type is None:
        return []
    try:
        model = node_type.Config.model_validate(dict(config))
    except ValidationError:
        return list(node_type.ports)
    return list(node_type.output_ports(model))


def _is_trigger(node: Mapping[str, Any], registry: Registry) -> bool:
    node_type = registry.get(str(node.get("type")))
    return node_type.is_trigger() if node_type is not None else str(node.get("type", "")).startswith("trigger.")


def _edges(document: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    out = []
    for e in document.get("edges") or []:
        if isinstance(e, Mapping) and isinstance(e.get("from"), str) and isinstance(e.get("to"), str):
            out.append((str(e["from"]), str(e.get("port") or "out"), str(e["to"])))
    return out


def _nodes(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(n["id"]): dict(n) for n in document.get("nodes") or [] if isinstance(n, Mapping) and "id" in n}


# -- auto-layout --------------------------------------------------------------------------------------------
def _rank_of(port_rank: Mapping[tuple[str, str], int], source: str) -> Any:
    return lambda target: port_rank[(source, target)]


def _reachable(roots: list[str], children: Mapping[str, list[str]]) -> set[str]:
    seen = set(roots)
    todo = list(roots)
    while todo:
        for nxt in children[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _back_edges(roots: list[str], children: Mapping[str, list[str]]) -> set[tuple[str, str]]:
    """Edges that close a loop, found depth-first from the roots (iteratively: no recursion limit)."""
    back: set[tuple[str, str]] = set()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for root in roots:
        if root in state:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        while stack:
            node, i = stack.pop()
            if i < len(children[node]):
                stack.append((node, i + 1))
                nxt = children[node][i]
                if state.get(nxt) == 1:
                    back.add((node, nxt))
                elif nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, 0))
            else:
                state[node] = 2
    return back


def auto_layout(document: Mapping[str, Any], registry: Registry | None = None, *, x0: float = 60, y0: float = 60,
                dx: float = 225, dy: float = 120) -> dict[str, dict[str, float]]:
    """Positions for a layered left→right layout: the trigger in column 0, every other node one column
    right of its furthest predecessor (back edges of loops ignored), nodes no path reaches in a last row.
    Within a column nodes follow their parents' order and port order (yes above no). Pure."""
    reg = registry or default_registry()
    nodes = _nodes(document)
    edges = [e for e in _edges(document) if e[0] in nodes and e[2] in nodes]
    port_rank: dict[tuple[str, str], int] = {}
    children: dict[str, list[str]] = {n: [] for n in nodes}
    for source, port, target in edges:
        node_type = reg.get(str(nodes[source].get("type")))
        ports = ports_of(node_type, nodes[source].get("config") or {}) if node_type else []
        port_rank[(source, target)] = min(port_rank.get((source, target), 99),
                                          ports.index(port) if port in ports else 50)
        if target not in children[source]:
            children[source].append(target)
    for source in children:
        children[source].sort(key=_rank_of(port_rank, source))
    roots = [n for n, node in nodes.items() if _is_trigger(node, reg)]
    back = _back_edges(roots, children)
    reached = _reachable(roots, children)
    indegree = {n: 0 for n in reached}
    for source in reached:
        for target in children[source]:
            if (source, target) not in back:
                indegree[target] += 1
    layer = {n: 0 for n in reached}
    order: list[str] = []
    ready = deque(r for r in roots if indegree[r] == 0)
    while ready:
        node = ready.popleft()
        order.append(node)
        for target in children[node]:
            if (node, target) in back:
                continue
            layer[target] = max(layer[target], layer[node] + 1)
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
    parents: dict[str, list[str]] = {n: [] for n in reached}
    for source in order:
        for target in children[source]:
            if (source, target) not in back:
                parents[target].append(source)
    columns: dict[int, list[str]] = {}
    rank: dict[str, float] = {}
    for depth in sorted(set(layer[n] for n in order)):
        members = [n for n in order if layer[n] == depth]

        def placed(n: str) -> tuple[float, str]:
            above = [rank[s] + port_rank[(s, n)] / 100 for s in parents[n] if s in rank]
            return (sum(above) / len(above) if above else 0.0, n)

        members.sort(key=placed)
        columns[depth] = members
        for i, n in enumerate(members):
            rank[n] = i
    tallest = max((len(c) for c in columns.values()), default=1)
    positions: dict[str, dict[str, float]] = {}
    for depth, members in columns.items():
        offset = (tallest - len(members)) * dy / 2
        for i, n in enumerate(members):
            positions[n] = {"x": x0 + depth * dx, "y": y0 + offset + i * dy}
    rest = [n for n in nodes if n not in positions]
    bottom = y0 + tallest * dy + (dy / 2 if positions else 0)
    for i, n in enumerate(rest):
        positions[n] = {"x": x0 + i * dx, "y": bottom}
    return positions


# -- main path and funnel -----------------------------------------------------------------------------------
def main_path(document: Mapping[str, Any], registry: Registry | None = None) -> list[str]:
    """The trigger → … → goal path a funnel shows: the shortest path to a ``logic.goal`` node, else
    the path that always leaves by the node's first connected port (out, yes, event, …)."""
    reg = registry or default_registry()
    nodes = _nodes(document)
    trigger = next((n for n, node in nodes.items() if _is_trigger(node, reg)), None)
    if trigger is None:
        return []
    out: dict[str, list[tuple[str, str]]] = {n: [] for n in nodes}
    for source, port, target in _edges(document):
        if source in nodes and target in nodes:
            out[source].append((port, target))
    parent: dict[str, str | None] = {trigger: None}
    queue = deque([trigger])
    while queue:
        node = queue.popleft()
        if nodes[node].get("type") == "logic.goal":
            path = [node]
            while (up := parent[path[-1]]) is not None:
                path.append(up)
            return path[::-1]
        for _port, target in out[node]:
            if target not in parent:
                parent[target] = node
                queue.append(target)
    path = [trigger]
    while True:
        node = path[-1]
        node_type = reg.get(str(nodes[node].get("type")))
        ports = ports_of(node_type, nodes[node].get("config") or {}) if node_type else []
        leaving = sorted(out[node], key=lambda pt: ports.index(pt[0]) if pt[0] in ports else 99)
        nxt = next((target for _p, target in leaving if target not in path), None)
        if nxt is None:
            return path
        path.append(nxt)


# -- version diff -------------------------------------------------------------------------------------------
@dataclass
class NodeChange:
    id: str
    fields: list[tuple[str, Any, Any]]  # (path, before, after)


@dataclass
class FlowDiff:
    """What changed from flow document ``a`` to ``b`` (positions only in ``nodes_moved``)."""

    nodes_added: list[dict[str, Any]] = field(default_factory=list)
    nodes_removed: list[dict[str, Any]] = field(default_factory=list)
    nodes_changed: list[NodeChange] = field(default_factory=list)
    nodes_moved: list[str] = field(default_factory=list)
    edges_added: list[tuple[str, str, str]] = field(default_factory=list)
    edges_removed: list[tuple[str, str, str]] = field(default_factory=list)
    settings_changed: list[tuple[str, Any, Any]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.nodes_added or self.nodes_removed or self.nodes_changed or self.nodes_moved
                    or self.edges_added or self.edges_removed or self.settings_changed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "nodes_added": [n["id"] for n in self.nodes_added], "nodes_removed": [n["id"] for n in self.nodes_removed],
            "nodes_changed": {c.id: [list(f) for f in c.fields] for c in self.nodes_changed},
            "nodes_moved": self.nodes_moved, "edges_added": [list(e) for e in self.edges_added],
            "edges_removed": [list(e) for e in self.edges_removed],
            "settings_changed": [list(s) for s in self.settings_changed],
        }


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        out = {}
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{prefix}.{i}" if prefix else str(i)))
        return out
    return {prefix: value}


def _changes(a: Any, b: Any) -> list[tuple[str, Any, Any]]:
    fa, fb = _flatten(a), _flatten(b)
    return [(k, fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]


def flow_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> FlowDiff:
    """Nodes and edges added, removed and changed between two flow documents. Pure."""
    diff = FlowDiff()
    na, nb = _nodes(a), _nodes(b)
    diff.nodes_added = [nb[n] for n in nb if n not in na]
    diff.nodes_removed = [na[n] for n in na if n not in nb]
    for node_id in (n for n in nb if n in na):
        before, after = na[node_id], nb[node_id]
        fields = [(k, before.get(k), after.get(k)) for k in ("type", "name") if before.get(k) != after.get(k)]
        fields += [(f"config.{k}", x, y) for k, x, y in _changes(before.get("config") or {}, after.get("config") or {})]
        if fields:
            diff.nodes_changed.append(NodeChange(node_id, fields))
        elif (before.get("ui") or {}) != (after.get("ui") or {}):
            diff.nodes_moved.append(node_id)
    ea, eb = _edges(a), _edges(b)
    diff.edges_added = [e for e in eb if e not in ea]
    diff.edges_removed = [e for e in ea if e not in eb]
    envelope = ("name", "kind", "description", "settings")
    diff.settings_changed = _changes({k: a.get(k) for k in envelope if a.get(k) is not None},
                                     {k: b.get(k) for k in envelope if b.get(k) is not None})
    return diff


# -- helpers for the routes ---------------------------------------------------------------------------------
def _flow(db_url: str, flow_id: str) -> models.FlowRecord | None:
    with session_factory(db_url)() as db:
        record = db.get(models.FlowRecord, flow_id)
        if record is not None:
            db.expunge(record)
        return record


def _may_change(user: User, record: models.FlowRecord | None) -> bool:
    return record is not None and record.status != "archived" and may_edit_kind(user, record.kind)


def _pickers(db_url: str) -> Pickers:
    pickers = Pickers()
    try:
        with session_factory(db_url)() as db:
            pickers.campaigns = [(c.id, f"{c.name} ({c.id})") for c in db.scalars(
                select(models.CouponCampaign).where(models.CouponCampaign.status != "ended")
                .order_by(models.CouponCampaign.id))]
            flows = db.scalars(select(models.FlowRecord).order_by(models.FlowRecord.id))
            pickers.flows = [(f.id, f.name) for f in flows]
    except SQLAlchemyError:  # an older schema without the coupon tables: plain text inputs then
        log.info("coupon campaigns not available for the picker")
    return pickers


def _json_param(text: str | None, what: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise _BadRequest(f"{what} must be a JSON object")
    return value


class _BadRequest(ValueError):
    pass


def _fragment(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    lang, t = text_for(request)
    return templates.TemplateResponse(request, template, {"lang": lang, "t": t, **context}, status_code=status_code)


def _message_page(request: Request, user: User, status_code: int, message: str) -> HTMLResponse:
    context = page_context(request, user, message=message)
    return templates.TemplateResponse(request, "editor/message.html", context, status_code=status_code)


def _fmt(t: Text, key: str, **values: Any) -> str:
    text = t[key]
    for k, v in values.items():
        text = text.replace("{" + k + "}", str(v))
    return text


def _sample_customer(db_url: str) -> dict[str, Any]:
    try:
        with session_factory(db_url)() as db:
            cid = db.scalar(select(models.Customer.id).where(models.Customer.merged_into.is_(None))
                            .order_by(models.Customer.created_at, models.Customer.id).limit(1))
            if cid is not None:
                return customer_view(db, cid)
    except SQLAlchemyError:
        log.info("no customers table; using the built-in sample customer")
    return dict(SAMPLE_CUSTOMER)


def _event_types(lang: str) -> list[tuple[str, str]]:
    return [(k, v.get(lang) or v.get("en") or k) for k, v in sorted(EVENT_TYPES.items())]


def _palette(kind: str, lang: str, t: Text) -> list[tuple[str, str, list[dict[str, Any]]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for d in default_registry().describe(kind):
        groups.setdefault(d["category"], []).append(d)
    ordered = sorted(groups, key=lambda c: (CATEGORY_ORDER.index(c) if c in CATEGORY_ORDER else 50, c))
    return [(c, t.get(f"cat.{c}", c), sorted(groups[c], key=lambda d: d["label"].get(lang, d["type"])))
            for c in ordered]


def _type_info(lang: str) -> dict[str, dict[str, Any]]:
    return {d["type"]: {"label": d["label"].get(lang) or d["label"].get("en") or d["type"], "category": d["category"],
                        "ports": d["ports"], "kinds": d["kinds"], "failure_port": d["failure_port"]}
            for d in default_registry().describe()}


# -- routes: page -------------------------------------------------------------------------------------------
@router.get("/flows/{flow_id}/edit", response_class=HTMLResponse, include_in_schema=False)
def editor_page(request: Request, flow_id: str, user: Annotated[User, Depends(require())],
                db_url: DbUrl) -> HTMLResponse:
    """The canvas editor of one flow: editable for the kind's editors, read-only for other flow readers."""
    lang, t = text_for(request)
    if not engine_auth.has_role(user, *FLOW_READERS):
        return _message_page(request, user, 403, _fmt(t, "editor.forbidden", role=user.role))
    record = _flow(db_url, flow_id)
    if record is None:
        return _message_page(request, user, 404, _fmt(t, "editor.not_found", id=flow_id))
    registry = default_registry()
    document = dict(record.draft)
    can_edit = _may_change(user, record)
    checked = validate(document)
    data = {
        "flow": {"id": record.id, "name": record.name, "kind": record.kind, "status": record.status,
                 "version": record.current_version},
        "document": document,
        "types": _type_info(lang),
        "ports": {str(n["id"]): ports_of(registry.get(str(n.get("type"))), n.get("config") or {})
                  for n in document.get("nodes") or [] if isinstance(n, dict) and "id" in n},
        "problems": [p.as_dict() for p in checked.problems],
        "canEdit": can_edit,
        "lang": lang,
        "text": {**{k.removeprefix("editor.js."): v for k, v in t.items() if k.startswith("editor.js.")},
                 "no_problems": t["editor.no_problems"]},
    }
    sample = _sample_customer(db_url)
    preview_customer = {"name": sample.get("name") or "", "tags": sample.get("tags") or [],
                        "attributes": {k: v for k, v in sample.items() if k not in ("id", "name", "timezone", "tags")}}
    context = page_context(request, user, record=record, data=data, can_edit=can_edit, sample=preview_customer,
                           palette=_palette(record.kind, lang, t), event_types=_event_types(lang))
    return templates.TemplateResponse(request, "editor/page.html", context)


# -- routes: property forms ---------------------------------------------------------------------------------
@router.get("/flows/{flow_id}/nodes/{node_id}/form", response_class=HTMLResponse)
def node_form(request: Request, flow_id: str, node_id: str, user: Reader, db_url: DbUrl,
              type: Annotated[str, Query(max_length=200)],
              config: Annotated[str, Query(max_length=100_000)] = "",
              name: Annotated[str, Query(max_length=200)] = "") -> HTMLResponse:
    """The property form of one node, generated from its type's config JSON Schema."""
    lang, t = text_for(request)
    record = _flow(db_url, flow_id)
    try:
        current = _json_param(config, "config")
    except _BadRequest as exc:
        return HTMLResponse(f'<p class="error">{exc}</p>', status_code=422)
    node_type = default_registry().get(type)
    pickers = _pickers(db_url)
    fields = build_form(node_type.schema(), current, t, pickers) if node_type else []
    return _fragment(request, "editor/_form.html", flow_id=flow_id, node_id=node_id, node_type=type,
                     type_info=node_type.describe() if node_type else None, fields=fields, name=name,
                     config_json=json.dumps(current, ensure_ascii=False), kind="node",
                     action=f"/flows/{flow_id}/nodes/{node_id}/config",
                     ports=ports_of(node_type, current), readonly=not _may_change(user, record),
                     unknown=_fmt(t, "editor.unknown_type", type=type), event_types=_event_types(lang),
                     flows=pickers.flows)


async def _form_data(request: Request) -> FormData:
    return await request.form()


@router.post("/flows/{flow_id}/nodes/{node_id}/config")
async def node_config(request: Request, flow_id: str, node_id: str, user: Reader) -> JSONResponse:
    """Parse a submitted property form: ``{ok, config, name, ports, errors: {field: message}}``.

    Nothing is stored: the browser puts the config into its flow document (a draft may be invalid)."""
    form = await _form_data(request)
    type_name = str(form.get("_type") or "")
    node_type = default_registry().get(type_name)
    if node_type is None:
        return JSONResponse({"ok": False, "errors": {"_type": f"unknown node type '{type_name}'"}}, status_code=422)
    try:
        prev = _json_param(str(form.get("_prev") or ""), "_prev")
    except _BadRequest as exc:
        return JSONResponse({"ok": False, "errors": {"_prev": str(exc)}}, status_code=422)
    parsed = parse_form(node_type.schema(), form, prev, model=node_type.Config)
    name = str(form.get("_name") or "").strip()
    try:  # ports only from a valid config: while it is invalid the canvas keeps the node's ports (and edges)
        ports: list[str] | None = list(node_type.output_ports(node_type.Config.model_validate(parsed.config)))
    except ValidationError:
        ports = None
    return JSONResponse({"ok": not parsed.errors, "node": node_id, "config": parsed.config, "name": name or None,
                         "ports": ports, "errors": parsed.errors})


class _SettingsForm(BaseModel):
    """The flow's envelope as the settings form edits it."""

    name: str
    description: str | None = None
    settings: FlowSettings


def _settings_schema() -> dict[str, Any]:
    schema = _SettingsForm.model_json_schema()
    schema["properties"]["name"].update({"minLength": 1, "maxLength": 200})
    return schema


@router.get("/flows/{flow_id}/settings/form", response_class=HTMLResponse)
def settings_form(request: Request, flow_id: str, user: Reader, db_url: DbUrl,
                  document: Annotated[str, Query(max_length=200_000)] = "") -> HTMLResponse:
    """The form for the flow's name, description and settings (timezone, re-entry, exit, goal, quiet hours)."""
    lang, t = text_for(request)
    record = _flow(db_url, flow_id)
    try:
        current = _json_param(document, "document") or (dict(record.draft) if record else {})
    except _BadRequest as exc:
        return HTMLResponse(f'<p class="error">{exc}</p>', status_code=422)
    values = {k: current.get(k) for k in ("name", "description", "settings") if current.get(k) is not None}
    fields = build_form(_settings_schema(), values, t, _pickers(db_url))
    return _fragment(request, "editor/_form.html", flow_id=flow_id, node_id=None, node_type=None, type_info=None,
                     fields=fields, name="", config_json=json.dumps(values, ensure_ascii=False), kind="settings",
                     action=f"/flows/{flow_id}/settings", ports=[], readonly=not _may_change(user, record),
                     unknown="", event_types=_event_types(lang), flows=[])


@router.post("/flows/{flow_id}/settings")
async def settings_submit(request: Request, flow_id: str, user: Reader) -> JSONResponse:
    """Parse the settings form: ``{ok, config: {name, description, settings}, errors}``."""
    form = await _form_data(request)
    try:
        prev = _json_param(str(form.get("_prev") or ""), "_prev")
    except _BadRequest as exc:
        return JSONResponse({"ok": False, "errors": {"_prev": str(exc)}}, status_code=422)
    parsed = parse_form(_settings_schema(), form, prev, model=_SettingsForm)
    parsed.config.setdefault("settings", {})
    return JSONResponse({"ok": not parsed.errors, "config": parsed.config, "errors": parsed.errors})


# -- routes: live checks ------------------------------------------------------------------------------------
@router.post("/flows/expression/check", response_class=HTMLResponse)
async def expression_check(request: Request, user: Reader) -> HTMLResponse:
    """Check one field of a form: ``_field`` names it, ``_kind`` is expression (default), template or
    duration. Answers a small fragment: ✓ or the error."""
    _, t = text_for(request)
    form = await _form_data(request)
    name = str(form.get("_field") or "source")
    kind = str(form.get("_kind") or "expression")
    source = str(form.get(name) or "")
    if not source.strip():
        return HTMLResponse("")
    if kind == "duration":
        try:
            value = parse_duration(source.strip())
        except (DurationError, ValueError) as exc:
            return _fragment(request, "editor/_check.html", ok=False, message=str(exc))
        return _fragment(request, "editor/_check.html", ok=True,
                         message=_fmt(t, "editor.duration_ok", value=human_duration(value, text_for(request)[0])))
    error = check_expression(source, "template" if kind == "template" else "expression")
    return _fragment(request, "editor/_check.html", ok=error is None, message=error or t["editor.check_ok"])


@router.post("/flows/template/preview", response_class=HTMLResponse)
async def template_preview(request: Request, user: Reader, db_url: DbUrl) -> HTMLResponse:
    """Render the template in form field ``_field`` for a sample customer (the first demo customer)."""
    _, t = text_for(request)
    form = await _form_data(request)
    source = str(form.get(str(form.get("_field") or "template")) or "")
    if not source.strip():
        return HTMLResponse("")
    customer = await run_in_threadpool(_sample_customer, db_url)
    context = {"customer": customer, "event": SAMPLE_EVENT, "vars": {}, "journey": {"flow": "preview"}, "now": None}
    try:
        rendered = expressions.render(source, context)
    except expressions.ExpressionError as exc:
        return _fragment(request, "editor/_check.html", ok=False, message=f"template {exc}")
    return _fragment(request, "editor/_template_preview.html", rendered=rendered,
                     heading=_fmt(t, "editor.preview_for", name=customer.get("name") or customer.get("id")))


# -- routes: layout -----------------------------------------------------------------------------------------
@router.post("/flows/layout")
def layout(document: dict[str, Any], user: Reader) -> dict[str, dict[str, float]]:
    """Auto-layout positions ``{node id: {x, y}}`` for a flow document (nothing stored)."""
    return auto_layout(document)


# -- routes: versions and diff ------------------------------------------------------------------------------
def _versions(db_url: str, flow_id: str) -> list[models.FlowVersion]:
    with session_factory(db_url)() as db:
        rows = list(db.scalars(select(models.FlowVersion).where(models.FlowVersion.flow_id == flow_id)
                               .order_by(models.FlowVersion.version.desc())))
        for row in rows:
            db.expunge(row)
        return rows


@router.get("/flows/{flow_id}/versions", response_class=HTMLResponse)
def versions_panel(request: Request, flow_id: str, user: Reader, db_url: DbUrl) -> HTMLResponse:
    """The versions drawer: every published version, a compare form and roll-back buttons."""
    record = _flow(db_url, flow_id)
    if record is None:
        return HTMLResponse("", status_code=404)
    return _fragment(request, "editor/_versions.html", flow_id=flow_id, versions=_versions(db_url, flow_id),
                     current=record.current_version, can_edit=_may_change(user, record))


@router.get("/flows/{flow_id}/diff", response_class=HTMLResponse)
def diff_fragment(request: Request, flow_id: str, user: Reader, db_url: DbUrl,
                  a: Annotated[int, Query(ge=1)], b: Annotated[str, Query(max_length=20)] = "draft") -> HTMLResponse:
    """What changed between version ``a`` and version ``b`` (a number, or ``draft``)."""
    with session_factory(db_url)() as db:
        old = db.get(models.FlowVersion, (flow_id, a))
        record = db.get(models.FlowRecord, flow_id)
        new: dict[str, Any] | None
        if b == "draft":
            new = dict(record.draft) if record else None
        else:
            row = db.get(models.FlowVersion, (flow_id, int(b))) if b.isdigit() else None
            new = dict(row.document) if row else None
        if old is None or new is None:
            return HTMLResponse('<p class="error">?</p>', status_code=404)
        before = dict(old.document)
    _, t = text_for(request)
    label_b = f"v{b}" if b != "draft" else t["editor.versions.draft"]
    return _fragment(request, "editor/_diff.html", diff=flow_diff(before, new), a=a, b=label_b,
                     names={**{n: node.get("name") or n for n, node in _nodes(before).items()},
                            **{n: node.get("name") or n for n, node in _nodes(new).items()}})


# -- routes: funnel -----------------------------------------------------------------------------------------
@router.get("/flows/{flow_id}/funnel", response_class=HTMLResponse)
def funnel_fragment(request: Request, flow_id: str, user: Reader, db_url: DbUrl) -> HTMLResponse:
    """Entered counts along the main path (trigger → … → goal) of the published version."""
    with session_factory(db_url)() as db:
        record = db.get(models.FlowRecord, flow_id)
        version = db.get(models.FlowVersion, (flow_id, record.current_version)) if record and \
            record.current_version else None
        if record is None or version is None:
            return _fragment(request, "editor/_funnel.html", steps=[], version=None)
        document = dict(version.document)
        counts = flowsvc.stats(db, flow_id, version.version)["nodes"]
    nodes = _nodes(document)
    info = _type_info(text_for(request)[0])
    steps = []
    path = main_path(document)
    top = max((int(counts.get(path[0], {}).get("entered", 0)) if path else 0), 0)
    for node_id in path:
        entered = int(counts.get(node_id, {}).get("entered", 0))
        node = nodes[node_id]
        label = info.get(str(node.get("type")), {}).get("label", node_id)
        steps.append({"id": node_id, "name": node.get("name") or label,
                      "entered": entered, "share": (100.0 * entered / top) if top else 0.0,
                      "width": max(2.0, 100.0 * entered / top) if top else 2.0})
    return _fragment(request, "editor/_funnel.html", steps=steps, version=version.version)


# -- routes: preview ----------------------------------------------------------------------------------------
def _preview_input(form: FormData) -> tuple[dict[str, Any], Any, list[Any], int]:
    from engine.simulate import PreviewCustomer, ScriptedEvent

    document = _json_param(str(form.get("document") or ""), "the flow document")
    attributes = _json_param(str(form.get("attributes") or ""), "attributes")
    tags = [p.strip() for p in _SPLIT.split(str(form.get("tags") or "")) if p.strip()]
    customer = PreviewCustomer(name=str(form.get("name") or "").strip() or "预览客户", attributes=attributes, tags=tags)
    keys = list(form.keys())
    script = []
    for index in _indices("events", keys):
        kind = str(form.get(f"events.{index}.type") or "").strip()
        if not kind:
            continue
        payload = _json_param(str(form.get(f"events.{index}.payload") or ""), f"the payload of {kind}")
        script.append(ScriptedEvent(at=str(form.get(f"events.{index}.at") or "day 0").strip() or "day 0",
                                    type=kind, payload=payload))
    try:
        days = int(str(form.get("days") or "30"))
    except ValueError:
        raise _BadRequest("days must be a whole number") from None
    if not 1 <= days <= PREVIEW_MAX_DAYS:
        raise _BadRequest(f"days must be between 1 and {PREVIEW_MAX_DAYS}")
    return document, customer, script, days


@router.post("/flows/{flow_id}/preview", response_class=HTMLResponse)
async def preview_run(request: Request, flow_id: str, user: Reader) -> HTMLResponse:
    """Run the current canvas document for one described customer on the time-skipping test server
    (:func:`engine.simulate.preview`) and answer the timeline fragment."""
    from engine.compiler import FlowInvalid
    from engine.simulate import preview

    _, t = text_for(request)
    form = await _form_data(request)
    try:
        document, customer, script, days = _preview_input(form)
    except (_BadRequest, ValidationError) as exc:
        message = str(exc) if isinstance(exc, _BadRequest) else "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False))
        return _fragment(request, "editor/_timeline.html", error=_fmt(t, "editor.preview.bad_input", error=message))
    checked = validate(document)
    if not checked.ok:
        return _fragment(request, "editor/_timeline.html", problems=[p.as_dict() for p in checked.problems])
    try:
        result = await preview(document, customer, script, days)
    except FlowInvalid as exc:
        return _fragment(request, "editor/_timeline.html", problems=[p.as_dict() for p in exc.problems])
    except Exception as exc:  # the preview must answer with a message, never a stack trace
        log.exception("preview of %s failed", flow_id)
        return _fragment(request, "editor/_timeline.html",
                         error=_fmt(t, "editor.preview.failed", error=f"{type(exc).__name__}: {exc}"))
    info = _type_info(text_for(request)[0])
    names = {n: node.get("name") or info.get(str(node.get("type")), {}).get("label") or n
             for n, node in _nodes(document).items()}
    steps = [{**step, "day_label": _fmt(t, "editor.preview.day", day=_day(step.get("day"))),
              "what_label": t[f"what.{step.get('what')}"] if f"what.{step.get('what')}" in t else step.get("what"),
              "name": names.get(str(step.get("node")), step.get("node")), "text": _step_text(step)}
             for step in result["timeline"]]
    return _fragment(request, "editor/_timeline.html", result=result, steps=steps)


def human_duration(value: timedelta, lang: str) -> str:
    """``P1DT2H`` → "1 天 2 小时" / "1 day 2 hours"."""
    seconds = int(value.total_seconds())
    parts = [(seconds // 86400, "天", "day"), (seconds % 86400 // 3600, "小时", "hour"),
             (seconds % 3600 // 60, "分钟", "minute"), (seconds % 60, "秒", "second")]
    words = [f"{n} {zh}" if lang == "zh-CN" else f"{n} {en}{'' if n == 1 else 's'}" for n, zh, en in parts if n]
    return " ".join(words) or ("0 秒" if lang == "zh-CN" else "0 seconds")


def _day(value: Any) -> str:
    if not isinstance(value, int | float):
        return "?"
    return str(int(value)) if math.isclose(value, round(value), abs_tol=1e-3) else f"{value:.2f}"


def _step_text(step: Mapping[str, Any]) -> str:
    """A one-line description of a timeline step (port, message content, event, error)."""
    detail = step.get("detail")
    parts: list[str] = []
    if step.get("port"):
        parts.append(f"→ {step['port']}")
    if isinstance(detail, Mapping):
        if detail.get("content"):
            parts.append(f"[{detail.get('channel', '')}] {detail['content']}")
        if detail.get("status") and detail.get("status") != "sent":
            parts.append(f"({detail['status']})")
        if not parts:
            parts.append(json.dumps(dict(detail), ensure_ascii=False)[:300])
    for key in ("event", "error", "reason", "until"):
        if step.get(key):
            parts.append(f"{key}: {step[key]}")
    return " ".join(parts)
