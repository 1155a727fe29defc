"""The script library (话术库) in the database: categories, scripts with versions and approval, images,
every use, and suggestion rules. Functions take the caller's ``Session`` and never commit (the route owns
the transaction); every change is written to the audit log.

Teams: a script, a category or a rule belongs to a team (an agent group key, ``""`` = every team).
Staff see the scripts of every team ``""`` and of their own agent groups; the library's managers
(marketer, ops, admin) see all teams.

Approval: see :class:`engine.db.sidebar_models.Script`. Staff only ever get ``published`` content; a
version that waits for review is invisible to them, and the version they used is recorded with each use.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from activities.sidebar import scripts as script_rules
from activities.sidebar import suggestions
from activities.sidebar.scripts import (
    MANAGERS,
    ScriptProblem,
    ScriptSpec,
    Searchable,
    render_message,
    review_refusal,
    search,
)
from activities.sidebar.suggestions import Rule, RuleSpec
from connectors.wecom.media import REFRESH_BEFORE, TEMPORARY_MEDIA_SECONDS
from engine.auth import audit, has_role
from engine.db import models
from engine.db.sidebar_models import Script, ScriptCategory, ScriptImage, ScriptUse, SuggestionRule
from engine.isolation import EvaluationBusy, IsolationError
from engine.text import Msg, MsgError, message_of

#: images WeCom takes as temporary media: JPG/PNG, and we keep them small for a chat (WeCom allows 10 MB)
MAX_IMAGE_BYTES = 2 * 1024 * 1024
IMAGE_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}
#: WeCom temporary media live 3 days; upload again when less than 12 hours are left (as connectors/wecom/media.py)
MEDIA_REUSE = timedelta(seconds=TEMPORARY_MEDIA_SECONDS - REFRESH_BEFORE)
USE_STATUSES = ("sent", "failed", "cancelled")
#: runs a pure function ``run(fn, *args)`` where the caller wants it: the web app passes its evaluation pool
#: (``designer.evaluation.isolated``), so rendering a costly script cannot stall the web process
Evaluate = Callable[..., Any]


def here(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``fn`` in this process (tests, command-line use)."""
    return fn(*args, **kwargs)


class LibraryError(MsgError):
    """A change that cannot be made; ``status`` is the HTTP status the API answers with."""


def actor(user: models.User) -> str:
    return user.username


# -- who sees what --------------------------------------------------------------------------------------


def is_manager(user: models.User) -> bool:
    return has_role(user, *MANAGERS)


def visible_teams(db: Session, user: models.User) -> set[str] | None:
    """The teams whose scripts ``user`` sees: None = every team (managers); else ``""`` and their groups."""
    if is_manager(user):
        return None
    agent = db.get(models.Agent, user.id)
    return {"", *(str(g) for g in (agent.groups if agent else []))}


def _in_teams(column: Any, teams: set[str] | None) -> Any:
    return True if teams is None else column.in_(sorted(teams))


# -- categories ------------------------------------------------------------------------------------------


def create_category(db: Session, user: models.User, name: str, team: str = "", position: int = 0) -> ScriptCategory:
    name = name.strip()
    if not 1 <= len(name) <= 80:
        raise LibraryError(Msg("a category name must be 1–80 characters"), Msg("give it a short name"), "name")
    if db.scalar(select(ScriptCategory).where(ScriptCategory.team == team, ScriptCategory.name == name)):
        raise LibraryError(Msg("team '%(value)s' already has a category '%(name)s'", value=team or '*', name=name),
                           Msg("pick another name"), "name", 409)
    row = ScriptCategory(team=team, name=name, position=position)
    db.add(row)
    db.flush()
    audit(db, user, "script_category.created", f"script-category:{row.id}", {"name": name, "team": team})
    return row


def categories(db: Session, teams: set[str] | None) -> list[ScriptCategory]:
    return list(db.scalars(select(ScriptCategory).where(_in_teams(ScriptCategory.team, teams))
                           .order_by(ScriptCategory.position, ScriptCategory.id)))


def delete_category(db: Session, user: models.User, category_id: int) -> None:
    row = db.get(ScriptCategory, category_id)
    if row is None:
        raise LibraryError(Msg("category %(category_id)s does not exist", category_id=category_id),
                           Msg("list them first"), "id", 404)
    used = db.scalar(select(func.count()).select_from(Script).where(Script.category_id == category_id,
                                                                     Script.status != "archived"))
    if used:
        raise LibraryError(Msg("category '%(name)s' still holds %(used)s scripts", name=row.name, used=used),
                           Msg("move or archive them first"), "id",
                           409)
    audit(db, user, "script_category.deleted", f"script-category:{row.id}", {"name": row.name})
    db.execute(delete(ScriptCategory).where(ScriptCategory.id == category_id))


