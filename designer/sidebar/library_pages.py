"""The script library (话术库) in the web app: scripts by status with the review queue, the script form
(every kind), review, uses; categories; suggestion rules; WeCom staff links (admins).

Plain forms, post/redirect/get; a refused change shows the form again with the problem next to its field.
Thin routes over :mod:`activities.sidebar.library` and :mod:`activities.sidebar.staff`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response, UploadFile
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from activities.sidebar import library, staff, suggestions
from activities.sidebar import scripts as script_rules
from activities.sidebar.library import LibraryError
from activities.sidebar.scripts import KINDS, MANAGERS, ScriptSpec
from activities.sidebar.suggestions import RuleSpec
from activities.sidebar.wecom import NotConfigured, sidebar_app
from designer import evaluation
from designer.errors import ApiError, validation_problems
from designer.i18n import _, error_text, translate
from designer.pages import DbUrl, PageProblem, PageRoute, page_user, render, see_other
from designer.sidebar import labels as _labels  # noqa: F401  (its status labels)
from engine.auth import AuthError
from engine.db.models import User
from engine.db.session import session_factory, transaction
from engine.db.sidebar_models import SuggestionRule

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Manager = Annotated[User, Depends(page_user(*MANAGERS))]
Admin = Annotated[User, Depends(page_user("admin"))]
SITUATION_KINDS = ("open_ticket", "tag", "tier", "campaign_running", "in_journey")


def _now() -> datetime:
    return datetime.now(UTC)


def _words(value: str) -> list[str]:
    return [w.strip() for w in value.replace("，", ",").replace("\n", ",").split(",") if w.strip()]


@router.get("/library", response_class=HTMLResponse)
def library_page(request: Request, user: Manager, db_url: DbUrl, status: str = "") -> HTMLResponse:
    with session_factory(db_url)() as db:
        scripts = library.library(db, None, status=status if status in ("pending", "rejected", "archived") else None)
        categories = {c.id: c for c in library.categories(db, None)}
        pending = library.library(db, None, status="pending")
        rules = library.rules(db, None)
        titles = {s.id: s.title for s in library.library(db, None)}
    return render(request, user, "sidebar/library.html", scripts=scripts, categories=categories, pending=pending,
                  rules=rules, titles=titles, status=status)


def _spec_from_form(form: dict[str, Any]) -> dict[str, Any]:
    kind = str(form.get("kind") or "text")
    spec: dict[str, Any] = {"kind": kind, "title": str(form.get("title") or "").strip(),
                            "team": str(form.get("team") or "").strip(),
                            "category_id": int(str(form["category_id"])) if str(form.get("category_id") or "")
                            .isdigit() else None,
                            "keywords": _words(str(form.get("keywords") or "")),
                            "requires_approval": form.get("requires_approval") == "on"}
    if kind == "text":
        spec["text"] = str(form.get("text") or "")
    elif kind == "link":
        spec["link"] = {k: str(form.get(f"link_{k}") or "").strip() for k in ("url", "title", "desc", "image_url")}
    elif kind == "miniprogram":
        spec["miniprogram"] = {k: str(form.get(f"mp_{k}") or "").strip()
                               for k in ("appid", "title", "image_url", "page")}
    elif kind == "image" and str(form.get("image_id") or "").isdigit():
        spec["image_id"] = int(str(form["image_id"]))
    return spec


def _form_page(request: Request, user: User, db_url: str, script_id: int | None, values: dict[str, Any],
               problems: Sequence[Mapping[str, Any]], status_code: int = 200) -> HTMLResponse:
    with session_factory(db_url)() as db:
        script = library.get_script(db, script_id) if script_id else None
        uses = library.uses_of(db, script_id, 50) if script_id else []
        categories = library.categories(db, None)
    return render(request, user, "sidebar/script_form.html", script=script, values=values, problems=problems,
                  by_field={p["field"]: p["message"] for p in problems}, uses=uses, categories=categories,
                  kinds=KINDS, status_code=status_code)


@router.get("/library/new", response_class=HTMLResponse)
def new_script_page(request: Request, user: Manager, db_url: DbUrl) -> HTMLResponse:
    return _form_page(request, user, db_url, None, {"kind": "text"}, [])


@router.get("/library/{script_id:int}", response_class=HTMLResponse)
def script_page(request: Request, script_id: int, user: Manager, db_url: DbUrl) -> HTMLResponse:
    with session_factory(db_url)() as db:
        try:
            script = library.get_script(db, script_id)
        except LibraryError:
            raise PageProblem(404, user, _("Not found"), _("There is no script “%(id)s”.") % {"id": str(script_id)},
                              back="/library") from None
        values = {"kind": script.kind, "title": script.title, "team": script.team, "category_id": script.category_id,
                  "keywords": ", ".join(script.keywords), "requires_approval": script.requires_approval,
                  **_flatten(script.content), "version": script.version}
    return _form_page(request, user, db_url, script_id, values, [])


def _flatten(content: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"text": content.get("text", ""), "image_id": content.get("image_id")}
    out.update({f"link_{k}": v for k, v in (content.get("link") or {}).items()})
    out.update({f"mp_{k}": v for k, v in (content.get("miniprogram") or {}).items()})
    return out


async def _save(request: Request, user: User, db_url: str, script_id: int | None) -> Response:
    form = dict(await request.form())
    upload = form.get("image_file")
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    if isinstance(upload, UploadFile) and upload.filename:
        data = await upload.read(library.MAX_IMAGE_BYTES + 1)

        def store() -> int:
            with transaction(db_url) as db:
                return library.store_image(db, user, data).id

        try:
            values["image_id"] = str(await run_in_threadpool(store))
        except LibraryError as exc:
            return _form_page(request, user, db_url, script_id, values,
                              [{"field": "image_id", "message": exc.message, "fix": exc.fix}], 422)
    try:
        spec = ScriptSpec.model_validate(_spec_from_form(values))
    except ValidationError as exc:
        return _form_page(request, user, db_url, script_id, values, validation_problems(list(exc.errors())), 422)
    expected = int(values["version"]) if str(values.get("version") or "").isdigit() else None

    def write() -> int:
        evaluation.prime_sources(script_rules.cost_sources(spec))  # costs measured in the pool, not here
        with transaction(db_url) as db:
            if script_id is None:
                return library.create_script(db, user, spec, _now()).id
            return library.update_script(db, user, script_id, spec, _now(), expected).id

    try:
        saved = await run_in_threadpool(write)
    except LibraryError as exc:
        return _form_page(request, user, db_url, script_id, values,
                          [{"field": exc.field or "title", "message": translate(exc.message),
                            "fix": translate(exc.fix)}], exc.status)
    except ApiError as exc:
        return _form_page(request, user, db_url, script_id, values,
                          [{"field": "text", "message": translate(exc.body["message"]),
                            "fix": translate(exc.body.get("fix") or "")}], exc.status)
    return see_other(f"/library/{saved}")


@router.post("/library/new", response_class=HTMLResponse)
async def create_script(request: Request, user: Manager, db_url: DbUrl) -> Response:
    return await _save(request, user, db_url, None)


@router.post("/library/{script_id:int}", response_class=HTMLResponse)
async def update_script(request: Request, script_id: int, user: Manager, db_url: DbUrl) -> Response:
    return await _save(request, user, db_url, script_id)


@router.post("/library/{script_id:int}/review", response_class=HTMLResponse)
def review(request: Request, script_id: int, user: Manager, db_url: DbUrl,
           version: Annotated[int, Form()], decision: Annotated[str, Form(pattern="^(approve|reject)$")],
           note: Annotated[str, Form(max_length=2000)] = "") -> Response:
    try:
        with transaction(db_url) as db:
            library.review_script(db, user, script_id, version, decision == "approve", note, _now())
    except LibraryError as exc:
        raise PageProblem(exc.status, user, _("Cannot do that"), translate(exc.message),
                          translate(exc.fix), back=f"/library/{script_id}") from None
    return see_other(f"/library/{script_id}")


@router.post("/library/{script_id:int}/archive", response_class=HTMLResponse)
def archive(request: Request, script_id: int, user: Manager, db_url: DbUrl) -> Response:
    with transaction(db_url) as db:
        library.archive_script(db, user, script_id, _now())
    return see_other("/library")


@router.post("/library/categories", response_class=HTMLResponse)
def add_category(request: Request, user: Manager, db_url: DbUrl, name: Annotated[str, Form(max_length=80)],
                 team: Annotated[str, Form(max_length=60)] = "") -> Response:
    try:
        with transaction(db_url) as db:
            library.create_category(db, user, name, team.strip())
    except LibraryError as exc:
        raise PageProblem(exc.status, user, _("Cannot do that"), translate(exc.message),
                          translate(exc.fix), back="/library") from None
    return see_other("/library")


@router.get("/library/rules/new", response_class=HTMLResponse)
def new_rule_page(request: Request, user: Manager, db_url: DbUrl) -> HTMLResponse:
    return _rule_page(request, user, db_url, None, {}, [])


@router.get("/library/rules/{rule_id:int}", response_class=HTMLResponse)
def rule_page(request: Request, rule_id: int, user: Manager, db_url: DbUrl) -> HTMLResponse:
    with session_factory(db_url)() as db:
        rule = db.get(SuggestionRule, rule_id)
        if rule is None:
            raise PageProblem(404, user, _("Not found"),
                              _("There is no suggestion rule “%(id)s”.") % {"id": str(rule_id)}, back="/library")
        values = {"name": rule.name, "team": rule.team, "keywords": ", ".join(rule.keywords),
                  "situations": "\n".join(f"{s['kind']}: {s['value']}" for s in rule.situations),
                  "condition": rule.condition, "priority": rule.priority, "script_ids": list(rule.script_ids),
                  "enabled": rule.enabled}
    return _rule_page(request, user, db_url, rule_id, values, [])


def _rule_page(request: Request, user: User, db_url: str, rule_id: int | None, values: dict[str, Any],
               problems: Sequence[Mapping[str, Any]], status_code: int = 200) -> HTMLResponse:
    with session_factory(db_url)() as db:
        scripts = library.library(db, None)
    return render(request, user, "sidebar/rule_form.html", rule_id=rule_id, values=values, problems=problems,
                  scripts=scripts, kinds=SITUATION_KINDS, status_code=status_code)


def _rule_from_form(form: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what the form said, to show it again; the rule as RuleSpec reads it)."""
    values: dict[str, Any] = {k: form.get(k) for k in ("name", "team", "keywords", "situations", "condition",
                                                         "priority")}
    values["script_ids"] = [int(v) for v in form.getlist("script_ids") if isinstance(v, str) and v.isdigit()]
    switch = form.getlist("enabled")  # a hidden "off" before the checkbox: unchecked sends only "off"
    values["enabled"] = "on" in switch if switch else True
    situations = []
    for line in str(values.get("situations") or "").splitlines():
        kind, _, value = line.partition(":")
        if line.strip():
            situations.append({"kind": kind.strip(), "value": value.strip()})
    priority = str(values.get("priority") or "0").strip()
    raw = {"name": str(values.get("name") or ""), "team": str(values.get("team") or "").strip(),
           "keywords": _words(str(values.get("keywords") or "")), "situations": situations,
           "condition": str(values.get("condition") or ""), "script_ids": values["script_ids"],
           "priority": int(priority) if priority.lstrip("-").isdigit() and len(priority) < 6 else priority,
           "enabled": values["enabled"]}
    return values, raw


