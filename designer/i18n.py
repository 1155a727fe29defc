"""UI text in zh-CN (default) and English. One catalogue; pages add their keys here."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from designer.auth import pick_language

TEXT: dict[str, dict[str, str]] = {
    "zh-CN": {
        "app": "Tideflow 自动化", "nav.flows": "流程", "nav.customers": "客户", "nav.journeys": "旅程",
        "nav.audit": "审计日志", "nav.tickets": "工单", "nav.settlement": "结算",
        "nav.connectors": "连接器", "nav.home": "概览", "logout": "退出", "lang.switch": "English",
        "flows": "流程", "journeys": "旅程", "messages": "最近消息", "status": "状态", "version": "版本",
        "name": "名称", "kind": "类型", "customer": "客户", "channel": "渠道", "content": "内容", "at": "时间",
        "none": "暂无", "api": "API 文档", "kind.journey": "客户旅程", "kind.ticket": "工单路由",
        "kind.settlement": "结算", "skip": "跳到正文",
    },
    "en": {
        "app": "Tideflow automation", "nav.flows": "Flows", "nav.customers": "Customers", "nav.journeys": "Journeys",
        "nav.audit": "Audit log", "nav.tickets": "Tickets", "nav.settlement": "Settlement",
        "nav.connectors": "Connectors", "nav.home": "Overview", "logout": "Log out", "lang.switch": "中文",
        "flows": "Flows", "journeys": "Journeys", "messages": "Recent messages", "status": "Status",
        "version": "Version", "name": "Name", "kind": "Kind", "customer": "Customer", "channel": "Channel",
        "content": "Content", "at": "At", "none": "Nothing yet", "api": "API docs", "kind.journey": "Journey",
        "kind.ticket": "Ticket routing", "kind.settlement": "Settlement", "skip": "Skip to content",
    },
}


class Text(dict[str, str]):
    """Attribute access for templates (``t.flows``) and dotted keys (``t['nav.flows']``); a missing key
    shows itself, so an untranslated string is visible rather than blank."""

    def __getattr__(self, key: str) -> str:
        return self.get(key, key)

    def __missing__(self, key: str) -> str:
        return key


def add(catalogue: dict[str, dict[str, str]]) -> None:
    """Merge a module's strings into the catalogue (both languages must have the same keys)."""
    zh, en = catalogue.get("zh-CN", {}), catalogue.get("en", {})
    if set(zh) != set(en):
        raise ValueError(f"untranslated keys: {sorted(set(zh) ^ set(en))}")
    TEXT["zh-CN"].update(zh)
    TEXT["en"].update(en)


def text_for(request: Request) -> tuple[str, Text]:
    lang = pick_language(request, request.query_params.get("lang") or request.cookies.get("tideflow_lang"))
    return lang, Text(TEXT[lang])


def page_context(request: Request, user: Any, **extra: Any) -> dict[str, Any]:
    """What every page template gets: language, text, user, CSRF token, current path."""
    from designer.auth import csrf_token

    lang, t = text_for(request)
    return {"lang": lang, "t": t, "user": user, "csrf": csrf_token(request) or "", "path": request.url.path,
            **extra}