# -- scripts ---------------------------------------------------------------------------------------------


def _check_refs(db: Session, spec: ScriptSpec) -> None:
    if spec.category_id is not None:
        category = db.get(ScriptCategory, spec.category_id)
        if category is None:
            raise LibraryError(Msg("category %(category_id)s does not exist", category_id=spec.category_id),
                               Msg("list the categories"), "category_id")
        if category.team not in ("", spec.team):
            raise LibraryError(Msg("category '%(name)s' belongs to team '%(team)s'", name=category.name,
                                   team=category.team),
                               Msg("use a category of the script's team or of every team"), "category_id")
    if spec.image_id is not None and db.get(ScriptImage, spec.image_id) is None:
        raise LibraryError(Msg("image %(image_id)s does not exist", image_id=spec.image_id),
                           Msg("upload the image first"), "image_id")


def _check_cost(spec: ScriptSpec) -> None:
    """A template that costs too much on sample data is refused at save, naming its field (issue 18)."""
    try:
        script_rules.check_cost(spec)
    except ScriptProblem as exc:
        raise LibraryError(message_of(exc), exc.fix, exc.field, 422) from None


def _snapshot(script: Script) -> dict[str, Any]:
    return {"version": script.version, "kind": script.kind, "title": script.title, "content": dict(script.content)}


def _write(script: Script, spec: ScriptSpec) -> None:
    script.kind, script.title, script.category_id, script.team = spec.kind, spec.title, spec.category_id, spec.team
    script.content, script.keywords, script.requires_approval = spec.content(), list(spec.keywords), \
        spec.requires_approval


def create_script(db: Session, user: models.User, spec: ScriptSpec, now: datetime) -> Script:
    _check_refs(db, spec)
    _check_cost(spec)
    script = Script(version=1, uses=0, created_at=now, updated_at=now, updated_by=actor(user), review_note="")
    _write(script, spec)
    if spec.requires_approval:
        script.status, script.published = "pending", None
    else:
        script.status, script.published = "approved", _snapshot(script)
    db.add(script)
    db.flush()
    audit(db, user, "script.created", f"script:{script.id}",
          {"title": script.title, "kind": script.kind, "team": script.team, "status": script.status})
    return script


def get_script(db: Session, script_id: int, lock: bool = False) -> Script:
    query = select(Script).where(Script.id == script_id)
    script = db.scalar(query.with_for_update() if lock else query)
    if script is None:
        raise LibraryError(Msg("script %(script_id)s does not exist", script_id=script_id), Msg("list the library"),
                           "id", 404)
    return script


def update_script(db: Session, user: models.User, script_id: int, spec: ScriptSpec, now: datetime,
                  expected_version: int | None = None) -> Script:
    """A new version. With approval required it waits for review and staff keep the last approved one."""
    script = get_script(db, script_id, lock=True)
    if script.status == "archived":
        raise LibraryError(Msg("script %(script_id)s is archived", script_id=script_id),
                           Msg("create a new script instead"), "id", 409)
    if expected_version is not None and expected_version != script.version:
        raise LibraryError(Msg("script %(script_id)s changed meanwhile (now version %(version)s, you edited "
                               "%(expected_version)s)", script_id=script_id, version=script.version,
                               expected_version=expected_version),
                           Msg("reload it and make your change again"), "version", 409)
    _check_refs(db, spec)
    _check_cost(spec)
    _write(script, spec)
    script.version += 1
    script.updated_by, script.updated_at, script.review_note = actor(user), now, ""
    script.reviewed_by, script.reviewed_at = None, None
    if spec.requires_approval:
        script.status = "pending"
    else:
        script.status, script.published = "approved", _snapshot(script)
    audit(db, user, "script.updated", f"script:{script.id}",
          {"version": script.version, "status": script.status, "title": script.title})
    return script