async def _save_rule(request: Request, user: User, db_url: str, rule_id: int | None) -> Response:
    values, raw = _rule_from_form(await request.form())
    try:
        spec = RuleSpec.model_validate(raw)

        def write() -> None:
            evaluation.prime_sources(suggestions.cost_sources(spec))  # measured in the pool, not here
            with transaction(db_url) as db:
                if rule_id is None:
                    library.create_rule(db, user, spec, _now())
                else:
                    library.update_rule(db, user, rule_id, spec, _now())

        await run_in_threadpool(write)
    except ValidationError as exc:
        return _rule_page(request, user, db_url, rule_id, values, validation_problems(list(exc.errors())), 422)
    except LibraryError as exc:
        return _rule_page(request, user, db_url, rule_id, values,
                          [{"field": exc.field, "message": translate(exc.message), "fix": translate(exc.fix)}],
                          exc.status)
    except ApiError as exc:
        return _rule_page(request, user, db_url, rule_id, values,
                          [{"field": "condition", "message": translate(exc.body["message"]),
                            "fix": translate(exc.body.get("fix") or "")}], exc.status)
    return see_other("/library")


@router.post("/library/rules/new", response_class=HTMLResponse)
async def create_rule(request: Request, user: Manager, db_url: DbUrl) -> Response:
    return await _save_rule(request, user, db_url, None)