def review_script(db: Session, user: models.User, script_id: int, version: int, approve: bool, note: str,
                  now: datetime) -> Script:
    """Approve (publish) or reject the pending ``version``; the four-eyes rule applies."""
    script = get_script(db, script_id, lock=True)
    if script.status != "pending":
        raise LibraryError(Msg("script %(script_id)s has no version waiting for review (it is %(status)s)",
                               script_id=script_id, status=script.status),
                           Msg("only pending scripts are reviewed"), "id", 409)
    if version != script.version:
        raise LibraryError(Msg("version %(version)s is not the one waiting (version %(version2)s is)", version=version,
                               version2=script.version),
                           Msg("reload and review the current version"), "version", 409)
    refusal = review_refusal(user.role, actor(user), script.updated_by)
    if refusal:
        raise LibraryError(refusal, Msg("ask another reviewer"), None, 403)
    if not approve and not note.strip():
        raise LibraryError(Msg("say why the version is rejected"), Msg("write a note the author can act on"), "note")
    script.status = "approved" if approve else "rejected"
    script.review_note, script.reviewed_by, script.reviewed_at = note.strip()[:2000], actor(user), now
    if approve:
        script.published = _snapshot(script)
    audit(db, user, "script.approved" if approve else "script.rejected", f"script:{script.id}",
          {"version": version, "note": script.review_note})
    return script


def archive_script(db: Session, user: models.User, script_id: int, now: datetime) -> Script:
    script = get_script(db, script_id, lock=True)
    if script.status != "archived":
        script.status, script.updated_at, script.updated_by = "archived", now, actor(user)
        audit(db, user, "script.archived", f"script:{script.id}", {"title": script.title})
    return script


def script_view(script: Script) -> dict[str, Any]:
    """The library's view (managers): the editable version and what staff use now."""
    return {"id": script.id, "kind": script.kind, "title": script.title, "category_id": script.category_id,
            "team": script.team, "content": script.content, "keywords": list(script.keywords),
            "requires_approval": script.requires_approval, "status": script.status, "version": script.version,
            "published_version": (script.published or {}).get("version"), "review_note": script.review_note,
            "updated_by": script.updated_by, "reviewed_by": script.reviewed_by,
            "reviewed_at": script.reviewed_at.isoformat() if script.reviewed_at else None, "uses": script.uses,
            "updated_at": script.updated_at.isoformat()}


def library(db: Session, teams: set[str] | None, *, status: str | None = None) -> list[Script]:
    query = select(Script).where(_in_teams(Script.team, teams))
    query = query.where(Script.status == status) if status else query.where(Script.status != "archived")
    return list(db.scalars(query.order_by(Script.id)))


def usable_scripts(db: Session, user: models.User) -> list[Script]:
    """What ``user`` may send now: published, not archived, of their teams."""
    return [s for s in library(db, visible_teams(db, user)) if s.published is not None]


def find(db: Session, user: models.User, query: str, category_id: int | None = None, limit: int = 50
         ) -> list[Script]:
    scripts = [s for s in usable_scripts(db, user) if category_id is None or s.category_id == category_id]
    names = {c.id: c.name for c in categories(db, None)}
    by_id = {s.id: s for s in scripts}
    items = [Searchable(s.id, str(s.published["title"]), _searchable_text(s.published), list(s.keywords),
                        names.get(s.category_id or 0, ""), s.uses) for s in scripts if s.published]
    return [by_id[i] for i in search(items, query, limit)]


def _searchable_text(published: dict[str, Any]) -> str:
    content = published.get("content") or {}
    card = content.get("link") or content.get("miniprogram") or {}
    return " ".join(str(x) for x in (content.get("text", ""), card.get("title", ""), card.get("desc", "")) if x)


# -- images ----------------------------------------------------------------------------------------------


def store_image(db: Session, user: models.User, data: bytes) -> ScriptImage:
    """Keep an uploaded image (PNG or JPEG, at most 2 MB), once per content."""
    if not data:
        raise LibraryError(Msg("the image is empty"), Msg("upload a PNG or JPEG file"), "file")
    if len(data) > MAX_IMAGE_BYTES:
        raise LibraryError(Msg("the image is %(value)s bytes; the limit is %(MAX_IMAGE_BYTES)s", value=len(data),
                               MAX_IMAGE_BYTES=MAX_IMAGE_BYTES),
                           Msg("make it smaller (at most 2 MB)"), "file", 413)
    content_type = next((t for magic, t in IMAGE_TYPES.items() if data.startswith(magic)), None)
    if content_type is None:
        raise LibraryError(Msg("this is not a PNG or JPEG image"), Msg("WeCom sends PNG and JPEG images in chats"),
                           "file", 415)
    digest = hashlib.sha256(data).hexdigest()
    found = db.scalar(select(ScriptImage).where(ScriptImage.sha256 == digest))
    if found is not None:
        return found
    row = ScriptImage(sha256=digest, content_type=content_type, size=len(data), data=data, wecom_media={},
                      created_by=actor(user))
    db.add(row)
    db.flush()
    audit(db, user, "script_image.uploaded", f"script-image:{row.id}", {"size": len(data), "type": content_type})
    return row


def cached_media_id(image: ScriptImage, app_key: str, now: datetime) -> str | None:
    """The WeCom media id of ``image`` for this app if it is young enough to use (3-day media)."""
    entry = (image.wecom_media or {}).get(app_key)
    if not isinstance(entry, dict) or not entry.get("media_id"):
        return None
    try:
        uploaded = datetime.fromisoformat(str(entry.get("uploaded_at")))
    except ValueError:
        return None
    return str(entry["media_id"]) if now - uploaded < MEDIA_REUSE else None


def remember_media_id(image: ScriptImage, app_key: str, media_id: str, now: datetime) -> None:
    image.wecom_media = {**(image.wecom_media or {}), app_key: {"media_id": media_id, "uploaded_at": now.isoformat()}}


# -- use -------------------------------------------------------------------------------------------------


def usable_script(db: Session, user: models.User, script_id: int) -> Script:
    script = get_script(db, script_id)
    teams = visible_teams(db, user)
    if script.status == "archived" or (teams is not None and script.team not in teams):
        raise LibraryError(Msg("script %(script_id)s does not exist", script_id=script_id), Msg("search the library"),
                           "id", 404)
    if script.published is None:
        raise LibraryError(Msg("script %(script_id)s is waiting for approval and cannot be used yet",
                               script_id=script_id),
                           Msg("use another script or ask a reviewer"), "id", 409)
    return script


def render_published(script: Script, context: dict[str, Any], media_id: str | None = None,
                     run: Evaluate = here) -> dict[str, Any]:
    """The published version's message for ``context``, rendered through ``run``."""
    published = script.published or {}
    try:
        message: dict[str, Any] = run(render_message, str(published.get("kind")), published.get("content") or {},
                                      context, media_id)
        return message
    except EvaluationBusy as exc:
        raise LibraryError(Msg("script %(id)s cannot be rendered right now: %(exc)s", id=script.id,
                               exc=message_of(exc)),
                           Msg("try again in a moment"), None, 503) from None
    except IsolationError as exc:
        raise LibraryError(Msg("script %(id)s cannot be sent to this customer: %(exc)s", id=script.id,
                               exc=message_of(exc)), Msg("fix the script in the library"), "text") from None
    except ScriptProblem as exc:
        raise LibraryError(Msg("script %(id)s cannot be sent to this customer: %(exc)s", id=script.id, exc=exc),
                           Msg("fix the script in the library"), exc.field) from None


def record_use(db: Session, user: models.User, script: Script, message: dict[str, Any], now: datetime, *,
               customer_id: str | None, chat_id: str | None) -> ScriptUse:
    """A use: which version, who, for whom, what kind; ``status`` rendered until the page reports."""
    use = ScriptUse(script_id=script.id, version=int((script.published or {}).get("version") or script.version),
                    user_id=user.id, customer_id=customer_id, chat_id=chat_id, msgtype=str(message.get("msgtype")),
                    status="rendered", error="", at=now)
    db.add(use)
    script.uses = (script.uses or 0) + 1
    db.flush()
    audit(db, user, "script.used", f"script:{script.id}",
          {"use": use.id, "version": use.version, "customer": customer_id, "chat": chat_id})
    return use


def finish_use(db: Session, user: models.User, use_id: int, status: str, error: str, now: datetime) -> ScriptUse:
    """What the WeCom client answered to sendChatMessage: sent, failed (with its errMsg) or cancelled."""
    if status not in USE_STATUSES:
        raise LibraryError(Msg("status must be one of %(value)s", value=', '.join(USE_STATUSES)),
                           Msg("report what sendChatMessage said"),
                           "status")
    use = db.get(ScriptUse, use_id)
    if use is None or use.user_id != user.id:
        raise LibraryError(Msg("use %(use_id)s does not exist", use_id=use_id),
                           Msg("report the use id the use call returned"), "id", 404)
    if use.status != "rendered":
        if use.status == status:
            return use  # a retried report changes nothing
        raise LibraryError(Msg("use %(use_id)s was already reported as %(status)s", use_id=use_id, status=use.status),
                           Msg("report each use once"), "status",
                           409)
    use.status, use.error, use.finished_at = status, error.strip()[:500], now
    audit(db, user, f"script.{status}", f"script:{use.script_id}", {"use": use.id, "error": use.error})
    return use