@router.post("/library/rules/{rule_id:int}", response_class=HTMLResponse)
async def update_rule(request: Request, rule_id: int, user: Manager, db_url: DbUrl) -> Response:
    return await _save_rule(request, user, db_url, rule_id)


@router.post("/library/rules/{rule_id}/delete", response_class=HTMLResponse)
def delete_rule(request: Request, rule_id: int, user: Manager, db_url: DbUrl) -> Response:
    with transaction(db_url) as db:
        library.delete_rule(db, user, rule_id)
    return see_other("/library")


@router.get("/library/staff", response_class=HTMLResponse)
def staff_page(request: Request, user: Admin, db_url: DbUrl, problem: str = "") -> HTMLResponse:
    with session_factory(db_url)() as db:
        try:
            corp = sidebar_app(db).connector_id
        except NotConfigured:
            corp = ""
        links = staff.links(db, corp) if corp else []
    return render(request, user, "sidebar/staff.html", links=links, corp=corp)


@router.post("/library/staff", response_class=HTMLResponse)
def link_staff(request: Request, user: Admin, db_url: DbUrl, userid: Annotated[str, Form(max_length=64)],
               username: Annotated[str, Form(max_length=80)]) -> Response:
    try:
        with transaction(db_url) as db:
            staff.link(db, user, sidebar_app(db).connector_id, userid, username, _now())
    except NotConfigured as exc:  # the configuration does not allow it (the message says what to set): 409
        raise PageProblem(409, user, _("Cannot do that"), error_text(exc), back="/library/staff") from None
    except AuthError as exc:  # the form's UserID or username: 422
        raise PageProblem(422, user, _("Cannot do that"), error_text(exc), back="/library/staff") from None
    return see_other("/library/staff")


@router.post("/library/staff/{userid}/delete", response_class=HTMLResponse)
def unlink_staff(request: Request, userid: str, user: Admin, db_url: DbUrl) -> Response:
    with transaction(db_url) as db:
        try:
            staff.unlink(db, user, sidebar_app(db).connector_id, userid, _now())
        except NotConfigured as exc:  # as in link_staff: the configuration, not the request, is what is missing
            raise PageProblem(409, user, _("Cannot do that"), error_text(exc), back="/library/staff") from None
    return see_other("/library/staff")