def uses_of(db: Session, script_id: int, limit: int = 100) -> list[ScriptUse]:
    return list(db.scalars(select(ScriptUse).where(ScriptUse.script_id == script_id)
                           .order_by(ScriptUse.id.desc()).limit(limit)))


# -- suggestion rules ------------------------------------------------------------------------------------


def _check_rule_cost(spec: RuleSpec) -> None:
    try:
        suggestions.check_cost(spec)
    except suggestions.RuleProblem as exc:
        raise LibraryError(exc.message, exc.fix, exc.field, 422) from None


def _check_rule_refs(db: Session, spec: RuleSpec) -> None:
    known = set(db.scalars(select(Script.id).where(Script.id.in_(spec.script_ids))))
    missing = [i for i in spec.script_ids if i not in known]
    if missing:
        raise LibraryError(Msg("scripts %(missing)s do not exist", missing=missing),
                           Msg("pick scripts from the library"), "script_ids")


def _write_rule(rule: SuggestionRule, spec: RuleSpec, user: models.User, now: datetime) -> None:
    rule.name, rule.team, rule.keywords = spec.name, spec.team, list(spec.keywords)
    rule.situations = [s.model_dump() for s in spec.situations]
    rule.condition, rule.script_ids, rule.priority, rule.enabled = spec.condition, list(spec.script_ids), \
        spec.priority, spec.enabled
    rule.updated_by, rule.updated_at = actor(user), now


def create_rule(db: Session, user: models.User, spec: RuleSpec, now: datetime) -> SuggestionRule:
    _check_rule_refs(db, spec)
    _check_rule_cost(spec)
    rule = SuggestionRule(created_at=now)
    _write_rule(rule, spec, user, now)
    db.add(rule)
    db.flush()
    audit(db, user, "suggestion_rule.created", f"suggestion-rule:{rule.id}", spec.model_dump())
    return rule


def update_rule(db: Session, user: models.User, rule_id: int, spec: RuleSpec, now: datetime) -> SuggestionRule:
    rule = db.get(SuggestionRule, rule_id)
    if rule is None:
        raise LibraryError(Msg("suggestion rule %(rule_id)s does not exist", rule_id=rule_id), Msg("list the rules"),
                           "id", 404)
    _check_rule_refs(db, spec)
    _check_rule_cost(spec)
    _write_rule(rule, spec, user, now)
    audit(db, user, "suggestion_rule.updated", f"suggestion-rule:{rule.id}", spec.model_dump())
    return rule


def delete_rule(db: Session, user: models.User, rule_id: int) -> None:
    rule = db.get(SuggestionRule, rule_id)
    if rule is None:
        raise LibraryError(Msg("suggestion rule %(rule_id)s does not exist", rule_id=rule_id), Msg("list the rules"),
                           "id", 404)
    audit(db, user, "suggestion_rule.deleted", f"suggestion-rule:{rule.id}", {"name": rule.name})
    db.delete(rule)
    db.flush()


def rule_view(rule: SuggestionRule) -> dict[str, Any]:
    return {"id": rule.id, "name": rule.name, "team": rule.team, "keywords": list(rule.keywords),
            "situations": list(rule.situations), "condition": rule.condition, "script_ids": list(rule.script_ids),
            "priority": rule.priority, "enabled": rule.enabled, "updated_by": rule.updated_by}


def rules(db: Session, teams: set[str] | None, enabled_only: bool = False) -> list[SuggestionRule]:
    query = select(SuggestionRule).where(_in_teams(SuggestionRule.team, teams))
    if enabled_only:
        query = query.where(SuggestionRule.enabled.is_(True))
    return list(db.scalars(query.order_by(SuggestionRule.id)))


def rules_for(db: Session, user: models.User) -> list[Rule]:
    return [Rule(r.id, r.name, [int(i) for i in r.script_ids], [str(k) for k in r.keywords],
                 [dict(s) for s in r.situations], r.condition, r.priority)
            for r in rules(db, visible_teams(db, user), enabled_only=True)]


def ids(scripts: Sequence[Script]) -> list[int]:
    return [s.id for s in scripts]
